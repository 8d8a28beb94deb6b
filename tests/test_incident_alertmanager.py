"""A real Alertmanager delivering to a real Pulse: alerts arrive in the journal, their resolution with
Alertmanager's endsAt, and a silence made in Alertmanager acknowledges the incident, read back by
`pulse-exporter incidents sync` and by the running Pulse's periodic sync."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.config.platform import EndpointConfig
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import Incident
from exporter.incidents.silences import SilenceSyncError, sync_silences
from exporter.incidents.webhook import parse_time
from tests.alertmanager_server import RunningAlertmanager, start_alertmanager
from tests.helpers import wait_until
from tests.incident_pulse import WEBHOOK, WEBHOOK_PASSWORD, WEBHOOK_USER, PulseWithJournal

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    alertmanager: RunningAlertmanager
    pulse: PulseWithJournal


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("alertmanager")
    (directory / "pulse").mkdir()
    with PulseWithJournal(directory / "pulse") as pulse:
        secret = directory / "am" / "secrets" / "pulse-webhook"  # relative to alertmanager.yml's directory
        secret.parent.mkdir(parents=True)
        secret.write_text(WEBHOOK_PASSWORD + "\n")
        config = {
            "route": {"receiver": "pulse-journal", "group_by": ["alertname"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{
                "name": "pulse-journal",
                "webhook_configs": [{
                    "url": f"{pulse.url}{WEBHOOK}",
                    "send_resolved": True,
                    "http_config": {"basic_auth": {"username": WEBHOOK_USER, "password_file": "secrets/pulse-webhook"}},
                }],
            }],
        }  # fmt: skip
        with start_alertmanager(config, directory / "am") as alertmanager:
            pulse.write_config(alertmanager.url)
            yield Stack(alertmanager, pulse.start())


def now_minus(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def post_firing(alertmanager: RunningAlertmanager, alertname: str, starts_at: str) -> dict[str, Any]:
    alert = {
        "labels": {"alertname": alertname, "severity": "critical", "service": "shop", "team": "web"},
        "annotations": {"summary": f"{alertname} is firing"},
        "startsAt": starts_at,
        "endsAt": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }
    alertmanager.post_alerts([alert])
    return alert


def incident_of(pulse: PulseWithJournal, alertname: str) -> Incident | None:
    with pulse.open_journal() as journal:
        return next((i for i in journal.incidents() if i.alertname == alertname), None)


def wait_for_incident(stack: Stack, alertname: str, condition: Any = lambda i: True) -> Incident:
    def found() -> Incident | None:
        stack.alertmanager.assert_running()
        incident = incident_of(stack.pulse, alertname)
        return incident if incident is not None and condition(incident) else None

    return wait_until(found, 20, lambda: f"{alertname} in the journal:\n{stack.pulse.logs()[-3000:]}", interval=0.1)


def silence(alertmanager: RunningAlertmanager, alertname: str, created_by: str) -> str:
    now = datetime.now(UTC)
    answer = httpx.post(
        f"{alertmanager.url}/api/v2/silences",
        json={
            "matchers": [{"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": created_by,
            "comment": "looking into it",
        },
        timeout=10,
    )
    answer.raise_for_status()
    silence_id = str(answer.json()["silenceID"])
    wait_until(
        lambda: silence_id in alertmanager.wait_for_alert({"alertname": alertname})["status"]["silencedBy"],
        10,
        f"{alertname} silenced in Alertmanager",
        interval=0.05,
    )
    return silence_id


def test_an_alert_arrives_in_the_journal_and_resolves_with_alertmanagers_end(stack: Stack) -> None:
    starts_at = now_minus(60)
    alert = post_firing(stack.alertmanager, "CheckoutErrors", starts_at)

    incident = wait_for_incident(stack, "CheckoutErrors")
    held = stack.alertmanager.wait_for_alert({"alertname": "CheckoutErrors"})
    assert incident.fingerprint == held["fingerprint"]
    assert incident.started_at == parse_time(held["startsAt"], "startsAt") == parse_time(starts_at, "startsAt")
    assert (incident.service, incident.severity, incident.is_open) == ("shop", "critical", True)
    assert incident.annotations == {"summary": "CheckoutErrors is firing"}

    ends_at = datetime.now(UTC) - timedelta(seconds=1)
    stack.alertmanager.post_alerts([{**alert, "endsAt": ends_at.isoformat()}])
    resolved = wait_for_incident(stack, "CheckoutErrors", lambda i: not i.is_open)
    assert resolved.id == incident.id
    assert resolved.resolved_at == int(ends_at.timestamp() * 1000) / 1000  # Alertmanager's endsAt, to the ms


def test_a_silence_acknowledges_the_incident_through_incidents_sync(stack: Stack) -> None:
    post_firing(stack.alertmanager, "DiskFull", now_minus(30))
    incident = wait_for_incident(stack, "DiskFull")
    assert incident.acknowledged_at is None

    silence_id = silence(stack.alertmanager, "DiskFull", "carol")
    synced = stack.pulse.run_cli("sync")

    assert synced.returncode == 0, synced.stderr
    assert "1 incidents acknowledged" in synced.stdout
    acknowledged = incident_of(stack.pulse, "DiskFull")
    assert acknowledged is not None
    assert acknowledged.acknowledged_by == f"silence {silence_id} by carol"
    assert acknowledged.acknowledged_at is not None
    assert incident.started_at < acknowledged.acknowledged_at <= datetime.now(UTC).timestamp()


def test_the_running_pulse_syncs_silences_every_interval(stack: Stack) -> None:
    post_firing(stack.alertmanager, "QueueBacklog", now_minus(30))
    wait_for_incident(stack, "QueueBacklog")
    silence_id = silence(stack.alertmanager, "QueueBacklog", "dave")

    stack.pulse.write_config(stack.alertmanager.url, sync_interval="1s")
    assert stack.pulse.client.post(f"{stack.pulse.url}/-/reload").status_code == 200
    wait_for_incident(stack, "QueueBacklog", lambda i: i.acknowledged_by == f"silence {silence_id} by dave")


class RecordingServer:
    """A local HTTP server recording each GET's path and Authorization header, answering `status` with
    a `location` (a redirect) or an empty JSON list."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.requests: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append((self.path, self.headers.get("Authorization")))
                body = b"" if location else b"[]"
                self.send_response(status)
                if location:
                    self.send_header("Location", location + self.path)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_token_goes_to_alertmanager_only_and_a_redirect_is_refused(tmp_path: Path) -> None:
    elsewhere = RecordingServer()
    redirecting = RecordingServer(302, location=elsewhere.url)
    try:
        with Journal(sqlite_url(tmp_path / "incidents.db")) as journal:
            redirected = EndpointConfig(url=redirecting.url, bearer_token="am-token")
            with pytest.raises(SilenceSyncError, match="answered a redirect"):
                sync_silences(journal, redirected)
            direct = RecordingServer()
            try:
                assert sync_silences(journal, EndpointConfig(url=direct.url, bearer_token="am-token")).acknowledged == 0
            finally:
                direct.close()
    finally:
        redirecting.close()
        elsewhere.close()
    assert [auth for _, auth in redirecting.requests] == ["Bearer am-token"]
    assert elsewhere.requests == []  # neither followed nor given the token
    assert [path for path, _ in direct.requests] == [
        "/api/v2/alerts?silenced=true&active=false&inhibited=false&unprocessed=false"
    ]
    assert [auth for _, auth in direct.requests] == ["Bearer am-token"]
