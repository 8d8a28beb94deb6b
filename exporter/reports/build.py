"""What a report is built from, and the two ways to build one (sections/ do the work).

inputs = ReportInputs(prometheus=client, journal=journal, services=config.services, timezone="Europe/Paris")
report = build_report("week", inputs, end=None)       # the last whole week before now
report = build_incident_report(42, inputs)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from exporter.config.platform import ServiceConfig
from exporter.dashboards.render.data import PrometheusClient
from exporter.incidents.journal import Journal, JournalError
from exporter.reports.config import Period
from exporter.reports.model import Report, ReportWindow, Section


def _silent(_step: str) -> None:
    return None


@dataclass
class ReportInputs:
    prometheus: PrometheusClient
    journal: Journal | None  # None: no journal configured; the incident sections say so
    services: Mapping[str, ServiceConfig]
    timezone: str = "UTC"
    progress: Callable[[str], None] = field(default=_silent)  # called before each query group: the progress bar


TITLES = {"day": "Daily report", "week": "Weekly report", "month": "Monthly review"}


def _midnight(day: date, zone: ZoneInfo) -> float:
    """The instant the local day begins (DST-correct: the offset of that very day)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _period_start(period: Period, day: date) -> date:
    """The first day of the day, week (Monday) or month containing `day`."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _previous_start(period: Period, first: date) -> date:
    if period == "day":
        return first - timedelta(days=1)
    if period == "week":
        return first - timedelta(days=7)
    return (first - timedelta(days=1)).replace(day=1)


def _label(period: Period, first: date, last: date) -> str:
    if period == "day":
        return f"{first:%A} {first.day} {first:%B %Y}"
    if period == "week":
        year, week, _ = first.isocalendar()
        months = f"{first.day} {first:%B}" if first.month != last.month else f"{first.day}"
        return f"week {week}, {year} ({months} to {last.day} {last:%B %Y})"
    return f"{first:%B %Y}"


def period_windows(
    period: Period, end: datetime | None = None, timezone: str = "UTC"
) -> tuple[ReportWindow, ReportWindow]:
    """The last whole day, ISO week (Monday to Sunday) or calendar month before `end` (default now) in the
    time zone, and the one before it. Local midnights bound them, so a day lasts 23 or 25 hours when the
    clocks change. A naive `end` is read in the time zone."""
    zone = ZoneInfo(timezone)
    moment = datetime.now(zone) if end is None else (end.replace(tzinfo=zone) if end.tzinfo is None else end)
    current = _period_start(period, moment.astimezone(zone).date())
    first = _previous_start(period, current)
    before = _previous_start(period, first)

    def window(start: date, stop: date) -> ReportWindow:
        return ReportWindow(
            _midnight(start, zone), _midnight(stop, zone), _label(period, start, stop - timedelta(days=1))
        )

    return window(first, current), window(before, first)


def build_report(period: Period, inputs: ReportInputs, end: datetime | None = None) -> Report:
    """The report of the last whole period before `end` (default now): its sections in order, each said
    to `inputs.progress` before it is built. PrometheusUnreachable propagates (nothing can be built); a
    query Prometheus refuses, or one that finds nothing, becomes a note of its section."""
    from exporter.reports.sections import SECTIONS, Context  # noqa: PLC0415 (only when a report is built)

    window, previous = period_windows(period, end, inputs.timezone)
    context = Context(inputs, period, window, previous)
    if inputs.journal is not None:
        try:
            context.maintenance = tuple(inputs.journal.maintenance(since=previous.start, until=window.end))
        except JournalError as error:
            context.maintenance_error = f"Maintenance windows unknown (the journal could not be read: {error})."
    sections = []
    for spec in SECTIONS:
        if period not in spec.periods:
            continue
        inputs.progress(spec.title)
        context.notes = []
        section = spec.build(context)
        section = replace(section, notes=(*section.notes, *context.notes, *_missing(section)))
        context.done.append(section)
        sections.append(section)
    return Report(TITLES[period], period, window, previous, inputs.timezone, time.time(), tuple(sections))


def _missing(section: Section) -> tuple[str, ...]:
    """A note naming the figures without data: shown as such, never as 0."""
    missing = [figure.label for figure in section.figures if figure.value is None]
    return (f"No data for: {', '.join(missing)}.",) if missing else ()
