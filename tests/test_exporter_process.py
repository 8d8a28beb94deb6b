"""The real `pulse-exporter` process, seen from outside: endpoints, formats, reloads, signals, logs."""

from __future__ import annotations

import gzip
import json
import logging
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from exporter.logs import QUIET_LIBRARIES
from exporter.logs import setup as setup_logging
from tests.helpers import RunningExporter, StartExporter, exporter_command, free_port, parse_samples, wait_until
from tests.test_config import BILLION_LAUGHS

ALL_HOST = {
    "host.cpu", "host.memory", "host.loadavg", "host.system", "host.vmstat", "host.timex",
    "host.filesystem", "host.disk", "host.network",
    "host.netstat", "host.sockstat", "host.softnet", "host.pressure", "host.entropy", "host.mdstat",
}  # fmt: skip


def collector_success(text: str) -> dict[str, float]:
    prefix = 'pulse_exporter_collector_success{collector="'
    return {k[len(prefix) : -2]: v for k, v in parse_samples(text).items() if k.startswith(prefix)}


def test_default_config_serves_host_metrics_in_the_text_format(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    response = exporter.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_samples(response.text)
    assert collector_success(response.text) == dict.fromkeys([*ALL_HOST, "exporter"], 1.0)
    assert any(name.startswith("node_cpu_seconds_total{") for name in samples)
    assert samples["node_memory_MemTotal_bytes"] > 0
    assert any(name.startswith("pulse_exporter_build_info{") for name in samples)
    assert samples["pulse_exporter_config_last_reload_successful"] == 1
    assert samples["process_resident_memory_bytes"] > 0


def test_openmetrics_is_served_when_the_scraper_asks_for_it(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    response = exporter.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    assert "node_cpu_seconds_total{" in response.text


def test_gzip_is_used_when_accepted(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    with socket.create_connection(("127.0.0.1", exporter.port)) as sock:
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head.lower()
    assert b"node_load1 " in gzip.decompress(body)


def test_health_readiness_and_landing_page(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    assert exporter.get("/-/healthy").status_code == 200
    assert exporter.get("/-/ready").status_code == 200
    exporter.get("/metrics")
    page = exporter.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "Pulse exporter" in page.text
    assert "host.filesystem" in page.text
    assert 'href="metrics"' in page.text


def test_unknown_paths_and_wrong_methods(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    assert exporter.get("/nope").status_code == 404
    assert exporter.get("/-/reload").status_code == 405
    assert exporter.post("/metrics").status_code == 405


def test_collect_parameter_limits_the_collectors_run(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    text = exporter.get("/metrics", params={"collect[]": "host.loadavg"}).text
    assert set(collector_success(text)) == {"host.loadavg", "exporter"}
    assert "node_load1 " in text
    assert "node_cpu_seconds_total" not in text
    assert set(collector_success(exporter.get("/metrics", params={"collect[]": "host"}).text)) == ALL_HOST | {
        "exporter"
    }
    bad = exporter.get("/metrics", params={"collect[]": "nonsense"})
    assert bad.status_code == 400
    assert "unknown collector: nonsense" in bad.text


def write_config(exporter: RunningExporter, text: str) -> Path:
    command = exporter.process.args
    assert isinstance(command, list)
    path = Path(next(a for a in command if str(a).startswith("--config.file=")).split("=", 1)[1])
    path.write_text(text)
    return path


def test_reload_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one(start_exporter: StartExporter) -> None:
    exporter = start_exporter("collectors:\n  host:\n    enabled: true\n")
    assert "node_cpu_seconds_total" in exporter.metrics_text()
    start_stamp = parse_samples(exporter.metrics_text())["pulse_exporter_config_last_reload_success_timestamp_seconds"]

    write_config(exporter, "collectors:\n  host:\n    cpu: {enabled: false}\n")
    response = exporter.post("/-/reload")
    assert response.status_code == 200
    text = exporter.metrics_text()
    assert "node_cpu_seconds_total" not in text
    assert "node_load1 " in text
    samples = parse_samples(text)
    assert samples["pulse_exporter_config_last_reload_successful"] == 1
    assert samples["pulse_exporter_config_last_reload_success_timestamp_seconds"] >= start_stamp

    path = write_config(exporter, "collectors:\n  host:\n    cpu: {enabled: false}\n    dsik: {}\n")
    response = exporter.post("/-/reload")
    assert response.status_code == 500
    assert f"{path}:4: collectors.host.dsik: unknown field (did you mean 'disk'?)" in response.text
    text = exporter.metrics_text()
    assert "node_load1 " in text, "the running config keeps serving"
    assert "node_cpu_seconds_total" not in text
    assert parse_samples(text)["pulse_exporter_config_last_reload_successful"] == 0
    assert "reload failed; the running config is kept" in exporter.logs()


def test_sighup_reloads_the_config(start_exporter: StartExporter) -> None:
    exporter = start_exporter("collectors:\n  host:\n    loadavg: {enabled: true}\n")
    write_config(exporter, "collectors:\n  host:\n    loadavg: {enabled: false}\n")
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "node_load1 " not in exporter.metrics_text(), what="node_load1 gone after the reload")
    write_config(exporter, "collectors: [broken\n")
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for_samples(lambda s: s["pulse_exporter_config_last_reload_successful"] == 0, "a failed reload")
    assert exporter.get("/-/healthy").status_code == 200


def test_sigterm_stops_the_exporter_cleanly(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    exporter.process.send_signal(signal.SIGTERM)
    assert exporter.process.wait(10) == 0
    assert "stopping" in exporter.logs()


def test_json_logs_from_the_environment(start_exporter: StartExporter) -> None:
    exporter = start_exporter(None, env={"PULSE_LOG_FORMAT": "json", "PULSE_LOG_LEVEL": "debug"})
    first = json.loads(exporter.logs().splitlines()[0])
    assert {"ts", "level", "logger", "msg"} <= set(first)


def test_logfmt_is_the_default_log_format(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    line = next(line for line in exporter.logs().splitlines() if "msg=listening" in line)
    assert f"address=127.0.0.1:{exporter.port}" in line
    assert line.startswith("ts=")


def test_listen_address_from_the_environment() -> None:
    port = free_port()
    process = subprocess.Popen(
        [*exporter_command()],
        env={**__import__("os").environ, "PULSE_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: _listening(port), 20, "listening on the address from PULSE_WEB_LISTEN_ADDRESS")
    finally:
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*exporter_command(), f"--web.listen-address=127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_named_process_group_with_no_process_reports_zero(start_exporter: StartExporter) -> None:
    config = "collectors:\n  host:\n    processes:\n      - {name: erp, match: {cmdline: 'no-such-erp-server-xyz'}}\n"
    exporter = start_exporter(config)
    samples = parse_samples(exporter.metrics_text())
    assert samples['pulse_process_count{name="erp"}'] == 0


HOSTILE_RELOADS = {
    "billion laughs": (BILLION_LAUGHS, ":5: aliases expand to"),
    "recursive alias": ("a: &a [*a]\n", ":1: alias *a is used inside the node it names"),
    "3000 levels": ("a: " + "[" * 3000 + "]" * 3000 + "\n", ":1: not valid YAML: exceeded maximum nesting depth"),
    "400-digit duration": (
        "probes:\n  modules:\n    m: {prober: tcp, timeout: " + "9" * 400 + "}\n",
        ":3: probes.modules.m.timeout: too long",
    ),
    "modules_file /dev/zero": (
        "probes:\n  modules_file: /dev/zero\n",
        ":2: probes.modules_file: cannot read /dev/zero",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RELOADS))
def test_a_reload_with_a_hostile_config_fails_visibly_and_costs_no_memory(
    start_exporter: StartExporter, case: str
) -> None:
    exporter = start_exporter("collectors:\n  host:\n    cpu: {enabled: false}\n")
    before = parse_samples(exporter.metrics_text())["process_resident_memory_bytes"]
    text, problem = HOSTILE_RELOADS[case]
    path = write_config(exporter, text)

    response = exporter.post("/-/reload")
    assert response.status_code == 500
    assert response.text.startswith("reload failed; the running config is kept:\n")
    assert f"{path}{problem}" in response.text
    samples = parse_samples(exporter.metrics_text())
    assert samples["pulse_exporter_config_last_reload_successful"] == 0
    assert "node_load1" in samples, "the running config keeps serving"
    assert "node_cpu_seconds_total" not in exporter.metrics_text()
    # Before the limits, the billion laughs grew the exporter by a gigabyte, and it kept it.
    assert samples["process_resident_memory_bytes"] - before < 50 * 1024 * 1024
    assert "reload failed; the running config is kept" in exporter.logs()
    assert "Traceback" not in exporter.logs()


def test_sighup_with_a_billion_laughs_is_a_failed_reload(start_exporter: StartExporter) -> None:
    exporter = start_exporter("collectors:\n  host:\n    loadavg: {enabled: true}\n")
    write_config(exporter, BILLION_LAUGHS)
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for_samples(lambda s: s["pulse_exporter_config_last_reload_successful"] == 0, "a failed reload")
    assert "node_load1 " in exporter.metrics_text()
    assert "aliases expand to" in exporter.logs()


def test_http_libraries_log_their_warnings_but_not_every_request(capsys: pytest.CaptureFixture[str]) -> None:
    """A journey probe makes several requests per scrape through httpx, which logs each at info: Pulse's
    log would be those lines and little else (seen in the demo). Only --log.level=debug shows them."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in QUIET_LIBRARIES})
    try:
        setup_logging("info", "logfmt")
        logging.getLogger("httpx").info("HTTP Request: GET http://shop/ 200")
        logging.getLogger("httpcore.connection").warning("connection reset")
        setup_logging("debug", "logfmt")
        logging.getLogger("httpx").debug("HTTP Request: GET http://shop/checkout 200")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    logged = capsys.readouterr().err
    assert "http://shop/ 200" not in logged
    assert "connection reset" in logged
    assert "http://shop/checkout 200" in logged
