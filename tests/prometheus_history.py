"""A real Prometheus over a data directory (blocks made by promtool, say), for tests that query history.

Scoped to what the backfill test needs: load blocks, create them with the real promtool, start the
Debian `prometheus` on a free port with a config text, wait until it is ready, run instant queries.
(tests/prometheus_server.py, another helper, runs Prometheus for scraping and rules.)
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, require_binary, wait_until

# Long enough for any history a test loads: Prometheus deletes blocks older than its retention (15d
# by default) when it starts.
RETENTION = "400d"


def create_blocks(openmetrics: Path, data_dir: Path, max_block_duration: str = "24h") -> str:
    """`promtool tsdb create-blocks-from openmetrics` into `data_dir`; returns promtool's output."""
    promtool = require_binary("promtool")
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", f"--max-block-duration={max_block_duration}",
         str(openmetrics), str(data_dir)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"promtool failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass
class HistoryPrometheus:
    """A running Prometheus: its URL, process and log."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, expression: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector result (at `at`, Unix seconds, or now)."""
        params: dict[str, str] = {"query": expression}
        if at is not None:
            params["time"] = repr(float(at))
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30)
        assert response.status_code == 200, f"{expression}: HTTP {response.status_code} {response.text}"
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expression: str, at: float | None = None) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query's samples as {sorted labels (with __name__): value}."""
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in self.query(expression, at)}


@contextmanager
def running_prometheus(data_dir: Path, config_text: str, work_dir: Path) -> Iterator[HistoryPrometheus]:
    """Prometheus on `data_dir` with `config_text`, ready to answer queries; stopped on exit."""
    binary = require_binary("prometheus")
    config_path = work_dir / "prometheus.yml"
    config_path.write_text(config_text)
    log_path = work_dir / "prometheus.log"
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={data_dir}",
             f"--storage.tsdb.retention.time={RETENTION}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = HistoryPrometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited with {process.returncode}:\n{server.log()}")
            try:
                return httpx.get(f"{server.url}/-/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, lambda: f"prometheus ready; its log:\n{server.log()}", interval=0.2)
        yield server
    finally:
        process.terminate()
        process.wait(30)
