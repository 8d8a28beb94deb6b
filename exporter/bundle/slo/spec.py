"""A SLO spec: Sloth's `prometheus/v1` format, so a Sloth user's files work unchanged, plus Pulse-only keys.

Sloth's keys: `version`, `service`, `labels`, `slos[{name, objective, description, labels, sli, alerting}]`,
an SLI being `events: {error_query, total_query}` or `raw: {error_ratio_query}`, each query templated with
`{{.window}}`. Sloth refuses keys it does not know, so a spec using one of Pulse's extensions is Pulse-only:

- `sli.latency: {histogram, threshold_seconds, selector}`: the share of requests slower than a histogram
  bucket's bound;
- `sli.probe_latency: {threshold_seconds, selector}`: the share of probe runs slower than a threshold;
- `period: 30d | month` on a SLO: whether its `slo:period_*` series are the rolling 30 days (Sloth's) or
  the calendar month to date.

Pulse routes alerts on `severity`, `team` and `service`: a SLO's alert labels must name a `team` Pulse knows,
and a `severity` the spec sets must be one of Pulse's. Sloth's plugins are Go code inside Sloth: a spec
using one is refused with a message saying so rather than generating something else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic

from exporter.bundle.rules import TEAMS
from exporter.config.loader import load_model
from exporter.config.types import StrictModel

SPEC_VERSION = "prometheus/v1"
WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")  # Go's template syntax, as Sloth reads it
SEVERITIES = ("critical", "warning", "info")

LabelName = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
Labels = dict[LabelName, str]
# Sloth's ids are `<service>-<slo name>`, used as label values and in rule group names.
Name = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
AlertName = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
MetricName = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
Seconds = Annotated[float, pydantic.Field(gt=0, allow_inf_nan=False)]
_PLUGINS_REFUSED = "Sloth's plugins are Go code that runs inside Sloth; Pulse cannot run them"


def _windowed(query: str) -> str:
    if not WINDOW.search(query):
        raise ValueError("the query must use {{.window}} where its range goes, e.g. rate(x[{{.window}}])")
    return query


WindowedQuery = Annotated[str, pydantic.AfterValidator(_windowed)]


class Events(StrictModel):
    """Bad events over all events, e.g. 5xx responses over all responses."""

    error_query: WindowedQuery
    total_query: WindowedQuery


class Raw(StrictModel):
    """An error ratio (0-1) some other rule already computes."""

    error_ratio_query: WindowedQuery


class Latency(StrictModel):
    """Pulse-only: requests slower than `threshold_seconds`, from a Prometheus histogram's buckets."""

    histogram: MetricName  # the histogram's name, without _bucket/_count
    threshold_seconds: Seconds  # must be one of the histogram's bucket bounds (le)
    selector: str = ""  # label matchers, e.g. job="pulse", service="shop"

    @pydantic.field_validator("histogram")
    @classmethod
    def _base_name(cls, value: str) -> str:
        for suffix in ("_bucket", "_count", "_sum"):
            if value.endswith(suffix):
                raise ValueError(f"give the histogram's name without {suffix}: {value.removesuffix(suffix)}")
        return value


class ProbeLatency(StrictModel):
    """Pulse-only: probe runs whose probe_duration_seconds is above `threshold_seconds`."""

    threshold_seconds: Seconds
    selector: str  # which probes, e.g. job="pulse-probes", service="shop"


class SLI(StrictModel):
    events: Events | None = None
    raw: Raw | None = None
    latency: Latency | None = None  # Pulse-only
    probe_latency: ProbeLatency | None = None  # Pulse-only
    plugin: Any = None  # Sloth's; refused below with the reason

    @pydantic.model_validator(mode="after")
    def _exactly_one(self) -> SLI:
        if self.plugin is not None:
            raise ValueError(f"plugin: {_PLUGINS_REFUSED}; write the SLI as events or raw queries")
        given = [name for name in ("events", "raw", "latency", "probe_latency") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of events, raw, latency, probe_latency"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self


class AlertSpec(StrictModel):
    """Sloth's page_alert / ticket_alert."""

    disable: bool = False
    labels: Labels = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)


class Alerting(StrictModel):
    name: AlertName
    labels: Labels = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)
    page_alert: AlertSpec = AlertSpec()
    ticket_alert: AlertSpec = AlertSpec()


class SLO(StrictModel):
    name: Name
    objective: float = pydantic.Field(gt=0, lt=100, allow_inf_nan=False)  # percent; 100 leaves no budget
    description: str = ""
    labels: Labels = pydantic.Field(default_factory=dict)
    sli: SLI
    alerting: Alerting
    period: Literal["30d", "month"] = "30d"  # Pulse-only
    plugins: Any = None  # Sloth's; refused

    @pydantic.model_validator(mode="after")
    def _routable(self) -> SLO:
        if self.plugins is not None:
            raise ValueError(f"plugins: {_PLUGINS_REFUSED}")
        team = self.alerting.labels.get("team")
        if team is None:
            raise ValueError(
                f"alerting: labels.team is required: Pulse's Alertmanager routes on it (one of {', '.join(TEAMS)})"
            )
        if team not in TEAMS:
            raise ValueError(f"alerting: labels.team is {team!r}; Pulse's teams are {', '.join(TEAMS)}")
        for where, labels in (
            ("alerting.labels", self.alerting.labels),
            ("alerting.page_alert.labels", self.alerting.page_alert.labels),
            ("alerting.ticket_alert.labels", self.alerting.ticket_alert.labels),
        ):
            if labels.get("team", team) != team:
                raise ValueError(f"alerting: {where}.team differs from alerting.labels.team")
            severity = labels.get("severity")
            if severity is not None and severity not in SEVERITIES:
                raise ValueError(
                    f"alerting: {where}.severity is {severity!r}; Pulse routes on {', '.join(SEVERITIES)} "
                    "(leave it out: page alerts are critical, ticket alerts warning)"
                )
        return self


class Spec(StrictModel):
    version: Literal["prometheus/v1"]
    service: Name
    labels: Labels = pydantic.Field(default_factory=dict)
    slos: list[SLO] = pydantic.Field(min_length=1)
    slo_plugins: Any = None  # Sloth's; refused

    @pydantic.model_validator(mode="after")
    def _no_plugins_and_unique_names(self) -> Spec:
        if self.slo_plugins is not None:
            raise ValueError(f"slo_plugins: {_PLUGINS_REFUSED}")
        names = [slo.name for slo in self.slos]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"slos: SLO names must be unique within a spec ({', '.join(repeated)} repeats)")
        return self


def load_spec(path: Path) -> Spec:
    """One spec file, validated; raises ConfigError naming the file, line and field."""
    spec: Spec = load_model(Spec, path)
    return spec
