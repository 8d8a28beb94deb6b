"""A real Prometheus (Debian's binary) for end-to-end tests: start it with a config and rule files, on a
fresh data directory or on one filled beforehand (blocks made by promtool from a backfill), wait until
it is ready, query it (now or at a past instant), read the state of its rules, stop it.

    with running_prometheus(tmp_path, config_text, [RULES_DIR / "host.yml"]) as prometheus:
        prometheus.wait_for_samples('up{job="pulse"} == 1', "Pulse scraped")
        prometheus.wait_for_rules_evaluated_after(time.time())
        assert prometheus.unhealthy_rules() == []

    create_blocks(history_openmetrics, data_dir)              # promtool tsdb create-blocks-from openmetrics
    with running_prometheus(tmp_path, config_text, data_dir=data_dir, retention="400d") as prometheus:
        prometheus.query("business_orders_total", at=last_week)

The config's own `rule_files` are replaced by the files given. Every wait polls (tests/helpers.py
wait_until) and, at its deadline, fails with what Prometheus last answered and its log.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers import free_port, require_binary, wait_until

# How long a wait may take: generous, because the shared test machine is often loaded; not a speed test.
DEFAULT_TIMEOUT = 90.0


@dataclass(frozen=True)
class RuleState:
    """One rule as /api/v1/rules reports it."""

    group: str
    name: str  # the alert's or the recording's name
    kind: str  # "alerting" or "recording"
    health: str  # "ok", "err", or "unknown" before its first evaluation
    last_error: str
    last_evaluation: float  # seconds since the epoch; negative before the first evaluation
    alerts: tuple[dict[str, Any], ...]  # an alerting rule's pending and firing alerts (labels, state, ...)


@dataclass
class PrometheusServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log()}")

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; AssertionError with Prometheus' error if it is not a success."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert body.get("status") == "success", f"/api/v1/{path} {params}: {response.status_code} {body}"
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result, now or at `at` (seconds since the epoch):
        [{"metric": {labels}, "value": [time, "value"]}, ...]."""
        data = self.api("query", query=expr, **({} if at is None else {"time": repr(float(at))}))
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expr: str, at: float | None = None) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query's samples as {sorted labels (with __name__ when kept): value}."""
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in self.query(expr, at)}

    def rules(self) -> list[RuleState]:
        states = []
        for group in self.api("rules")["groups"]:
            for rule in group["rules"]:
                states.append(
                    RuleState(
                        group=group["name"],
                        name=rule["name"],
                        kind=rule["type"],
                        health=rule["health"],
                        last_error=rule.get("lastError", ""),
                        last_evaluation=_timestamp(rule["lastEvaluation"]),
                        alerts=tuple(rule.get("alerts", ())),
                    )
                )
        return states

    def unhealthy_rules(self) -> list[RuleState]:
        return [rule for rule in self.rules() if rule.health != "ok"]

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        def ready() -> bool:
            self.assert_running()
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, lambda: f"prometheus ready:\n{self.log()}", interval=0.1)

    def wait_for_samples(self, expr: str, what: str, timeout: float = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
        """Query `expr` until it returns something, and return that."""
        last: object = None

        def found() -> list[dict[str, Any]] | None:
            nonlocal last
            self.assert_running()
            last = self.query(expr)
            return last or None

        def failure() -> str:
            targets = httpx.get(f"{self.url}/api/v1/targets", timeout=5).text
            return f"{what} ({expr}); last result {last!r}\ntargets: {targets}\n{self.log()}"

        return wait_until(found, timeout, failure, interval=0.2)

    def wait_for_rules_evaluated_after(self, moment: float, timeout: float = DEFAULT_TIMEOUT) -> list[RuleState]:
        """Wait until every rule has been evaluated after `moment` (seconds since the epoch)."""
        last: list[RuleState] = []

        def evaluated() -> list[RuleState] | None:
            nonlocal last
            self.assert_running()
            last = self.rules()
            return last if last and all(rule.last_evaluation > moment for rule in last) else None

        def failure() -> str:
            behind = [rule.name for rule in last if rule.last_evaluation <= moment]
            return f"every rule evaluated ({len(last)} rules; not yet: {behind})\n{self.log()}"

        return wait_until(evaluated, timeout, failure, interval=0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _timestamp(rfc3339: str) -> float:
    """/api/v1/rules' times ("2024-05-01T10:00:00.123456789Z", or with the server's zone offset); before
    the first evaluation they are year 1, which comes out as a large negative number: never "after"."""
    return datetime.fromisoformat(rfc3339).timestamp()


def create_blocks(openmetrics: Path, data_dir: Path, max_block_duration: str = "24h") -> str:
    """`promtool tsdb create-blocks-from openmetrics` into `data_dir` (a Prometheus data directory, made
    before Prometheus starts on it); returns promtool's output."""
    promtool = require_binary("promtool")
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", f"--max-block-duration={max_block_duration}",
         str(openmetrics), str(data_dir)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"promtool failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def start_prometheus(
    directory: Path,
    config: str,
    rule_files: Sequence[Path] = (),
    *,
    data_dir: Path | None = None,
    retention: str | None = None,
    port: int | None = None,
) -> PrometheusServer:
    """Start Prometheus with `config` (YAML text), its `rule_files` replaced by `rule_files`; its config
    and log go to `directory`, its data to `data_dir` (default: a fresh directory there). `retention`
    (e.g. "400d"): Prometheus deletes blocks older than it (default 15d) when it starts, so a backfilled
    history needs one longer than itself. `port`: where it listens (default: a free one), for a config
    that scrapes Prometheus itself. Returns once it is ready; stop() it (or use running_prometheus)."""
    binary = require_binary("prometheus")
    document = yaml.safe_load(config) or {}
    document["rule_files"] = [str(Path(path).resolve()) for path in rule_files]
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    port = port or free_port()
    log_path = directory / "prometheus.log"
    flags = [
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir or directory / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    if retention is not None:
        flags.append(f"--storage.tsdb.retention.time={retention}")
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, *flags], stdout=log, stderr=subprocess.STDOUT)
    server = PrometheusServer(process, port, log_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_prometheus(
    directory: Path,
    config: str,
    rule_files: Sequence[Path] = (),
    *,
    data_dir: Path | None = None,
    retention: str | None = None,
    port: int | None = None,
) -> Iterator[PrometheusServer]:
    """start_prometheus() for a `with` block, stopped at its end."""
    server = start_prometheus(directory, config, rule_files, data_dir=data_dir, retention=retention, port=port)
    try:
        yield server
    finally:
        server.stop()
