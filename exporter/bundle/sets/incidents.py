"""The incident journal (Pulse's /alertmanager/webhook, `incidents:` in pulse.yml): an incident left
unacknowledged, and mean times to acknowledge and to resolve for dashboards and reports.

IncidentUnacknowledged speaks to whoever heard of the incident's alert: one rule per severity watched and
team, carrying that severity and team, so Alertmanager routes the reminder as it routed the alert (a team
Pulse does not know, or one folded into "other", goes to platform). Its own alerts are not journalled
(alertmanager.yml): a reminder is not a new incident, and would keep itself firing.

The means are over incidents acknowledged (resolved) in the window, from the journal's histograms:
increase of the sum over increase of the count. An open incident has no time to resolve and is not in
them: the dashboards show open incidents apart (pulse_incidents_open).
"""

from __future__ import annotations

import pydantic

from exporter.bundle.rules import TEAMS, Alert, Group, Recording, Severity, Team
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors
from exporter.bundle.sets.promql import seconds, string

WINDOWS = ("7d", "30d")
# The journal's histograms of the time to acknowledge and to resolve.
HISTOGRAMS = ("pulse_incident_time_to_acknowledge_seconds", "pulse_incident_time_to_resolve_seconds")
OLDEST = "pulse_incident_oldest_unacknowledged_start_timestamp_seconds"
FALLBACK_TEAM: Team = "platform"  # who hears of an unacknowledged incident of a team the routes do not know


def _critical_only() -> list[Severity]:
    return ["critical"]


class IncidentsSettings(RuleSetSettings):
    unacknowledged_after: PromDuration = "15m"  # IncidentUnacknowledged: open this long, nobody acknowledged it
    unacknowledged_severities: list[Severity] = pydantic.Field(default_factory=_critical_only, min_length=1)


def build(settings: IncidentsSettings, selectors: Selectors) -> list[Group]:
    pulse = selectors.pulse
    limit = settings.unacknowledged_after
    others = string("|".join(team for team in TEAMS if team != FALLBACK_TEAM))

    def unacknowledged(severity: Severity, team: Team, matcher: str) -> Alert:
        oldest = f"{OLDEST}{{{pulse}, severity={string(severity)}, {matcher}}}"
        return Alert(
            name="IncidentUnacknowledged",
            # min: several Pulse instances on one journal report the same incidents.
            expr=f"time() - min by (severity, team, service) (\n  {oldest}\n) > {seconds(limit)}",
            severity=severity,
            team=team,
            summary="An incident has been open for too long without anyone acknowledging it.",
            description=f"The oldest open {severity} incident of team {{{{ $labels.team }}}} on service "
            "{{ $labels.service }} began {{ $value | humanizeDuration }} ago and nobody has acknowledged it "
            f"(limit {limit}): acknowledge it with `pulse-exporter incidents ack ID`, or silence its alert in "
            "Alertmanager.",
            dashboard="overview",
        )

    # One rule per team, the fallback's taking every team but the others (one rule per name and labels:
    # promtool's lint refuses two that differ only in their expression).
    alerts = [
        unacknowledged(severity, team, f"team!~{others}" if team == FALLBACK_TEAM else f"team={string(team)}")
        for severity in settings.unacknowledged_severities
        for team in TEAMS
    ]
    recordings = [
        Recording(
            f"severity_team:{metric}:mean{window}",
            f"sum by (severity, team) (increase({metric}_sum{{{pulse}}}[{window}]))\n"
            f"/\n(sum by (severity, team) (increase({metric}_count{{{pulse}}}[{window}])) > 0)",
        )
        for metric in HISTOGRAMS
        for window in WINDOWS
    ]
    return [Group("incidents_recording", recordings), Group("incidents", alerts)]


RULE_SET = RuleSet(
    name="incidents",
    title="The incident journal: incidents left unacknowledged, mean times to acknowledge and to resolve",
    settings=IncidentsSettings,
    build=build,
)
