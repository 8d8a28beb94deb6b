"""The alert pipeline end to end: the demo (shop, database, live traffic) -> Pulse -> Prometheus with the
shipped rules -> Alertmanager with the shipped routing -> the receivers, every part real.

One stack serves the module (tests/stack.py; about a minute and a half of wall time; the fixture prints
its phases):
- the demo's parts: the shop writing its access log, a SQLite demo database holding last week's
  traffic around this time of day, and the live generator writing today's, with `--control`;
- pulse-exporter on examples/demo.yml, pointed at them, on free ports, the KPIs refreshed every second;
- Prometheus with prometheus/prometheus.yml (only the addresses and intervals rewritten), on a data
  directory backfilled with last week's KPIs (exporter/demo/backfill.py, promtool), and the rules the
  real generator (`pulse-exporter rules generate`) writes from the shipped settings with shorter
  durations (settings_for_the_test below): the rule texts themselves are never edited;
- Alertmanager with alertmanager/alertmanager.yml delivering to local captures, but the incident
  journal's receiver, which posts to the run's Pulse; its waits shortened and its business hours
  covering now.

Each scenario causes a failure and waits (never sleeps) for the notification it should bring, after
checking that the alert was not there before the cause.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.incidents.model import Incident
from tests.alertmanager_server import Mail
from tests.helpers import exporter_command, wait_until
from tests.rules import PROMETHEUS_DIR, RULES_DIR, SETTINGS_FILE, metric_names_in
from tests.stack import PAGE_TIMEOUT, PROMETHEUS_OWN, Stack, StackOptions, running_stack

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------ the settings

# The week-over-week comparisons count over this window instead of an hour, so that a drop shows within
# seconds. Its series (service:business_orders:increase30s...) are named after it.
WINDOW = "30s"
# Every `*_for` of every set (how long a condition must hold before its alert fires) is shortened to
# this, but for the business "Dropping" alerts: they hold for one window (DROPPING_FOR), because until
# Prometheus has scraped a whole window of live orders (the first 30 s), a window looks half empty,
# and a drop must not be seen there.
SHORT_FOR = "1s"
DROPPING_FOR = WINDOW
DROPPING_ALERTS = ("orders", "gmv", "sessions", "active_users", "conversion")
BUSINESS_OVERRIDES = {"window": WINDOW, "baseline_weeks": 1}  # last week is the one week of history

# Live traffic: about two orders a second (60 a window, against OrdersDropping's default minimum of 20;
# the ratio's noise is then about 0.18, so the 0.5 threshold is three of those away), at any hour:
# the generator's daily and weekly seasonality is divided out.
SESSIONS_PER_SECOND = 35.0
# Last week's slice of history: from before the first compared instant by enough for the sessions
# in progress to reach their steady rate (the generator starts a history with none), to after the
# last one by more than this module takes (the generator ends a history with every session in
# progress cut short: their orders all land in its last second).
HISTORY_BEFORE = timedelta(minutes=25)
HISTORY_AFTER = timedelta(minutes=15)
# Backfilled: from 5 minutes before last week's instant (the compared windows, and a margin: the
# history's first minutes are not steady), every 5 s (several samples per window, for increase()).
BACKFILL_BEFORE = timedelta(minutes=5)
BACKFILL_STEP = "5s"

# Generous bounds: the test machine is shared and often loaded; these are not speed tests.
DROP_TIMEOUT = 150.0


def settings_for_the_test() -> dict[str, Any]:
    """prometheus/settings.yml, every set's durations shortened; the business comparisons' window and
    baseline set for a test (above). Thresholds stay the shipped ones."""
    settings: dict[str, Any] = yaml.safe_load(SETTINGS_FILE.read_text())

    def shorten(section: dict[str, Any]) -> None:
        for key, value in section.items():
            if isinstance(value, dict):
                shorten(value)
            elif key.endswith("_for"):
                section[key] = SHORT_FOR

    for section in settings.values():
        if isinstance(section, dict):
            shorten(section)
    business = settings["business"]
    business.update(BUSINESS_OVERRIDES)
    for alert in DROPPING_ALERTS:
        business[alert]["pending_for"] = DROPPING_FOR
    return settings


def generate_rules(directory: Path) -> list[Path]:
    """The rule files the real generator writes from the test's settings."""
    settings_path = directory / "settings.yml"
    settings_path.write_text(yaml.safe_dump(settings_for_the_test(), sort_keys=False))
    out = directory / "rules"
    result = subprocess.run(
        [*exporter_command(), "rules", "generate", f"--settings={settings_path}", f"--out={out}",
         f"--slos={PROMETHEUS_DIR / 'slos'}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(out.glob("*.yml"))


# -------------------------------------------------------------------------------------------- the stack

OPTIONS = StackOptions(
    rule_files=generate_rules,
    sessions_per_second=SESSIONS_PER_SECOND,
    history_before=HISTORY_BEFORE,
    history_after=HISTORY_AFTER,
    backfill_before=BACKFILL_BEFORE,
    backfill_step=BACKFILL_STEP,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e"), OPTIONS) as stack:
        yield stack


# -------------------------------------------------------------------------------------------- scenarios


def test_every_generated_rule_evaluates_without_error_on_the_demo(stack: Stack) -> None:
    """Every rule file the generator writes is loaded (the shipped set), and every rule evaluates on the
    demo's real series: a selector, label match or function that does not fit them shows here."""
    assert [path.name for path in stack.rule_files] == sorted(path.name for path in RULES_DIR.glob("*.yml"))
    prometheus = stack.prometheus
    for job in ("pulse", "pulse-probes"):  # rate() and friends see data from the third scrape
        prometheus.wait_for_samples(f'count_over_time(up{{job="{job}"}}[1m]) >= 3', f"three scrapes of {job}")
    rules = prometheus.wait_for_rules_evaluated_after(time.time())

    expected = sorted(
        (group["name"], str(rule.get("alert") or rule.get("record")))
        for path in stack.rule_files
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    )
    assert sorted((rule.group, rule.name) for rule in rules) == expected
    assert [(rule.group, rule.name, rule.health, rule.last_error) for rule in rules if rule.health != "ok"] == []


def test_a_stopped_shop_pages_on_call_and_its_return_resolves_the_page(stack: Stack) -> None:
    prometheus = stack.prometheus
    prometheus.wait_for_samples('probe_success{service="shop", module="http_2xx"} == 1', "the shop's probe passing")
    assert stack.active_alerts("ProbeFailing", service="shop") == []
    shop_url = f"http://127.0.0.1:{stack.shop_port}/"

    stack.stop_shop()
    try:
        page = stack.wait_for_page(
            lambda p: p["status"] == "firing" and p["commonLabels"].get("alertname") == "ProbeFailing",
            "ProbeFailing paged",
        )
    finally:
        stack.start_shop()

    assert (page["version"], page["receiver"]) == ("4", "oncall-pager")
    common = {"alertname": "ProbeFailing", "service": "shop", "severity": "critical", "team": "platform"}
    assert common.items() <= page["commonLabels"].items()
    rule = stack.rule("ProbeFailing")
    for alert in page["alerts"]:
        labels, annotations = alert["labels"], alert["annotations"]
        assert (labels["service"], labels["severity"], labels["team"]) == ("shop", "critical", "platform")
        # The journey fails as JourneyFailing, the DNS probe as ProbeDnsFailing: once each.
        assert labels["module"] in ("http_2xx", "tcp_connect", "https_2xx")
        assert labels["instance"] in (shop_url, f"127.0.0.1:{stack.shop_port}", f"https://localhost:{stack.shop_port}/")
        assert annotations["summary"] == rule["annotations"]["summary"] == "A synthetic probe has been failing."
        assert annotations["runbook_url"] == rule["annotations"]["runbook_url"]
        assert annotations["runbook_url"].endswith("/docs/runbooks/probes.md#probefailing")
        assert annotations["dashboard_url"] == rule["annotations"]["dashboard_url"]
        assert labels["instance"] in annotations["description"]

    resolved = stack.wait_for_page(
        lambda p: p["status"] == "resolved" and p["commonLabels"].get("alertname") == "ProbeFailing",
        "ProbeFailing resolved once the shop is back",
    )
    assert resolved["commonLabels"]["service"] == "shop"
    assert all(alert["status"] == "resolved" for alert in resolved["alerts"])


def test_the_stopped_shops_alert_is_an_incident_of_the_journal(stack: Stack) -> None:
    """Alertmanager's incident-journal receiver posts every alert to Pulse's /alertmanager/webhook: the
    ProbeFailing the stopped shop raised (the scenario above) is an incident of Pulse's journal, with the
    alert's labels, and resolved once the shop was back. Then the journal's metrics count it."""

    def journalled_and_resolved() -> list[Incident] | None:
        found = [incident for incident in stack.incidents("ProbeFailing") if incident.service == "shop"]
        return found if found and all(incident.resolved_at is not None for incident in found) else None

    try:
        incidents = wait_until(journalled_and_resolved, PAGE_TIMEOUT, "ProbeFailing on the shop, journalled, resolved")
    except AssertionError as err:
        deliveries = [line for line in stack.alertmanager.log().splitlines() if "incident-journal" in line]
        raise AssertionError(f"{err}\nAlertmanager on the journal's receiver: {deliveries[-5:]}") from None
    for incident in incidents:
        assert (incident.severity, incident.team) == ("critical", "platform")
        assert incident.labels["module"] in ("http_2xx", "tcp_connect", "https_2xx")
        assert incident.annotations["summary"] == "A synthetic probe has been failing."
        assert incident.resolved_at is not None
        assert incident.started_at <= incident.first_notified_at
        assert incident.started_at < incident.resolved_at
    resolved = 'pulse_incident_time_to_resolve_seconds_count{job="pulse", severity="critical", team="platform"}'
    stack.prometheus.wait_for_samples(f"{resolved} >= {len(incidents)}", "the journal's metrics counting them")


def combined_line(path: str, status: int) -> str:
    when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return f'127.0.0.1 - - [{when}] "GET {path} HTTP/1.1" {status} 52 "-" "pulse-e2e-test" 0.004\n'


def test_an_error_burst_in_the_access_log_pages_on_call(stack: Stack) -> None:
    """HttpErrorRatioHigh (the 5xx ratio per service, critical above its threshold while the service has
    its minimum request rate) from the shop's access log, which Pulse follows."""
    prometheus = stack.prometheus
    # ProbeFailing on the shop would mute HttpErrorRatioHigh on it (an inhibition): wait until it is over.
    prometheus.wait_for_samples('probe_success{service="shop", module="http_2xx"} == 1', "the shop's probe passing")
    wait_until(lambda: not stack.active_alerts("ProbeFailing", service="shop"), PAGE_TIMEOUT, "ProbeFailing over")
    # One 500 first: rate() counts increases of a series it has seen, not its first value.
    with stack.access_log.open("a") as log:
        log.write(combined_line("/api/recommendations", 500))
    prometheus.wait_for_samples('http_requests_total{job="pulse", service="shop", code="500"}', "the first 500")
    assert stack.active_alerts("HttpErrorRatioHigh", service="shop") == []

    with stack.access_log.open("a") as log:
        log.writelines(combined_line("/api/recommendations", 500) for _ in range(300))
    page = stack.wait_for_page(
        lambda p: (
            p["status"] == "firing"
            and p["commonLabels"].get("alertname") == "HttpErrorRatioHigh"
            and p["commonLabels"].get("service") == "shop"
        ),
        "HttpErrorRatioHigh paged",
    )
    rule = stack.rule("HttpErrorRatioHigh", "critical")
    (alert,) = page["alerts"]
    assert {k: alert["labels"][k] for k in ("service", "severity", "team")} == {
        "service": "shop",
        "severity": "critical",
        "team": "platform",
    }
    for key in ("summary", "runbook_url", "dashboard_url"):
        assert alert["annotations"][key] == rule["annotations"][key]


def test_orders_stopping_mails_marketing_orders_dropping(stack: Stack) -> None:
    """The live generator stops placing orders (its control file): OrdersDropping reaches the marketing
    receiver. Before, the rule is evaluated with the ratio to last week near 1, and nothing fires.
    Last in the module: its window of live orders fills while the other scenarios run."""
    prometheus = stack.prometheus
    ratio_series = f"service:business_orders:increase{WINDOW}_vs_baseline"

    def as_usual() -> float | None:
        """The ratio, once near 1 with every OrdersDropping rule evaluated since, healthy, no alert."""
        asked = time.time()
        result = prometheus.query(ratio_series)
        ratio = float(result[0]["value"][1]) if result else None
        if ratio is None or not 0.6 < ratio < 1.7:
            return None
        rules = [rule for rule in prometheus.rules() if rule.name == "OrdersDropping"]
        evaluated = all(rule.last_evaluation > asked and rule.health == "ok" for rule in rules)
        return ratio if rules and evaluated and not any(rule.alerts for rule in rules) else None

    began = time.monotonic()
    ratio = wait_until(as_usual, DROP_TIMEOUT, f"{ratio_series} near 1 and OrdersDropping silent", interval=0.5)
    stack.phases["orders: waited for a full window"] = time.monotonic() - began
    assert [m.subject for m in stack.mail.mails("marketing@example.com") if "OrdersDropping" in m.subject] == []

    stack.control_file.write_text("orders_factor: 0\n")
    wait_until(lambda: "control: orders_factor=0" in stack.generator_log.read_text(), 30, "the generator's drop")
    dropped = time.monotonic()

    def dropping(message: Mail) -> bool:
        return message.subject.startswith("[FIRING:") and "OrdersDropping on marketplace" in message.subject

    try:
        mail = stack.mail.wait_for("marketing@example.com", dropping, timeout=DROP_TIMEOUT)
    except AssertionError as err:
        now = prometheus.query(ratio_series)
        raise AssertionError(f"{err}\nratio before {ratio}, now {now}\n{stack.diagnostics()}") from None
    finally:
        stack.control_file.write_text("orders_factor: 1\n")
    stack.phases["orders: drop to mail"] = time.monotonic() - dropped
    text = mail.part("text/plain")
    assert "Fewer orders than usual at this time of the week." in text
    assert stack.rule("OrdersDropping", "warning")["annotations"]["runbook_url"] in text
    [firing] = [alert for alert in stack.active_alerts("OrdersDropping") if alert["state"] == "firing"][:1]
    assert firing["labels"]["team"] == "marketing"
    assert firing["labels"]["service"] == "marketplace"
    assert float(firing["value"]) < 0.5


# Metrics the shipped rules use that the demo cannot show, each with the reason, the test that sees the
# exporter serve it, and the module that names it (checked below, so a renamed metric fails here).
NOT_IN_THE_DEMO = {
    "node_md_disks": ("no md RAID here; tests/test_host_metrics.py reads fixtures", "collectors/host/mdstat.py"),
    "node_md_disks_required": ("no md RAID here; tests/test_host_metrics.py", "collectors/host/mdstat.py"),
}


def test_every_metric_the_rules_use_is_one_pulse_serves_or_a_rule_records(stack: Stack) -> None:
    """A misspelt metric in a rule evaluates without error, to nothing, forever: the names in every
    expression must be among the series Prometheus holds from the demo (Pulse's /metrics and /probe,
    and the recording rules' output), or be one the demo cannot show, named in the exporter's code.
    Last in the module: probe_failure_info exists only once a probe has failed (the stopped shop)."""
    prometheus = stack.prometheus
    rules = [rule for path in stack.rule_files for group in yaml.safe_load(path.read_text())["groups"]
             for rule in group["rules"]]  # fmt: skip
    used = set().union(*(metric_names_in(rule["expr"]) for rule in rules))
    records = {rule["record"] for rule in rules if "record" in rule}
    prometheus.wait_for_rules_evaluated_after(time.time())
    held = set(prometheus.api("label/__name__/values"))
    unknown = sorted(used - held - records - PROMETHEUS_OWN - set(NOT_IN_THE_DEMO))
    assert unknown == []
    for name, (_, module) in NOT_IN_THE_DEMO.items():
        assert name in used, f"{name} is no longer used by the rules: drop it from NOT_IN_THE_DEMO"
        assert f'"{name}' in (ROOT / "exporter" / module).read_text(), f"{name} is not named in exporter/{module}"
