"""scripts/demo and the demo shop as real processes: configurable ports, a busy port is a one-line
message naming it (never a traceback, never a demo running without one of its parts), and the demo's
journey probe walks the shop from home to checkout, and the shop's access log shows on /metrics as
web traffic with successes, client errors and server errors. The demo starts the whole stack:
Prometheus with the shipped rules and last week's history, Alertmanager with the shipped routes; SIGTERM
and Ctrl-C stop every part."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.demo import generator
from exporter.demo.shop import DEFAULT_PORT
from exporter.probes.config import ProbesConfig
from tests.helpers import free_port, parse_samples, require_binary, wait_until
from tests.rules import RULES_DIR

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


PORTS = (
    "PULSE_DEMO_PORT",
    "PULSE_DEMO_SHOP_PORT",
    "PULSE_DEMO_DOWN_PORT",
    "PULSE_DEMO_PROMETHEUS_PORT",
    "PULSE_DEMO_ALERTMANAGER_PORT",
    "PULSE_DEMO_GRAFANA_PORT",
)


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """Free ports and a small database with nine days of history, a few sessions an hour (the demo
    makes four weeks of history only when it has none; it loads the last eight days into Prometheus)."""
    require_binary(str(ROOT / ".venv" / "bin" / "pulse-exporter"))  # scripts/demo runs from the repository's .venv
    for binary in ("prometheus", "promtool", "prometheus-alertmanager"):
        require_binary(binary)
    database = tmp_path / "demo.db"
    assert generator.main(["--url", f"sqlite:///{database}", "--backfill", "9d", "--sessions-per-day", "300"]) == 0
    ports = {name: free_port() for name in PORTS}
    assert len(set(ports.values())) == len(PORTS)
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
        ("PULSE_DEMO_PROMETHEUS_PORT", "Prometheus"),
        ("PULSE_DEMO_ALERTMANAGER_PORT", "Alertmanager"),
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
    for other in ("PULSE_DEMO_PORT", "PULSE_DEMO_SHOP_PORT", "PULSE_DEMO_PROMETHEUS_PORT"):  # nothing was started
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

    wait_until(up, timeout=180, what="scripts/demo saying it is up")
    assert f"open http://localhost:{demo_env['PULSE_DEMO_PORT']}/" in log.read_text()
    check_prometheus_and_alertmanager(demo_env, log)
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
    assert_all_stopped(demo_env)


def assert_all_stopped(env: dict[str, str]) -> None:
    for name in (
        "PULSE_DEMO_PORT",
        "PULSE_DEMO_SHOP_PORT",
        "PULSE_DEMO_PROMETHEUS_PORT",
        "PULSE_DEMO_ALERTMANAGER_PORT",
    ):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{env[name]}/", timeout=5)


def prometheus_api(url: str, path: str, **params: str) -> Any:
    body = httpx.get(f"{url}/api/v1/{path}", params=params, timeout=30).json()
    assert body["status"] == "success", body
    return body["data"]


def check_prometheus_and_alertmanager(env: dict[str, str], log: Path) -> None:
    """Prometheus runs every shipped rule group, healthy, scrapes the demo's Pulse and holds last week's
    KPIs; it sends to the demo's Alertmanager, which runs the shipped routes, the incident journal's to
    the demo's Pulse."""
    prometheus = f"http://127.0.0.1:{env['PULSE_DEMO_PROMETHEUS_PORT']}"
    alertmanager = f"http://127.0.0.1:{env['PULSE_DEMO_ALERTMANAGER_PORT']}"
    output = log.read_text()
    assert f"Prometheus:    http://localhost:{env['PULSE_DEMO_PROMETHEUS_PORT']}/" in output
    assert f"Alertmanager:  http://localhost:{env['PULSE_DEMO_ALERTMANAGER_PORT']}/" in output
    if not (shutil.which("grafana") or shutil.which("grafana-server")):
        assert "Grafana is not installed (no Debian package); dashboards are in grafana/dashboards" in output

    shipped = {
        group["name"] for path in RULES_DIR.glob("*.yml") for group in yaml.safe_load(path.read_text())["groups"]
    }

    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups: list[dict[str, Any]] = prometheus_api(prometheus, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return groups if rules and all(rule["health"] != "unknown" for rule in rules) else None

    groups = wait_until(rules_evaluated, timeout=90, what="every rule evaluated once", interval=0.5)
    assert {group["name"] for group in groups} == shipped
    assert [rule["name"] for group in groups for rule in group["rules"] if rule["health"] != "ok"] == []

    def scraped() -> bool:
        return bool(prometheus_api(prometheus, "query", query='up{job="pulse"} == 1'))

    wait_until(scraped, timeout=90, what="Prometheus scraping the demo's Pulse", interval=0.5)
    last_week = prometheus_api(
        prometheus, "query", query='count_over_time(business_sessions_total{job="pulse"}[1h] offset 1w)'
    )
    assert last_week["result"], "no history a week ago"

    assert httpx.get(f"{alertmanager}/-/ready", timeout=10).status_code == 200
    status = httpx.get(f"{alertmanager}/api/v2/status", timeout=10).json()
    assert "oncall-pager" in status["config"]["original"]
    assert "example.com/" not in status["config"]["original"]  # receivers point nowhere harmful
    # ...but the incident journal's, which posts to the demo's Pulse, where the journal's metrics are served.
    pulse = f"http://127.0.0.1:{env['PULSE_DEMO_PORT']}"
    assert f"{pulse}/alertmanager/webhook" in status["config"]["original"]
    metrics = httpx.get(f"{pulse}/metrics", headers={"Accept": "text/plain"}, timeout=10).text
    assert "# TYPE pulse_incidents_open gauge" in metrics
    active = prometheus_api(prometheus, "alertmanagers")["activeAlertmanagers"]
    assert [target["url"] for target in active] == [f"{alertmanager}/api/v2/alerts"]


def test_ctrl_c_stops_every_part_of_the_demo(demo_env: dict[str, str]) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole foreground process group) stops the demo and all it started."""
    env = {**demo_env, "PULSE_DEMO_HISTORY_DAYS": "0", "PULSE_DEMO_BACKUP_EVERY": "3600"}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the demo, on the new terminal
        os.chdir(ROOT)
        os.execve(str(DEMO), [str(DEMO)], env)
    output = bytearray()

    def read_and_check(wanted: bytes) -> bool:
        if select.select([terminal], [], [], 0.5)[0]:
            with contextlib.suppress(OSError):  # the demo has closed the terminal
                output.extend(os.read(terminal, 65536))
        return wanted in output

    def exited() -> bool:
        read_and_check(b"")
        return os.waitpid(pid, os.WNOHANG)[0] == pid

    def up() -> bool:
        return read_and_check(b"The demo is up")

    try:
        wait_until(up, timeout=180, what=lambda: f"the demo up:\n{output.decode(errors='replace')}")
        os.write(terminal, b"\x03")  # Ctrl-C
        wait_until(exited, timeout=60, what=lambda: f"the demo exited:\n{output.decode(errors='replace')}")
        assert_all_stopped(demo_env)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        os.close(terminal)
