"""User behaviour, from the marketplace KPI pack's series (exporter/kpis/packs/marketplace.py).

- Sessions: the exact increase of business_sessions_total over the period; orders per session
  (conversion): the exact increase of business_orders_total over it.
- Daily active users: the average of business_daily_active_users over the period's samples
  (avg_over_time, exact over them); weekly and monthly active users: their value at the period's end
  (the pack's gauges cover the last 7 and 30 days).
- Bounce rate: the average of business_bounce_rate_ratio (single-page sessions of the last hour) over
  the period's samples.
- Funnel: business_funnel_sessions{window="1h"} counts the sessions started in the hour before each
  sample; summed at every whole hour of the period (a subquery with a 1 h step, unavoidable: the pack
  exports rolling windows, not counters), it counts each session of the period once.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.kpis.packs.marketplace import FUNNEL_STEPS
from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import (
    Context,
    SectionSpec,
    counter_increase,
    figure,
    last_before,
    over,
    ratio,
    span,
)

STEPS = ("session_started", *FUNNEL_STEPS)
Compute = Callable[[ReportWindow], float | None]


def sessions(ctx: Context, window: ReportWindow) -> float | None:
    return ctx.scalar(f"sum({counter_increase('business_sessions_total', window.start, window.end)})", "sessions")


def orders(ctx: Context, window: ReportWindow) -> float | None:
    return ctx.scalar(f"sum({counter_increase('business_orders_total', window.start, window.end)})", "orders")


def funnel(ctx: Context, window: ReportWindow) -> dict[str, float]:
    """{step: sessions of the period that reached it}: the 1-hour funnel at every whole hour of (start, end]."""
    selector = 'business_funnel_sessions{window="1h"}'
    # The subquery's instants are the whole hours in [start + 1 ms, end]: each covers the hour before it.
    hours = f"[{span(window.start, window.end)}:1h] @ {window.end:.3f}"
    expr = f"sum by (step) (sum_over_time(sum by (step) ({selector}){hours}))"
    return ctx.by(expr, "step", "the funnel")


def build(ctx: Context) -> Section:
    def gauge_average(name: str) -> Compute:
        return lambda w: ctx.scalar(f"sum({over('avg_over_time', name, w.start, w.end)})", name)

    def at_end(name: str) -> Compute:
        return lambda w: ctx.scalar(f"sum({last_before(name, w.end)})", name)

    figures = [
        figure("sessions", "Sessions", lambda w: sessions(ctx, w), ctx, "short", "higher"),
        figure("dau", "Daily active users (average)", gauge_average("business_daily_active_users"), ctx,
               "short", "higher"),
        figure("wau", "Weekly active users (at the end)", at_end("business_weekly_active_users"), ctx, "short",
               "higher"),
        figure("mau", "Monthly active users (at the end)", at_end("business_monthly_active_users"), ctx, "short",
               "higher"),
        figure("conversion", "Orders per session (conversion)", lambda w: ratio(orders(ctx, w), sessions(ctx, w)),
               ctx, "percentunit", "higher"),
        figure("bounce_rate", "Bounce rate (average)", gauge_average("business_bounce_rate_ratio"), ctx,
               "percentunit", "lower"),
    ]  # fmt: skip
    now, before = funnel(ctx, ctx.window), funnel(ctx, ctx.previous)
    started, started_before = now.get("session_started"), before.get("session_started")
    rows = tuple(
        (step, now.get(step), ratio(now.get(step), started), ratio(before.get(step), started_before))
        for step in STEPS
        if step in now or step in before
    )
    if rows:
        figures.append(
            Figure("funnel_paid", "Sessions that paid (funnel)", ratio(now.get("paid"), started), "percentunit",
                   ratio(before.get("paid"), started_before), "higher")
        )  # fmt: skip
    table = Table("Funnel: sessions of the period that reached each step",
                  (Column("Step"), Column("Sessions", "short"), Column("Of those started", "percentunit"),
                   Column("Previous period", "percentunit")), rows)  # fmt: skip
    notes = () if rows else ("No data for the funnel (business_funnel_sessions).",)
    charts = (ctx.chart("behaviour", "Daily active users"), ctx.chart("behaviour", "Sessions per hour"))
    return Section("behaviour", "User behaviour", tuple(figures), (table,), charts, notes)


SECTION = SectionSpec("behaviour", "User behaviour", build)
