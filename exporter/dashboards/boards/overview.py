"""Overview: the board for managers. Is the shop up and within its objectives, are alerts open, how quickly
are incidents taken and resolved, and how do today's users, orders and money compare with a week before?
Few panels, big numbers; the other boards (the Pulse links at the top) have the detail.

"Today" is the last 24 hours (the marketplace pack's windows are rolling), compared with the same 24
hours a week before (`offset 1w`). Money is per currency: amounts in different currencies are never added.
Stats read the recorded series; time series read the raw ones the rules are made of, so that they cover
the whole time range as soon as the history is there (a recorded series starts when its rule first ran:
hours of empty graph on a new Prometheus with backfilled history).
"""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold

WEEK_BEFORE = "a week before"
FIRING = 'ALERTS{alertstate="firing", alertname!="Watchdog"'  # the Watchdog always fires, on purpose


def _firing(severity: str) -> Query:
    # `or vector(0)`: no alert firing is a 0, not an empty panel.
    return Query(f'count({FIRING}, severity="{severity}"}}) or vector(0)', severity, instant=True)


# Several Pulse instances may share one journal (PostgreSQL): `max by` the journal's own labels counts each
# incident once, whichever instances report it.
_OPEN = "sum(max by (severity, team, service, acknowledged) (pulse_incidents_open"


def _mean(time_to: str) -> Query:
    """MTTA or MTTR per severity over the dashboard's range, from the journal's histogram: incidents
    acknowledged (resolved) in the range only; nothing, rather than 0/0, when there are none."""
    histogram = f"pulse_incident_time_to_{time_to}_seconds"
    return Query(
        f"sum by (severity) (increase({histogram}_sum[$__range]))\n"
        f"/ (sum by (severity) (increase({histogram}_count[$__range])) > 0)",
        "{{severity}}",
        instant=True,
    )


BOARD = Board(
    key="overview",
    title="Pulse / Overview",
    description=(
        "For managers: is the shop up and within its objectives, which alerts are open, and how today's "
        "users, orders and sales compare with a week before. The other Pulse boards (links at the top) "
        "have the detail."
    ),
    tags=("overview", "business"),
    time_from="now-24h",
    rows=(
        Row(
            "Service health",
            (
                Panel(
                    "Uptime, last 24 hours",
                    "The share of synthetic probes (a page load, the checkout journey) that succeeded over the "
                    "last 24 hours, per service. Green from 99.9 %, yellow from 99 %, red below. The Probes "
                    "board has each target.",
                    "percentunit",
                    (Query("service:probe_success:avg_over_time1d", "{{service}}", instant=True),),
                    kind="stat",
                    width=8,
                    height=6,
                    base_color="red",
                    thresholds=(Threshold(0.99, "yellow"), Threshold(0.999, "green")),
                ),
                Panel(
                    "Error budget left",
                    "Per service level objective, the share of its error budget not yet spent over its period "
                    "(30 rolling days, or the calendar month). Below 0 the objective is missed; yellow under "
                    "25 % left. The SLOs board shows how fast each budget burns.",
                    "percentunit",
                    (
                        Query(
                            "slo:period_error_budget_remaining:ratio",
                            "{{sloth_service}} / {{sloth_slo}}",
                            instant=True,
                        ),
                    ),
                    kind="stat",
                    width=8,
                    height=6,
                    base_color="red",
                    thresholds=(Threshold(0, "yellow"), Threshold(0.25, "green")),
                ),
                Panel(
                    "Critical alerts open",
                    "Critical alerts firing now (someone is paged). 0 is good; each alert links to its runbook "
                    "in Alertmanager.",
                    "none",
                    (_firing("critical"),),
                    kind="stat",
                    width=4,
                    height=6,
                    thresholds=(Threshold(1, "red"),),
                ),
                Panel(
                    "Warnings open",
                    "Warning alerts firing now (a ticket, not a page), without the always-firing Watchdog. 0 is good.",
                    "none",
                    (_firing("warning"),),
                    kind="stat",
                    width=4,
                    height=6,
                    thresholds=(Threshold(1, "yellow"),),
                ),
            ),
        ),
        Row(
            "Incidents",
            (
                Panel(
                    "Open incidents",
                    "Incidents of Pulse's journal (every alert Alertmanager sent it) not resolved yet: those "
                    "nobody has acknowledged, and those someone has taken. 0 is good. They are not in the mean "
                    "times beside: an open incident has no time to resolve yet.",
                    "none",
                    (
                        Query(f'{_OPEN}{{acknowledged="false"}})) or vector(0)', "unacknowledged", instant=True),
                        Query(f'{_OPEN}{{acknowledged="true"}})) or vector(0)', "acknowledged", instant=True),
                    ),
                    kind="stat",
                    width=6,
                    height=6,
                    thresholds=(Threshold(1, "orange"),),
                ),
                Panel(
                    "Incidents resolved",
                    "Incidents resolved in the dashboard's time range, per severity: those the mean time to "
                    "resolve is computed over. Open ones are in Open incidents.",
                    "none",
                    (
                        # The histogram's count, not pulse_incidents_total: a journal series is born at 0
                        # here (the incident opens first), so increase() sees its first incident too.
                        Query(
                            "round(sum by (severity) (max by (severity, team) "
                            "(increase(pulse_incident_time_to_resolve_seconds_count[$__range]))))",
                            "{{severity}}",
                            instant=True,
                        ),
                    ),
                    kind="stat",
                    width=6,
                    height=6,
                ),
                Panel(
                    "Mean time to acknowledge",
                    "MTTA per severity: the mean time from an alert's start until someone acknowledged its "
                    "incident, over the incidents acknowledged in the dashboard's time range. No data: none was.",
                    "s",
                    (_mean("acknowledge"),),
                    kind="stat",
                    width=6,
                    height=6,
                ),
                Panel(
                    "Mean time to resolve",
                    "MTTR per severity: the mean time from an alert's start until it resolved, over the "
                    "incidents resolved in the dashboard's time range only (open ones are counted apart, in "
                    "Open incidents). No data: none was.",
                    "s",
                    (_mean("resolve"),),
                    kind="stat",
                    width=6,
                    height=6,
                ),
            ),
        ),
        Row(
            "Business, last 24 hours",
            (
                Panel(
                    "Active users",
                    "Distinct signed-in users with a session in the last 24 hours, and the same count a week "
                    "before at the same time.",
                    "short",
                    (
                        Query("service:business_daily_active_users:sum", "now", instant=True),
                        Query("service:business_daily_active_users:sum_offset1w", WEEK_BEFORE, instant=True),
                    ),
                    kind="stat",
                    width=6,
                    height=6,
                ),
                Panel(
                    "Orders",
                    "Orders placed in the last 24 hours, whatever their status and currency, and the same "
                    "count a week before.",
                    "short",
                    (
                        Query("sum(business_daily_orders)", "now", instant=True),
                        Query("sum(business_daily_orders offset 1w)", WEEK_BEFORE, instant=True),
                    ),
                    kind="stat",
                    width=6,
                    height=6,
                ),
                Panel(
                    "Sales (GMV)",
                    "Gross merchandise value: the total of the orders placed in the last 24 hours, in each "
                    "currency (amounts in different currencies are never added).",
                    "short",
                    (Query("sum by (currency) (increase(business_gmv_total[1d]))", "{{currency}}", instant=True),),
                    kind="stat",
                    width=6,
                    height=6,
                ),
                Panel(
                    "Refund rate",
                    "Orders refunded or returned in the last 7 days, per paid order of those 7 days, and the "
                    "same a week before. Yellow from 10 %, red from 20 %.",
                    "percentunit",
                    (
                        Query("avg(business_refund_rate_ratio)", "now", instant=True),
                        Query("avg(business_refund_rate_ratio offset 1w)", WEEK_BEFORE, instant=True),
                    ),
                    kind="stat",
                    width=6,
                    height=6,
                    thresholds=(Threshold(0.1, "yellow"), Threshold(0.2, "red")),
                ),
            ),
        ),
        Row(
            "Against a week before",
            (
                Panel(
                    "Change against a week before",
                    "Last 24 hours against the same 24 hours a week before: +10 % is 10 % more than a week "
                    "before. GMV per currency. Red below -20 %, yellow below -5 %.",
                    "percentunit",
                    (
                        Query(
                            "service:business_daily_active_users:sum"
                            " / service:business_daily_active_users:sum_offset1w - 1",
                            "active users",
                            instant=True,
                        ),
                        Query(
                            "sum(business_daily_orders) / sum(business_daily_orders offset 1w) - 1",
                            "orders",
                            instant=True,
                        ),
                        Query(
                            "sum by (currency) (increase(business_gmv_total[1d]))"
                            " / sum by (currency) (increase(business_gmv_total[1d] offset 1w)) - 1",
                            "GMV {{currency}}",
                            instant=True,
                        ),
                    ),
                    kind="stat",
                    width=8,
                    base_color="red",
                    thresholds=(Threshold(-0.2, "yellow"), Threshold(-0.05, "green")),
                ),
                Panel(
                    "Orders per hour",
                    "Orders placed in the hour up to each moment, all currencies, now and at the same time a "
                    "week before: a gap between the two lines is a change in business.",
                    "short",
                    (
                        Query("sum(increase(business_orders_total[1h]))", "now"),
                        Query("sum(increase(business_orders_total[1h] offset 1w))", WEEK_BEFORE),
                    ),
                    width=8,
                    minimum=0,
                ),
                Panel(
                    "Active users over time",
                    "Distinct signed-in users with a session in the 24 hours up to each moment, now and a week before.",
                    "short",
                    (
                        Query("sum(business_daily_active_users)", "now"),
                        Query("sum(business_daily_active_users offset 1w)", WEEK_BEFORE),
                    ),
                    width=8,
                    minimum=0,
                ),
            ),
        ),
    ),
)
