"""Incidents from the journal: how many started in the period, how long they lasted, their causes, the
mean time to resolve (MTTR, over the incidents resolved by the period's end) and those still open then.

An incident belongs to the period it started in. Its duration runs from the alert's start to its
resolution, or to the period's end while it was still open then.
"""

from __future__ import annotations

from statistics import mean

from exporter.incidents.journal import JournalError
from exporter.incidents.model import Incident
from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import Context, SectionSpec

NO_JOURNAL = "No journal configured (incidents: in pulse.yml): the incidents are not known."
MAX_ROWS = 50


def resolved_by(incident: Incident, end: float) -> bool:
    return incident.resolved_at is not None and incident.resolved_at < end


def stats(incidents: list[Incident], window: ReportWindow) -> dict[str, float | None]:
    resolved = [i.time_to_resolve or 0.0 for i in incidents if resolved_by(i, window.end)]
    acknowledged = [i.time_to_acknowledge for i in incidents if i.time_to_acknowledge is not None]
    return {
        "count": float(len(incidents)),
        "open": float(sum(not resolved_by(i, window.end) for i in incidents)),
        "critical": float(sum(i.severity == "critical" for i in incidents)),
        "mttr": mean(resolved) if resolved else None,
        "mtta": mean(acknowledged) if acknowledged else None,
        "duration": sum(i.duration(window.end) for i in incidents) if incidents else 0.0,
    }


def build(ctx: Context) -> Section:
    title = "Incidents"
    try:
        now, before = ctx.incidents(ctx.window), ctx.incidents(ctx.previous)
    except JournalError as error:
        return Section("incidents", title, notes=(f"The journal could not be read: {error}",))
    if now is None or before is None:
        return Section("incidents", title, notes=(NO_JOURNAL,))
    a, b = stats(now, ctx.window), stats(before, ctx.previous)
    figures = (
        Figure("incidents", "Incidents", a["count"], "short", b["count"], "lower"),
        Figure("incidents_critical", "Critical incidents", a["critical"], "short", b["critical"], "lower"),
        Figure("incidents_open", "Still open at the period's end", a["open"], "short", b["open"], "lower"),
        Figure("mttr", "Mean time to resolve (MTTR)", a["mttr"], "s", b["mttr"], "lower"),
        Figure("mtta", "Mean time to acknowledge", a["mtta"], "s", b["mtta"], "lower"),
        Figure("incident_time", "Time in incident", a["duration"], "s", b["duration"], "lower"),
    )
    rows = tuple(
        (ctx.local(i.started_at).strftime("%Y-%m-%d %H:%M"), i.alertname, i.service, i.severity,
         i.duration(ctx.window.end), "open" if not resolved_by(i, ctx.window.end) else "resolved",
         i.cause or "", i.id)
        for i in now[:MAX_ROWS]
    )  # fmt: skip
    columns = (Column("Started"), Column("Alert"), Column("Service"), Column("Severity"), Column("Duration", "s"),
               Column("State"), Column("Cause"), Column("Incident", "none"))  # fmt: skip
    tables = [Table("Incidents of the period", columns, rows)]
    open_rows = tuple(row for row in rows if row[5] == "open")
    if open_rows:
        tables.insert(0, Table("Still open at the period's end", columns, open_rows))
    causes: dict[str, int] = {}
    for incident in now:
        causes[incident.cause or "not written"] = causes.get(incident.cause or "not written", 0) + 1
    if now:
        tables.append(
            Table("Causes", (Column("Cause"), Column("Incidents", "short")),
                  tuple((cause, float(n)) for cause, n in sorted(causes.items(), key=lambda item: (-item[1], item[0]))))
        )  # fmt: skip
    notes = () if now else ("No incident started in this period.",)
    if len(now) > MAX_ROWS:
        notes = (f"The {MAX_ROWS} first of {len(now)} incidents are listed.",)
    return Section("incidents", title, figures, tuple(tables), notes=notes)


SECTION = SectionSpec("incidents", "Incidents", build)
