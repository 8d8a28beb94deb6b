"""The icmp prober: real echo requests to loopback, and the privilege rules of Linux ICMP sockets.

The privilege tests run the probe in a child process that drops to user `nobody`, with the sysctl
net.ipv4.ping_group_range set for the test (and restored): once covering nobody's group (the
unprivileged ping socket works), once not (no way to send ICMP: permission_denied).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from exporter.probes.base import FailureReason
from exporter.probes.icmp import PROBER as ICMP
from exporter.probes.icmp import ICMPProbe, checksum
from tests.blackbox import differences, probe_through, running_blackbox
from tests.helpers import StartExporter, samples_of, unavailable
from tests.probe_servers import run_prober

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def privileged() -> None:
    if os.geteuid() != 0:
        pytest.skip("pinging for real needs root or CAP_NET_RAW (the tests run as root under ./scripts/test)")


@pytest.mark.parametrize(("target", "protocol"), [("127.0.0.1", 4), ("::1", 6), ("localhost", 4)])
def test_echo_reply_from_loopback(privileged: None, target: str, protocol: int) -> None:
    success, _, sink = run_prober(ICMP, target, {"preferred_ip_protocol": "ip4" if protocol == 4 else "ip6"})
    assert success, sink.failure
    found = samples_of(sink.families())
    assert found["probe_ip_protocol"] == protocol
    assert found["probe_icmp_reply_hop_limit"] == 64  # Linux' default TTL / hop limit for its replies
    assert found['probe_icmp_duration_seconds{phase="rtt"}'] > 0
    assert {'probe_icmp_duration_seconds{phase="resolve"}', 'probe_icmp_duration_seconds{phase="setup"}'} <= set(found)


def test_ttl_payload_size_and_dont_fragment_are_applied(privileged: None) -> None:
    success, _, sink = run_prober(ICMP, "127.0.0.1", {"ttl": 3, "payload_size": 1400, "dont_fragment": True})
    assert success, sink.failure
    assert any("1400 bytes payload" in line for line in sink.trace)


def test_a_ttl_of_zero_means_the_system_default(privileged: None) -> None:
    success, _, sink = run_prober(ICMP, "127.0.0.1", {"ttl": 0})
    assert success, sink.failure


def test_a_source_address_the_host_does_not_have_fails_clearly(privileged: None) -> None:
    success, _, sink = run_prober(ICMP, "127.0.0.1", {"source_ip_address": "198.51.100.7"})
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.CONNECTION_ERROR
    assert "cannot set up the ICMP socket" in sink.failure[1]


def test_a_host_that_does_not_resolve_is_a_dns_error() -> None:
    success, _, sink = run_prober(ICMP, "no-such-host.invalid")
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.DNS_ERROR
    assert samples_of(sink.families())['probe_icmp_duration_seconds{phase="rtt"}'] == 0


@pytest.fixture
def ping_group_range(privileged: None) -> Iterator[Any]:
    """Set the (host-wide) sysctl for one test. A lock file serialises test runs in parallel processes,
    which would otherwise change it under each other."""
    with open("/tmp/pulse-test-ping-group-range.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = PING_GROUP_RANGE.read_text()

        def set_range(low: int, high: int) -> None:
            PING_GROUP_RANGE.write_text(f"{low} {high}\n")

        try:
            yield set_range
        finally:
            PING_GROUP_RANGE.write_text(saved)


def _run_as_nobody(python: str, code: str) -> subprocess.CompletedProcess[str]:
    nobody = pwd.getpwnam("nobody")
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    return subprocess.run(
        [python, "-c", code],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        cwd=REPO,
        env={"PYTHONPATH": os.pathsep.join([str(REPO), *site_packages]), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def python_for_nobody(privileged: None) -> str:
    """An interpreter `nobody` may run (the venv's may live under root's home), with Pulse importable."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        try:
            if _run_as_nobody(python, "import exporter.probes.icmp").returncode == 0:
                return python
        except OSError:
            continue
    unavailable(f"no Python {version} that user nobody may run with Pulse importable")


def probe_as_nobody(python: str, target: str) -> dict[str, Any]:
    """Run the probe in a child process that runs as `nobody` (no capabilities, no root group)."""
    code = (
        "import asyncio, json\n"
        "from exporter.probes.base import ProbeSink\n"
        "from exporter.probes.icmp import ICMPProbe, probe\n"
        "sink = ProbeSink()\n"
        f"ok = asyncio.run(probe({target!r}, ICMPProbe(), sink))\n"
        "print(json.dumps({'ok': ok, 'failure': sink.failure, 'trace': sink.trace}))\n"
    )
    result = _run_as_nobody(python, code)
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def test_without_privilege_the_probe_fails_with_permission_denied_and_says_what_to_change(
    ping_group_range: Any, python_for_nobody: str
) -> None:
    ping_group_range(1, 0)  # nobody may open a ping socket, and nobody has no CAP_NET_RAW
    outcome = probe_as_nobody(python_for_nobody, "127.0.0.1")
    assert outcome["ok"] is False
    reason, detail = outcome["failure"]
    assert reason == FailureReason.PERMISSION_DENIED.value
    assert "CAP_NET_RAW" in detail
    assert f"add group {pwd.getpwnam('nobody').pw_gid} to sysctl net.ipv4.ping_group_range (now 1 0)" in detail


@pytest.mark.parametrize("target", ["127.0.0.1", "::1"])
def test_an_unprivileged_ping_socket_is_used_where_the_sysctl_allows_it(
    ping_group_range: Any, python_for_nobody: str, target: str
) -> None:
    gid = pwd.getpwnam("nobody").pw_gid
    ping_group_range(gid, gid)  # the one sysctl covers IPv4 and IPv6 ping sockets
    outcome = probe_as_nobody(python_for_nobody, target)
    assert outcome["ok"] is True, outcome["failure"]
    assert any("over a unprivileged ping socket" in line for line in outcome["trace"])


def test_checksum_is_the_internet_checksum() -> None:
    # RFC 1071's worked example: 0001 f203 f4f5 f6f7 sums to 0xddf2, complemented 0x220d.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 256}, "less than or equal to 255"),
        ({"payload_size": -1}, "greater than or equal to 0"),
        ({"source_ip_address": "nope"}, "not an IP address"),
        ({"preferred_ip_protocol": "ip5"}, "'ip4' or 'ip6'"),
        ({"count": 3}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ICMPProbe(**options)


COMPARED = ("probe_success", "probe_ip_protocol", "probe_ip_addr_hash", "probe_icmp_reply_hop_limit")
ICMP_MODULES = """
modules:
  icmp: {prober: icmp, timeout: 5s}
  icmp_ip4: {prober: icmp, icmp: {preferred_ip_protocol: ip4}}
  icmp_ip4_only: {prober: icmp, icmp: {preferred_ip_protocol: ip4, ip_protocol_fallback: false}}
  icmp_options: {prober: icmp, icmp: {preferred_ip_protocol: ip4, payload_size: 512, ttl: 16, dont_fragment: true}}
"""


@pytest.mark.integration
def test_blackbox_and_pulse_agree_on_icmp_modules(
    privileged: None, tmp_path: Path, start_exporter: StartExporter
) -> None:
    modules_file = tmp_path / "blackbox.yml"
    modules_file.write_text(ICMP_MODULES)
    cases = [
        ("127.0.0.1", "icmp"),
        ("::1", "icmp"),
        ("localhost", "icmp_ip4"),
        ("::1", "icmp_ip4_only"),
        ("127.0.0.1", "icmp_options"),
        ("no-such-host.invalid", "icmp"),
    ]
    listed = "\n".join(f"    - {{target: '{target}', module: {module}}}" for target, module in cases)
    pulse = start_exporter(f"probes:\n  modules_file: {modules_file}\n  targets:\n{listed}\n")
    found: list[str] = []
    with running_blackbox(ICMP_MODULES, tmp_path) as blackbox:
        for target, module in cases:
            theirs, ours = probe_through(blackbox, target, module), probe_through(pulse.url, target, module)
            found += differences(f"{module} {target}", theirs, ours, COMPARED)
    assert not found, "\n".join(found)
