"""One incident's report (`pulse-exporter report incident ID`): what fired, when it was detected,
acknowledged and resolved, the cause and resolution people wrote, the SLA it cost, and the alert's own
expression drawn over the incident with a margin on each side.

The expression comes from the alert's generator URL (`.../graph?g0.expr=...`, Prometheus' link), but it
is asked of the configured Prometheus only: the URL's host is never contacted (it comes from an alert,
and the configured Prometheus is the one whose credentials Pulse holds).

Imported only when a report is built (matplotlib).
"""

from __future__ import annotations

import math
import re
import time
import zoneinfo
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from exporter.dashboards.model import Panel, Query
from exporter.dashboards.render.charts import FAILED, Box, Canvas, draw_panel
from exporter.dashboards.render.data import (
    PanelData,
    Points,
    PrometheusClient,
    QueryError,
    QueryResult,
    named,
    window,
)
from exporter.incidents.model import Incident
from exporter.reports.build import ReportInputs
from exporter.reports.charts import CHART_HEIGHT, CHART_WIDTH, POINTS
from exporter.reports.model import Chart, Column, Figure, Report, ReportWindow, Section, Table

MIN_MARGIN = 15 * 60.0  # the chart shows at least this much before the start and after the end
MONTH = 30 * 86400.0  # the SLA's period, for the share of its downtime an incident used


class IncidentReportError(Exception):
    """The incident's report cannot be built (no journal configured)."""


def alert_expression(generator_url: str) -> str | None:
    """The PromQL of Prometheus' link to an alert (`g0.expr`), or None."""
    try:
        query = parse_qs(urlsplit(generator_url).query)
    except ValueError:
        return None
    found = query.get("g0.expr", [])
    return found[0].strip() or None if found else None


_THRESHOLD = re.compile(r"^(?P<value>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>[-+]?[0-9.]+(?:e[-+]?[0-9]+)?)\s*$")
_LOOSER_THAN_COMPARISON = re.compile(r"\b(?:and|or|unless|bool)\b", re.IGNORECASE)


def split_threshold(expr: str) -> tuple[str, str, float] | None:
    """`value > 100` as ("value", ">", 100.0): the chart then draws the value itself, before and after the
    alert (the whole expression has points only while it fires), with the threshold as a line. None when
    the expression is not that simple (`and`, `or`, `unless` bind looser than the comparison; `bool`)."""
    match = _THRESHOLD.match(expr.strip())
    if match is None or _LOOSER_THAN_COMPARISON.search(match.group("value")):
        return None
    try:
        return match.group("value"), match.group("op"), float(match.group("threshold"))
    except ValueError:
        return None


def build_incident_report(incident_id: int, inputs: ReportInputs, now: float | None = None) -> Report:
    """The report of incident `incident_id` (UnknownIncident if the journal has none, JournalError if it
    cannot be read, PrometheusUnreachable if Prometheus does not answer)."""
    if inputs.journal is None:
        raise IncidentReportError("incident reports read the journal: enable `incidents:` in pulse.yml")
    inputs.progress("reading the incident from the journal")
    incident = inputs.journal.incident(incident_id)
    now = time.time() if now is None else now
    end = incident.resolved_at if incident.resolved_at is not None else now
    margin = max(MIN_MARGIN, 0.25 * (end - incident.started_at))
    span = ReportWindow(incident.started_at - margin, min(end + margin, now), _label(incident))
    zone = _zone(inputs.timezone)
    sections = (
        _what_happened(incident, now, zone),
        _sla_impact(incident, inputs, now),
        _expression(incident, inputs, span, zone),
    )
    return Report(
        title=f"Incident {incident.id}",
        period="incident",
        window=span,
        previous=None,
        timezone=inputs.timezone,
        generated_at=now,
        sections=sections,
    )


def _label(incident: Incident) -> str:
    name = incident.alertname or "alert"
    where = f" on {incident.service}" if incident.service else ""
    return f"{name}{where}" + (" (still open)" if incident.is_open else "")


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _when(timestamp: float | None, zone: zoneinfo.ZoneInfo) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M:%S")


def _what_happened(incident: Incident, now: float, zone: zoneinfo.ZoneInfo) -> Section:
    figures = (
        Figure("time_to_detect", "Time to detect", incident.time_to_detect, "s", better="lower"),
        Figure("time_to_acknowledge", "Time to acknowledge", incident.time_to_acknowledge, "s", better="lower"),
        Figure("time_to_resolve", "Time to resolve", incident.time_to_resolve, "s", better="lower"),
        Figure("duration", "Duration" + (" so far" if incident.is_open else ""), incident.duration(now), "s"),
    )
    acknowledged = "Acknowledged" + (f" by {incident.acknowledged_by}" if incident.acknowledged_by else "")
    timeline = Table(
        "Timeline",
        (Column("Event"), Column("Time")),
        (
            ("Condition began (the alert's startsAt)", _when(incident.started_at, zone)),
            ("First notified to Pulse", _when(incident.first_notified_at, zone)),
            (acknowledged, _when(incident.acknowledged_at, zone) or "not acknowledged"),
            ("Resolved", _when(incident.resolved_at, zone) or "still open"),
            ("Last notified (Alertmanager repeats)", f"{_when(incident.last_notified_at, zone)}, "
             f"{incident.notifications} notifications in all"),
        ),
    )  # fmt: skip
    written = Table(
        "Cause and resolution",
        (Column("What"), Column("As written")),
        (
            (
                "Cause",
                incident.cause or f"not written yet (pulse-exporter incidents annotate {incident.id} --cause ...)",
            ),
            ("Resolution", incident.resolution or "not written yet"),
        ),
    )
    labels = Table("Labels", (Column("Label"), Column("Value")), tuple(sorted(incident.labels.items())))
    annotations = Table(
        "Annotations", (Column("Annotation"), Column("Text")), tuple(sorted(incident.annotations.items()))
    )
    return Section("incident", "What happened", figures, (timeline, written, labels, annotations))


def _sla_impact(incident: Incident, inputs: ReportInputs, now: float) -> Section:
    title = "SLA impact"
    service = inputs.services.get(incident.service) if incident.service else None
    if service is None or service.sla is None:
        why = (
            "the alert has no service label"
            if not incident.service
            else f"service {incident.service!r} has no SLA in pulse.yml (services: {incident.service}: sla:)"
        )
        return Section("sla", title, notes=(f"No data for the SLA impact: {why}.",))
    duration = incident.duration(now)
    planned = 0.0
    if inputs.journal is not None:
        for window in inputs.journal.maintenance(
            since=incident.started_at, until=incident.started_at + duration, service=incident.service
        ):
            planned += max(
                0.0,
                min(window.ends_at, incident.started_at + duration) - max(window.starts_at, incident.started_at),
            )
    counted = max(0.0, duration - planned)
    allowed = (1 - service.sla / 100) * MONTH
    figures = (
        Figure("downtime", f"Downtime counted against {service.title}", counted, "s", better="lower"),
        Figure("allowed", f"Downtime a 30-day month allows at {service.sla}%", allowed, "s"),
        Figure("budget_used", "Share of the month's budget used", counted / allowed if allowed else None,
               "percentunit", better="lower"),
    )  # fmt: skip
    notes = [
        "Counted as down for the whole incident: the alert fired for that long; the uptime figures of the "
        "period's report measure the probes themselves."
    ]
    if planned:
        notes.append(f"{_minutes(planned)} of it fell in planned maintenance and is not counted.")
    return Section("sla", title, figures, notes=tuple(notes))


def _minutes(seconds: float) -> str:
    return f"{math.ceil(seconds / 60)} min"


def _expression(incident: Incident, inputs: ReportInputs, span: ReportWindow, zone: zoneinfo.ZoneInfo) -> Section:
    title = "The alert's expression"
    expr = alert_expression(incident.generator_url)
    if expr is None:
        return Section(
            "expression", title, notes=("No data for the chart: the alert's generator URL carries no expression.",)
        )
    inputs.progress("querying the alert's expression")
    chart = expression_chart(inputs.prometheus, expr, incident, span, zone)
    notes = ["The shaded band is the incident, from the condition's start to its resolution."]
    if not chart.has_data:
        notes.insert(0, "No data for the alert's expression over the incident (Prometheus kept none).")
    expression = Table("Expression", (Column("PromQL"),), ((expr,),))
    return Section("expression", title, tables=(expression,), charts=(chart,), notes=tuple(notes))


def expression_chart(
    client: PrometheusClient, expr: str, incident: Incident, span: ReportWindow, zone: zoneinfo.ZoneInfo
) -> Chart:
    """The expression over the span, drawn as a dashboard panel, the incident shaded. The expression is
    sent as it is: no dashboard variable is replaced in it (`$1` of a label_replace stays)."""
    title = f"{incident.alertname or 'Alert'}: its expression"
    split = split_threshold(expr)
    drawn = expr if split is None else split[0]
    panel = Panel(title, "The alert's own expression", "short", (Query(drawn),))
    frame = window(span.end, max(60, int(span.seconds)), POINTS)
    try:
        found: list[Points] = []
        for item in client.query_range(drawn, frame):
            by_time = {int(float(at)): _number(value) for at, value in item["values"]}
            times = frame.times()
            found.append((dict(item["metric"]), tuple(times), tuple(by_time.get(at, math.nan) for at in times)))
        result = QueryResult(panel.queries[0], drawn, tuple(named(found, "", title)))
    except QueryError as error:
        result = QueryResult(panel.queries[0], drawn, error=str(error))
    data = PanelData(panel, frame, (result,))
    canvas = Canvas(CHART_WIDTH, CHART_HEIGHT)
    draw_panel(canvas, data, Box(0, 0, CHART_WIDTH, CHART_HEIGHT), zone)
    if data.has_data and canvas.figure.axes:
        axes = canvas.figure.axes[0]
        low, high = axes.get_xlim()
        start = max(low, incident.started_at / 86400)
        end = min(high, (incident.resolved_at or span.end) / 86400)
        axes.axvspan(start, end, color=FAILED, alpha=0.1, linewidth=0, zorder=0)
        for moment in (start, end) if incident.resolved_at is not None else (start,):
            axes.axvline(moment, color=FAILED, linewidth=1, linestyle="--", zorder=4)
        if split is not None:  # the threshold the value crossed, labelled at the right
            axes.axhline(split[2], color=FAILED, linewidth=1.2, linestyle=":", zorder=4)
            bottom, top = axes.get_ylim()
            axes.set_ylim(min(bottom, split[2]), max(top, split[2]))
            axes.annotate(f"{split[1]} {split[2]:g}", (high, split[2]), xytext=(-4, 3), textcoords="offset points",
                          ha="right", va="bottom", color=FAILED, fontsize=10, annotation_clip=False)  # fmt: skip
        axes.set_xlim(low, high)
    return Chart(title=title, board="", panel="the alert's expression", png=canvas.png(), has_data=data.has_data)


def _number(text: str) -> float:
    value = float(text)
    return math.nan if math.isinf(value) else value
