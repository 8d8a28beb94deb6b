"""The whole demo stack for end-to-end tests, every part real: the demo (shop, SQLite database holding a
slice of last week's traffic, live generator) -> Pulse on examples/demo.yml -> Prometheus on
prometheus/prometheus.yml with last week's KPIs backfilled -> Alertmanager with
alertmanager/alertmanager.yml delivering to local captures.

    options = StackOptions(rule_files=shipped_rules, history_before=timedelta(hours=2), ...)
    with running_stack(tmp_path, options) as stack:
        stack.prometheus.query(...)

What the configs change, and only that: Pulse's database, access log, textfile directory, incident
journal and probe targets point at this run's (its KPIs refreshed every second); prometheus.yml's two
addresses are this run's Pulse and Alertmanager, and it scrapes and evaluates every second; Alertmanager's
receivers deliver to local captures (tests/alertmanager_server.py), but the incident journal's, which
delivers to this run's Pulse; its business hours cover now and its group interval is a second. The
journal starts with one open incident the stack writes itself (SEEDED below). The rule files come from
`StackOptions.rule_files` (the e2e test generates shortened ones, the dashboards test loads the committed
ones). Used by tests/test_alert_pipeline_e2e.py and
tests/test_dashboards_live.py, one stack per module; the fixture prints its phases' durations.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from exporter.demo import backfill, generator
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice, Incident
from tests.alertmanager_server import (
    Delivery,
    HttpCapture,
    RunningAlertmanager,
    SmtpCapture,
    business_hours_config,
    routes_of,
    start_alertmanager,
)
from tests.helpers import exporter_command, free_port, wait_until
from tests.prometheus_server import PrometheusServer, create_blocks, start_prometheus
from tests.rules import PROMETHEUS_DIR, RULES_DIR

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "examples" / "demo.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
# examples/demo.yml's shop, and the target nowhere (probed to show a failure).
DEMO_SHOP = "127.0.0.1:10136"
DEMO_SHOP_BY_NAME = "localhost:10136"  # its HTTPS (a certificate for localhost) and its DNS server
DEMO_NOWHERE = "127.0.0.1:10137"

# Generous bounds: the test machine is shared and often loaded; these are not speed tests.
PAGE_TIMEOUT = 90.0
JOURNAL_RECEIVER = "incident-journal"
# Series Prometheus makes itself.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}


@dataclass(frozen=True)
class StackOptions:
    """What differs between the modules that start a stack."""

    # The rule files Prometheus loads, made in (or found from) the stack's directory.
    rule_files: Callable[[Path], list[Path]]
    # Live traffic, at any hour: the generator's daily and weekly seasonality is divided out.
    sessions_per_second: float
    # Last week's slice of the database: from `history_before` before the same instant last week to
    # `history_after` after it (more than the module takes: the generator ends a history with every
    # session in progress cut short, their orders all in its last second).
    history_before: timedelta
    history_after: timedelta
    # The part of that slice backfilled into Prometheus: from `backfill_before` before last week's
    # instant to a minute before the slice ends, every `backfill_step`.
    backfill_before: timedelta
    backfill_step: str
    # The shop's simulated visitors a second (0: the probes are its only traffic).
    visitors: int = 0
    # Keep examples/demo.yml's target where nothing listens (pointed at a free port): a failing probe.
    keep_failing_target: bool = False


def shipped_rules(directory: Path) -> list[Path]:
    """The committed prometheus/rules/*.yml (tests/test_rules.py holds them equal to a generation)."""
    del directory
    return sorted(RULES_DIR.glob("*.yml"))


# --------------------------------------------------------------------------------------------- the demo


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def sessions_per_day(at: datetime, sessions_per_second: float) -> float:
    """The generator's --sessions-per-day that gives `sessions_per_second` at `at` (its seasonality out)."""
    per_unit = generator.Simulation(random.Random(0), 1.0, 1.0, {}, 0).rate(at)
    return sessions_per_second / per_unit


def create_demo_database(db: Path, now: datetime, per_day: float, options: StackOptions) -> None:
    """A demo database with a user base and last week's traffic around `now` (a slice: the whole week
    would take minutes to write, backfill and load)."""
    url = f"sqlite:///{db}"
    # A fresh database gets as many customers as sessions a day (millions here): a small base first.
    base = ["--url", url, "--backfill", "1m", "--until", iso(now - timedelta(weeks=4)), "--sessions-per-day", "2000"]
    assert generator.main([*base, "--seed", "1"]) == 0
    last_week = now - timedelta(weeks=1)
    span = options.history_before + options.history_after
    slice_ = ["--backfill", f"{int(span.total_seconds())}s", "--until", iso(last_week + options.history_after)]
    assert generator.main(["--url", url, *slice_, "--sessions-per-day", f"{per_day:.0f}", "--seed", "2"]) == 0


def backfill_last_week(db: Path, now: datetime, instance: str, data_dir: Path, options: StackOptions) -> float:
    """Last week's KPIs, as Pulse at `instance` would have exported them, made into TSDB blocks: the
    compared windows and a margin (the history's first minutes and last second are not steady).
    Returns the seconds promtool took."""
    last_week = now - timedelta(weeks=1)
    history = db.parent / "history.om"
    start = last_week - options.backfill_before
    end = last_week + options.history_after - timedelta(minutes=1)
    arguments = ["--db", str(db), "--out", str(history), "--step", options.backfill_step, "--job", "pulse",
                 "--instance", instance, "--start", iso(start), "--end", iso(end)]  # fmt: skip
    assert backfill.main(arguments) == 0
    began = time.monotonic()
    create_blocks(history, data_dir)
    return time.monotonic() - began


def pulse_config(
    db: Path, access_log: Path, textfile: Path, shop_port: int, nowhere_port: int | None = None, *, journal: str
) -> str:
    """examples/demo.yml pointed at this run's database, access log, textfile directory, incident journal
    and shop, its KPIs refreshed every second; the target that always fails pointed at `nowhere_port`, or
    left out (without it nothing pages all along)."""
    config: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    assert config["incidents"]["enabled"] is True, "examples/demo.yml keeps an incident journal"
    config["incidents"]["database"] = journal
    config["collectors"]["host"]["textfile"]["directory"] = str(textfile)
    config["kpis"]["sources"]["shop"]["dsn"] = f"sqlite:///{db}"
    for pack in config["kpis"]["packs"]:
        pack.update(interval="1s", timeout="1s")
    targets = [
        target
        for target in config["probes"]["targets"]
        if DEMO_SHOP in target["target"] or DEMO_SHOP_BY_NAME in target["target"]
    ]
    assert len(targets) == 5, "examples/demo.yml probes its shop five ways: HTTP, TCP, a journey, HTTPS, DNS"
    for target in targets:
        target["target"] = (
            target["target"]
            .replace(DEMO_SHOP, f"127.0.0.1:{shop_port}")
            .replace(DEMO_SHOP_BY_NAME, f"localhost:{shop_port}")
        )
    if nowhere_port is not None:
        (nowhere,) = [target for target in config["probes"]["targets"] if DEMO_NOWHERE in target["target"]]
        nowhere["target"] = nowhere["target"].replace(DEMO_NOWHERE, f"127.0.0.1:{nowhere_port}")
        targets.append(nowhere)
    config["probes"]["targets"] = targets
    config["logs"]["files"]["shop"]["paths"] = [str(access_log)]
    return yaml.safe_dump(config, sort_keys=False)


def prometheus_config(pulse: str, alertmanager: str, prometheus: str) -> str:
    """prometheus/prometheus.yml with Pulse's, Alertmanager's and its own addresses, scraping and
    evaluating every second; its jobs, relabelling and alerting otherwise as shipped."""
    text = PROMETHEUS_CONFIG.read_text()
    addresses = (("127.0.0.1:10135", pulse), ("127.0.0.1:9093", alertmanager), ("localhost:9090", prometheus))
    for shipped, address in addresses:
        assert shipped in text, f"prometheus.yml no longer names {shipped}: update tests/stack.py"
        text = text.replace(shipped, address)
    config = yaml.safe_load(text)
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(directory: Path, capture: HttpCapture, mail: SmtpCapture, pulse_url: str) -> dict[str, Any]:
    """alertmanager/alertmanager.yml delivering locally, business hours covering now, every wait a
    second or two: a resolved notification waits for its group's next `group_interval`. The incident
    journal's receiver is this run's Pulse (its webhook), the others the captures."""
    config = business_hours_config(directory, capture, mail, covering_now=True)
    for route in routes_of(config):
        route["group_interval"] = "1s"
    (journal,) = [receiver for receiver in config["receivers"] if receiver["name"] == JOURNAL_RECEIVER]
    (webhook,) = journal["webhook_configs"]
    webhook["url"] = f"{pulse_url}/alertmanager/webhook"
    return config


# An incident the stack writes into the journal itself (as the webhook would), open and unacknowledged
# from the start, so that the journal's series exist from Pulse's first scrape whatever the run's alerts;
# `Stack.close_seeded_incident()` acknowledges and resolves it, for the mean times to have a value.
SEEDED = {"alertname": "StackSeededIncident", "severity": "critical", "team": "platform", "service": "shop"}


def seeded_notice(started_at: float, resolved_at: float | None = None) -> AlertNotice:
    return AlertNotice(
        fingerprint="0000stackseeded",
        status="firing" if resolved_at is None else "resolved",
        labels=SEEDED,
        annotations={"summary": "An incident the test stack wrote into the journal."},
        starts_at=started_at,
        ends_at=resolved_at,
    )


def start_process(command: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def answers(url: str, process: subprocess.Popen[bytes], log_path: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"{process.args!r} exited with {process.returncode}:\n{log_path.read_text()}")
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -------------------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    directory: Path
    rule_files: list[Path]
    prometheus: PrometheusServer
    alertmanager: RunningAlertmanager
    capture: HttpCapture
    mail: SmtpCapture
    pulse_url: str
    journal_url: str  # Pulse's incident journal (SQLite), which Alertmanager's incident-journal receiver fills
    shop_port: int
    access_log: Path
    generator_log: Path
    control_file: Path
    visitors: int = 0
    ready_at: float = 0.0  # when Prometheus held Pulse's first scrape (seconds since the epoch)
    shop: subprocess.Popen[bytes] | None = None
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def shop_log(self) -> Path:
        return self.directory / "shop.log"

    def start_shop(self) -> None:
        """The demo shop on its port, appending to its access log (with no simulated visitors, the probes
        are its traffic, so every 5xx in the log is one the test wrote)."""
        command = [sys.executable, "-m", "exporter.demo.shop", "--port", str(self.shop_port),
                   "--access-log", str(self.access_log)]  # fmt: skip
        if self.visitors:
            command += ["--visitors", str(self.visitors)]
        self.shop = start_process(command, self.shop_log, self.directory)
        shop = self.shop
        wait_until(
            lambda: answers(f"http://127.0.0.1:{self.shop_port}/healthz", shop, self.shop_log),
            30,
            "the shop answering",
            interval=0.1,
        )

    def stop_shop(self) -> None:
        if self.shop is not None:
            stop_process(self.shop)
            self.shop = None

    def rules(self) -> list[dict[str, Any]]:
        """Every rule of the loaded files."""
        return [rule for path in self.rule_files for group in yaml.safe_load(path.read_text())["groups"]
                for rule in group["rules"]]  # fmt: skip

    def rule(self, name: str, severity: str | None = None) -> dict[str, Any]:
        """A generated alerting rule (of `severity`, when it has several)."""
        for rule in self.rules():
            if rule.get("alert") == name and severity in (None, rule["labels"]["severity"]):
                return dict(rule)
        raise AssertionError(f"no rule {name} ({severity}) in {self.rule_files}")

    def active_alerts(self, name: str, **labels: str) -> list[dict[str, Any]]:
        """Prometheus' pending and firing alerts named `name` whose labels include `labels`."""
        alerts: list[dict[str, Any]] = self.prometheus.api("alerts")["alerts"]
        wanted = {"alertname": name, **labels}
        return [alert for alert in alerts if wanted.items() <= alert["labels"].items()]

    def wait_for_page(self, condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first on-call webhook payload (v4) satisfying `condition`."""

        def matches(delivery: Delivery) -> bool:
            return condition(delivery.json())

        try:
            return dict(self.capture.wait_for("/oncall-pager", matches, timeout=PAGE_TIMEOUT).json())
        except AssertionError as err:
            raise AssertionError(f"{what}: {err}\n{self.diagnostics()}") from None

    def incidents(self, alertname: str) -> list[Incident]:
        """The journal's incidents of that alert, newest first."""
        with Journal(self.journal_url) as journal:
            return [incident for incident in journal.incidents() if incident.alertname == alertname]

    def close_seeded_incident(self) -> None:
        """Acknowledge and resolve the incident the stack seeded (a few seconds after it began)."""
        (seeded,) = self.incidents(SEEDED["alertname"])
        now = time.time()
        with Journal(self.journal_url) as journal:
            journal.acknowledge(seeded.id, "tests/stack.py", now)
            journal.record([seeded_notice(seeded.started_at, resolved_at=now)], now)

    def diagnostics(self) -> str:
        alerts = self.prometheus.api("alerts")["alerts"]
        firing = [(alert["labels"], alert["state"]) for alert in alerts]
        return f"Prometheus' alerts: {firing}\nAlertmanager: {self.alertmanager.alerts()}"


@contextmanager
def running_stack(directory: Path, options: StackOptions) -> Iterator[Stack]:
    """The stack, up and scraped (Pulse's KPIs are in Prometheus) when this yields; stopped after."""
    phases: dict[str, float] = {}
    began = last = time.monotonic()

    def phase(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        phases[name] = now - last
        last = now

    with ExitStack() as cleanup:
        rule_files = options.rule_files(directory)
        phase("rules generated")

        now = datetime.now(UTC).replace(tzinfo=None)
        per_day = sessions_per_day(now, options.sessions_per_second)
        db = directory / "demo.db"
        create_demo_database(db, now, per_day, options)
        phase("demo database (last week's slice)")
        pulse_port = free_port()
        data_dir = directory / "prometheus-data"
        phases["of which promtool"] = backfill_last_week(db, now, f"127.0.0.1:{pulse_port}", data_dir, options)
        phase("backfill and promtool blocks")

        control_file = directory / "control.yml"
        generator_log = directory / "generator.log"
        live = start_process(
            [sys.executable, "-m", "exporter.demo.generator", "--url", f"sqlite:///{db}", "--live",
             "--control", str(control_file), "--sessions-per-day", f"{per_day:.0f}", "--seed", "3"],
            generator_log, directory,
        )  # fmt: skip
        cleanup.callback(stop_process, live)

        capture = cleanup.enter_context(HttpCapture())
        mail = cleanup.enter_context(SmtpCapture())
        pulse_url = f"http://127.0.0.1:{pulse_port}"
        alertmanager = start_alertmanager(alertmanager_config(directory / "alertmanager", capture, mail, pulse_url),
                                          directory / "alertmanager")  # fmt: skip
        cleanup.callback(alertmanager.stop)

        access_log = directory / "access.log"
        access_log.touch()
        shop_port = free_port()
        textfile = directory / "textfile"
        textfile.mkdir()
        # One run of the demo's backup job (a real `pulse-exporter job run`), so the jobs rules see its series.
        backup = subprocess.run(
            [*exporter_command(), "job", "run", "--name=demo_backup", f"--textfile-directory={textfile}", "--", "true"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert backup.returncode == 0, backup.stderr
        config_path = directory / "pulse.yml"
        nowhere_port = free_port() if options.keep_failing_target else None
        journal_url = sqlite_url(directory / "incidents.db")
        with Journal(journal_url) as journal:
            journal.record([seeded_notice(time.time())], time.time())
        config_path.write_text(pulse_config(db, access_log, textfile, shop_port, nowhere_port, journal=journal_url))
        pulse_log = directory / "pulse.log"
        pulse_process = start_process(
            [*exporter_command(), f"--config.file={config_path}", f"--web.listen-address=127.0.0.1:{pulse_port}"],
            pulse_log, directory,
        )  # fmt: skip
        cleanup.callback(stop_process, pulse_process)
        wait_until(lambda: answers(f"{pulse_url}/-/ready", pulse_process, pulse_log), 30, "Pulse ready", interval=0.1)
        wait_until(lambda: "writing live traffic" in generator_log.read_text(), 30, "the live generator started")

        am_address = alertmanager.url.removeprefix("http://")
        prometheus_port = free_port()
        prometheus = start_prometheus(
            directory, prometheus_config(f"127.0.0.1:{pulse_port}", am_address, f"127.0.0.1:{prometheus_port}"),
            rule_files, data_dir=data_dir, retention="30d", port=prometheus_port,
        )  # fmt: skip
        cleanup.callback(prometheus.stop)
        stack = Stack(directory, rule_files, prometheus, alertmanager, capture, mail, pulse_url, journal_url,
                      shop_port, access_log, generator_log, control_file, visitors=options.visitors,
                      phases=phases)  # fmt: skip
        stack.start_shop()
        cleanup.callback(stack.stop_shop)
        phase("generator, Alertmanager, Pulse, shop, Prometheus started")
        prometheus.wait_for_samples('business_orders_total{job="pulse"}', "Pulse's KPIs scraped")
        stack.ready_at = time.time()
        phase("Prometheus started and scraping")
        phases["stack ready (total)"] = time.monotonic() - began
        yield stack
        phases["module (total)"] = time.monotonic() - began
        print(f"\n{directory.name} stack, seconds:", {name: round(seconds, 1) for name, seconds in phases.items()})
