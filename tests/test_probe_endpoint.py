"""/probe and /sd/probes through a real pulse-exporter process, probing real listeners on loopback;
and the runner's guarantees (timeouts, prober errors) with scripted probers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter.config.types import StrictModel
from exporter.probes import PROBERS
from exporter.probes.base import FailureReason, ProbeFunction, Prober, ProbeSink
from exporter.probes.config import ProbesConfig
from exporter.probes.runner import run_probe
from tests.helpers import RunningExporter, StartExporter, landing_table, parse_samples, require_binary, samples_of
from tests.probe_servers import LoopThread, SilentListener, fixed, loop_thread, refused_port, start_http


@dataclass
class Setup:
    pulse: RunningExporter
    listener: SilentListener  # accepts and never answers; counts connections
    refused: int

    @property
    def listening(self) -> str:
        return f"127.0.0.1:{self.listener.port}"


@pytest.fixture
def servers() -> Iterator[LoopThread]:
    with loop_thread() as thread:
        yield thread


@pytest.fixture
def setup(servers: LoopThread, start_exporter: StartExporter) -> Setup:
    listener = servers.run(SilentListener().start())
    refused = refused_port()
    config = f"""
collectors: {{host: {{enabled: false}}}}
probes:
  modules:
    tcp_connect: {{prober: tcp, timeout: 5s, tcp: {{preferred_ip_protocol: ip4}}}}
    banner: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4, query_response: [{{expect: "^220 "}}]}}}}
  targets:
    - {{target: "127.0.0.1:{listener.port}", module: tcp_connect, labels: {{service: queue, team: core}}}}
    - {{target: "127.0.0.1:{listener.port}", module: banner}}
    - {{target: "127.0.0.1:{refused}", module: tcp_connect}}
  allow: ['localhost:\\d+']
"""
    return Setup(start_exporter(config), listener, refused)


def probe(pulse: RunningExporter, target: str, module: str, **headers: str) -> tuple[int, dict[str, float], str]:
    response = pulse.get("/probe", params={"target": target, "module": module}, headers=headers)
    samples = parse_samples(response.text) if response.status_code == 200 else {}
    return response.status_code, samples, response.text


def test_a_listed_listening_target_succeeds(setup: Setup) -> None:
    status, samples, _ = probe(setup.pulse, setup.listening, "tcp_connect")
    assert status == 200
    assert samples["probe_success"] == 1
    assert samples["probe_ip_protocol"] == 4
    assert "probe_failure_info" not in "".join(samples)
    assert samples["probe_duration_seconds"] > 0


def test_a_refused_port_is_a_failed_probe_with_its_reason_not_an_http_error(setup: Setup) -> None:
    status, samples, _ = probe(setup.pulse, f"127.0.0.1:{setup.refused}", "tcp_connect")
    assert status == 200
    assert samples["probe_success"] == 0
    assert samples['probe_failure_info{reason="connection_refused"}'] == 1


def test_the_scrape_timeout_header_bounds_a_probe_of_a_silent_server(setup: Setup) -> None:
    """The banner module has no timeout of its own: the header (minus 0.5 s) is the deadline."""
    status, samples, _ = probe(setup.pulse, setup.listening, "banner", **{"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert status == 200
    assert samples["probe_success"] == 0
    assert samples['probe_failure_info{reason="timeout"}'] == 1
    assert samples["probe_failed_due_to_regex"] == 0
    assert setup.listener.wait_accepted(1) == 1


def test_an_unlisted_target_is_forbidden_and_no_connection_is_made(setup: Setup, servers: LoopThread) -> None:
    other = servers.run(SilentListener().start())  # listed nowhere
    status, _, text = probe(setup.pulse, f"127.0.0.1:{other.port}", "tcp_connect")
    assert status == 403
    assert "probes.targets" in text
    status, _, _ = probe(setup.pulse, f"127.0.0.1:{other.port}", "banner")
    assert status == 403
    assert other.accepted_before_now() == 0
    # A listed listener is reached: the count above would have seen a connection.
    status, samples, _ = probe(setup.pulse, setup.listening, "tcp_connect")
    assert (status, samples["probe_success"]) == (200, 1)
    assert setup.listener.wait_accepted(1) == 1


def test_a_target_is_logged_when_it_starts_failing_and_when_it_recovers_not_at_every_probe(setup: Setup) -> None:
    params = {"target": f"127.0.0.1:{setup.refused}", "module": "tcp_connect"}
    for _ in range(3):
        assert parse_samples(setup.pulse.get("/probe", params=params).text)["probe_success"] == 0
    with socket.create_server(("127.0.0.1", setup.refused)):
        for _ in range(2):
            assert parse_samples(setup.pulse.get("/probe", params=params).text)["probe_success"] == 1
    lines = [line for line in setup.pulse.logs().splitlines() if "probe target" in line]
    assert len(lines) == 2, lines
    assert "level=warn" in lines[0]
    assert 'msg="probe target failing"' in lines[0]
    assert "reason=connection_refused" in lines[0]
    assert f"target=127.0.0.1:{setup.refused}" in lines[0]
    assert "level=info" in lines[1]
    assert 'msg="probe target recovered"' in lines[1]


def test_a_target_listed_for_another_module_is_forbidden(setup: Setup) -> None:
    status, _, _ = probe(setup.pulse, f"127.0.0.1:{setup.refused}", "banner")
    assert status == 403


def test_the_allow_regex_admits_unlisted_targets_it_matches_entirely(setup: Setup) -> None:
    status, samples, _ = probe(setup.pulse, f"localhost:{setup.refused}", "tcp_connect")
    assert status == 200
    assert samples['probe_failure_info{reason="connection_refused"}'] == 1
    status, _, _ = probe(setup.pulse, f"localhost:{setup.refused}/x", "tcp_connect")
    assert status == 403


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"target": "127.0.0.1:1", "module": "nope"}, "unknown module 'nope'"),
        # Without module= blackbox uses http_2xx; this config has none, so it is the module missing.
        ({"target": "127.0.0.1:1"}, "unknown module 'http_2xx' (the module used when the request names none"),
        ({"module": "tcp_connect"}, "target parameter is missing"),
        ({"target": "localhost:1", "module": "tcp_connect", "hostname": "evil"}, "hostname parameter"),
    ],
)
def test_bad_parameters_are_400(setup: Setup, params: dict[str, str], message: str) -> None:
    response = setup.pulse.get("/probe", params=params)
    assert response.status_code == 400
    assert message in response.text


def test_a_probe_without_a_module_uses_http_2xx_as_blackbox_does(
    servers: LoopThread, start_exporter: StartExporter
) -> None:
    shop = start_http(servers, {"/": fixed(200, b"ok")})
    pulse = start_exporter(
        "collectors: {host: {enabled: false}}\n"
        "probes:\n"
        "  modules:\n"
        "    tcp_connect: {prober: tcp}\n"
        "    http_2xx: {prober: http, http: {preferred_ip_protocol: ip4}}\n"
        f"  targets: [{{target: '{shop.url()}', module: http_2xx}}]\n"
    )
    response = pulse.get("/probe", params={"target": shop.url()})
    assert response.status_code == 200
    samples = parse_samples(response.text)
    assert (samples["probe_success"], samples["probe_http_status_code"]) == (1, 200)
    assert [request.target for request in shop.requests] == ["/"]
    counted = parse_samples(pulse.metrics_text())
    assert counted['pulse_probes_total{module="http_2xx",result="success"}'] == 1


def test_the_configured_timeout_offset_is_taken_from_the_scrape_timeout(start_exporter: StartExporter) -> None:
    pulse = start_exporter(
        "collectors: {host: {enabled: false}}\n"
        "probes:\n  timeout_offset: 1s\n  modules: {tcp_connect: {prober: tcp}}\n"
        "  targets: [{target: '127.0.0.1:1', module: tcp_connect}]\n"
    )
    response = pulse.get(
        "/probe",
        params={"target": "127.0.0.1:1", "module": "tcp_connect", "debug": "true"},
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "4"},
    )
    assert "target=127.0.0.1:1 timeout=3s" in response.text


def test_a_timeout_header_that_is_not_a_number_is_400(setup: Setup) -> None:
    response = setup.pulse.get(
        "/probe",
        params={"target": setup.listening, "module": "tcp_connect"},
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"},
    )
    assert response.status_code == 400


def test_debug_shows_the_steps_the_metrics_and_the_resolved_module(setup: Setup) -> None:
    response = setup.pulse.get(
        "/probe", params={"target": f"127.0.0.1:{setup.refused}", "module": "tcp_connect", "debug": "true"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    logs, _, rest = response.text.partition("Metrics that would have been returned:")
    metrics, _, module = rest.partition("Module configuration:")
    assert "beginning probe: module=tcp_connect prober=tcp" in logs
    assert f"connecting to 127.0.0.1 port {setup.refused}" in logs
    assert "failed: connection_refused" in logs
    assert 'probe_failure_info{reason="connection_refused"} 1.0' in metrics
    assert "prober: tcp\ntimeout: 5s\ntcp:\n  preferred_ip_protocol: ip4\n  ip_protocol_fallback: true" in module


def test_openmetrics_is_served_when_asked_for(setup: Setup) -> None:
    response = setup.pulse.get(
        "/probe",
        params={"target": setup.listening, "module": "tcp_connect"},
        headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"},
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_probe_output_passes_promtool(setup: Setup, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    for target in (setup.listening, f"127.0.0.1:{setup.refused}"):
        _, _, text = probe(setup.pulse, target, "tcp_connect", Accept="text/plain")
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_sd_probes_serves_every_target_with_its_module_and_labels(setup: Setup) -> None:
    response = setup.pulse.get("/sd/probes")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.text) == [
        {
            "targets": [setup.listening],
            "labels": {"service": "queue", "team": "core", "module": "tcp_connect", "__param_module": "tcp_connect"},
        },
        {"targets": [setup.listening], "labels": {"module": "banner", "__param_module": "banner"}},
        {
            "targets": [f"127.0.0.1:{setup.refused}"],
            "labels": {"module": "tcp_connect", "__param_module": "tcp_connect"},
        },
    ]


def test_sd_probes_is_an_empty_list_without_targets(start_exporter: StartExporter) -> None:
    pulse = start_exporter("collectors: {host: {enabled: false}}\n")
    response = pulse.get("/sd/probes")
    assert (response.status_code, response.text) == (200, "[]")
    assert pulse.get("/probe", params={"target": "127.0.0.1:1", "module": "tcp"}).status_code == 400


def test_metrics_counts_probes_per_module_and_result(setup: Setup) -> None:
    before = parse_samples(setup.pulse.metrics_text())
    assert before['pulse_probes_total{module="banner",result="success"}'] == 0  # present before any probe
    probe(setup.pulse, setup.listening, "tcp_connect")
    probe(setup.pulse, setup.listening, "tcp_connect")
    probe(setup.pulse, f"127.0.0.1:{setup.refused}", "tcp_connect")
    probe(setup.pulse, f"127.0.0.1:{setup.refused + 1}", "tcp_connect")  # 403: not a probe, not counted
    after = parse_samples(setup.pulse.metrics_text())
    assert after['pulse_probes_total{module="tcp_connect",result="success"}'] == 2
    assert after['pulse_probes_total{module="tcp_connect",result="failure"}'] == 1
    assert after['pulse_probe_duration_seconds_count{module="tcp_connect"}'] == 3
    assert after['pulse_probe_duration_seconds_bucket{module="tcp_connect",le="+Inf"}'] == 3
    assert after['pulse_probe_duration_seconds_sum{module="tcp_connect"}'] > 0
    assert after['pulse_exporter_collector_success{collector="probes"}'] == 1
    assert after['pulse_probe_requests_rejected_total{reason="forbidden"}'] == 1
    setup.pulse.get("/probe", params={"target": setup.listening, "module": "nope"})
    again = parse_samples(setup.pulse.metrics_text())
    assert again['pulse_probe_requests_rejected_total{reason="bad_request"}'] == 1


def test_debug_probes_count_in_no_probe_metric(setup: Setup) -> None:
    """pulse_probes_total and pulse_probe_duration_seconds feed SLOs: a person's debug look is not a probe."""
    for target in (setup.listening, f"127.0.0.1:{setup.refused}"):
        response = setup.pulse.get("/probe", params={"target": target, "module": "tcp_connect", "debug": "true"})
        assert response.status_code == 200
        assert "Metrics that would have been returned:" in response.text
    samples = parse_samples(setup.pulse.metrics_text())
    assert samples['pulse_probes_total{module="tcp_connect",result="success"}'] == 0
    assert samples['pulse_probes_total{module="tcp_connect",result="failure"}'] == 0
    assert samples['pulse_probe_duration_seconds_count{module="tcp_connect"}'] == 0
    assert samples['pulse_probe_duration_seconds_sum{module="tcp_connect"}'] == 0
    # Nor is it the target's last result on the landing page.
    assert setup.pulse.get("/").text.count("not probed yet") == 3
    probe(setup.pulse, setup.listening, "tcp_connect")
    samples = parse_samples(setup.pulse.metrics_text())
    assert samples['pulse_probes_total{module="tcp_connect",result="success"}'] == 1


def test_a_reload_that_keeps_the_modules_keeps_the_counters(setup: Setup, tmp_path: Path) -> None:
    probe(setup.pulse, setup.listening, "tcp_connect")
    config = tmp_path / "pulse.yml"
    config.write_text(config.read_text().replace("team: core", "team: platform"))
    assert setup.pulse.post("/-/reload").status_code == 200
    samples = parse_samples(setup.pulse.metrics_text())
    assert samples['pulse_probes_total{module="tcp_connect",result="success"}'] == 1
    assert json.loads(setup.pulse.get("/sd/probes").text)[0]["labels"]["team"] == "platform"


def test_a_reload_that_adds_a_target_keeps_the_counters_and_lists_the_target(setup: Setup, tmp_path: Path) -> None:
    probe(setup.pulse, setup.listening, "tcp_connect")
    config = tmp_path / "pulse.yml"
    added = "    - {target: 'localhost:1', module: tcp_connect}\n"
    config.write_text(config.read_text().replace("  allow:", added + "  allow:"))
    assert setup.pulse.post("/-/reload").status_code == 200
    probe(setup.pulse, setup.listening, "tcp_connect")
    samples = parse_samples(setup.pulse.metrics_text())
    assert samples['pulse_probes_total{module="tcp_connect",result="success"}'] == 2
    rows = _landing_rows(setup.pulse)
    assert rows[("localhost:1", "tcp_connect")] == "not probed yet |  | "
    assert rows[(setup.listening, "tcp_connect")].startswith("success in ")


def test_the_landing_page_links_probes_and_service_discovery(setup: Setup) -> None:
    page = setup.pulse.get("/").text
    assert 'href="sd/probes"' in page
    assert f"probe?target=127.0.0.1%3A{setup.listener.port}&amp;module=tcp_connect" in page


def _landing_rows(pulse: RunningExporter) -> dict[tuple[str, str], str]:
    """The probe table's rows as {(target, module): the row's text without tags}."""
    return {
        (cells[0], cells[1]): " | ".join(cells[2:5]) for cells in landing_table(pulse.get("/").text, "Probe targets")
    }


def test_the_landing_page_shows_each_listed_targets_last_result_its_reason_and_when(setup: Setup) -> None:
    probe(setup.pulse, setup.listening, "tcp_connect")
    probe(setup.pulse, f"127.0.0.1:{setup.refused}", "tcp_connect")
    probe(setup.pulse, f"localhost:{setup.refused}", "tcp_connect")  # allowed, not listed: not remembered
    rows = _landing_rows(setup.pulse)
    assert set(rows) == {
        (setup.listening, "tcp_connect"),
        (setup.listening, "banner"),
        (f"127.0.0.1:{setup.refused}", "tcp_connect"),
    }
    assert re.fullmatch(
        r"success in [\d.]+ ms \|  \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)",
        rows[(setup.listening, "tcp_connect")],
    )
    assert rows[(setup.listening, "banner")] == "not probed yet |  | "
    failed = rows[(f"127.0.0.1:{setup.refused}", "tcp_connect")]
    assert failed.startswith("FAILED after ")
    assert f"| connection_refused: connecting to 127.0.0.1 port {setup.refused}" in failed
    assert " UTC (" in failed
    # The table shows the last result, not the first: the same target answering now is a success.
    with socket.create_server(("127.0.0.1", setup.refused)):
        probe(setup.pulse, f"127.0.0.1:{setup.refused}", "tcp_connect")
    assert _landing_rows(setup.pulse)[(f"127.0.0.1:{setup.refused}", "tcp_connect")].startswith("success in ")


# ------------------------------------------------------------------------------------ the runner's guards


class _NoOptions(StrictModel):
    pass


def _run_with_prober(
    monkeypatch: pytest.MonkeyPatch, probe_function: ProbeFunction[_NoOptions]
) -> tuple[dict[str, float], ProbeSink, list[tuple[object, ...]]]:
    """Run a module whose prober is `probe_function` through the real runner."""
    monkeypatch.setitem(PROBERS, "scripted", Prober("scripted", _NoOptions, probe_function))
    module = ProbesConfig.model_validate({"modules": {"m": {"prober": "scripted", "timeout": "200ms"}}}).modules["m"]
    recorded: list[tuple[object, ...]] = []
    families, sink = asyncio.run(run_probe("m", module, "anything", None, record=lambda *args: recorded.append(args)))
    return samples_of(families), sink, recorded


def test_a_prober_that_raises_is_a_failed_probe_and_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(target: str, config: _NoOptions, sink: ProbeSink) -> bool:
        raise KeyError("a bug")

    samples, sink, recorded = _run_with_prober(monkeypatch, broken)
    assert samples["probe_success"] == 0
    assert samples['probe_failure_info{reason="protocol_error"}'] == 1
    assert sink.failure is not None
    assert "KeyError" in sink.failure[1]
    assert [r.getMessage() for r in caplog.records] == ["prober raised an exception"]
    assert recorded[0][:3] == ("m", "anything", False)


def test_an_os_error_escaping_a_prober_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable(target: str, config: _NoOptions, sink: ProbeSink) -> bool:
        raise OSError(113, "No route to host")

    samples, _, _ = _run_with_prober(monkeypatch, unreachable)
    assert samples['probe_failure_info{reason="connection_error"}'] == 1


def test_the_module_timeout_stops_a_prober_and_keeps_what_it_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(target: str, config: _NoOptions, sink: ProbeSink) -> bool:
        sink.gauge("probe_partial", "measured before the deadline", 42)
        await asyncio.sleep(30)
        return True

    samples, _, recorded = _run_with_prober(monkeypatch, slow)
    assert samples["probe_partial"] == 42
    assert samples['probe_failure_info{reason="timeout"}'] == 1
    assert recorded[0][:3] == ("m", "anything", False)


def test_a_failure_recorded_by_a_prober_wins_over_its_return_value(monkeypatch: pytest.MonkeyPatch) -> None:
    async def contradictory(target: str, config: _NoOptions, sink: ProbeSink) -> bool:
        sink.fail(FailureReason.HTTP_STATUS, "500")
        return True

    async def silent_failure(target: str, config: _NoOptions, sink: ProbeSink) -> bool:
        return False

    samples, _, _ = _run_with_prober(monkeypatch, contradictory)
    assert (samples["probe_success"], samples['probe_failure_info{reason="http_status"}']) == (0, 1)
    samples, _, _ = _run_with_prober(monkeypatch, silent_failure)
    assert samples['probe_failure_info{reason="protocol_error"}'] == 1


def test_failed_probes_are_logged_at_debug_level_without_breaking(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing(target: str, config: _NoOptions, sink: ProbeSink) -> bool:
        return sink.fail(FailureReason.CONNECTION_REFUSED, "nobody home")

    with caplog.at_level(logging.DEBUG, logger="exporter.probes.runner"):
        _run_with_prober(monkeypatch, failing)
    record = next(r for r in caplog.records if r.getMessage() == "probe failed")
    fields = record.__dict__
    assert (record.levelno, fields["probe_module"], fields["reason"]) == (logging.DEBUG, "m", "connection_refused")


def test_debug_never_shows_secrets(start_exporter: StartExporter) -> None:
    target = f"http://127.0.0.1:{refused_port()}/"
    pulse = start_exporter(
        "collectors: {host: {enabled: false}}\n"
        "probes:\n"
        "  modules:\n"
        "    http_basic: {prober: http, http: {basic_auth: {username: monitor, password: hunter2-password}}}\n"
        "    http_bearer: {prober: http, http: {bearer_token: tok-3141, headers: {X-Api-Key: k-2718, Accept: a/b}}}\n"
        f"  targets: [{{target: '{target}', module: http_basic}}, {{target: '{target}', module: http_bearer}}]\n"
    )
    basic = pulse.get("/probe", params={"target": target, "module": "http_basic", "debug": "true"}).text
    bearer = pulse.get("/probe", params={"target": target, "module": "http_bearer", "debug": "true"}).text
    assert "hunter2-password" not in basic
    assert "username: monitor\n    password: <secret>" in basic
    assert "tok-3141" not in bearer
    assert "bearer_token: <secret>" in bearer
    assert "k-2718" not in bearer
    assert "X-Api-Key: <secret>\n    Accept: a/b" in bearer  # only credential-like headers are hidden


def test_debug_hides_a_journey_login_password(start_exporter: StartExporter) -> None:
    target = f"http://127.0.0.1:{refused_port()}/"
    pulse = start_exporter(
        "collectors: {host: {enabled: false}}\n"
        "probes:\n"
        "  modules:\n"
        "    shop:\n"
        "      prober: journey\n"
        "      journey:\n"
        "        steps:\n"
        "          - {name: login, method: POST, url: /login, form: {user: demo, password: pa55-word}}\n"
        f"  targets: [{{target: '{target}', module: shop}}]\n"
    )
    text = pulse.get("/probe", params={"target": target, "module": "shop", "debug": "true"}).text
    assert "pa55-word" not in text
    assert "user: demo\n      password: <secret>" in text


def test_a_catastrophic_allow_regex_answers_at_once_and_never_stalls_other_requests(
    start_exporter: StartExporter,
) -> None:
    """`(a+)+` backtracks 2^n steps in Python's `re`: 60 a's would take centuries. RE2 is linear."""
    config = """
collectors: {host: {enabled: false}}
probes:
  modules: {tcp_connect: {prober: tcp}}
  allow: ['(a+)+\\.example:80']
"""
    pulse = start_exporter(config)
    response = pulse.get("/probe", params={"module": "tcp_connect", "target": "a" * 60 + "!"})
    assert response.status_code == 403
    assert pulse.get("/metrics").status_code == 200
