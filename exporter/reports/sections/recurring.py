"""The monthly review's recurring incidents: the same alert on the same service more than once."""

from __future__ import annotations

from exporter.incidents.journal import JournalError
from exporter.reports.model import Column, Section, Table
from exporter.reports.sections.context import Context, SectionSpec
from exporter.reports.sections.incidents import NO_JOURNAL


def build(ctx: Context) -> Section:
    title = "Recurring incidents"
    try:
        incidents = ctx.incidents(ctx.window)
    except JournalError as error:
        return Section("recurring", title, notes=(f"The journal could not be read: {error}",))
    if incidents is None:
        return Section("recurring", title, notes=(NO_JOURNAL,))
    groups: dict[tuple[str, str], list[float]] = {}
    for incident in incidents:
        groups.setdefault((incident.alertname, incident.service), []).append(incident.duration(ctx.window.end))
    rows = tuple(
        (alertname, service, float(len(durations)), sum(durations))
        for (alertname, service), durations in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        if len(durations) > 1
    )
    columns = (Column("Alert"), Column("Service"), Column("Times", "short"), Column("Total duration", "s"))
    table = Table("Alerts that fired more than once", columns, rows)
    notes = () if rows else ("No alert fired more than once on the same service this month.",)
    return Section("recurring", title, tables=(table,), notes=notes)


SECTION = SectionSpec("recurring", "Recurring incidents", build, periods=("month",))
