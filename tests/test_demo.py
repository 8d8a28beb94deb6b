"""scripts/demo and the demo shop as real processes: configurable ports, a busy port is a one-line
message naming it (never a traceback, never a demo running without one of its parts), and the demo's
journey probe walks the shop from home to checkout, and the shop's access log shows on /metrics as
web traffic with successes, client errors and server errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from exporter.demo import generator
from exporter.demo.shop import DEFAULT_PORT
from exporter.probes.config import ProbesConfig
from tests.helpers import free_port, parse_samples, require_binary, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo"


def test_the_shop_on_a_busy_port_exits_1_with_one_line_naming_the_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "exporter.demo.shop", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"pulse demo shop: port {port} is in use on 127.0.0.1: "
        "stop what listens there or choose another port with --port"
    ]
    assert result.stdout == ""


def test_the_journey_example_targets_the_shop_on_its_default_port() -> None:
    data = yaml.safe_load((ROOT / "examples" / "journey-shop.yml").read_text())
    probes = ProbesConfig.model_validate(data["probes"])
    assert [(t.target, t.module) for t in probes.targets] == [(f"http://127.0.0.1:{DEFAULT_PORT}/", "shop_checkout")]


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """Free ports and a small database (the demo makes four weeks of history only when it has none)."""
    require_binary(str(ROOT / ".venv" / "bin" / "pulse-exporter"))  # scripts/demo runs from the repository's .venv
    database = tmp_path / "demo.db"
    assert generator.main(["--url", f"sqlite:///{database}", "--backfill", "2h", "--sessions-per-day", "2000"]) == 0
    ports = {"PULSE_DEMO_PORT": free_port(), "PULSE_DEMO_SHOP_PORT": free_port(), "PULSE_DEMO_DOWN_PORT": free_port()}
    assert len(set(ports.values())) == 3
    return {**os.environ, "PULSE_DEMO_DB": str(database), **{k: str(v) for k, v in ports.items()}}


@pytest.fixture
def demos() -> Iterator[list[subprocess.Popen[str]]]:
    """scripts/demo processes, each in its own session: whatever is left of one is stopped afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def run_demo(demos: list[subprocess.Popen[str]], env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(DEMO), *args], stdout=out, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
    demos.append(process)
    return process


@pytest.mark.parametrize(
    ("variable", "part"),
    [
        ("PULSE_DEMO_SHOP_PORT", "the demo shop"),
        ("PULSE_DEMO_PORT", "Pulse"),
        ("PULSE_DEMO_DOWN_PORT", "the demo probes it to show a target that is down"),
    ],
)
def test_the_demo_stops_with_a_message_naming_a_busy_port(
    demo_env: dict[str, str], demos: list[subprocess.Popen[str]], tmp_path: Path, variable: str, part: str
) -> None:
    port = int(demo_env[variable])
    log = tmp_path / "demo.log"
    with socket.create_server(("127.0.0.1", port)):
        process = run_demo(demos, demo_env, log)
        assert process.wait(60) == 1
    output = log.read_text()
    assert f"demo: port {port} is in use ({part}); set {variable}=..." in output
    assert "Traceback" not in output
    assert "demo is up" not in output
    for other in ("PULSE_DEMO_PORT", "PULSE_DEMO_SHOP_PORT"):  # nothing was started
        if other != variable:
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{demo_env[other]}/", timeout=5)


def test_the_demo_refuses_a_port_that_is_not_a_number(
    demo_env: dict[str, str], demos: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    log = tmp_path / "demo.log"
    process = run_demo(demos, {**demo_env, "PULSE_DEMO_SHOP_PORT": "80a"}, log)
    assert process.wait(60) == 1
    assert "demo: PULSE_DEMO_SHOP_PORT=80a is not a port number (1-65535)" in log.read_text()


def test_the_demo_runs_on_the_ports_given_and_its_journey_probe_walks_the_shop(
    demo_env: dict[str, str], demos: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    log = tmp_path / "demo.log"
    process = run_demo(demos, {**demo_env, "PULSE_DEMO_VISITORS": "40"}, log)
    pulse = f"http://127.0.0.1:{demo_env['PULSE_DEMO_PORT']}"
    shop = f"http://127.0.0.1:{demo_env['PULSE_DEMO_SHOP_PORT']}/"

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        return "The demo is up" in log.read_text()

    wait_until(up, timeout=90, what="scripts/demo saying it is up")
    assert f"open http://localhost:{demo_env['PULSE_DEMO_PORT']}/" in log.read_text()
    targets = {(g["labels"]["module"], g["targets"][0]) for g in httpx.get(f"{pulse}/sd/probes", timeout=10).json()}
    assert ("shop_checkout", shop) in targets
    response = httpx.get(f"{pulse}/probe", params={"module": "shop_checkout", "target": shop}, timeout=30)
    samples = parse_samples(response.text)
    assert samples["probe_success"] == 1, response.text
    assert samples["probe_journey_steps"] == 5
    assert samples['probe_journey_step_success{step="checkout"}'] == 1
    down = f"http://127.0.0.1:{demo_env['PULSE_DEMO_DOWN_PORT']}/"
    assert ("http_2xx", down) in targets
    samples = parse_samples(httpx.get(f"{pulse}/probe", params={"module": "http_2xx", "target": down}, timeout=30).text)
    assert samples['probe_failure_info{reason="connection_refused"}'] == 1

    # The demo's cron job, a real backup of its database through `pulse-exporter job run`, is served.
    def backup_recorded() -> dict[str, float] | None:
        samples = parse_samples(httpx.get(f"{pulse}/metrics", headers={"Accept": "text/plain"}, timeout=10).text)
        return samples if samples.get('pulse_job_runs_total{job_name="demo_backup"}', 0) >= 1 else None

    samples = wait_until(backup_recorded, timeout=60, what="the demo job's first backup served", interval=0.2)
    assert samples['pulse_job_last_exit_code{job_name="demo_backup"}'] == 0
    assert samples['pulse_job_last_success_timestamp_seconds{job_name="demo_backup"}'] > 0
    assert samples["node_textfile_scrape_error"] == 0

    # The host's pressure (PSI, on a kernel that has it) and netstat; the shop's funnel and best sellers.
    def funnel_served() -> dict[str, float] | None:
        samples = parse_samples(httpx.get(f"{pulse}/metrics", headers={"Accept": "text/plain"}, timeout=10).text)
        return samples if 'business_funnel_sessions{step="paid",window="24h"}' in samples else None

    samples = wait_until(funnel_served, timeout=60, what="the marketplace funnel served", interval=0.2)
    if Path("/proc/pressure/cpu").exists():
        assert samples["node_pressure_cpu_waiting_seconds_total"] > 0
    assert samples["node_netstat_Tcp_InSegs"] > 0
    assert (
        samples['business_funnel_sessions{step="session_started",window="24h"}']
        > samples['business_funnel_sessions{step="paid",window="24h"}']
        > 0
    )
    best_sellers = [name for name in samples if name.startswith("business_product_orders{")]
    assert 0 < len(best_sellers) <= 11  # at most the top 10 and "other" (two hours of history here)
    assert any('product="other"' not in name for name in best_sellers)

    # The shop's visitors, from its access log: 2xx, 4xx (missing pages) and 5xx (the flaky endpoint).
    def code_classes() -> set[str]:
        assert process.poll() is None, log.read_text()
        text = httpx.get(f"{pulse}/metrics", headers={"Accept": "text/plain"}, timeout=10).text
        return {
            name.split('code="')[1][0] + "xx"
            for name, value in parse_samples(text).items()
            if name.startswith('http_requests_total{service="shop"') and value > 0
        }

    wait_until(lambda: {"2xx", "4xx", "5xx"} <= code_classes(), timeout=60, what="2xx, 4xx and 5xx from the shop's log")
    assert (tmp_path / "demo-access.log").stat().st_size > 0

    # SIGTERM to the script stops every part.
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, log.read_text()
    for url in (pulse, shop):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=5)
