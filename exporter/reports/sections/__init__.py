"""A report's sections, in the order they are shown. Each module builds one from a Context (context.py);
adding a section is one module and one line here."""

from __future__ import annotations

from exporter.reports.sections import (
    behaviour,
    capacity,
    incidents,
    jobs,
    performance,
    recurring,
    regressions,
    transactions,
    trends,
    uptime,
)
from exporter.reports.sections.context import Context, SectionSpec

SECTIONS: tuple[SectionSpec, ...] = (
    uptime.SECTION,
    performance.SECTION,
    incidents.SECTION,
    behaviour.SECTION,
    transactions.SECTION,
    capacity.SECTION,
    jobs.SECTION,
    regressions.SECTION,  # after the sections whose figures it ranks
    trends.SECTION,
    recurring.SECTION,
)

__all__ = ["SECTIONS", "Context", "SectionSpec"]
