"""What every section is built from (the period, the one before it, maintenance windows, Prometheus and the
journal), and the PromQL that makes a figure exact over a period.

Exactness. A report's period is [start, end). Every query pins its data with `@`, so the instant a query
runs at does not matter, and its ranges end 1 ms before `end` with a length 1 ms short of the period:
`[86399999ms] @ <end - 0.001>` selects exactly the samples at or after `start` and before `end`
(Prometheus 2 ranges are closed at both ends; its timestamps are milliseconds). Adjacent periods share
no sample, so a month is exactly the sum of its days.

- A counter's increase is its last sample in the period minus its last sample before it (`counter_increase`):
  no extrapolation, unlike increase(), whose result is scaled to the range's edges.
- An average, a sum or a count of samples (`over`): avg_over_time, sum_over_time, count_over_time over the
  period are exact over its samples.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from exporter.config.platform import ServiceConfig
from exporter.dashboards.render.data import PrometheusClient, QueryError
from exporter.incidents.journal import Journal
from exporter.incidents.model import Incident, Maintenance
from exporter.reports.config import Period
from exporter.reports.model import Chart, Figure, ReportWindow, Section


class Inputs(Protocol):
    """What a section reads of build.ReportInputs (a protocol: build.py imports the sections)."""

    @property
    def prometheus(self) -> PrometheusClient: ...
    @property
    def journal(self) -> Journal | None: ...
    @property
    def services(self) -> Mapping[str, ServiceConfig]: ...
    @property
    def timezone(self) -> str: ...
    @property
    def progress(self) -> Callable[[str], None]: ...


Labels = dict[str, str]
LOOKBACK = 86400  # seconds: how far before a period its last sample may be (an exporter down for hours)


def at(end: float) -> str:
    """The `@` that ends a range 1 ms before `end`: the sample at `end` belongs to the next period."""
    return f"@ {end - 0.001:.3f}"


def span(start: float, end: float) -> str:
    """The range from `start` (included) to 1 ms before `end`, used with at(end)."""
    return f"{round((end - start) * 1000) - 1}ms"


def in_period(selector: str, start: float, end: float) -> str:
    """The range vector of the samples in [start, end)."""
    return f"{selector}[{span(start, end)}] {at(end)}"


def over(function: str, selector: str, start: float, end: float) -> str:
    """`function(selector[period])` over the samples in [start, end): avg_over_time, sum_over_time, ..."""
    return f"{function}({in_period(selector, start, end)})"


def last_before(selector: str, instant: float) -> str:
    """Each series' last sample before `instant` (within a day): a gauge's or a counter's value then."""
    return f"last_over_time({selector}[{LOOKBACK}s] {at(instant)})"


def counter_increase(selector: str, start: float, end: float) -> str:
    """Each counter's exact increase over [start, end), name dropped.

    Its last sample in the period minus its last sample before the period: exact, with no extrapolation.
    A series born inside the period counts from zero. A series that reset in the period, or in the day
    before it (between its last sample before the period and its first in it), falls back to increase()
    over the period, which adds what came before each reset and extrapolates to the period's edges:
    close, not exact."""
    samples = in_period(selector, start, end)
    last = f"last_over_time({samples})"
    before = last_before(selector, start)
    reset = f"resets({in_period(selector, start - LOOKBACK, end)}) > 0"
    return f"(({last} - {before} unless {reset}) or ({last} unless {before}) or increase({samples}))"


def label_value(text: str) -> str:
    """A string as a PromQL label value, quoted."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number(value: Any) -> float | None:
    """A Prometheus sample value as a float; None for NaN and infinities (0/0, x/0: no figure)."""
    result = float(value)
    return None if math.isnan(result) or math.isinf(result) else result


def ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole == 0:
        return None
    return part / whole


@dataclass
class Context:
    """One report's inputs; sections read it and add notes (queries that failed) to it."""

    inputs: Inputs
    period: Period
    window: ReportWindow
    previous: ReportWindow
    maintenance: tuple[Maintenance, ...] = ()  # windows overlapping the period or the previous one
    maintenance_error: str = ""  # the journal could not be read: said in the uptime section
    done: list[Section] = field(default_factory=list)  # the sections built so far (regressions ranks them)
    notes: list[str] = field(default_factory=list)  # the current section's notes
    _incidents: dict[tuple[float, float], list[Incident]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.inputs.timezone)

    def windows(self) -> tuple[ReportWindow, ReportWindow]:
        return self.window, self.previous

    # ------------------------------------------------------------------------------------------ queries

    def vector(self, expr: str, what: str) -> list[tuple[Labels, float | None]] | None:
        """An instant query's series (labels, value); None when Prometheus refused it (noted).
        PrometheusUnreachable propagates: nothing of the report can be built."""
        try:
            found = self.inputs.prometheus.query(expr, int(self.window.end))
        except QueryError as error:
            self.notes.append(f"The query for {what} failed: {error}")
            return None
        return [(dict(item["metric"]), number(item["value"][1])) for item in found]

    def scalar(self, expr: str, what: str) -> float | None:
        """The one value of a query that returns one series at most (a sum(...)); None without data."""
        found = self.vector(expr, what)
        if not found:
            return None
        return found[0][1]

    def by(self, expr: str, label: str, what: str) -> dict[str, float]:
        """{the label's value: value} of a query aggregated by that label (series without a number left out)."""
        return {labels.get(label, ""): value for labels, value in self.vector(expr, what) or [] if value is not None}

    def by_labels(self, expr: str, labels: Sequence[str], what: str) -> dict[tuple[str, ...], float]:
        found = self.vector(expr, what) or []
        return {tuple(item.get(name, "") for name in labels): value for item, value in found if value is not None}

    def chart(self, board: str, panel: str, values: dict[str, str] | None = None) -> Chart:
        """A dashboard panel over the period (charts.py: its own queries and drawing)."""
        from exporter.reports.charts import panel_chart  # noqa: PLC0415 (matplotlib: only when drawing)

        return panel_chart(self.inputs.prometheus, board, panel, self.window, values=values, tz=self.tz)

    # ------------------------------------------------------------------------------------------ journal

    def incidents(self, window: ReportWindow) -> list[Incident] | None:
        """The incidents that started in the window, oldest first; None without a journal."""
        journal = self.inputs.journal
        if journal is None:
            return None
        key = (window.start, window.end)
        if key not in self._incidents:
            found = journal.incidents(since=window.start, until=window.end)
            self._incidents[key] = sorted(
                (item for item in found if window.start <= item.started_at < window.end),
                key=lambda item: (item.started_at, item.id),
            )
        return self._incidents[key]

    # ------------------------------------------------------------------------------------------ time

    def local(self, timestamp: float) -> datetime:
        return datetime.fromtimestamp(timestamp, self.tz)

    def month_before(self, instant: float) -> float:
        """The same local time a calendar month earlier (the month's last day when it is shorter)."""
        local = self.local(instant)
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        day = min(local.day, calendar.monthrange(year, month)[1])
        return local.replace(year=year, month=month, day=day).timestamp()

    def day_ends(self, window: ReportWindow) -> list[float]:
        """The local midnights that end each day of the window (its end included), DST-correct."""
        ends: list[float] = []
        day = self.local(window.start).date()
        while True:
            day += timedelta(days=1)
            instant = datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()
            if instant > window.end:
                return ends
            ends.append(instant)

    def weeks(self, window: ReportWindow) -> list[ReportWindow]:
        """The ISO weeks (Monday to Sunday) overlapping the window, cut to it: a month's trend."""
        weeks = []
        start = window.start
        while start < window.end:
            day = self.local(start).date()
            monday = day - timedelta(days=day.weekday())
            next_monday = monday + timedelta(days=7)
            end = min(
                window.end, datetime(next_monday.year, next_monday.month, next_monday.day, tzinfo=self.tz).timestamp()
            )
            last = self.local(end - 1).date()
            week = day.isocalendar()[1]
            label = (
                f"week {week} ({day.day} to {last.day} {last:%b})"
                if day != last
                else f"week {week} ({day.day} {day:%b})"
            )
            weeks.append(ReportWindow(start, end, label))
            start = end
        return weeks


def pair(compute: Callable[[ReportWindow], float | None], ctx: Context) -> tuple[float | None, float | None]:
    """A figure's value over the period and over the previous one."""
    return compute(ctx.window), compute(ctx.previous)


def figure(  # noqa: PLR0917 (a Figure's own positional order, with how to compute it)
    key: str,
    label: str,
    compute: Callable[[ReportWindow], float | None],
    ctx: Context,
    unit: str,
    better: Any = "neither",
    target: float | None = None,
) -> Figure:
    value, previous = pair(compute, ctx)
    return Figure(key, label, value, unit, previous, better, target)


@dataclass(frozen=True)
class SectionSpec:
    """A section as registered in sections/__init__.py: its key, title, the periods it is part of, and the
    function that builds it."""

    key: str
    title: str
    build: Callable[[Context], Section]
    periods: tuple[Period, ...] = ("day", "week", "month")
