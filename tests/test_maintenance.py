"""`pulse-exporter maintenance add|list|cancel` against a real Alertmanager (0.25) and a real journal
(SQLite): a window is a silence that mutes the service's alerts and a journal row the status page shows;
when Alertmanager cannot be reached nothing is recorded; cancelling expires the silence and ends the window.

The commands run in this process through `exporter.cli.main` (the dispatch a `pulse-exporter` process
runs), one of them as a real `pulse-exporter` process; the status page through the web layer's routes
(test_status_page.py has the status page of a real process).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from exporter.app import Exporter, load_files
from exporter.cli import main
from exporter.incidents.journal import sqlite_url
from exporter.web.routes import Routes
from exporter.web.server import Request
from tests.alertmanager_server import HttpCapture, RunningAlertmanager, firing, start_alertmanager
from tests.helpers import exporter_command, free_port, wait_until

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Paris")
ALERTMANAGER_CONFIG = {"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]}


def pulse_yml(directory: Path, alertmanager_url: str, name: str = "pulse.yml", **extra: Any) -> Path:
    config = {
        "collectors": {"host": {"enabled": False}},
        "services": {"shop": {"title": "Online shop"}, "api": {"title": "Public API"}},
        "prometheus": {"url": f"http://127.0.0.1:{free_port()}", "timeout": "2s"},  # nothing there: states unknown
        "alertmanager": {"url": alertmanager_url, "timeout": "5s", **extra},
        "incidents": {"enabled": True, "database": sqlite_url(directory / "journal.db")},
        "status": {"enabled": True, "public": True, "cache_for": "1s"},
        "reports": {"timezone": "Europe/Paris"},
    }
    path = directory / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Setup:
    alertmanager: RunningAlertmanager
    config: Path
    directory: Path

    def run(self, capsys: pytest.CaptureFixture[str], *args: str, config: Path | None = None) -> tuple[int, str, str]:
        """`pulse-exporter maintenance ARGS` in this process: (exit code, stdout, stderr)."""
        capsys.readouterr()
        code = main(["maintenance", f"--config.file={config or self.config}", *args])
        out, err = capsys.readouterr()
        return code, out, err

    def windows(self, capsys: pytest.CaptureFixture[str], *flags: str) -> list[dict[str, Any]]:
        code, out, err = self.run(capsys, "list", "--json", *flags)
        assert code == 0, err
        return list(json.loads(out))

    def silences(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.alertmanager.url}/api/v2/silences", timeout=10).json())

    def silence(self, silence_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.alertmanager.url}/api/v2/silence/{silence_id}", timeout=10).json())


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("maintenance")
    with start_alertmanager(ALERTMANAGER_CONFIG, directory / "alertmanager") as alertmanager:
        yield Setup(alertmanager, pulse_yml(directory, alertmanager.url), directory)


def silence_id_of(output: str) -> str:
    return output.strip().rsplit("silence ", 1)[1]


def test_add_silences_the_service_and_records_the_window(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time()
    code, out, err = setup.run(capsys, "add", "--service", "shop", "--start", "now", "--duration", "1h",
                               "--comment", "Database upgrade", "--by", "alice")  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith("maintenance 1: shop from ")
    silence_id = silence_id_of(out)

    silence = setup.silence(silence_id)
    assert silence["status"]["state"] == "active"
    assert silence["matchers"] == [{"name": "service", "value": "shop", "isRegex": False, "isEqual": True}]
    assert (silence["createdBy"], silence["comment"]) == ("alice", "Database upgrade")
    starts = datetime.fromisoformat(silence["startsAt"]).timestamp()  # Alertmanager's own "now" on arrival
    assert before - 1 <= starts <= time.time()

    # Alertmanager mutes the shop's alerts, and only those
    setup.alertmanager.post_alerts([firing({"alertname": "ProbeFailing", "service": "shop"}),
                                    firing({"alertname": "ProbeFailing", "service": "api"})])  # fmt: skip

    def statuses() -> dict[str, dict[str, Any]] | None:
        found = {a["labels"]["service"]: a["status"] for a in setup.alertmanager.alerts()}
        return found if found.get("shop", {}).get("silencedBy") and "api" in found else None

    found = wait_until(statuses, 10, "the shop's alert silenced", interval=0.05)
    assert found["shop"]["silencedBy"] == [silence_id]
    assert found["shop"]["state"] == "suppressed"
    assert found["api"]["silencedBy"] == []

    (window,) = setup.windows(capsys)
    assert window["id"] == 1
    assert (window["service"], window["comment"], window["created_by"]) == ("shop", "Database upgrade", "alice")
    assert (window["silence_id"], window["state"]) == (silence_id, "in progress")
    window_starts = datetime.fromisoformat(window["starts_at"]).timestamp()
    window_ends = datetime.fromisoformat(window["ends_at"]).timestamp()
    assert window_ends - window_starts == pytest.approx(3600, abs=0.002)
    assert window["ends_at"] == silence["endsAt"].replace("+00:00", "Z"), "the window and the silence end together"


def test_a_local_start_is_in_the_config_timezone(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    """`--start` without an offset is in reports.timezone (Europe/Paris), as a real process runs it."""
    tomorrow = datetime.now(ZONE).date() + timedelta(days=1)
    start = f"{tomorrow.isoformat()}T04:00"  # 04:00: a time that exists once every day (clocks change 02:00-03:00)
    expected = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 4, 0, tzinfo=ZONE)
    result = subprocess.run(
        [*exporter_command(), "maintenance", "add", "--service", "api", "--start", start, "--duration", "90m",
         "--comment", "Certificate renewal", f"--config.file={setup.config}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert expected.strftime("%Y-%m-%d 04:00 %Z") in result.stdout
    silence = setup.silence(silence_id_of(result.stdout))
    assert silence["status"]["state"] == "pending"
    assert datetime.fromisoformat(silence["startsAt"]) == expected
    assert datetime.fromisoformat(silence["endsAt"]) == expected + timedelta(minutes=90)
    assert [w["state"] for w in setup.windows(capsys)] == ["in progress", "planned"]


def test_the_windows_show_on_the_status_page(setup: Setup) -> None:
    """The running exporter's web layer (in this process, with its journal opened by the incidents
    collector as `pulse-exporter` opens it) shows both windows; the shop is under maintenance."""

    async def status_json() -> Any:
        exporter = Exporter(setup.config, None, load_files(setup.config, None))
        await exporter.start()
        try:
            response = await Routes(exporter)(Request("GET", "/status.json", {}, {}, b"", "127.0.0.1"))
        finally:
            await exporter.stop()
        assert response.status == 200
        return json.loads(response.body)

    page = asyncio.run(status_json())
    assert [(w["service"], w["comment"], w["in_progress"]) for w in page["maintenance"]] == [
        ("Online shop", "Database upgrade", True),
        ("Public API", "Certificate renewal", False),
    ]
    assert {s["title"]: s["state"] for s in page["services"]} == {"Online shop": "maintenance", "Public API": "unknown"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "ghost", "--start", "now", "--duration", "1h"], "unknown service 'ghost'; the services of "),
        (["--service", "shop", "--start", "now", "--duration", "an hour"], "--duration 'an hour': "),
        (["--service", "shop", "--start", "now", "--duration", "0s"], "--duration '0s': must be longer than 0s"),
        (["--service", "shop", "--start", "now", "--duration", "40d"], "--duration '40d': longer than 31 days"),
        (["--service", "shop", "--start", "tomorrow", "--duration", "1h"], "--start 'tomorrow': not a time"),
        (["--service", "shop", "--start", "2020-01-01T00:00Z", "--duration", "1h"], "is in the past"),
        (["--service", "shop", "--start", "2030-03-31T02:30", "--duration", "1h"], "does not exist in Europe/Paris"),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    windows, silences = setup.windows(capsys, "--all"), setup.silences()
    code, out, err = setup.run(capsys, "add", *args, "--comment", "x")
    assert code == 1
    assert out == ""
    assert err.startswith(f"pulse-exporter maintenance: {message}") or message in err, err
    assert err.count("\n") == 1, err
    assert (setup.windows(capsys, "--all"), setup.silences()) == (windows, silences)


def test_alertmanager_unreachable_records_nothing(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    config = pulse_yml(setup.directory, nowhere, name="unreachable.yml")
    windows = setup.windows(capsys, "--all")
    code, out, err = setup.run(capsys, "add", "--service", "shop", "--start", "now", "--duration", "1h",
                               "--comment", "x", config=config)  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith(f"pulse-exporter maintenance: cannot reach Alertmanager at {nowhere}: ")
    assert err.count("\n") == 1
    assert setup.windows(capsys, "--all") == windows


def test_the_token_is_not_sent_where_a_redirect_points(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    with HttpCapture() as elsewhere:
        redirector = RedirectingServer(f"{elsewhere.url}/api/v2/silences")
        try:
            config = pulse_yml(setup.directory, redirector.url, name="redirect.yml", bearer_token="am-secret-token")
            code, _, err = setup.run(capsys, "add", "--service", "shop", "--start", "now", "--duration", "1h",
                                     "--comment", "x", config=config)  # fmt: skip
        finally:
            redirector.close()
        assert code == 1
        assert "answered a redirect (307), not followed" in err
        assert "am-secret-token" not in err
        assert elsewhere.deliveries() == []
    assert redirector.authorizations == ["Bearer am-secret-token"]


class RedirectingServer(ThreadingHTTPServer):
    """Answers every POST with a 307 to `target`, recording the Authorization header it was sent."""

    def __init__(self, target: str) -> None:
        self.authorizations: list[str] = []
        server = self

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.authorizations.append(self.headers.get("Authorization", ""))
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Redirect)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def test_cancel_expires_the_silence_and_ends_the_window(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    in_progress, planned = setup.windows(capsys)
    code, out, err = setup.run(capsys, "cancel", str(in_progress["id"]))
    assert (code, err) == (0, "")
    assert out.startswith(f"cancelled maintenance {in_progress['id']}: shop from ")
    assert out.rstrip().endswith(": ended now")
    assert setup.silence(in_progress["silence_id"])["status"]["state"] == "expired"

    code, out, err = setup.run(capsys, "cancel", str(planned["id"]))
    assert (code, err) == (0, "")
    assert setup.silence(planned["silence_id"])["status"]["state"] == "expired"

    assert "it had not begun, removed from the journal" in out

    assert setup.windows(capsys) == []  # nothing in progress or planned any more
    (ended,) = setup.windows(capsys, "--all")  # the planned one never happened: gone from the journal
    assert (ended["id"], ended["state"]) == (in_progress["id"], "over")
    assert datetime.fromisoformat(ended["ends_at"]).timestamp() == pytest.approx(time.time(), abs=30)

    code, out, _ = setup.run(capsys, "cancel", str(in_progress["id"]))
    assert code == 0
    assert "already over; nothing to cancel" in out
    code, _, err = setup.run(capsys, "cancel", "999")
    assert code == 1
    assert err.startswith("pulse-exporter maintenance: no maintenance window 999 in sqlite:///")
