"""The `logs:` section in a running `pulse-exporter`: lines written while it runs show up on /metrics,
a reload never counts a line twice nor sets a counter back, and a missing log is reported, not fatal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.access_logs import nginx_line, write_lines
from tests.helpers import Samples, StartExporter, landing_table, require_binary, series


def config(log: Path, routes: str = "[{name: product, path: '/products/[0-9]+'}]") -> str:
    return f"""
collectors: {{host: {{enabled: false}}}}
logs:
  poll_interval: 50ms
  files:
    shop:
      paths: ["{log}"]
      service: shop
      routes: {routes}
"""


def requests(samples: Samples, route: str, code: str, method: str = "GET") -> float:
    labels = {"service": "shop", "route": route, "method": method, "code": code}
    return samples.get(series("http_requests_total", labels), 0)


def total(samples: Samples) -> float:
    return sum(value for name, value in samples.items() if name.startswith("http_requests_total{"))


def test_lines_written_while_pulse_runs_are_counted(start_exporter: StartExporter, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write_lines(log, nginx_line(code=200) * 50)  # before the start: not counted (read from the end)
    exporter = start_exporter(config(log))
    exporter.wait_for_samples(
        lambda s: s.get(series("pulse_access_log_files_followed", {"log": "shop"})) == 1, "followed"
    )
    write_lines(log, nginx_line("GET", "/products/1", 200) * 3 + nginx_line("GET", "/nope", 404) * 2)
    write_lines(log, nginx_line("POST", "/products/2", 500, request_time="1.500"))
    samples = exporter.wait_for_samples(lambda s: total(s) == 6, "6 requests counted")
    assert requests(samples, "product", "200") == 3
    assert requests(samples, "other", "404") == 2
    assert requests(samples, "product", "500", "POST") == 1
    assert samples[series("pulse_access_log_lines_read_total", {"log": "shop"})] == 6
    assert series("pulse_access_log_last_line_timestamp_seconds", {"log": "shop"}) in samples
    duration = {"service": "shop", "route": "product", "method": "POST", "code": "500"}
    assert samples[series("http_request_duration_seconds_sum", duration)] == 1.5
    assert samples[series("http_request_duration_seconds_bucket", {**duration, "le": "1.0"})] == 0
    assert samples[series("http_request_duration_seconds_bucket", {**duration, "le": "2.5"})] == 1
    (row,) = landing_table(exporter.get("/").text, "Access logs")
    assert row[:4] == ["shop", "1", "6", "0"]  # log, files followed, lines read, unparsed
    promtool = require_binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exporter.metrics_text(), capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_reload_keeps_offsets_and_counters(start_exporter: StartExporter, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.touch()
    exporter = start_exporter(config(log))
    exporter.wait_for_samples(
        lambda s: s.get(series("pulse_access_log_files_followed", {"log": "shop"})) == 1, "followed"
    )
    write_lines(log, nginx_line("GET", "/products/1") * 10)
    exporter.wait_for_samples(lambda s: total(s) == 10, "10 requests before the reload")

    # A changed config (a new route): a new collector, which continues from the old one's offsets and counts.
    (tmp_path / "pulse.yml").write_text(
        config(log, "[{name: product, path: '/products/[0-9]+'}, {name: cart, path: /cart}]")
    )
    assert exporter.post("/-/reload").status_code == 200
    write_lines(log, nginx_line("GET", "/cart") * 4 + nginx_line("GET", "/products/2") * 1)
    samples = exporter.wait_for_samples(lambda s: total(s) == 15, "15 requests after the reload")
    assert requests(samples, "product", "200") == 11
    assert requests(samples, "cart", "200") == 4
    assert samples[series("pulse_access_log_lines_read_total", {"log": "shop"})] == 15

    # An unchanged config: the collector itself is kept.
    assert exporter.post("/-/reload").status_code == 200
    write_lines(log, nginx_line("GET", "/cart"))
    samples = exporter.wait_for_samples(lambda s: total(s) == 16, "16 requests after the second reload")
    assert requests(samples, "cart", "200") == 5


def test_a_missing_log_is_reported_and_picked_up_when_it_appears(start_exporter: StartExporter, tmp_path: Path) -> None:
    log = tmp_path / "later" / "access.log"
    exporter = start_exporter(config(log))
    exporter.wait_for_samples(
        lambda s: s.get(series("pulse_access_log_files_followed", {"log": "shop"})) == 0, "reported as not followed"
    )
    assert exporter.get("/-/healthy").status_code == 200
    log.parent.mkdir()
    write_lines(log, nginx_line(code=503) * 2)  # a file that appears later is read from its start
    samples = exporter.wait_for_samples(lambda s: requests(s, "other", "503") == 2, "the late file's lines")
    assert samples[series("pulse_access_log_files_followed", {"log": "shop"})] == 1
    assert "no file matches the access log's paths" in exporter.logs()
