"""The dns prober against a real DNS server on loopback (tests/dns_server.py), UDP and TCP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dns.flags
import pydantic
import pytest

from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.config import ProbeModule
from exporter.probes.dns import PROBER as DNS
from exporter.probes.dns import DNSProbe
from exporter.probes.runner import run_probe
from tests.blackbox import differences, probe_through, running_blackbox
from tests.dns_server import DNSServer, dns_server
from tests.helpers import StartExporter, by_name, free_port, samples_of
from tests.probe_servers import Certificates, KeyPair, make_certificates, run_prober, server_ssl_context


def value(sink: ProbeSink, name: str, **labels: str) -> float:
    return by_name(sink.families())[name][tuple(sorted(labels.items()))]


@pytest.fixture(scope="module")
def server() -> Any:
    with dns_server() as running:
        yield running


def test_a_query_over_udp_counts_records_and_reports_the_blackbox_series(server: DNSServer) -> None:
    success, _, sink = run_prober(DNS, server.address, {"query_name": "www.example.test", "query_type": "A"})
    assert success, sink.failure
    assert sink.failure is None
    assert value(sink, "probe_dns_answer_rrs") == 2
    assert value(sink, "probe_dns_authority_rrs") == 0
    assert value(sink, "probe_dns_additional_rrs") == 0
    assert value(sink, "probe_dns_query_succeeded") == 1
    # 127.0.0.1 has no IPv6 address: the default ip6 preference falls back to ip4, as blackbox does.
    assert value(sink, "probe_ip_protocol") == 4
    assert value(sink, "probe_ip_addr_hash") == 3668918509  # what blackbox_exporter 0.23 reports for 127.0.0.1
    assert set(by_name(sink.families())["probe_dns_duration_seconds"]) == {
        (("phase", "resolve"),),
        (("phase", "connect"),),
        (("phase", "request"),),
    }
    assert value(sink, "probe_dns_duration_seconds", phase="request") > 0
    assert "probe_dns_serial" not in by_name(sink.families())  # only for SOA queries
    assert server.queries[-1][0] == "udp"


def test_tcp_transport_sends_the_query_over_tcp(server: DNSServer) -> None:
    success, _, sink = run_prober(
        DNS, server.address, {"query_name": "www.example.test", "query_type": "AAAA", "transport_protocol": "tcp"}
    )
    assert success, sink.failure
    assert value(sink, "probe_dns_answer_rrs") == 1
    assert server.queries[-1][0] == "tcp"


def test_soa_query_reports_the_zone_serial(server: DNSServer) -> None:
    success, _, sink = run_prober(DNS, server.address, {"query_name": "example.test", "query_type": "SOA"})
    assert success, sink.failure
    assert value(sink, "probe_dns_serial") == 2024031501


def test_mx_answer_with_glue_in_the_additional_section(server: DNSServer) -> None:
    success, _, sink = run_prober(
        DNS,
        server.address,
        {
            "query_name": "example.test",
            "query_type": "MX",
            "validate_answer_rrs": {"fail_if_not_matches_regexp": [r"\tMX\t10 mail\.example\.test\.$"]},
            "validate_additional_rrs": {"fail_if_none_matches_regexp": [r"192\.0\.2\.30"]},
        },
    )
    assert success, sink.failure
    assert value(sink, "probe_dns_answer_rrs") == 1
    assert value(sink, "probe_dns_additional_rrs") == 1


def test_any_is_the_default_query_type(server: DNSServer) -> None:
    success, _, sink = run_prober(DNS, server.address, {"query_name": "example.test"})
    assert success, sink.failure
    assert value(sink, "probe_dns_answer_rrs") == 5  # SOA, NS, A, MX, TXT


def test_records_are_matched_in_miekg_text_form(server: DNSServer) -> None:
    # blackbox users write their expressions against "name<TAB>ttl<TAB>class<TAB>type<TAB>rdata".
    success, _, sink = run_prober(
        DNS,
        server.address,
        {
            "query_name": "www.example.test",
            "query_type": "A",
            "validate_answer_rrs": {
                "fail_if_not_matches_regexp": [r"^www\.example\.test\.\t300\tIN\tA\t192\.0\.2\.2[01]$"]
            },
        },
    )
    assert success, sink.failure


def test_nxdomain_fails_with_dns_rcode_unless_it_is_a_valid_rcode(server: DNSServer) -> None:
    success, _, sink = run_prober(DNS, server.address, {"query_name": "nothing-here.example.test", "query_type": "A"})
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.DNS_RCODE
    assert "NXDOMAIN" in sink.failure[1]
    assert value(sink, "probe_dns_authority_rrs") == 1  # the SOA, as for any negative answer
    assert value(sink, "probe_dns_query_succeeded") == 1  # the query worked; its answer is what failed

    success, _, sink = run_prober(
        DNS, server.address, {"query_name": "nothing-here.example.test", "valid_rcodes": ["NXDOMAIN"]}
    )
    assert success, sink.failure


def test_servfail_fails_with_dns_rcode(server: DNSServer) -> None:
    success, _, sink = run_prober(DNS, server.address, {"query_name": "servfail.example.test", "query_type": "A"})
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.DNS_RCODE
    assert "SERVFAIL" in sink.failure[1]


@pytest.mark.parametrize(
    ("section", "rule", "patterns", "query_type", "passes"),
    [
        ("answer", "fail_if_matches_regexp", [r"192\.0\.2\.21"], "A", False),
        ("answer", "fail_if_matches_regexp", [r"198\.51\.100\."], "A", True),
        ("answer", "fail_if_not_matches_regexp", [r"192\.0\.2\.20"], "A", False),  # .21 does not match
        ("answer", "fail_if_not_matches_regexp", [r"192\.0\.2\.2"], "A", True),
        # blackbox's actual rule, whatever the name says: fails when some record misses the pattern.
        ("answer", "fail_if_all_match_regexp", [r"192\.0\.2\.2"], "A", True),
        ("answer", "fail_if_all_match_regexp", [r"192\.0\.2\.21"], "A", False),
        ("answer", "fail_if_all_match_regexp", [r"."], "MX", True),  # no records: nothing misses
        ("answer", "fail_if_none_matches_regexp", [r"198\.51\.100\."], "A", False),
        ("answer", "fail_if_none_matches_regexp", [r"192\.0\.2\.21"], "A", True),
        ("answer", "fail_if_not_matches_regexp", [r"."], "MX", False),  # no records at all
        ("authority", "fail_if_none_matches_regexp", [r"\tSOA\t"], "A", False),  # an answer: no authority
        ("authority", "fail_if_none_matches_regexp", [r"\tSOA\t"], "MX", True),  # NODATA carries the SOA
        ("additional", "fail_if_matches_regexp", [r"."], "A", True),
    ],
)
def test_record_validation_rules(  # noqa: PLR0917
    server: DNSServer, section: str, rule: str, patterns: list[str], query_type: str, passes: bool
) -> None:
    success, _, sink = run_prober(
        DNS,
        server.address,
        {"query_name": "www.example.test", "query_type": query_type, **{f"validate_{section}_rrs": {rule: patterns}}},
    )
    assert success is passes, sink.failure
    if not passes:
        assert sink.failure is not None
        assert sink.failure[0] is FailureReason.DNS_RECORDS
        assert sink.failure[1].startswith(f"validate_{section}_rrs: ")


def test_recursion_desired_flag_follows_the_option(server: DNSServer) -> None:
    run_prober(DNS, server.address, {"query_name": "www.example.test", "query_type": "A"})
    assert server.queries[-1][1].flags & dns.flags.RD
    run_prober(DNS, server.address, {"query_name": "www.example.test", "query_type": "A", "recursion_desired": False})
    assert not server.queries[-1][1].flags & dns.flags.RD


def test_query_class_is_sent_as_configured(server: DNSServer) -> None:
    run_prober(DNS, server.address, {"query_name": "version.bind", "query_type": "TXT", "query_class": "CH"})
    assert dns.rdataclass.to_text(server.queries[-1][1].question[0].rdclass) == "CH"


def test_a_server_name_that_does_not_resolve_is_a_dns_error() -> None:
    success, _, sink = run_prober(DNS, "no-such-dns-server.invalid", {"query_name": "example.test"})
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.DNS_ERROR
    assert "no-such-dns-server.invalid" in sink.failure[1]
    assert value(sink, "probe_ip_protocol") == 0
    assert value(sink, "probe_dns_query_succeeded") == 0


def test_ip4_only_without_fallback_cannot_reach_an_ipv6_server() -> None:
    success, _, sink = run_prober(
        DNS, "::1", {"query_name": "example.test", "preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}
    )
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.DNS_ERROR


def test_ipv6_server() -> None:
    with dns_server(host="::1") as server:
        success, _, sink = run_prober(DNS, server.address, {"query_name": "www.example.test", "query_type": "A"})
    assert success, sink.failure
    assert value(sink, "probe_ip_protocol") == 6
    assert value(sink, "probe_ip_addr_hash") == 1751717746  # blackbox_exporter 0.23's value for ::1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_closed_port_is_connection_refused(transport: str) -> None:
    success, _, sink = run_prober(
        DNS, f"127.0.0.1:{free_port()}", {"query_name": "example.test", "transport_protocol": transport}
    )
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.CONNECTION_REFUSED
    assert value(sink, "probe_dns_query_succeeded") == 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_answer_that_is_not_dns_is_a_protocol_error(server: DNSServer, transport: str) -> None:
    success, _, sink = run_prober(
        DNS, server.address, {"query_name": "garbage.example.test", "transport_protocol": transport}
    )
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.PROTOCOL_ERROR


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_server_that_never_answers_times_out_and_still_reports_every_series(
    server: DNSServer, transport: str
) -> None:
    # Through the runner, which cancels the probe at the module's timeout and records `timeout`.
    module = ProbeModule.model_validate(
        {
            "prober": "dns",
            "timeout": "300ms",
            "dns": {"query_name": "silent.example.test", "transport_protocol": transport},
        }
    )
    families, _ = asyncio.run(run_probe("dns_silent", module, server.address, None))
    found = samples_of(families)
    assert found["probe_success"] == 0
    assert found['probe_failure_info{reason="timeout"}'] == 1
    assert found["probe_dns_query_succeeded"] == 0
    assert found["probe_dns_answer_rrs"] == 0
    assert {"resolve", "connect", "request"} == {
        s.labels["phase"] for f in families for s in f.samples if s.name == "probe_dns_duration_seconds"
    }
    assert server.queries[-1][0] == transport


def test_a_bad_port_in_the_target_fails_clearly() -> None:
    success, _, sink = run_prober(DNS, "127.0.0.1:99999", {"query_name": "example.test"})
    assert not success
    assert sink.failure is not None
    assert "99999" in sink.failure[1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query_name": "example.test", "query_type": "NOPE"}, "unknown DNS query type 'NOPE'"),
        ({"query_name": "example.test", "query_class": "XX"}, "unknown DNS query class 'XX'"),
        ({"query_name": "example.test", "valid_rcodes": ["FINE"]}, "unknown DNS rcode 'FINE'"),
        ({"query_name": ""}, "query_name must be set"),
        ({"query_name": "a", "transport_protocol": "udp", "dns_over_tls": True}, "dns_over_tls works over tcp"),
        ({"query_name": "a", "transport_protocol": "quic"}, "'udp' or 'tcp'"),
        ({"query_name": "a", "validate_answer_rrs": {"fail_if_matches_regexp": ["("]}}, "not a valid regular"),
        ({"query_name": "a", "source_ip_address": "here"}, "not an IP address"),
        ({"query_name": "a", "query_typo": "A"}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_problem(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message.replace("(", r"\(")):
        DNSProbe(**options)


def test_query_type_and_rcodes_are_case_insensitive() -> None:
    config = DNSProbe(query_name="example.test", query_type="aaaa", valid_rcodes=["nxdomain"])
    assert config.query_type == "AAAA"
    assert config.valid_rcodes == ["NXDOMAIN"]


# ---- DNS over TLS ----


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("dot-certs"))


@pytest.mark.parametrize(
    ("pair", "ca", "reason"),
    [
        ("ca_signed", True, None),
        ("ca_signed", False, FailureReason.CERTIFICATE_INVALID),  # our CA is not in the system store
        ("self_signed", True, FailureReason.CERTIFICATE_INVALID),
        ("expired", True, FailureReason.CERTIFICATE_EXPIRED),
    ],
)
def test_dns_over_tls(certificates: Certificates, pair: str, ca: bool, reason: FailureReason | None) -> None:
    key_pair: KeyPair = getattr(certificates, pair)
    with dns_server(tls=server_ssl_context(key_pair)) as server:
        tls_config = {"ca_file": str(certificates.ca_file)} if ca else {}
        success, _, sink = run_prober(
            DNS,
            f"127.0.0.1:{server.tls_port}",
            {"query_name": "www.example.test", "query_type": "A", "dns_over_tls": True, "tls_config": tls_config},
        )
        if reason is None:
            assert success, sink.failure
            assert value(sink, "probe_dns_answer_rrs") == 2
            assert server.queries[-1][0] == "tcp"
            return
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is reason
    # The certificate's validity is reported also when verification failed (Pulse's extra metrics).
    not_after = key_pair.certificate.not_valid_after_utc.timestamp()
    assert value(sink, "probe_ssl_leaf_not_after_timestamp_seconds") == not_after


def test_dns_over_tls_with_insecure_skip_verify_accepts_any_certificate(certificates: Certificates) -> None:
    with dns_server(tls=server_ssl_context(certificates.self_signed)) as server:
        success, _, sink = run_prober(
            DNS,
            f"127.0.0.1:{server.tls_port}",
            {"query_name": "www.example.test", "dns_over_tls": True, "tls_config": {"insecure_skip_verify": True}},
        )
    assert success, sink.failure


# ---- differential: Debian's blackbox_exporter and pulse-exporter, same modules file, same servers ----

DIFFERENTIAL_MODULES = r"""
modules:
  dns_a: {prober: dns, timeout: 5s, dns: {query_name: www.example.test, query_type: A}}
  dns_soa: {prober: dns, dns: {query_name: example.test, query_type: SOA}}
  dns_any: {prober: dns, dns: {query_name: example.test}}
  dns_nx: {prober: dns, dns: {query_name: nothing.example.test, query_type: A}}
  dns_nx_ok: {prober: dns, dns: {query_name: nothing.example.test, query_type: A, valid_rcodes: [NXDOMAIN]}}
  dns_servfail: {prober: dns, dns: {query_name: servfail.example.test, query_type: A}}
  dns_garbage: {prober: dns, dns: {query_name: garbage.example.test, query_type: A}}
  dns_mx_tcp:
    prober: dns
    dns:
      query_name: example.test
      query_type: MX
      transport_protocol: tcp
      validate_additional_rrs: {fail_if_none_matches_regexp: ['192\.0\.2\.30']}
  dns_text_form:
    prober: dns
    dns:
      query_name: www.example.test
      query_type: A
      validate_answer_rrs:
        fail_if_not_matches_regexp: ['^www\.example\.test\.\t300\tIN\tA\t192\.0\.2\.2[01]$']
  dns_matches:
    prober: dns
    dns: {query_name: www.example.test, query_type: A, validate_answer_rrs: {fail_if_matches_regexp: ['\.21$']}}
  dns_all_match:
    prober: dns
    dns: {query_name: www.example.test, query_type: A, validate_answer_rrs: {fail_if_all_match_regexp: ['2[01]$']}}
  dns_all_match_fails:
    prober: dns
    dns: {query_name: www.example.test, query_type: A, validate_answer_rrs: {fail_if_all_match_regexp: ['21$']}}
  dns_all_match_empty:
    prober: dns
    dns: {query_name: www.example.test, query_type: MX, validate_answer_rrs: {fail_if_all_match_regexp: [x]}}
  dns_none_match_empty:
    prober: dns
    dns:
      query_name: www.example.test
      query_type: A
      validate_authority_rrs: {fail_if_none_matches_regexp: [SOA]}
  dns_norecurse: {prober: dns, dns: {query_name: www.example.test, query_type: A, recursion_desired: false}}
  dns_ip4_only:
    prober: dns
    dns: {query_name: www.example.test, preferred_ip_protocol: ip4, ip_protocol_fallback: false}
"""

DIFFERENTIAL_COMPARED = (
    "probe_success",
    "probe_dns_answer_rrs",
    "probe_dns_authority_rrs",
    "probe_dns_additional_rrs",
    "probe_dns_query_succeeded",
    "probe_dns_serial",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
)


@pytest.mark.integration
def test_blackbox_and_pulse_agree_on_dns_modules(tmp_path: Path, start_exporter: StartExporter) -> None:
    modules_file = tmp_path / "blackbox.yml"
    modules_file.write_text(DIFFERENTIAL_MODULES)
    with dns_server() as v4, dns_server(host="::1") as v6, running_blackbox(DIFFERENTIAL_MODULES, tmp_path) as bb:
        refused = f"127.0.0.1:{free_port()}"
        modules = [line.split(":")[0].strip() for line in DIFFERENTIAL_MODULES.splitlines() if line.startswith("  d")]
        cases = [(v4.address, module) for module in modules]
        cases += [(v6.address, "dns_a"), (v6.address, "dns_ip4_only"), (refused, "dns_a")]
        listed = "\n".join(f"    - {{target: '{target}', module: {module}}}" for target, module in cases)
        pulse = start_exporter(f"probes:\n  modules_file: {modules_file}\n  targets:\n{listed}\n")
        found: list[str] = []
        for target, module in cases:
            theirs, ours = probe_through(bb, target, module), probe_through(pulse.url, target, module)
            found += differences(f"{module} {target}", theirs, ours, DIFFERENTIAL_COMPARED)
    assert not found, "\n".join(found)
    assert len(cases) == 19


def test_source_ip_address_is_used_and_a_foreign_one_fails_clearly(server: DNSServer) -> None:
    success, _, sink = run_prober(
        DNS, server.address, {"query_name": "www.example.test", "query_type": "A", "source_ip_address": "127.0.0.1"}
    )
    assert success, sink.failure
    success, _, sink = run_prober(
        DNS, server.address, {"query_name": "www.example.test", "source_ip_address": "198.51.100.7"}
    )
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.CONNECTION_ERROR
    assert "Cannot assign requested address" in sink.failure[1]
