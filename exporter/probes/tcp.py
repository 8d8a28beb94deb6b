"""The `tcp` prober and the name resolution every connecting prober shares, as blackbox_exporter's
prober/tcp.go and prober/utils.go do it.

The target is "host:port" ("[v6addr]:port" for IPv6). The probe resolves the host (preferred IP
protocol, with fallback), connects (with TLS when `tls: true`), then works through `query_response`:
each `expect` regex is matched against the lines the server sends until one matches, `send` is written
with a newline (with `${1}`/`${name}` replaced by the match's groups) and `starttls` upgrades the
connection. An `expect` that no line matched before the server closed the connection fails the probe
with `probe_failed_due_to_regex 1`; one still waiting at the deadline fails it as a timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import re
import socket
import ssl
import time
from typing import Literal

import pydantic

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.config.types import CompiledRegex, Regex, RegexMatch, StrictModel
from exporter.probes.base import FailureReason, Prober, ProbeSink
from exporter.probes.tls import (
    classify_tls_error,
    describe_tls_error,
    report_tls,
    report_tls_failure,
)

IPProtocol = Literal["ip4", "ip6"]

MAX_LINE_BYTES = 64 * 1024  # Go's bufio.Scanner limit, which blackbox's line matching inherits

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


async def resolve_target(host: str, preferred: IPProtocol = "ip6", fallback: bool = True) -> tuple[str, int, float]:
    """Resolve `host` to (ip, socket family, seconds taken), blackbox's way: an address of the preferred
    protocol if there is one; else, with `fallback`, one of the other; without `fallback`, only the
    preferred protocol is asked for. An IP literal is returned as it is, without a lookup."""
    want = socket.AF_INET6 if preferred == "ip6" else socket.AF_INET
    started = time.perf_counter()
    literal = _ip_literal(host)
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        if family != want and not fallback:
            raise ResolveError(f"{host} is not an {preferred} address", time.perf_counter() - started)
        return host, family, time.perf_counter() - started
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _resolver_pool,
            lambda: socket.getaddrinfo(host, None, family=0 if fallback else want, type=socket.SOCK_STREAM),
        )
    except (socket.gaierror, UnicodeError) as err:
        problem = err.strerror if isinstance(err, socket.gaierror) else f"not a valid host name ({err})"
        raise ResolveError(f"cannot resolve {host}: {problem}", time.perf_counter() - started) from None
    seconds = time.perf_counter() - started
    addresses = [(info[0], str(info[4][0])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    for family, address in addresses:
        if family == want:
            return address, family, seconds
    if addresses and fallback:
        return addresses[0][1], addresses[0][0], seconds
    raise ResolveError(f"cannot resolve {host}: no {preferred} address", seconds)


async def resolve_all(host: str) -> list[str]:
    """Every address of `host` (IPv4 and IPv6) in the system resolver's order, for a client that tries
    them in turn; an IP literal is returned as it is. Raises ResolveError."""
    if _ip_literal(host) is not None:
        return [host]
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _resolver_pool, lambda: socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        )
    except (socket.gaierror, UnicodeError) as err:
        problem = err.strerror if isinstance(err, socket.gaierror) else f"not a valid host name ({err})"
        raise ResolveError(f"cannot resolve {host}: {problem}", time.perf_counter() - started) from None
    addresses = [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise ResolveError(f"cannot resolve {host}: no IPv4 or IPv6 address", time.perf_counter() - started)
    return list(dict.fromkeys(addresses))


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


def ip_addr_hash(ip: str) -> int:
    """FNV-1a (32 bit) of the address' bytes (4 for IPv4, 16 for IPv6), as blackbox's ipHash: the
    same address gives the same probe_ip_addr_hash value in both exporters."""
    value = 0x811C9DC5
    for byte in ipaddress.ip_address(ip.partition("%")[0]).packed:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


async def resolve_for_probe(
    host: str, preferred: IPProtocol, fallback: bool, sink: ProbeSink
) -> tuple[str, int] | None:
    """resolve_target, writing probe_dns_lookup_time_seconds, probe_ip_protocol and probe_ip_addr_hash
    (0 when resolution failed, as blackbox) and recording `dns_error`; (ip, family) or None."""
    sink.log(f"resolving {host} (preferred {preferred}, fallback {'on' if fallback else 'off'})")
    try:
        ip, family, seconds = await resolve_target(host, preferred, fallback)
    except ResolveError as err:
        _report_resolution(sink, err.seconds, 0, 0)
        sink.fail(FailureReason.DNS_ERROR, str(err))
        return None
    _report_resolution(sink, seconds, 6 if family == socket.AF_INET6 else 4, ip_addr_hash(ip))
    sink.log(f"resolved {host} to {ip} in {seconds:.6f}s")
    return ip, family


def _report_resolution(sink: ProbeSink, seconds: float, protocol: int, addr_hash: int) -> None:
    sink.gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", seconds)
    sink.gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", protocol)
    sink.gauge(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        addr_hash,
    )


def split_host_port(target: str) -> tuple[str, int]:
    """ "host:port" or "[v6addr]:port" -> (host, port); ValueError says what is wrong."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host:
        raise ValueError(f"target {target!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"target {target!r}: write an IPv6 address in brackets, like [::1]:{port_text}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"target {target!r}: {port_text!r} is not a port number")
    return host, int(port_text)


_TEMPLATE_REFERENCE = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")


def expand(template: str, match: RegexMatch) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}` become the match's groups (empty when the
    group does not exist or did not take part), `$$` is a `$`; blackbox's `send` is written this way."""

    def group(reference: re.Match[str]) -> str:
        dollar, braced, bare = reference.groups()
        if dollar:
            return "$"
        name = braced or bare
        try:
            value = match.group(int(name) if name.isdigit() else name)
        except IndexError:  # no such group
            return ""
        return value or ""

    return _TEMPLATE_REFERENCE.sub(group, template)


class QueryResponse(StrictModel):
    expect: Regex | None = None
    send: str = ""
    starttls: bool = False


class TCPProbe(StrictModel):
    """blackbox_exporter 0.23's `tcp:` module options."""

    preferred_ip_protocol: IPProtocol = "ip6"
    ip_protocol_fallback: bool = True
    source_ip_address: str | None = None
    query_response: list[QueryResponse] = []
    tls: bool = False
    tls_config: TLSClientConfig = TLSClientConfig()

    @pydantic.field_validator("source_ip_address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None and _ip_literal(value) is None:
            raise ValueError(f"{value!r} is not an IP address")
        return value


class _RegexNotMatched(Exception):
    """An `expect` matched no line: the failure is recorded, probe_failed_due_to_regex must say 1."""


async def probe(target: str, config: TCPProbe, sink: ProbeSink) -> bool:
    failed_due_to_regex = 0
    try:
        return await _probe(target, config, sink)
    except _RegexNotMatched:
        failed_due_to_regex = 1
        return False
    finally:
        # Written last (also when the deadline cancels the probe), as blackbox's gauge that starts at 0.
        sink.gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex", failed_due_to_regex)


async def _probe(target: str, config: TCPProbe, sink: ProbeSink) -> bool:
    try:
        host, port = split_host_port(target)
    except ValueError as err:
        return sink.fail(FailureReason.CONNECTION_ERROR, str(err))
    resolved = await resolve_for_probe(host, config.preferred_ip_protocol, config.ip_protocol_fallback, sink)
    if resolved is None:
        return False
    ip, _ = resolved
    server_name = config.tls_config.server_name or host
    local_addr = (config.source_ip_address, 0) if config.source_ip_address else None
    sink.log(f"connecting to {ip} port {port}" + (" with TLS" if config.tls else ""))
    try:
        reader, writer = await asyncio.open_connection(
            ip,
            port,
            ssl=client_ssl_context(config.tls_config) if config.tls else None,
            server_hostname=server_name if config.tls else None,
            local_addr=local_addr,
            limit=MAX_LINE_BYTES,
        )
    except ssl.SSLError as err:
        return await report_tls_failure(
            sink, err, address=ip, port=port, server_hostname=server_name, config=config.tls_config
        )
    except ConnectionRefusedError as err:
        return sink.fail(FailureReason.CONNECTION_REFUSED, f"connecting to {ip} port {port}: {err.strerror or err}")
    except OSError as err:
        return sink.fail(FailureReason.CONNECTION_ERROR, f"connecting to {ip} port {port}: {err.strerror or err}")
    sink.log("connected")
    try:
        if config.tls:
            report_tls(sink, writer.get_extra_info("ssl_object"))
        return await _query_response(reader, writer, config, server_name, sink)
    finally:
        writer.close()


async def _query_response(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: TCPProbe, server_name: str, sink: ProbeSink
) -> bool:
    for index, step in enumerate(config.query_response):
        send = step.send
        try:
            if step.expect is not None:
                match = await _read_until_match(reader, step.expect, sink)
                if match is None:
                    sink.fail(
                        FailureReason.QUERY_RESPONSE,
                        f"query_response[{index}]: no line matched {step.expect.pattern!r} "
                        "before the connection closed",
                    )
                    raise _RegexNotMatched
                send = expand(send, match)
            if send:
                sink.log(f"sending {send!r}")
                writer.write(send.encode() + b"\n")
                await writer.drain()
        except ValueError:  # asyncio's LimitOverrunError arrives as ValueError from readline()
            return sink.fail(
                FailureReason.PROTOCOL_ERROR, f"query_response[{index}]: a line longer than {MAX_LINE_BYTES} bytes"
            )
        except OSError as err:
            return sink.fail(FailureReason.CONNECTION_ERROR, f"query_response[{index}]: {err.strerror or err}")
        if step.starttls:
            sink.log("starting TLS")
            try:
                await writer.start_tls(client_ssl_context(config.tls_config), server_hostname=server_name)
            except ssl.SSLError as err:
                # No second handshake for the certificate here: it would have to replay the protocol.
                return sink.fail(classify_tls_error(err), describe_tls_error(err))
            except OSError as err:
                return sink.fail(FailureReason.CONNECTION_ERROR, f"query_response[{index}]: {err.strerror or err}")
            report_tls(sink, writer.get_extra_info("ssl_object"))
            sink.log("TLS started")
    return True


async def _read_until_match(reader: asyncio.StreamReader, expect: CompiledRegex, sink: ProbeSink) -> RegexMatch | None:
    """Read lines until one matches `expect`; None at end of stream."""
    while True:
        raw = await reader.readline()
        if not raw:
            return None
        line = raw.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
        match = expect.search(line)
        sink.log(f"read {line!r}" + (f": matches {expect.pattern!r}" if match else ""))
        if match:
            return match


PROBER = Prober("tcp", TCPProbe, probe)
