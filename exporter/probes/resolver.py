"""Name resolution every prober shares, as blackbox_exporter's prober/utils.go (chooseProtocol) does it.

A prober names the host it probes; this module turns it into one address of the preferred IP protocol
(with fallback to the other, unless the module says not to), writes blackbox's resolution metrics
(probe_dns_lookup_time_seconds, probe_ip_protocol, probe_ip_addr_hash) and records `dns_error` when it
cannot. `split_host_port` reads a "host:port" target the one way all probers accept it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Literal

from exporter.probes.base import FailureReason, ProbeSink

IPProtocol = Literal["ip4", "ip6"]  # the `preferred_ip_protocol` option of every prober

# getaddrinfo blocks, so it runs in threads; in a pool of its own, because a DNS server that does not
# answer holds a thread until the system resolver gives up (resolv.conf: 5 s x attempts), whatever the
# probe's deadline. Hung lookups then queue behind each other here, not in front of the rest of Pulse.
_RESOLVER_THREADS = 16
_resolver_pool = concurrent.futures.ThreadPoolExecutor(_RESOLVER_THREADS, thread_name_prefix="pulse-resolve")


class ResolveError(OSError):
    """The host did not resolve (to an address of a usable IP protocol); `seconds` is the time spent."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


@dataclass(frozen=True)
class ResolvedHost:
    """A probed host's name, the address it resolved to and the time the lookup took."""

    host: str
    ip: str
    family: socket.AddressFamily
    lookup_seconds: float


def split_host_port(target: str, default_port: int | None = None) -> tuple[str, int]:
    """ "host:port" or "[v6addr]:port" -> (host, port); ValueError says what is wrong.

    With a `default_port` the port may be left out, as blackbox's dns prober allows: "host",
    "[v6addr]" and a bare IPv6 address get that port."""
    if target.startswith("["):
        host, closed, rest = target[1:].partition("]")
        if not closed or rest[:1] not in ("", ":"):
            raise ValueError(f"target {target!r} is not host:port")
        sep, port_text = rest[:1], rest[1:]
    elif target.count(":") > 1:
        if default_port is None:
            port_text = target.rpartition(":")[2]
            raise ValueError(f"target {target!r}: write an IPv6 address in brackets, like [::1]:{port_text}")
        host, sep, port_text = target, "", ""  # a bare IPv6 address
    else:
        host, sep, port_text = target.partition(":")
    if not host or (not sep and default_port is None):
        raise ValueError(f"target {target!r} is not host:port")
    if not port_text and default_port is not None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"target {target!r}: {port_text!r} is not a port number")
    return host, int(port_text)


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` spells (an IPv6 zone, "%eth0", allowed), or None for a name."""
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


async def resolve_target(
    host: str, preferred: IPProtocol = "ip6", fallback: bool = True
) -> tuple[str, socket.AddressFamily, float]:
    """Resolve `host` to (ip, socket family, seconds taken), blackbox's way: an address of the preferred
    protocol if there is one; else, with `fallback`, one of the other; without `fallback`, only the
    preferred protocol is asked for. An IP literal is returned as it is, without a lookup."""
    want = socket.AF_INET6 if preferred == "ip6" else socket.AF_INET
    started = time.perf_counter()
    literal = ip_literal(host)
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        if family != want and not fallback:
            raise ResolveError(f"{host} is not an {preferred} address", time.perf_counter() - started)
        return host, family, time.perf_counter() - started
    addresses = await _addresses(host, 0 if fallback else want, started)
    seconds = time.perf_counter() - started
    for family, address in addresses:
        if family == want:
            return address, family, seconds
    if addresses and fallback:
        return addresses[0][1], addresses[0][0], seconds
    raise ResolveError(f"cannot resolve {host}: no {preferred} address", seconds)


async def resolve_all(host: str) -> list[str]:
    """Every address of `host` (IPv4 and IPv6) in the system resolver's order, for a client that tries
    them in turn; an IP literal is returned as it is. Raises ResolveError."""
    if ip_literal(host) is not None:
        return [host]
    started = time.perf_counter()
    addresses = await _addresses(host, 0, started)
    if not addresses:
        raise ResolveError(f"cannot resolve {host}: no IPv4 or IPv6 address", time.perf_counter() - started)
    return list(dict.fromkeys(address for _, address in addresses))


async def _addresses(host: str, family: int, started: float) -> list[tuple[socket.AddressFamily, str]]:
    """(family, address) of each IPv4 / IPv6 answer of the system resolver (asked in the resolver
    pool, for `family` or 0 for both); ResolveError, timed from `started`, when the lookup fails."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _resolver_pool, lambda: socket.getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM)
        )
    except (socket.gaierror, UnicodeError) as err:
        problem = err.strerror if isinstance(err, socket.gaierror) else f"not a valid host name ({err})"
        raise ResolveError(f"cannot resolve {host}: {problem}", time.perf_counter() - started) from None
    return [(info[0], str(info[4][0])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def ip_addr_hash(ip: str) -> int:
    """FNV-1a (32 bit) of the address' bytes (4 for IPv4, 16 for IPv6), as blackbox's ipHash: the
    same address gives the same probe_ip_addr_hash value in both exporters."""
    value = 0x811C9DC5
    for byte in ipaddress.ip_address(ip.partition("%")[0]).packed:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


async def resolve_for_probe(host: str, preferred: IPProtocol, fallback: bool, sink: ProbeSink) -> ResolvedHost | None:
    """resolve_target, writing the resolution metrics (0 when resolution failed, as blackbox) and
    recording `dns_error`; None when the host did not resolve."""
    sink.log(f"resolving {host} (preferred {preferred}, fallback {'on' if fallback else 'off'})")
    try:
        ip, family, seconds = await resolve_target(host, preferred, fallback)
    except ResolveError as err:
        report_resolution(sink, err.seconds)
        sink.fail(FailureReason.DNS_ERROR, str(err))
        return None
    report_resolution(sink, seconds, ip, family)
    sink.log(f"resolved {host} to {ip} in {seconds:.6f}s")
    return ResolvedHost(host, ip, family, seconds)


def report_resolution(sink: ProbeSink, seconds: float, ip: str | None = None, family: int = 0) -> None:
    """blackbox's resolution metrics; without an `ip` (resolution failed) the protocol and hash are 0."""
    sink.gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", seconds)
    protocol = 0 if ip is None else 6 if family == socket.AF_INET6 else 4
    sink.gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", protocol)
    sink.gauge(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        0 if ip is None else ip_addr_hash(ip),
    )
