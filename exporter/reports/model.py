"""A report as data: sections of figures, tables and charts. Built by sections/ from Prometheus and the
journal, written by the renderers as HTML, PDF and JSON: the three always show the same numbers.

A figure is one number over the period with the same number over the previous period, so every
renderer can show the change and the regressions section can rank them. A section that found nothing
carries a note saying so: it is shown, never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from exporter.reports.config import Period

Better = Literal["higher", "lower", "neither"]  # which way a change is good: ranks regressions
Value = float | str | None  # a table cell: a number in its column's unit, a text, or no data


@dataclass(frozen=True)
class ReportWindow:
    start: float  # Unix seconds, inclusive
    end: float  # exclusive
    label: str  # "Monday 7 December 2026", "week 50, 2026", "December 2026"

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Figure:
    key: str  # stable, for JSON and tests: "orders", "uptime_ratio"
    label: str  # as a person reads it: "Orders"
    value: float | None  # None: no data (said so, never shown as 0)
    unit: str  # the dashboards' units (exporter/dashboards/render/units.py): "percentunit", "s", "short", "currency"
    previous: float | None = None  # the same figure over the previous period
    better: Better = "neither"
    target: float | None = None  # an SLA or SLO objective in the same unit, when the figure has one

    @property
    def change(self) -> float | None:
        """Relative change against the previous period (0.1 = +10 %); None without both values or from 0."""
        if self.value is None or self.previous is None or self.previous == 0:
            return None
        if math.isnan(self.value) or math.isnan(self.previous):
            return None
        return (self.value - self.previous) / abs(self.previous)

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None without a target or a value)."""
        if self.target is None or self.value is None:
            return None
        return self.value >= self.target if self.better != "lower" else self.value <= self.target


@dataclass(frozen=True)
class Column:
    name: str
    unit: str = ""  # "" for text


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True)
class Chart:
    """A picture drawn from a dashboard panel's own queries (exporter/dashboards/render)."""

    title: str
    board: str  # the dashboard's key
    panel: str  # the panel's title on that dashboard
    png: bytes = field(repr=False)
    has_data: bool = True


@dataclass(frozen=True)
class Section:
    key: str  # "uptime", "performance", "incidents", ...
    title: str
    figures: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    notes: tuple[str, ...] = ()  # "No data: ...", "2 queries failed: ...": shown at the section's top

    @property
    def has_data(self) -> bool:
        return bool(
            any(f.value is not None for f in self.figures)
            or any(t.rows for t in self.tables)
            or any(c.has_data for c in self.charts)
        )


@dataclass(frozen=True)
class Report:
    title: str  # "Daily report", "Monthly review", "Incident 42"
    period: Period | Literal["incident"]
    window: ReportWindow
    previous: ReportWindow | None
    timezone: str
    generated_at: float
    sections: tuple[Section, ...]

    def to_json(self) -> dict[str, Any]:
        """The figures as data (no pictures): what `report` writes as report.json."""
        return {
            "title": self.title,
            "period": self.period,
            "start": self.window.start,
            "end": self.window.end,
            "label": self.window.label,
            "previous": None
            if self.previous is None
            else {"start": self.previous.start, "end": self.previous.end, "label": self.previous.label},
            "timezone": self.timezone,
            "generated_at": self.generated_at,
            "sections": [
                {
                    "key": section.key,
                    "title": section.title,
                    "has_data": section.has_data,
                    "notes": list(section.notes),
                    "figures": {
                        f.key: {
                            "label": f.label,
                            "value": f.value,
                            "unit": f.unit,
                            "previous": f.previous,
                            "change": f.change,
                            "target": f.target,
                            "met": f.met,
                        }
                        for f in section.figures
                    },
                    "tables": [
                        {
                            "title": t.title,
                            "columns": [{"name": c.name, "unit": c.unit} for c in t.columns],
                            "rows": [list(row) for row in t.rows],
                        }
                        for t in section.tables
                    ],
                    "charts": [
                        {"title": c.title, "board": c.board, "panel": c.panel, "has_data": c.has_data}
                        for c in section.charts
                    ],
                }
                for section in self.sections
            ],
        }
