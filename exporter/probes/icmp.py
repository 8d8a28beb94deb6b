"""The `icmp` prober: one echo request, like blackbox_exporter's prober/icmp.go.

Sending ICMP needs a privilege. Linux offers two ways, tried in this order:
- an unprivileged "ping socket" (SOCK_DGRAM, IPPROTO_ICMP), allowed when the process' group is inside
  the sysctl net.ipv4.ping_group_range (the kernel then owns the echo id and the checksum);
- a raw socket, which needs root or CAP_NET_RAW.
Where neither is allowed the probe fails with `permission_denied` and says what to change.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import random
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pydantic

from exporter.config.types import StrictModel
from exporter.probes.base import FailureReason, Prober, ProbeSink
from exporter.probes.resolver import IPProtocol, ResolvedHost, resolve_for_probe

PAYLOAD = b"Pulse synthetic probe"

# One echo id per process (pid, or random when the pid is 1 as in containers) and a sequence starting at a
# random point: several exporters on one host, or restarted together, do not take each other's replies.
_ECHO_ID = (os.getpid() if os.getpid() != 1 else random.randrange(1, 1 << 16)) & 0xFFFF
_sequence = itertools.count(random.randrange(1 << 16))

_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PROTOCOL = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}
# Linux constants the socket module does not export everywhere.
_IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
_IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
_IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)


class ICMPProbe(StrictModel):
    preferred_ip_protocol: IPProtocol = "ip6"
    ip_protocol_fallback: bool = True
    source_ip_address: str | None = None
    payload_size: int = pydantic.Field(0, ge=0, le=65_000)
    dont_fragment: bool = False
    ttl: int | None = pydantic.Field(None, ge=0, le=255)

    @pydantic.field_validator("source_ip_address")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
            except OSError:
                raise ValueError(f"not an IP address: {value!r}") from None
        return value


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: socket.AddressFamily, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", _ECHO_REQUEST[family], 0, 0, _ECHO_ID, sequence)
    if family == socket.AF_INET6:
        return header + payload  # the kernel fills in the ICMPv6 checksum (it covers a pseudo-header)
    return struct.pack("!BBHHH", _ECHO_REQUEST[family], 0, checksum(header + payload), _ECHO_ID, sequence) + payload


@dataclass
class _Socket:
    sock: socket.socket
    unprivileged: bool


def open_icmp_socket(family: socket.AddressFamily) -> _Socket:
    """A ping socket if the kernel allows one, else a raw socket; PermissionError when neither is allowed."""
    try:
        return _Socket(socket.socket(family, socket.SOCK_DGRAM, _PROTOCOL[family]), unprivileged=True)
    except PermissionError:
        pass
    try:
        return _Socket(socket.socket(family, socket.SOCK_RAW, _PROTOCOL[family]), unprivileged=False)
    except PermissionError:
        groups = _ping_group_range()
        raise PermissionError(
            errno.EPERM,
            f"sending ICMP needs CAP_NET_RAW (run as root, or `setcap cap_net_raw+ep` on the Python binary) "
            f"or a ping socket: add group {os.getgid()} to sysctl net.ipv4.ping_group_range "
            f"(now {groups})",
        ) from None


def _ping_group_range() -> str:
    try:
        return " ".join(Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    except OSError:
        return "unknown"


async def probe(target: str, config: ICMPProbe, sink: ProbeSink) -> bool:
    phases = sink.phases(
        "probe_icmp_duration_seconds", "Duration of icmp request by phase", ("resolve", "setup", "rtt")
    )
    host = target[1:-1] if target.startswith("[") and target.endswith("]") else target
    server = await resolve_for_probe(host, config.preferred_ip_protocol, config.ip_protocol_fallback, sink)
    if server is None:
        return False
    phases.add("resolve", server.lookup_seconds)

    started = time.perf_counter()
    try:
        icmp = open_icmp_socket(server.family)
    except PermissionError as err:
        return sink.fail(FailureReason.PERMISSION_DENIED, str(err.strerror))
    try:
        try:
            _configure(icmp.sock, server.family, config)
        except OSError as err:  # e.g. a source_ip_address this host does not have
            return sink.fail(FailureReason.CONNECTION_ERROR, f"cannot set up the ICMP socket: {err.strerror or err}")
        sequence = next(_sequence) & 0xFFFF
        payload = (PAYLOAD * (config.payload_size // len(PAYLOAD) + 1))[: config.payload_size] or PAYLOAD
        packet = echo_request(server.family, sequence, payload)
        kind = "unprivileged ping socket" if icmp.unprivileged else "raw socket"
        sink.log(f"sending echo request seq={sequence} ({len(payload)} bytes payload) over a {kind}")
        phases.add("setup", time.perf_counter() - started)

        started = time.perf_counter()
        try:
            icmp.sock.sendto(packet, (server.ip, 0))
            hop_limit = await _await_reply(icmp, server, sequence, payload)
        except OSError as err:
            return sink.fail(FailureReason.CONNECTION_ERROR, f"{type(err).__name__}: {err.strerror or err}")
        phases.add("rtt", time.perf_counter() - started)
        if hop_limit is not None:
            sink.gauge("probe_icmp_reply_hop_limit", "Replied packet hop limit (TTL for ipv4)", hop_limit)
        sink.log(f"echo reply from {server.ip} after {phases['rtt']:.6f}s, hop limit {hop_limit}")
        return True
    finally:
        icmp.sock.close()


def _configure(sock: socket.socket, family: socket.AddressFamily, config: ICMPProbe) -> None:
    sock.setblocking(False)
    if config.source_ip_address:
        sock.bind((config.source_ip_address, 0))
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
        if config.ttl:  # 0 leaves the system's default
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, config.ttl)
        if config.dont_fragment:
            # Path-MTU discovery "do" sets DF on every packet; works on ping and raw sockets alike.
            sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVHOPLIMIT, 1)
        if config.ttl:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, config.ttl)


async def _await_reply(icmp: _Socket, server: ResolvedHost, sequence: int, payload: bytes) -> int | None:
    """Read until our echo reply arrives (a raw socket sees every ICMP packet of the host); its hop limit."""
    loop = asyncio.get_running_loop()
    sock = icmp.sock
    while True:
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(sock.fileno(), lambda f=readable: f.done() or f.set_result(None))  # type: ignore[misc]
        try:
            await readable
        finally:
            loop.remove_reader(sock.fileno())
        while True:
            try:
                data, ancillary, _, source = sock.recvmsg(65536, 64)
            except BlockingIOError:
                break
            hop_limit = _hop_limit(ancillary)
            if server.family == socket.AF_INET and not icmp.unprivileged:
                header_length = (data[0] & 0x0F) * 4  # raw IPv4 sockets deliver the IP header too
                hop_limit = data[8]
                data = data[header_length:]
            if source[0] != server.ip or len(data) < 8:
                continue
            kind, _, _, echo_id, echo_sequence = struct.unpack("!BBHHH", data[:8])
            ours = icmp.unprivileged or echo_id == _ECHO_ID  # a ping socket's id is the kernel's
            if kind == _ECHO_REPLY[server.family] and ours and echo_sequence == sequence and data[8:] == payload:
                return hop_limit


def _hop_limit(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, _IPV6_HOPLIMIT)):
            return int.from_bytes(data[:4], "little") if len(data) >= 4 else data[0]
    return None


PROBER = Prober("icmp", ICMPProbe, probe)
