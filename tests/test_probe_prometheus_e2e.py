"""End to end: a real Prometheus, configured with the shipped examples/probes/prometheus.yml, discovers
the probe targets from Pulse's /sd/probes and scrapes /probe through the multi-target relabelling."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.registry import load_config
from tests.helpers import StartExporter, require_binary
from tests.probe_servers import LoopThread, SilentListener, fixed, loop_thread, refused_port, start_http
from tests.prometheus_server import running_prometheus

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "probes"
EXAMPLE_PULSE_ADDRESS = "pulse.example.internal:10135"


def test_the_example_pulse_config_loads_with_its_blackbox_modules_file() -> None:
    probes = load_config(EXAMPLES / "pulse.yml").probes
    assert {"http_2xx", "tcp_connect", "smtp_starttls", "postgres_tcp"} <= set(probes.modules)
    assert all(target.module in probes.modules for target in probes.targets)


def test_the_example_blackbox_file_is_valid_for_blackbox_exporter() -> None:
    blackbox = require_binary("prometheus-blackbox-exporter", "blackbox_exporter")
    result = subprocess.run(
        [blackbox, f"--config.file={EXAMPLES / 'blackbox.yml'}", "--config.check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_the_example_prometheus_config_is_valid() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(EXAMPLES / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def servers() -> Iterator[LoopThread]:
    with loop_thread() as thread:
        yield thread


def example_prometheus_config(pulse_address: str) -> dict[str, Any]:
    """The shipped example, pointed at the test's Pulse, with intervals short enough for a test."""
    text = (EXAMPLES / "prometheus.yml").read_text().replace(EXAMPLE_PULSE_ADDRESS, pulse_address)
    config: dict[str, Any] = yaml.safe_load(text)
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    for job in config["scrape_configs"]:
        for sd in job.get("http_sd_configs", []):
            sd["refresh_interval"] = "1s"
    return config


def test_prometheus_discovers_and_scrapes_probes_through_pulse(
    tmp_path: Path, servers: LoopThread, start_exporter: StartExporter
) -> None:
    listener = servers.run(SilentListener().start())
    shop = start_http(servers, {"/health": fixed(200, b"ok")})
    listening, refused, health = f"127.0.0.1:{listener.port}", f"127.0.0.1:{refused_port()}", shop.url("/health")
    pulse = start_exporter(
        "collectors: {host: {enabled: false}}\n"
        "probes:\n"
        "  modules:\n"
        "    tcp_connect: {prober: tcp, timeout: 5s, tcp: {preferred_ip_protocol: ip4}}\n"
        "    http_2xx: {prober: http, timeout: 5s, http: {preferred_ip_protocol: ip4}}\n"
        "  targets:\n"
        f"    - {{target: '{listening}', module: tcp_connect, labels: {{service: queue}}}}\n"
        f"    - {{target: '{refused}', module: tcp_connect, labels: {{service: cache}}}}\n"
        f"    - {{target: '{health}', module: http_2xx, labels: {{service: shop}}}}\n"
    )
    config = yaml.safe_dump(example_prometheus_config(f"127.0.0.1:{pulse.port}"))
    with running_prometheus(tmp_path, config) as prometheus:
        prometheus.wait_for_samples("count(probe_success) >= 3", "the three probe targets scraped")
        found = prometheus.query("probe_success")
    by_instance = {result["metric"]["instance"]: result for result in found}
    assert set(by_instance) == {listening, refused, health}
    expected = (
        (listening, "tcp_connect", "queue", "1"),
        (refused, "tcp_connect", "cache", "0"),
        (health, "http_2xx", "shop", "1"),
    )
    for instance, module, service, value in expected:
        labels = by_instance[instance]["metric"]
        assert labels["job"] == "probes"
        assert labels["module"] == module
        assert labels["service"] == service
        assert by_instance[instance]["value"][1] == value
    assert listener.wait_accepted(1) >= 1
    assert all(request.target == "/health" for request in shop.requests)
