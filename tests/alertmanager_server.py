"""A real Alertmanager for tests, and local servers that receive what it sends.

    capture = HttpCapture()                       # webhooks and Slack: POSTs recorded by path
    mail = SmtpCapture()                          # email: messages recorded by recipient
    config = deliver_locally(shipped_config(), tmp_path, capture, mail)   # every receiver -> here
    with start_alertmanager(config, tmp_path) as alertmanager:
        alertmanager.post_alerts([firing({"alertname": "PulseDown", ...}, {"summary": ...})])
        page = capture.wait_for("/oncall-pager")  # the receiver's name is the path
        payload = page.json()

`deliver_locally` points each receiver of a config at the capture servers (webhook URL, the Slack URL's
secret file, the SMTP smarthost), writes the secret files the config names, and copies the templates,
so the shipped configuration runs unchanged otherwise. `routes_of` lets a test adjust timings per
receiver (`with_group_wait` shortens the waits; `business_hours_config` makes business hours cover now, or
never). Both capture servers run in threads of the test process and stop with `close()` (or `with`).
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import yaml

from tests.helpers import free_port, require_binary, wait_until

ROOT = Path(__file__).resolve().parent.parent
ALERTMANAGER_DIR = ROOT / "alertmanager"
SHIPPED_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"

Config = dict[str, Any]

# ------------------------------------------------------------------------------------------- capturing


@dataclass(frozen=True)
class Delivery:
    """One HTTP request Alertmanager made (a webhook or Slack notification)."""

    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Recorder:
    """Shared by both captures: a list of items guarded by a lock, waited on by polling, and the server
    (`_server`, a socketserver) that each capture starts and `close()` stops."""

    _server: socketserver.BaseServer

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Any] = []

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _add(self, item: object) -> None:
        with self._lock:
            self._items.append(item)

    def _snapshot(self) -> list[Any]:
        with self._lock:
            return list(self._items)


class HttpCapture(_Recorder):
    """An HTTP server on a free port answering 200 to every POST and recording it by path."""

    def __init__(self) -> None:
        super().__init__()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder._add(Delivery(self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def deliveries(self, path: str | None = None) -> list[Delivery]:
        """What has arrived so far (at `path` only, when given), oldest first."""
        return [d for d in self._snapshot() if path is None or d.path == path]

    def wait_for(
        self, path: str, condition: Callable[[Delivery], bool] = lambda _: True, timeout: float = 20.0
    ) -> Delivery:
        """The first delivery at `path` satisfying `condition`, waiting for it."""
        return wait_until(
            lambda: next((d for d in self.deliveries(path) if condition(d)), None),
            timeout,
            lambda: f"no matching delivery at {path}; got {[(d.path, d.body[:300]) for d in self.deliveries()]}",
        )


@dataclass(frozen=True)
class Mail:
    """One message Alertmanager sent through the SMTP capture."""

    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        """The decoded body of the `text/plain` or `text/html` part."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content())
        raise AssertionError(f"no {content_type} part in {self.message.as_string()[:500]}")


class SmtpCapture(_Recorder):
    """A minimal SMTP server on a free port accepting every message. It advertises neither STARTTLS nor
    AUTH, so the config it serves needs `smtp_require_tls: false` (`deliver_locally` sets it) and
    Alertmanager skips authentication."""

    def __init__(self) -> None:
        super().__init__()
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                recipients: list[str] = []
                self.reply("220 capture ESMTP")
                while line := self.rfile.readline():
                    command = line.decode(errors="replace").strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 capture")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip(" <>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        data = b"".join(iter(self.rfile.readline, b".\r\n")).replace(b"\r\n..", b"\r\n.")
                        message = email.message_from_bytes(data, policy=email.policy.default)
                        recorder._add(Mail(tuple(recipients), message))
                        recipients = []
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # MAIL, RSET, NOOP
                        self.reply("250 ok")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.smarthost = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def mails(self, to: str | None = None) -> list[Mail]:
        """What has arrived so far (for recipient `to` only, when given), oldest first."""
        return [m for m in self._snapshot() if to is None or to in m.recipients]

    def wait_for(self, to: str, condition: Callable[[Mail], bool] = lambda _: True, timeout: float = 20.0) -> Mail:
        return wait_until(
            lambda: next((m for m in self.mails(to) if condition(m)), None),
            timeout,
            lambda: f"no matching mail to {to}; got {[(m.recipients, m.subject) for m in self.mails()]}",
        )


# ------------------------------------------------------------------------------------------- configs


def shipped_config() -> Config:
    """alertmanager/alertmanager.yml as data (a fresh copy each call)."""
    return dict(yaml.safe_load(SHIPPED_CONFIG.read_text()))


def routes_of(config: Config) -> Iterator[Config]:
    """Every route of the tree, the root first, depth first: to adjust timings in a test's copy."""
    pending = [config["route"]]
    while pending:
        route = pending.pop(0)
        yield route
        pending[:0] = route.get("routes", [])


def secret_token(path: str) -> str:
    """What `deliver_locally` writes into a bearer-token file: tests can expect it in the header."""
    return f"token-from-{Path(path).name}"


def deliver_locally(config: Config, directory: Path, capture: HttpCapture, mail: SmtpCapture | None = None) -> Config:
    """A copy of `config` whose receivers all deliver to the capture servers, at path "/<receiver name>"
    (webhook, Slack, PagerDuty URLs) or by email through `mail`. The secret files the config names are
    written under `directory` (Slack's holds the capture URL; token and basic-auth password files
    `secret_token(path)`), and the templates copied there: run Alertmanager in `directory`."""
    config = copy.deepcopy(config)
    secrets: dict[str, str] = {}
    for receiver in config.get("receivers", []):
        url = f"{capture.url}/{receiver['name']}"
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = url
        for slack in receiver.get("slack_configs", []):
            if "api_url_file" in slack:
                secrets[slack["api_url_file"]] = url
            else:
                slack["api_url"] = url
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = url
        for integration in (c for key, configs in receiver.items() if key.endswith("_configs") for c in configs):
            http_config = integration.get("http_config", {})
            for credentials in (
                http_config.get("authorization", {}).get("credentials_file"),
                http_config.get("basic_auth", {}).get("password_file"),
            ):
                if credentials:
                    secrets[credentials] = secret_token(credentials)
            for key, value in integration.items():
                if key.endswith("_file") and value not in secrets:
                    secrets[value] = secret_token(value)
    global_ = config.setdefault("global", {})
    if mail is not None:
        global_["smtp_smarthost"] = mail.smarthost
        global_["smtp_require_tls"] = False
    if "smtp_auth_password_file" in global_:
        secrets[global_["smtp_auth_password_file"]] = "smtp-password"
    for relative, content in secrets.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n")
    templates = directory / "templates"
    if not templates.exists():
        shutil.copytree(ALERTMANAGER_DIR / "templates", templates)
    return config


def with_group_wait(config: Config, seconds: Mapping[str, str], default: str = "1s") -> Config:
    """Every route's group_wait shortened (a test cannot wait 5 minutes): `seconds[receiver]` or `default`."""
    for route in routes_of(config):
        route["group_wait"] = seconds.get(route.get("receiver", ""), default)
    return config


def business_hours_config(directory: Path, capture: HttpCapture, mail: SmtpCapture, *, covering_now: bool) -> Config:
    """The shipped config delivering locally, with `business-hours` replaced by an interval that covers
    every instant (all day, every day) or none (the year 2000), in the shipped location. Business routes
    wait 1 s, the pager 2 s: a held business alert is due well before the page that follows it."""
    config = deliver_locally(shipped_config(), directory, capture, mail)
    (interval,) = config["time_intervals"]
    location = interval["time_intervals"][0]["location"]
    spec = {"times": [{"start_time": "00:00", "end_time": "24:00"}]} if covering_now else {"years": ["2000"]}
    interval["time_intervals"] = [{**spec, "location": location}]
    return with_group_wait(config, {"oncall-pager": "2s", "marketing": "1s", "customer-service": "1s"})


# ------------------------------------------------------------------------------------------ the server


def firing(labels: Mapping[str, str], annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An alert as Prometheus posts it while it fires: starting now, ending (unless re-sent) in 5 minutes."""
    now = datetime.now(UTC)
    return {
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://prometheus.example.com/graph?g0.expr=up",
    }


def resolved(labels: Mapping[str, str], annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An alert as Prometheus posts it once resolved: ended a moment ago."""
    now = datetime.now(UTC)
    return {**firing(labels, annotations), "startsAt": (now - timedelta(minutes=10)).isoformat(),
            "endsAt": (now - timedelta(seconds=1)).isoformat()}  # fmt: skip


@dataclass
class RunningAlertmanager:
    """An Alertmanager process started by `start_alertmanager`; `stop()` (or leaving `with`) ends it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"alertmanager exited with {self.process.returncode}:\n{self.log()}")

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts, as Prometheus does (see `firing` and `resolved`)."""
        self.assert_running()
        self._client.post(f"{self.url}/api/v2/alerts", json=alerts).raise_for_status()

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: each with labels and status {state, inhibitedBy, silencedBy}."""
        self.assert_running()
        response = self._client.get(f"{self.url}/api/v2/alerts")
        response.raise_for_status()
        return list(response.json())

    def wait_for_alert(self, labels: Mapping[str, str], timeout: float = 10.0) -> dict[str, Any]:
        """The alert whose labels include `labels`, once Alertmanager has it."""
        return wait_until(
            lambda: next((a for a in self.alerts() if labels.items() <= a["labels"].items()), None),
            timeout,
            f"alert {dict(labels)} in Alertmanager",
            interval=0.05,
        )

    def stop(self) -> None:
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_alertmanager(config: Config | str, directory: Path) -> RunningAlertmanager:
    """Alertmanager 0.25 with `config` (data or YAML text) written to directory/alertmanager.yml, run in
    `directory` (the secret files' paths are relative to the working directory), with its storage there,
    on a free port, without clustering; returned once /-/ready answers."""
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "alertmanager.yml"
    config_path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log_path = directory / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url=http://127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip: nothing waits for peers
                "--log.level=debug",
            ],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = RunningAlertmanager(process, f"http://127.0.0.1:{port}", log_path)

    def ready() -> bool:
        running.assert_running()
        try:
            return httpx.get(f"{running.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 15, lambda: f"alertmanager ready at {running.url}:\n{running.log()}", interval=0.05)
    except BaseException:
        running.stop()
        raise
    return running
