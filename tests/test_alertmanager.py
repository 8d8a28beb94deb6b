"""alertmanager/alertmanager.yml: every alert the rules can raise reaches the receivers the escalation
policy (alertmanager/tests/expected-routes.yml) names, checked with amtool; and, with a real Alertmanager
delivering to local capture servers, what amtool cannot show: the rendered notifications, the
inhibitions, and business hours holding a marketing alert back.
"""

from __future__ import annotations

import base64
import re
import subprocess
import zoneinfo
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.bundle.rules import TEAMS
from tests.alertmanager_server import (
    ALERTMANAGER_DIR,
    SHIPPED_CONFIG,
    HttpCapture,
    SmtpCapture,
    business_hours_config,
    deliver_locally,
    firing,
    resolved,
    routes_of,
    secret_token,
    shipped_config,
    start_alertmanager,
    with_group_wait,
)
from tests.helpers import require_binary, wait_until
from tests.rules import shipped_alerts

EXPECTED_ROUTES = ALERTMANAGER_DIR / "tests" / "expected-routes.yml"
SEVERITIES = ("critical", "warning", "info")  # CONTRACT.md: the only severities an alert may have
BUSINESS_HOURS = "business-hours"


# ---------------------------------------------------------------------------- label sets from the rules


@dataclass(frozen=True)
class LabelSet:
    """The labels one alerting rule gives its alerts, as far as the rule file fixes them."""

    origin: str  # "file: AlertName", for messages
    labels: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return dict(self.labels).get(name)


def label_sets(rules: Iterable[tuple[str, Mapping[str, Any]]]) -> list[LabelSet]:
    """For each (origin, alerting rule): alertname plus every static label. A templated label (say
    `service: "{{ $labels.service }}"`) or one the series bring is left out: routing must not depend on
    it, which is why severity and team must be static (an AssertionError otherwise)."""
    found = []
    for origin, rule in rules:
        static = {k: str(v) for k, v in (rule.get("labels") or {}).items() if "{{" not in str(v)}
        for required in ("severity", "team"):
            assert required in static, f"{origin}: label {required} must be static for routing"
        found.append(LabelSet(origin, tuple(sorted({"alertname": rule["alert"], **static}.items()))))
    return sorted(set(found), key=lambda s: (s.origin, s.labels))


def alerts_in(directory: Path) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (f"{path.name}: {rule['alert']}", rule)
        for path in sorted(directory.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def shipped_label_sets() -> list[LabelSet]:
    return label_sets((f"{alert.file.name}: {alert.name}", alert.rule) for alert in shipped_alerts())


# --------------------------------------------------------------------------------- the expectation


def expectations() -> dict[str, Any]:
    return dict(yaml.safe_load(EXPECTED_ROUTES.read_text()))


def expected_receivers(label_set: LabelSet, table: Mapping[str, Any]) -> list[str] | None:
    """Receivers from the policy table, in route order; None when the table does not know this alert."""
    by_name = table["by_alertname"].get(label_set.get("alertname"))
    by_team = table["by_team_and_severity"].get(label_set.get("team"), {}).get(label_set.get("severity"))
    receivers = by_name if by_name is not None else by_team
    also = [] if label_set.get("alertname") in table["every_alert_also_except"] else table["every_alert_also"]
    return None if receivers is None else [*also, *receivers]


def amtool_route(config_file: Path, label_set: LabelSet, expected: list[str]) -> tuple[bool, str]:
    """`amtool config routes test --verify.receivers`: (verified, the receivers amtool resolved)."""
    result = subprocess.run(
        [
            require_binary("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={config_file}",
            f"--verify.receivers={','.join(expected)}",
            *(f"{name}={value}" for name, value in label_set.labels),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 0, result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""


def routing_problems(config_file: Path, sets: list[LabelSet], table: Mapping[str, Any]) -> list[str]:
    """Every label set that the table does not cover or that the config routes elsewhere (empty: all good).
    amtool runs once per label set (~0.1 s each), four at a time."""
    problems = [f"{s.origin}: no entry in {EXPECTED_ROUTES.name} for {dict(s.labels)}" for s in sets
                if expected_receivers(s, table) is None]  # fmt: skip
    checkable = [(s, expected) for s in sets if (expected := expected_receivers(s, table)) is not None]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda item: amtool_route(config_file, *item), checkable)
        for (label_set, expected), (verified, actual) in zip(checkable, results, strict=True):
            if not verified:
                problems.append(f"{label_set.origin}: {dict(label_set.labels)} reaches {actual!r}, not {expected}")
    return problems


def synthetic_rule_file(directory: Path, teams: Iterable[str] = TEAMS) -> Path:
    """A rule file with one alert per (team, severity), the Watchdog, and a templated service label:
    what the merged rule sets will hold, so the routes are proven before they exist."""
    rules: list[dict[str, Any]] = [
        {
            "alert": "Watchdog",
            "expr": "vector(1)",
            "labels": {"severity": "info", "team": "platform", "service": "pulse"},
        }
    ]
    for team in teams:
        for severity in SEVERITIES:
            name = "Synthetic" + "".join(p.title() for p in re.split(r"[-_]", team)) + severity.title()
            labels = {"severity": severity, "team": team, "service": "{{ $labels.service }}"}
            rules.append({"alert": name, "expr": "vector(1)", "labels": labels})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "synthetic.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "synthetic", "rules": rules}]}))
    return path


# ------------------------------------------------------------------------------------------ amtool


def test_amtool_check_config_accepts_the_shipped_config() -> None:
    result = subprocess.run(
        [require_binary("amtool"), "check-config", str(SHIPPED_CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "1 templates" in result.stdout


def test_every_shipped_alert_reaches_the_receivers_the_policy_names() -> None:
    sets = shipped_label_sets()
    assert any(s.get("alertname") == "Watchdog" for s in sets)
    assert routing_problems(SHIPPED_CONFIG, sets, expectations()) == []


def test_every_team_and_severity_of_the_contract_reaches_its_receivers(tmp_path: Path) -> None:
    synthetic_rule_file(tmp_path)
    sets = label_sets(alerts_in(tmp_path))
    assert {(s.get("team"), s.get("severity")) for s in sets} >= {(t, s) for t in TEAMS for s in SEVERITIES}
    assert all(s.get("service") is None for s in sets if s.get("alertname") != "Watchdog"), "templated: not static"
    assert routing_problems(SHIPPED_CONFIG, sets, expectations()) == []


def test_the_policy_table_covers_exactly_the_contracts_teams_and_severities() -> None:
    table = expectations()["by_team_and_severity"]
    assert set(table) == set(TEAMS)
    assert all(set(severities) == set(SEVERITIES) for severities in table.values()), table
    receivers = {r["name"] for r in shipped_config()["receivers"]}
    named = {r for severities in table.values() for rs in severities.values() for r in rs}
    named |= {r for rs in expectations()["by_alertname"].values() for r in rs}
    named |= set(expectations()["every_alert_also"])
    assert named == receivers, "a receiver no alert reaches, or a policy naming a receiver that does not exist"


def test_a_new_team_or_a_misrouted_alert_fails_the_route_check(tmp_path: Path) -> None:
    synthetic_rule_file(tmp_path / "rules", teams=("finance",))
    unknown = label_sets(alerts_in(tmp_path / "rules"))
    problems = routing_problems(SHIPPED_CONFIG, unknown, expectations())
    assert sum("no entry in expected-routes.yml" in p for p in problems) == len(SEVERITIES)

    broken = shipped_config()
    broken["route"]["routes"] = [r for r in broken["route"]["routes"] if r.get("receiver") != "marketing"]
    broken_file = tmp_path / "alertmanager.yml"
    broken_file.write_text(yaml.safe_dump(broken))
    synthetic_rule_file(tmp_path / "contract")
    problems = routing_problems(broken_file, label_sets(alerts_in(tmp_path / "contract")), expectations())
    assert sorted(p.split(":")[1].strip() for p in problems) == [
        "SyntheticMarketingCritical",
        "SyntheticMarketingWarning",
    ]
    assert "reaches 'incident-journal,oncall-pager', not ['incident-journal', 'oncall-pager', 'marketing']" in (
        "\n".join(problems)
    )


# ----------------------------------------------------------------------------- the config's structure


def test_the_incident_journal_hears_of_every_alert_first_and_every_route_still_gets_its_own() -> None:
    """The journal's route is the first child, with `continue` (so the routes after it still match), and
    leaves out exactly the alerts the policy says; its receiver is Pulse's webhook with resolutions, no
    cap on alerts per notification, and a basic-auth password from a secret file."""
    config = shipped_config()
    first = config["route"]["routes"][0]
    assert first["receiver"] == "incident-journal"
    assert first["continue"] is True
    assert parsed(first["matchers"]) == [("alertname", "!~", "|".join(expectations()["every_alert_also_except"]))]
    (receiver,) = [r for r in config["receivers"] if r["name"] == "incident-journal"]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"].endswith("/alertmanager/webhook")
    assert (webhook["send_resolved"], webhook["max_alerts"]) == (True, 0)
    assert webhook["http_config"]["basic_auth"]["password_file"] == "secrets/pulse-webhook-password"
    assert [r for r in config["route"]["routes"] if r.get("receiver") == "incident-journal"] == [first]


MATCHER = re.compile(r'^\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*$')


def parsed(matchers: list[str]) -> list[tuple[str, str, str]]:
    """Matchers of the form name op "value" as (name, op, value)."""
    found = [MATCHER.match(m) for m in matchers]
    assert all(found), matchers
    return [(m.group(1), m.group(2), m.group(3)) for m in found if m]


def satisfies(value: str, op: str, pattern: str) -> bool:
    if op in ("=~", "!~"):
        return (re.fullmatch(pattern, value) is not None) == (op == "=~")
    return (value == pattern) == (op == "=")


def test_no_inhibition_source_can_match_its_own_target() -> None:
    """Each rule has a label that the source fixes to one value, or to a list of literal alternatives
    (`a|b`), every one of which the target rejects: no alert can be both, so none stands for its own
    symptom."""
    for rule in shipped_config()["inhibit_rules"]:
        source, target = parsed(rule["source_matchers"]), parsed(rule["target_matchers"])
        assert any(
            all(not satisfies(value, target_op, pattern) for value in literal_values(op, source_pattern))
            for name, op, source_pattern in source
            if literal_values(op, source_pattern)
            for target_name, target_op, pattern in target
            if target_name == name
        ), rule


def literal_values(op: str, pattern: str) -> list[str]:
    """The values a source matcher allows when they can be listed: `=` one, `=~` of literal alternatives."""
    if op == "=":
        return [pattern]
    if op == "=~" and re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", pattern):
        return pattern.split("|")
    return []


def test_business_hours_are_one_interval_used_only_by_the_business_teams_routes() -> None:
    config = shipped_config()
    assert [interval["name"] for interval in config["time_intervals"]] == [BUSINESS_HOURS]
    locations = {i.get("location") for i in config["time_intervals"][0]["time_intervals"]}
    assert len(locations) == 1, "one IANA zone"
    assert None not in locations, "the zone stated"
    zoneinfo.ZoneInfo(locations.pop())  # a real zone name
    assert "active_time_intervals" not in config["route"]
    assert "mute_time_intervals" not in config["route"]
    held = set(expectations()["business_hours_only"])
    for route in routes_of(config):
        expected = [BUSINESS_HOURS] if route.get("receiver") in held and route is not config["route"] else None
        assert route.get("active_time_intervals") == expected, route
        assert "mute_time_intervals" not in route, route


def test_every_route_and_the_root_say_their_timings() -> None:
    for route in routes_of(shipped_config()):
        if route.get("receiver") == "blackhole":
            continue  # nothing is sent: nothing to time
        assert {"group_wait", "group_interval", "repeat_interval"} <= route.keys(), route


def test_secret_files_live_in_secrets_are_documented_and_never_committed() -> None:
    text = SHIPPED_CONFIG.read_text()
    uncommented = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    files = re.findall(r"\w+_file:\s*(\S+)", uncommented)
    assert len(files) >= 4, files
    readme = (ALERTMANAGER_DIR / "secrets" / "README.md").read_text()
    for file in files:
        assert file.startswith("secrets/"), file
        assert f"`{file.removeprefix('secrets/')}`" in readme, f"{file} not described in secrets/README.md"
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", f"alertmanager/{file}"], cwd=ALERTMANAGER_DIR.parent, check=False
        )
        assert ignored.returncode == 0, f"alertmanager/{file} is not ignored by git"
    kept = subprocess.run(
        ["git", "check-ignore", "-q", "alertmanager/secrets/README.md"], cwd=ALERTMANAGER_DIR.parent, check=False
    )
    assert kept.returncode == 1, "secrets/README.md must stay committed"


# -------------------------------------------------------------------------- end to end (Alertmanager)

LINKS = {
    "runbook_url": "https://github.com/pulse-monitoring/pulse/blob/main/docs/runbooks/traffic.md#httplatencyhigh",
    "dashboard_url": "http://localhost:3000/d/pulse-traffic",
}


def described(summary: str, description: str) -> dict[str, str]:
    return {"summary": summary, "description": description, **LINKS}


@pytest.fixture
def capture() -> Any:
    with HttpCapture() as server:
        yield server


@pytest.fixture
def mail() -> Any:
    with SmtpCapture() as server:
        yield server


def test_notifications_render_summary_links_counts_and_labels(
    tmp_path: Path, capture: HttpCapture, mail: SmtpCapture
) -> None:
    config = with_group_wait(deliver_locally(shipped_config(), tmp_path, capture, mail), {})
    latency = {"alertname": "HttpLatencyHigh", "severity": "warning", "team": "platform", "service": "shop"}
    with start_alertmanager(config, tmp_path) as alertmanager:
        alertmanager.post_alerts(
            [
                firing({**latency, "instance": "web-1:443"}, described("Shop p99 latency is high.", "p99 is 2.5s.")),
                firing({**latency, "instance": "web-2:443"}, described("Shop p99 latency is high.", "p99 is 3.1s.")),
                resolved({**latency, "instance": "web-3:443"}, described("Shop p99 latency is high.", "p99 ok.")),
                firing(
                    {"alertname": "PulseDown", "severity": "critical", "team": "platform", "service": "pulse"},
                    described("Prometheus cannot scrape Pulse.", "Failing for 5m."),
                ),
                firing({"alertname": "Watchdog", "severity": "info", "team": "platform", "service": "pulse"}),
            ]
        )
        slack = capture.wait_for("/engineering-chat").json()
        page = capture.wait_for("/oncall-pager")
        capture.wait_for("/deadmans-switch")
        journalled = capture.wait_for("/incident-journal", lambda d: "PulseDown" in d.body.decode())

    message = slack["attachments"][0]
    assert slack["channel"] == "#engineering-alerts"
    assert message["title"] == "[FIRING:2] HttpLatencyHigh on shop (warning)"
    assert message["title_link"] == LINKS["dashboard_url"]
    assert message["color"] == "warning"
    text = message["text"]
    assert text.startswith("2 firing, 1 resolved\n")
    for expected in (
        "*Shop p99 latency is high.*",
        "p99 is 2.5s.",
        "p99 is 3.1s.",
        "_service shop, severity warning, instance web-1:443_",
        f"<{LINKS['runbook_url']}|Runbook>",
        f"<{LINKS['dashboard_url']}|Dashboard>",
        ":white_check_mark:",
    ):
        assert expected in text, f"{expected!r} not in {text!r}"

    assert page.headers["Authorization"] == f"Bearer {secret_token('secrets/oncall-pager-token')}"
    payload = page.json()
    assert (payload["version"], payload["receiver"], payload["status"]) == ("4", "oncall-pager", "firing")
    assert payload["commonLabels"]["alertname"] == "PulseDown"
    assert payload["alerts"][0]["annotations"]["runbook_url"] == LINKS["runbook_url"]
    assert payload["externalURL"] == alertmanager.url
    # The journal gets every alert but the Watchdog, with send_resolved, as Pulse's user `alertmanager`.
    credentials = base64.b64encode(f"alertmanager:{secret_token('secrets/pulse-webhook-password')}".encode())
    assert journalled.headers["Authorization"] == f"Basic {credentials.decode()}"
    assert (journalled.json()["version"], journalled.json()["receiver"]) == ("4", "incident-journal")
    assert journalled.json()["commonLabels"]["alertname"] == "PulseDown"
    journal = capture.deliveries("/incident-journal")
    assert "Watchdog" not in {alert["labels"]["alertname"] for d in journal for alert in d.json()["alerts"]}
    # Every delivery went to the receiver the policy names, and nothing to the email receivers.
    assert {d.path for d in capture.deliveries()} == {
        "/engineering-chat",
        "/oncall-pager",
        "/deadmans-switch",
        "/incident-journal",
    }
    assert mail.mails() == []


def test_a_critical_alert_inhibits_its_warning_twin_and_probe_failing_its_services_symptoms(
    tmp_path: Path, capture: HttpCapture
) -> None:
    config = deliver_locally(shipped_config(), tmp_path, capture)
    platform = {"team": "platform"}

    def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
        return firing({"alertname": name, "severity": severity, **platform, **labels})

    with start_alertmanager(config, tmp_path) as alertmanager:
        alertmanager.post_alerts(
            [
                alert("HttpErrorRatioHigh", "critical", service="shop"),
                alert("HttpErrorRatioHigh", "warning", service="shop"),  # muted: critical twin
                alert("HttpErrorRatioHigh", "warning", service="blog"),  # kept: the twin is on another service
                alert("ProbeFailing", "critical", service="api"),
                alert("ProbeSlow", "warning", service="api"),  # muted by ProbeFailing
                alert("HttpLatencyHigh", "warning", service="api"),  # muted by ProbeFailing
                alert("ProbeSlow", "warning", service="blog"),  # kept: blog's probe succeeds
                alert("ProbeCertificateExpired", "critical", service="pay"),  # a failed probe too
                alert("HttpErrorRatioHigh", "warning", service="pay"),  # muted by ProbeCertificateExpired
                alert("JourneyFailing", "critical", service="cart"),  # a broken journey: the service is up
                alert("HttpLatencyHigh", "warning", service="cart"),  # kept
                alert("ProbeFailing", "critical"),  # no service: must not mute the one below
                alert("ProbeSlow", "warning"),
            ]
        )

        expected_muted = {
            ("HttpErrorRatioHigh", "warning", "shop"),
            ("ProbeSlow", "warning", "api"),
            ("HttpLatencyHigh", "warning", "api"),
            ("HttpErrorRatioHigh", "warning", "pay"),
        }
        last: dict[str, set[tuple[str, str, str]]] = {}

        def muted_once_all_are_in() -> set[tuple[str, str, str]] | None:
            # Alertmanager's inhibitor learns of source alerts from its own subscription, so an alert can
            # be listed before its inhibitor is known: poll until the muted set settles on the expected one.
            listed = alertmanager.alerts()
            muted = {
                (a["labels"]["alertname"], a["labels"]["severity"], a["labels"].get("service", ""))
                for a in listed
                if a["status"]["inhibitedBy"]
            }
            last["muted"] = muted
            return muted if len(listed) == 13 and muted == expected_muted else None

        wait_until(
            muted_once_all_are_in,
            10,
            lambda: f"four alerts muted, the other nine not; muted now: {sorted(last.get('muted', set()))}",
            interval=0.1,
        )


MARKETING_WARNING = {"alertname": "ConversionDropping", "severity": "warning", "team": "marketing"}
PAYMENTS_CRITICAL = {"alertname": "PaymentFailureRateHigh", "severity": "critical", "team": "customer-service"}


def post_business_alerts(alertmanager: Any) -> None:
    """A marketing warning, and once Alertmanager holds it, a critical customer-service alert (which pages
    on-call at any hour)."""
    alertmanager.post_alerts(
        [
            firing(
                {**MARKETING_WARNING, "service": "marketplace"},
                described("Conversion is down week over week.", "Conversion is 1.2% against 2.0% a week ago."),
            )
        ]
    )
    alertmanager.wait_for_alert(MARKETING_WARNING)
    alertmanager.post_alerts(
        [firing({**PAYMENTS_CRITICAL, "service": "marketplace"}, described("Payments fail.", "12% fail."))]
    )


def test_during_business_hours_the_marketing_warning_is_mailed(
    tmp_path: Path, capture: HttpCapture, mail: SmtpCapture
) -> None:
    config = business_hours_config(tmp_path, capture, mail, covering_now=True)
    with start_alertmanager(config, tmp_path) as alertmanager:
        post_business_alerts(alertmanager)
        marketing = mail.wait_for("marketing@example.com")
        customer_service = mail.wait_for("customer-service@example.com")
        capture.wait_for("/oncall-pager", lambda d: d.json()["commonLabels"]["alertname"] == "PaymentFailureRateHigh")

    assert marketing.subject == "[FIRING:1] ConversionDropping on marketplace (warning)"
    html = marketing.part("text/html")
    for expected in (
        "Conversion is down week over week.",
        "Conversion is 1.2% against 2.0% a week ago.",
        f'<a href="{LINKS["runbook_url"]}">Runbook</a>',
        f'<a href="{LINKS["dashboard_url"]}">Dashboard</a>',
        "service marketplace, severity warning",
    ):
        assert expected in html, f"{expected!r} not in the HTML part"
    text = marketing.part("text/plain")
    assert "1 firing, 0 resolved" in text
    assert f"Runbook: {LINKS['runbook_url']}" in text
    assert f"Dashboard: {LINKS['dashboard_url']}" in text
    assert f"Alertmanager: {alertmanager.url}" in text
    assert customer_service.subject == "[FIRING:1] PaymentFailureRateHigh on marketplace (critical)"


def test_outside_business_hours_the_marketing_warning_is_held_and_a_critical_business_alert_still_pages(
    tmp_path: Path, capture: HttpCapture, mail: SmtpCapture
) -> None:
    config = business_hours_config(tmp_path, capture, mail, covering_now=False)
    with start_alertmanager(config, tmp_path) as alertmanager:
        post_business_alerts(alertmanager)
        # The page comes from a group created after the marketing one, with twice its group_wait: by the
        # time it arrives, both business groups have been evaluated, and Alertmanager says they were held.
        capture.wait_for("/oncall-pager", lambda d: d.json()["commonLabels"]["alertname"] == "PaymentFailureRateHigh")
        assert [(m.recipients, m.subject) for m in mail.mails()] == []
        wait_until(
            lambda: business_groups_held(alertmanager.log()),
            5,
            lambda: f"Alertmanager's log saying both business groups were held:\n{alertmanager.log()}",
        )


def business_groups_held(log: str) -> bool:
    """Alertmanager 0.25 (--log.level=debug) logs each group it flushes (aggrGroup names the route's
    matchers) and, for each flush outside the route's active time, "route is not within active time"."""
    flushed = all(f'{{team=\\"{team}\\"}}:' in log for team in ("marketing", "customer-service"))
    return flushed and log.count("Notifications not sent, route is not within active time") >= 2
