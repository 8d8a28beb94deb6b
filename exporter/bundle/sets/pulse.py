"""Pulse's own health, and the Watchdog: is the monitoring itself working?"""

from __future__ import annotations

from exporter.bundle.rules import Alert, Group
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors


class PulseSettings(RuleSetSettings):
    down_for: PromDuration = "5m"  # how long Prometheus must fail to scrape Pulse before it pages


def build(settings: PulseSettings, selectors: Selectors) -> list[Group]:
    return [
        Group(
            "pulse",
            [
                Alert(
                    name="PulseDown",
                    expr=f"up{{{selectors.pulse}}} == 0",
                    for_=settings.down_for,
                    severity="critical",
                    team="platform",
                    service="pulse",
                    summary="Prometheus cannot scrape Pulse.",
                    description="Prometheus has failed to scrape Pulse at {{ $labels.instance }} "
                    "(job {{ $labels.job }}) for " + settings.down_for + ": host, KPI and access-log "
                    "metrics from it are missing and their alerts cannot fire.",
                    dashboard="system",
                ),
                Alert(
                    name="Watchdog",
                    expr="vector(1)",
                    severity="info",
                    team="platform",
                    service="pulse",
                    summary="The alerting pipeline is working.",
                    description="This alert always fires{{ if $labels.prometheus }} (Prometheus "
                    "{{ $labels.prometheus }}){{ end }}; a dead man's switch outside the platform "
                    "pages when it stops arriving.",
                    dashboard="overview",
                ),
            ],
        )
    ]


RULE_SET = RuleSet(name="pulse", title="Pulse's own health and the Watchdog", settings=PulseSettings, build=build)
