"""What a dashboard is made of, independent of Grafana's JSON: boards, rows, panels, queries, variables.

Queries are PromQL as Grafana sends it: `$__rate_interval` in every rate, `$__range` for a figure over the
dashboard's time range, and the board's variables as
`label=~"$name"` (each variable has an "All" value of `.+`), so that `resolved()` can turn a query into
plain PromQL for Prometheus' API (the pictures, the reports, the no-data test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

PanelKind = Literal["timeseries", "stat", "table", "bargauge", "gauge"]

# What `$__rate_interval` stands for outside Grafana: four scrape intervals of 15 s, Grafana's own rule.
RATE_INTERVAL = "1m"
# What `$__range` (the dashboard's time range) stands for outside Grafana: the overview's default day. The
# pictures and reports replace it with the range they draw (render/data.py).
RANGE = "1d"
ALL = ".+"  # every variable's "All"
# A variable in a query: `$name`. Not `$1`, a label_replace() capture group, which Grafana leaves alone
# (no variable has that name).
VARIABLE = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""  # Grafana's legendFormat, e.g. "{{service}}"
    instant: bool = False  # the latest value only: stats, gauges, tables


@dataclass(frozen=True)
class Threshold:
    value: float  # from this value up
    color: str  # a Grafana colour name: green, yellow, orange, red, blue...


@dataclass(frozen=True)
class Panel:
    title: str
    description: str  # what it shows and how to read it: shown on the panel's (i) in Grafana
    unit: str  # a Grafana unit id: s, percentunit, bytes, reqps, short, currencyEUR, dateTimeFromNow...
    queries: tuple[Query, ...]
    kind: PanelKind = "timeseries"
    width: int = 12  # of the grid's 24 columns
    height: int = 8
    thresholds: tuple[Threshold, ...] = ()  # from each value up, its colour; ascending (Grafana's order)
    base_color: str = "green"  # below the first threshold: "red" where higher is better (uptime, budget)
    minimum: float | None = None
    maximum: float | None = None
    stacked: bool = False

    def __post_init__(self) -> None:
        values = [step.value for step in self.thresholds]
        if values != sorted(values):
            raise ValueError(f"panel {self.title!r}: thresholds must ascend (Grafana sorts them), got {values}")


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]
    collapsed: bool = False


@dataclass(frozen=True)
class Variable:
    """A query variable: `label_values(metric{...}, label)`; multi-valued, with All."""

    name: str
    label: str
    metric: str  # the selector whose label values it lists, e.g. 'up{job=~"$job"}'
    source_label: str


@dataclass(frozen=True)
class Board:
    key: str  # its key in exporter.bundle.rules.DASHBOARDS, which gives its uid
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = ()
    time_from: str = "now-6h"
    refresh: str = "1m"

    def panels(self) -> list[Panel]:
        return [panel for row in self.rows for panel in row.panels]


def resolved(expr: str, values: Mapping[str, str] | None = None) -> str:
    """A panel's query as plain PromQL: `$__rate_interval`, `$__range` and the variables replaced (All by
    default)."""
    chosen = dict(values or {})
    text = re.sub(r"\$__range(?!\w)", RANGE, expr.replace("$__rate_interval", RATE_INTERVAL))
    return VARIABLE.sub(lambda match: chosen.get(match.group(1), ALL), text)
