"""What a rule set builds: recording rules and alerts, with Pulse's alert conventions built in.

Every alert gets the labels routing needs (`severity`, `team`, `service`) and the annotations people need
(a static `summary`, a templated `description`, a `runbook_url` to its section of docs/runbooks/<set>.md
and a `dashboard_url`), so no set can forget one; tests/test_rules_style.py checks the result as mixtool
lint does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["critical", "warning", "info"]

# Who acts, and so where Alertmanager sends it (alertmanager/alertmanager.yml routes on `team`):
# platform: the engineers' on-call (outages, slowness, machines, Pulse itself);
# marketing: drops in user behaviour and sales; customer-service: refunds and payment failures.
Team = Literal["platform", "marketing", "customer-service"]
TEAMS: tuple[Team, ...] = ("platform", "marketing", "customer-service")

# The Grafana dashboards' stable uids (grafana/dashboards/), which alerts link to.
DASHBOARDS = {
    "overview": "pulse-overview",
    "probes": "pulse-probes",
    "traffic": "pulse-traffic",
    "system": "pulse-system",
    "behaviour": "pulse-behaviour",
    "transactions": "pulse-transactions",
    "slos": "pulse-slos",
    "alerting": "pulse-alerting",
}


@dataclass(frozen=True)
class Recording:
    """A recording rule, named `level:metric:operations` (tests/test_rules_style.py checks the shape)."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    """An alert. `service` is a static service label, or None when the expression's series carry one."""

    name: str  # CamelCase
    expr: str
    severity: Severity
    team: Team
    summary: str  # one static sentence ending with a period: it is the same for every instance
    description: str  # templated with {{ $labels.x }} and {{ $value }}: what fired, where, how much
    dashboard: str  # a key of DASHBOARDS
    for_: str = "0s"
    service: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # more labels, e.g. a SLO's window


Rule = Recording | Alert


@dataclass(frozen=True)
class Group:
    name: str
    rules: Sequence[Rule]
    interval: str | None = None  # None: Prometheus' global evaluation_interval


@dataclass(frozen=True)
class Links:
    """Where an alert's links point: the runbooks' and Grafana's base URLs, from the settings file."""

    runbook_url: str
    grafana_url: str

    def runbook(self, rule_set: str, alert: str) -> str:
        # GitHub's anchor for a heading "## AlertName" is the name in lower case.
        return f"{self.runbook_url.rstrip('/')}/{rule_set}.md#{alert.lower()}"

    def dashboard(self, key: str) -> str:
        return f"{self.grafana_url.rstrip('/')}/d/{DASHBOARDS[key]}"


def rule_document(rule: Rule, rule_set: str, links: Links) -> dict[str, object]:
    """One rule as Prometheus' rule file has it, keys in the usual order."""
    if isinstance(rule, Recording):
        document: dict[str, object] = {"record": rule.record, "expr": rule.expr}
        if rule.labels:
            document["labels"] = dict(rule.labels)
        return document
    labels: dict[str, str] = {"severity": rule.severity, "team": rule.team}
    if rule.service is not None:
        labels["service"] = rule.service
    labels.update(rule.labels)
    document = {"alert": rule.name, "expr": rule.expr}
    if rule.for_ != "0s":
        document["for"] = rule.for_
    document["labels"] = labels
    document["annotations"] = {
        "summary": rule.summary,
        "description": rule.description,
        "runbook_url": links.runbook(rule_set, rule.name),
        "dashboard_url": links.dashboard(rule.dashboard),
    }
    return document
