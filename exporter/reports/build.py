"""What a report is built from, and the two ways to build one (sections/ do the work).

inputs = ReportInputs(prometheus=client, journal=journal, services=config.services, timezone="Europe/Paris")
report = build_report("week", inputs, end=None)       # the last whole week before now
report = build_incident_report(42, inputs)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from exporter.config.platform import ServiceConfig
from exporter.dashboards.render.data import PrometheusClient
from exporter.incidents.journal import Journal, JournalError
from exporter.reports.config import Period
from exporter.reports.model import Report, Section
from exporter.reports.periods import period_windows


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
