"""Uptime and SLA per service, planned maintenance taken out; the SLOs' error budget left.

Uptime is the share of the service's probe results that succeeded: sum_over_time(probe_success) over
count_over_time(probe_success), summed over the service's targets and over the parts of the period
outside its maintenance windows (exact: every sample in those parts counts once, none inside a window).
The SLA is met when that uptime is at least the service's `sla` (services: in pulse.yml).
"""

from __future__ import annotations

from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import Context, SectionSpec, label_value, last_before, over

PROBES = 'job="pulse-probes"'


def outside_maintenance(ctx: Context, service: str, window: ReportWindow) -> list[tuple[float, float]]:
    """The parts of the window outside the service's maintenance windows."""
    parts = []
    start = window.start
    for item in sorted((m for m in ctx.maintenance if m.service == service), key=lambda m: m.starts_at):
        if item.ends_at <= start or item.starts_at >= window.end:
            continue
        if item.starts_at > start:
            parts.append((start, item.starts_at))
        start = max(start, item.ends_at)
    if start < window.end:
        parts.append((start, window.end))
    return parts


def uptime(ctx: Context, service: str, window: ReportWindow) -> tuple[float | None, float, float]:
    """(uptime ratio or None without probe results, seconds measured, seconds of maintenance taken out)."""
    selector = f"probe_success{{{PROBES}, service={label_value(service)}}}"
    succeeded = results = 0.0
    parts = outside_maintenance(ctx, service, window)
    for start, end in parts:
        ok = ctx.scalar(f"sum({over('sum_over_time', selector, start, end)})", f"the uptime of {service}")
        count = ctx.scalar(f"sum({over('count_over_time', selector, start, end)})", f"the uptime of {service}")
        succeeded += ok or 0.0
        results += count or 0.0
    measured = sum(end - start for start, end in parts)
    return (succeeded / results if results else None), measured, window.seconds - measured


def services(ctx: Context) -> dict[str, tuple[str, float | None]]:
    """{service: (title, SLA as a ratio)}: the configured ones; without any, those the probes name."""
    if ctx.inputs.services:
        return {
            name: (config.title, None if config.sla is None else round(config.sla / 100, 12))
            for name, config in ctx.inputs.services.items()
        }
    probed = over("count_over_time", f"probe_success{{{PROBES}}}", ctx.window.start, ctx.window.end)
    found = ctx.by(
        f"count by (service) ({probed})",
        "service",
        "the probed services",
    )
    return {name: (name, None) for name in sorted(found) if name}


def build(ctx: Context) -> Section:
    figures: list[Figure] = []
    rows = []
    for name, (title, target) in services(ctx).items():
        value, measured, excluded = uptime(ctx, name, ctx.window)
        previous, previous_measured, _ = uptime(ctx, name, ctx.previous)
        uptime_figure = Figure(f"uptime_{name}", f"Uptime, {title}", value, "percentunit", previous, "higher", target)
        down = None if value is None else (1 - value) * measured
        previous_down = None if previous is None else (1 - previous) * previous_measured
        figures += [uptime_figure, Figure(f"downtime_{name}", f"Downtime, {title}", down, "s", previous_down, "lower")]
        met = {True: "met", False: "missed", None: "no SLA" if target is None else "no data"}[uptime_figure.met]
        rows.append((title, value, target, met, down, excluded))
    notes = [ctx.maintenance_error] if ctx.maintenance_error else []
    if not rows:
        notes.append("No data for uptime: no service configured (services: in pulse.yml) and no probe results.")
    tables = [
        Table(
            "Uptime and SLA (planned maintenance excluded)",
            (
                Column("Service"),
                Column("Uptime", "percentunit"),
                Column("SLA", "percentunit"),
                Column("SLA met"),
                Column("Downtime", "s"),
                Column("Maintenance", "s"),
            ),
            tuple(rows),
        ),
    ]
    slo_figures, slo_table = slo_budgets(ctx)
    figures += slo_figures
    if slo_table.rows:
        tables.append(slo_table)
    charts = [ctx.chart("probes", "Probe success per target")]
    if slo_table.rows:
        charts.append(ctx.chart("slos", "Budget left, rolling period"))
    return Section("uptime", "Uptime and SLA", tuple(figures), tuple(tables), tuple(charts), tuple(notes))


def slo_budgets(ctx: Context) -> tuple[list[Figure], Table]:
    """Each SLO's error budget left at the end of the period (and of the previous one), over Sloth's
    rolling period: slo:period_error_budget_remaining:ratio, its objective from sloth_slo_info."""
    keys = ("sloth_id", "sloth_service", "sloth_slo")

    def budget(window: ReportWindow) -> dict[tuple[str, ...], float]:
        return ctx.by_labels(
            last_before("slo:period_error_budget_remaining:ratio", window.end), keys, "the SLOs' error budget"
        )

    now, before = budget(ctx.window), budget(ctx.previous)
    info = ctx.vector(last_before("sloth_slo_info", ctx.window.end), "the SLOs' objectives") or []
    objectives = {labels.get("sloth_id", ""): labels.get("sloth_objective", "") for labels, _ in info}
    figures = []
    rows = []
    for key in sorted(now):
        sloth_id, service, slo = key
        objective_text = objectives.get(sloth_id, "")
        objective = round(float(objective_text) / 100, 12) if objective_text.replace(".", "", 1).isdigit() else None
        figures.append(
            Figure(f"slo_budget_{sloth_id}", f"Error budget left, {service} {slo}", now[key], "percentunit",
                   before.get(key), "higher", 0.0)
        )  # fmt: skip
        rows.append((service, slo, objective, now[key], before.get(key)))
    table = Table(
        "SLO error budget left (Sloth's rolling period, at the period's end)",
        (Column("Service"), Column("SLO"), Column("Objective", "percentunit"), Column("Budget left", "percentunit"),
         Column("Previous period", "percentunit")),
        tuple(rows),
    )  # fmt: skip
    return figures, table


SECTION = SectionSpec("uptime", "Uptime and SLA", build)
