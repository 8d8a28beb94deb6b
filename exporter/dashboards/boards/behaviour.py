"""User behaviour: how many people use the marketplace, how they browse, and how far they get through the
purchase funnel, each against a week before. From the marketplace KPI pack (docs/marketplace-schema.md)
and the recording rules of prometheus/rules/business.yml.

Time series of sums and gauges read the raw series (`offset 1w` for a week before), so that they cover
the whole time range as soon as the history is there: a recorded series starts when its rule first ran
(hours of short lines on a new Prometheus with backfilled history). Ratios, the funnel's step ratios
and the "usual" levels (the mean of the same time over the last weeks) are the recorded ones.
"""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold

WEEK_BEFORE = "a week before"
FUNNEL_STEPS = ("session_started", "product_viewed", "added_to_cart", "checkout_started", "paid")


def _now_and_week_before(expr: str) -> tuple[Query, Query]:
    """A gauge's value across its instances, now and a week before (avg: a ratio or mean is not summed)."""
    return Query(f"avg({expr})", "now"), Query(f"avg({expr} offset 1w)", WEEK_BEFORE)


BOARD = Board(
    key="behaviour",
    title="Pulse / User behaviour",
    description=(
        "Active users, sessions and their quality, conversion and the purchase funnel of the marketplace, "
        "each against the same time a week before."
    ),
    tags=("business",),
    rows=(
        Row(
            "Active users",
            (
                Panel(
                    "Daily active users",
                    "Distinct signed-in users with a session in the 24 hours up to each moment (DAU), now and "
                    "a week before. ActiveUsersDropping warns when it is under 80 % of its usual level.",
                    "short",
                    (
                        Query("sum(business_daily_active_users)", "now"),
                        Query("sum(business_daily_active_users offset 1w)", WEEK_BEFORE),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Weekly and monthly active users",
                    "Distinct signed-in users with a session in the last 7 days (WAU) and the last 30 days (MAU).",
                    "short",
                    (
                        Query("sum(business_weekly_active_users)", "weekly (WAU)"),
                        Query("sum(business_monthly_active_users)", "monthly (MAU)"),
                    ),
                    width=8,
                    minimum=0,
                ),
                Panel(
                    "Stickiness",
                    "Daily over monthly active users (DAU / MAU): how many of the month's users came back in "
                    "the last 24 hours. Higher is better; shown now and a week before.",
                    "percentunit",
                    (
                        Query("service:business_stickiness:ratio", "now", instant=True),
                        Query(
                            "sum(business_daily_active_users offset 1w) / sum(business_monthly_active_users offset 1w)",
                            WEEK_BEFORE,
                            instant=True,
                        ),
                    ),
                    kind="stat",
                    width=4,
                    minimum=0,
                    maximum=1,
                ),
            ),
        ),
        Row(
            "Sessions",
            (
                Panel(
                    "Sessions per hour",
                    "Visits (sessions) started in the hour up to each moment, signed in or anonymous, now and "
                    "a week before. SessionsDropping warns when the last hour is under half its usual level.",
                    "short",
                    (
                        Query("sum(increase(business_sessions_total[1h]))", "now"),
                        Query("sum(increase(business_sessions_total[1h] offset 1w))", WEEK_BEFORE),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Session duration",
                    "Mean time from first to last page view of the sessions started in the last hour that "
                    "have ended, now and a week before.",
                    "s",
                    _now_and_week_before("business_session_duration_average_seconds"),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Pages per session",
                    "Mean number of pages viewed in the sessions started in the last hour that have ended, now "
                    "and a week before.",
                    "short",
                    _now_and_week_before("business_pages_per_session_average"),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Bounce rate",
                    "Share of the sessions started in the last hour (and ended) that viewed a single page, now "
                    "and a week before. Lower is better.",
                    "percentunit",
                    _now_and_week_before("business_bounce_rate_ratio"),
                    width=12,
                    minimum=0,
                    maximum=1,
                ),
            ),
        ),
        Row(
            "Conversion",
            (
                Panel(
                    "Conversion rate, last 24 hours",
                    "Share of the sessions started in the 24 hours up to each moment that placed at least one "
                    "order, now and a week before.",
                    "percentunit",
                    _now_and_week_before("business_conversion_rate_ratio"),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Orders per session, last hour",
                    "Orders placed in the last hour per session started in it, and its usual level at this "
                    "time of the week (the mean of the same hour over the last weeks). ConversionDropping "
                    "warns when it falls under half the usual.",
                    "percentunit",
                    (
                        Query("service:business_orders_per_session:ratio_increase1h", "now"),
                        Query("service:business_orders_per_session:ratio_increase1h_baseline", "usual"),
                    ),
                    width=12,
                    minimum=0,
                ),
            ),
        ),
        Row(
            "Purchase funnel",
            (
                Panel(
                    "Funnel, sessions of the last 24 hours",
                    "Of the sessions started in the last 24 hours, how many reached each step of the purchase "
                    "funnel (and every step before it), from the first page view to payment.",
                    "short",
                    tuple(
                        Query(
                            f'step_window:business_funnel_sessions:sum{{window="24h", step="{step}"}}',
                            step,
                            instant=True,
                        )
                        for step in FUNNEL_STEPS
                    ),
                    kind="bargauge",
                    width=8,
                    height=9,
                    minimum=0,
                ),
                Panel(
                    "Step conversion, last 24 hours",
                    "Of the sessions of the last 24 hours that reached a step, the share that went on to the "
                    "next one. A line that falls is a step that broke (a product page, the cart, checkout, the "
                    "payment provider).",
                    "percentunit",
                    (
                        Query(
                            'step_window:business_funnel_step:ratio{window="24h"}',
                            "{{previous_step}} → {{step}}",
                        ),
                    ),
                    width=8,
                    height=9,
                    minimum=0,
                    maximum=1,
                ),
                Panel(
                    "Step conversion against the usual",
                    "Each step's conversion of the last 24 hours against its usual level (the mean of the same "
                    "time over the last weeks): 100 % is as usual. Red under 50 %, yellow under 80 %. "
                    "FunnelStepCollapsed warns when a step of the last hour is under 20 %.",
                    "percentunit",
                    (
                        Query(
                            'step_window:business_funnel_step:ratio_vs_baseline{window="24h"}',
                            "{{previous_step}} → {{step}}",
                            instant=True,
                        ),
                    ),
                    kind="bargauge",
                    width=8,
                    height=9,
                    minimum=0,
                    base_color="red",
                    thresholds=(Threshold(0.5, "yellow"), Threshold(0.8, "green")),
                ),
            ),
        ),
    ),
)
