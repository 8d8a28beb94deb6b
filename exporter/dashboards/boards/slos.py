"""SLOs: per objective, the SLI, the burn rates over the alert windows and the error budget left, from
the series prometheus/rules/slos.yml records (Sloth's names, docs/slos.md)."""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold, Variable

SLO = 'sloth_service=~"$service", sloth_slo=~"$slo"'
PER_SLO = "{{sloth_service}} / {{sloth_slo}}"

BOARD = Board(
    key="slos",
    title="Pulse / SLOs",
    description="Each service level objective: how much of its error budget is left, and how fast it burns.",
    tags=("slo",),
    variables=(
        Variable("service", "Service", "slo:objective:ratio", "sloth_service"),
        Variable("slo", "SLO", 'slo:objective:ratio{sloth_service=~"$service"}', "sloth_slo"),
    ),
    rows=(
        Row(
            "Error budget",
            (
                Panel(
                    "Budget left, rolling period",
                    "The share of the period's error budget not yet spent (1 - errors so far / errors "
                    "allowed), over the SLO's rolling period (30 days unless the spec says otherwise). "
                    "Below 0 the objective is missed.",
                    "percentunit",
                    (Query(f"slo:period_error_budget_remaining:ratio{{{SLO}}}", PER_SLO, instant=True),),
                    kind="stat",
                    width=8,
                    thresholds=(Threshold(0, "yellow"), Threshold(0.25, "green")),
                    base_color="red",
                ),
                Panel(
                    "Budget left, this calendar month",
                    "The same, counted from the first of this month (UTC): what a monthly SLA report will say.",
                    "percentunit",
                    (Query(f"slo:month_error_budget_remaining:ratio{{{SLO}}}", PER_SLO, instant=True),),
                    kind="stat",
                    width=8,
                    thresholds=(Threshold(0, "yellow"), Threshold(0.25, "green")),
                    base_color="red",
                ),
                Panel(
                    "Objective",
                    "The target share of good events (requests, probes, payments) the spec sets.",
                    "percentunit",
                    (Query(f"slo:objective:ratio{{{SLO}}}", PER_SLO, instant=True),),
                    kind="stat",
                    width=8,
                ),
            ),
        ),
        Row(
            "Burn rate",
            (
                Panel(
                    "Burn rate over the alert windows",
                    "How fast the budget burns: 1 spends exactly the budget in the period. The page alert "
                    "fires at 14.4 (1h and 5m) or 6 (6h and 30m), the ticket at 3 (1d and 2h) or 1 (3d and 6h).",
                    "short",
                    tuple(
                        Query(
                            f"slo:sli_error:ratio_rate{window}{{{SLO}}} / on (sloth_id) group_left "
                            f"slo:error_budget:ratio{{{SLO}}}",
                            f"{PER_SLO} {window}",
                        )
                        for window in ("5m", "1h", "6h", "1d")
                    ),
                    width=24,
                ),
            ),
        ),
    ),
)
