"""Pulse's own health, and the Watchdog: is the monitoring itself working?"""

from __future__ import annotations

import pydantic

from exporter.bundle.rules import Alert, Group
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors


class PulseSettings(RuleSetSettings):
    down_for: PromDuration = "5m"  # how long Prometheus must fail to scrape Pulse before it pages
    collector_failing_for: PromDuration = "10m"  # PulseCollectorFailing
    reload_failed_for: PromDuration = "0s"  # PulseConfigReloadFailed (the old config keeps running meanwhile)
    kpi_failing_for: PromDuration = "15m"  # PulseKpiQueryFailing
    kpi_stale_intervals: float = pydantic.Field(3, gt=1)  # PulseKpiQueryStale: no success for this many intervals
    kpi_stale_for: PromDuration = "5m"
    kpi_source_down_for: PromDuration = "5m"  # PulseKpiSourceDown
    probe_rejected_for: PromDuration = "10m"  # PulseProbeRequestsRejected: refusals going on this long


def health_alerts(settings: PulseSettings, pulse: str) -> list[Alert]:
    """Pulse runs, but part of it does not work: a collector, its config, its KPI queries and sources."""
    return [
        Alert(
            name="PulseCollectorFailing",
            expr=f"pulse_exporter_collector_success{{{pulse}}} == 0",
            for_=settings.collector_failing_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="A Pulse collector fails at every scrape.",
            description="The collector {{ $labels.collector }} of Pulse at {{ $labels.instance }} has failed "
            f"every scrape for {settings.collector_failing_for}: its metrics are missing and the alerts "
            "built on them cannot fire.",
            dashboard="system",
        ),
        Alert(
            name="PulseConfigReloadFailed",
            expr=f"pulse_exporter_config_last_reload_successful{{{pulse}}} == 0",
            for_=settings.reload_failed_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="Pulse refused its new configuration.",
            description="The last configuration reload of Pulse at {{ $labels.instance }} failed: it keeps "
            "running the previous configuration, and will not start with the file as it is now.",
            dashboard="system",
        ),
        Alert(
            name="PulseKpiQueryFailing",
            # While a KPI source is down every query on that Pulse fails with it: PulseKpiSourceDown speaks
            # for them (Pulse's metrics do not say which source a query reads).
            expr=f"pulse_kpi_query_success{{{pulse}}} == 0\n"
            f"unless on (job, instance) (pulse_kpi_source_up{{{pulse}}} == 0)",
            for_=settings.kpi_failing_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="A KPI query keeps failing.",
            description="The KPI query {{ $labels.query }} of Pulse at {{ $labels.instance }} has failed at "
            f"every run for {settings.kpi_failing_for}: its business metrics are stale or missing.",
            dashboard="system",
        ),
        Alert(
            name="PulseKpiQueryStale",
            # A query whose last run succeeded but long ago is not running at all (a stuck scheduler, a
            # query that never returns); a failing one is PulseKpiQueryFailing's.
            expr=f"time() - pulse_kpi_query_last_success_timestamp_seconds{{{pulse}}}\n"
            f"  > {settings.kpi_stale_intervals:g} * pulse_kpi_query_interval_seconds{{{pulse}}}\n"
            f"unless pulse_kpi_query_success{{{pulse}}} == 0",
            for_=settings.kpi_stale_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="A KPI query has not succeeded for several of its intervals.",
            description="The KPI query {{ $labels.query }} of Pulse at {{ $labels.instance }} last succeeded "
            "{{ $value | humanizeDuration }} ago, more than "
            f"{settings.kpi_stale_intervals:g} times its interval: its business metrics are stale.",
            dashboard="system",
        ),
        Alert(
            name="PulseKpiSourceDown",
            expr=f"pulse_kpi_source_up{{{pulse}}} == 0",
            for_=settings.kpi_source_down_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="Pulse cannot reach a KPI source.",
            description="Pulse at {{ $labels.instance }} has not reached the KPI source {{ $labels.source }} "
            f"for {settings.kpi_source_down_for}: every KPI query on it fails and the business alerts "
            "built on them cannot fire.",
            dashboard="system",
        ),
        Alert(
            name="PulseProbeRequestsRejected",
            expr=f"increase(pulse_probe_requests_rejected_total{{{pulse}}}[5m]) > 0",
            for_=settings.probe_rejected_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="Pulse keeps refusing /probe requests.",
            description="Pulse at {{ $labels.instance }} has refused /probe requests ({{ $labels.reason }}) "
            f'for {settings.probe_rejected_for} (about {{{{ printf "%.0f" $value }}}} in the last 5 minutes): a '
            "client, usually a scrape config, asks for a target or module Pulse does not list or allow, and "
            "if it is Prometheus that probe never runs.",
            dashboard="system",
        ),
    ]


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
                *health_alerts(settings, selectors.pulse),
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
