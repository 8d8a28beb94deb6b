"""The name resolution and host:port reading every prober shares (exporter/probes/resolver.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.resolver import (
    ResolveError,
    ip_addr_hash,
    resolve_all,
    resolve_for_probe,
    resolve_target,
    split_host_port,
)
from tests.helpers import samples_of


def test_resolution_prefers_the_asked_protocol_and_falls_back() -> None:
    ip, _, seconds = asyncio.run(resolve_target("127.0.0.1", "ip6", True))
    assert (ip, seconds >= 0) == ("127.0.0.1", True)
    with pytest.raises(ResolveError):
        asyncio.run(resolve_target("127.0.0.1", "ip6", False))
    ip, _, _ = asyncio.run(resolve_target("localhost", "ip4", False))
    assert ip == "127.0.0.1"


def test_resolve_all_returns_a_literal_as_it_is_and_fails_on_an_unknown_name() -> None:
    assert asyncio.run(resolve_all("::1")) == ["::1"]
    assert "127.0.0.1" in asyncio.run(resolve_all("localhost"))
    with pytest.raises(ResolveError):
        asyncio.run(resolve_all("no-such-host.invalid"))


def test_resolve_for_probe_writes_blackbox_resolution_metrics() -> None:
    sink = ProbeSink()
    resolved = asyncio.run(resolve_for_probe("localhost", "ip4", False, sink))
    assert resolved is not None
    assert (resolved.host, resolved.ip, resolved.family) == ("localhost", "127.0.0.1", socket.AF_INET)
    samples = samples_of(sink.families())
    assert samples["probe_ip_protocol"] == 4
    assert samples["probe_ip_addr_hash"] == ip_addr_hash("127.0.0.1")
    assert samples["probe_dns_lookup_time_seconds"] == resolved.lookup_seconds


def test_a_failed_resolution_is_a_dns_error_with_zeroed_address_metrics() -> None:
    sink = ProbeSink()
    assert asyncio.run(resolve_for_probe("no-such-host.invalid", "ip6", True, sink)) is None
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.DNS_ERROR
    samples = samples_of(sink.families())
    assert (samples["probe_ip_protocol"], samples["probe_ip_addr_hash"]) == (0, 0)


def test_ip_addr_hash_matches_blackbox_values() -> None:
    # Values printed by blackbox_exporter 0.23 for these addresses.
    assert ip_addr_hash("127.0.0.1") == 3668918509
    assert ip_addr_hash("::1") == 1751717746


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("[::1]:853", ("::1", 853)),
        ("db.example.com:5432", ("db.example.com", 5432)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
    ],
)
def test_split_host_port_reads_host_and_port(target: str, expected: tuple[str, int]) -> None:
    assert split_host_port(target) == expected
    assert split_host_port(target, 53) == expected  # a given port wins over the default


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("127.0.0.1", "is not host:port"),
        (":80", "is not host:port"),
        ("[::1]", "is not host:port"),
        ("::1:80", "write an IPv6 address in brackets"),
        ("127.0.0.1:http", "'http' is not a port number"),
        ("127.0.0.1:70000", "'70000' is not a port number"),
        ("127.0.0.1:", "'' is not a port number"),
    ],
)
def test_split_host_port_without_a_default_needs_a_port(target: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        split_host_port(target)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ns.example.com", ("ns.example.com", 53)),
        ("ns.example.com:", ("ns.example.com", 53)),
        ("[::1]", ("::1", 53)),
        ("::1", ("::1", 53)),  # a bare IPv6 address, as blackbox's dns prober reads it
        ("2001:db8::53", ("2001:db8::53", 53)),
    ],
)
def test_split_host_port_with_a_default_port_lets_the_port_out(target: str, expected: tuple[str, int]) -> None:
    assert split_host_port(target, 53) == expected


@pytest.mark.parametrize("target", ["ns.example.com:domain", "[::1]:0", "[::1]x", "[::1", ":53"])
def test_split_host_port_with_a_default_port_still_refuses_a_bad_target(target: str) -> None:
    with pytest.raises(ValueError, match=r"is not host:port|is not a port number"):
        split_host_port(target, 53)
