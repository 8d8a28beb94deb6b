"""A real `pulse-exporter` keeping an incident journal, for the webhook and Alertmanager tests.

    with PulseWithJournal(tmp_path, alertmanager_url=None) as pulse:   # basic auth: WEBHOOK_USER
        pulse.deliver(webhook_body([alert(...)]))                      # POST /alertmanager/webhook
        pulse.kill9(); pulse.start()                                   # same config, same journal
        with pulse.open_journal() as journal: ...

Alertmanager's webhook payload (version 4) is built by `webhook_body` and `alert` the way Alertmanager
0.25 writes it: nanosecond times, the zero time as a firing alert's endsAt.
"""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import bcrypt
import httpx
import yaml

from exporter.incidents.journal import Journal, sqlite_url
from tests.helpers import exporter_command, free_port, wait_until

WEBHOOK = "/alertmanager/webhook"
WEBHOOK_USER, WEBHOOK_PASSWORD = "alertmanager", "webhook-secret"
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(timestamp: float, nanoseconds: int = 0) -> str:
    """As Go writes a time.Time in JSON (RFC 3339 with up to nine fractional digits)."""
    text = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanoseconds:09d}Z" if nanoseconds else f"{text}Z"


def alert(
    fingerprint: str,
    labels: dict[str, str],
    starts_at: str,
    *,
    ends_at: str = ZERO_TIME,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "status": "firing" if ends_at == ZERO_TIME else "resolved",
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def webhook_body(alerts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "pulse-journal",
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        **extra,
    }


class PulseWithJournal:
    """pulse-exporter with `incidents.enabled` and its journal in `directory`, behind basic auth."""

    def __init__(self, directory: Path, *, alertmanager_url: str | None = None, sync_interval: str = "1h") -> None:
        self.directory = directory
        self.database = sqlite_url(directory / "data" / "incidents.db")
        self.config_path = directory / "pulse.yml"
        self.write_config(alertmanager_url, sync_interval)
        self.web_config_path = directory / "web.yml"
        hashed = bcrypt.hashpw(WEBHOOK_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        self.web_config_path.write_text(yaml.safe_dump({"basic_auth_users": {WEBHOOK_USER: hashed}}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "pulse.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(auth=(WEBHOOK_USER, WEBHOOK_PASSWORD), timeout=20)

    def write_config(self, alertmanager_url: str | None = None, sync_interval: str = "1h") -> None:
        """pulse.yml: the journal, and Alertmanager to read silences from (a running Pulse reloads it)."""
        config: dict[str, Any] = {
            "incidents": {"enabled": True, "database": self.database, "silence_sync_interval": sync_interval}
        }
        if alertmanager_url:
            config["alertmanager"] = {"url": alertmanager_url}
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *exporter_command(),
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    f"--config.file={self.config_path}",
                    f"--web.config.file={self.web_config_path}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        wait_until(self._ready, 20, lambda: f"pulse-exporter not ready:\n{self.logs()}", interval=0.05)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"pulse-exporter exited with {self.process.returncode}:\n{self.logs()}")
        try:
            return self.client.get(f"{self.url}/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def deliver(self, body: dict[str, Any] | bytes, **kwargs: Any) -> httpx.Response:
        if isinstance(body, bytes):
            return self.client.post(f"{self.url}{WEBHOOK}", content=body, **kwargs)
        return self.client.post(f"{self.url}{WEBHOOK}", json=body, **kwargs)

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def open_journal(self) -> Journal:
        return Journal(self.database)

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`pulse-exporter incidents ARGS...` with this Pulse's config."""
        return subprocess.run(
            [*exporter_command(), "incidents", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PULSE_CONFIG_FILE": str(self.config_path), "USER": "tester"},
            check=False,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        self.client.close()
