"""Prometheus and Alertmanager themselves: the rest of the path from a metric to a person.

Pulse's own health is the `pulse` set's; these alerts watch the two servers after it, from their own
/metrics (the `prometheus` and `alertmanager` jobs of prometheus.yml), under the names of the
prometheus-mixin and alertmanager-mixin alerts, which people who ran those recognise. Each watches a
part that can break while the rest still delivers: a rule that fails to evaluate (its alert can never
fire), a reload refused (the new rules or routes are not in force), evaluations skipped, history not
compacted, a receiver that stopped taking notifications (the incident journal is one).

What no alert can report, because its own path is broken (no Alertmanager reachable, Alertmanager down,
Prometheus down), is the Watchdog's: its dead man's switch notices when it stops arriving.
"""

from __future__ import annotations

import pydantic

from exporter.bundle.rules import Alert, Group
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors
from exporter.bundle.sets.promql import number, percent


class MonitoringSettings(RuleSetSettings):
    target_down_for: PromDuration = "10m"  # MonitoringTargetDown: Prometheus cannot scrape itself or Alertmanager
    reload_failed_for: PromDuration = "10m"  # PrometheusConfigurationReloadFailure, AlertmanagerFailedReload
    rule_failures_for: PromDuration = "15m"  # PrometheusRuleFailures
    missed_evaluations_for: PromDuration = "15m"  # PrometheusMissingRuleEvaluations
    send_error_ratio: float = pydantic.Field(0.01, gt=0, lt=1)  # PrometheusErrorSendingAlertsToSomeAlertmanagers
    send_errors_for: PromDuration = "15m"
    delivery_failure_ratio: float = pydantic.Field(0.01, gt=0, lt=1)  # AlertmanagerFailedToSendAlerts
    delivery_failures_for: PromDuration = "5m"
    compactions_failing_for: PromDuration = "4h"  # PrometheusTSDBCompactionsFailing


def prometheus_alerts(settings: MonitoringSettings, prometheus: str) -> list[Alert]:
    where = "Prometheus at {{ $labels.instance }}"
    return [
        Alert(
            name="PrometheusConfigurationReloadFailure",
            expr=f"max_over_time(prometheus_config_last_reload_successful{{{prometheus}}}[5m]) == 0",
            for_=settings.reload_failed_for,
            severity="warning",
            team="platform",
            service="prometheus",
            summary="Prometheus refused its new configuration.",
            description=f"{where} failed to reload its configuration: it keeps running the previous one, so "
            "changed scrape jobs and rule files are not in force, and it will not start with the files as "
            "they are now.",
            dashboard="alerting",
        ),
        Alert(
            name="PrometheusRuleFailures",
            expr=f"increase(prometheus_rule_evaluation_failures_total{{{prometheus}}}[5m]) > 0",
            for_=settings.rule_failures_for,
            severity="critical",
            team="platform",
            service="prometheus",
            summary="Prometheus fails to evaluate rules.",
            description=f"{where} failed "
            '{{ printf "%.0f" $value }} rule evaluations of the group {{ $labels.rule_group }} in the last '
            "5 minutes: the alerts of a rule that does not evaluate cannot fire, and the series it records "
            "are missing.",
            dashboard="alerting",
        ),
        Alert(
            name="PrometheusMissingRuleEvaluations",
            expr=f"increase(prometheus_rule_group_iterations_missed_total{{{prometheus}}}[5m]) > 0",
            for_=settings.missed_evaluations_for,
            severity="warning",
            team="platform",
            service="prometheus",
            summary="Prometheus skips rule evaluations because a group takes longer than its interval.",
            description=f"{where} skipped "
            '{{ printf "%.0f" $value }} evaluations of the group {{ $labels.rule_group }} in the last 5 '
            "minutes: its alerts fire late and its recorded series have gaps.",
            dashboard="alerting",
        ),
        Alert(
            name="PrometheusErrorSendingAlertsToSomeAlertmanagers",
            expr=f"rate(prometheus_notifications_errors_total{{{prometheus}}}[5m])\n"
            f"/\nrate(prometheus_notifications_sent_total{{{prometheus}}}[5m])\n"
            f"> {number(settings.send_error_ratio)}",
            for_=settings.send_errors_for,
            severity="warning",
            team="platform",
            service="prometheus",
            summary="Prometheus fails to send alerts to an Alertmanager.",
            description=f"{where} failed to send "
            "{{ $value | humanizePercentage }} of its alerts to the Alertmanager {{ $labels.alertmanager }} "
            f"over the last 5 minutes (limit {percent(settings.send_error_ratio)}).",
            dashboard="alerting",
        ),
        Alert(
            name="PrometheusTSDBCompactionsFailing",
            expr=f"increase(prometheus_tsdb_compactions_failed_total{{{prometheus}}}[3h]) > 0",
            for_=settings.compactions_failing_for,
            severity="warning",
            team="platform",
            service="prometheus",
            summary="Prometheus fails to compact its stored history.",
            description=f"{where} had "
            '{{ printf "%.0f" $value }} failed compactions in the last 3 hours: its disk use grows, queries '
            "over long ranges (reports, SLO windows) slow down, and the head block may not be persisted.",
            dashboard="alerting",
        ),
    ]


def alertmanager_alerts(settings: MonitoringSettings, alertmanager: str) -> list[Alert]:
    where = "Alertmanager at {{ $labels.instance }}"
    return [
        Alert(
            name="AlertmanagerFailedReload",
            expr=f"max_over_time(alertmanager_config_last_reload_successful{{{alertmanager}}}[5m]) == 0",
            for_=settings.reload_failed_for,
            severity="critical",
            team="platform",
            service="alertmanager",
            summary="Alertmanager refused its new configuration.",
            description=f"{where} failed to reload its configuration: it keeps routing with the previous "
            "one, so changed routes, receivers and inhibitions are not in force, and it will not start with "
            "the file as it is now.",
            dashboard="alerting",
        ),
        Alert(
            # Alertmanager counts a notification failed once its retries gave up (a request that failed and
            # then succeeded on retry is not), per integration: webhook, email, slack, pagerduty... From 0.27
            # it splits failures by `reason` too, which `ignoring (reason)` matches to their integration.
            # alertmanager.yml sends this alert through the pager and the chat: each can tell of the other.
            name="AlertmanagerFailedToSendAlerts",
            expr=f"rate(alertmanager_notifications_failed_total{{{alertmanager}}}[5m])\n"
            f"/\nignoring (reason) group_left rate(alertmanager_notifications_total{{{alertmanager}}}[5m])\n"
            f"> {number(settings.delivery_failure_ratio)}",
            for_=settings.delivery_failures_for,
            severity="warning",
            team="platform",
            service="alertmanager",
            summary="Alertmanager fails to deliver notifications.",
            description=f"{where} failed to deliver "
            "{{ $value | humanizePercentage }} of its notifications through the {{ $labels.integration }} "
            f"integration over the last 5 minutes (limit {percent(settings.delivery_failure_ratio)}): the "
            "people or the incident journal behind it are not told.",
            dashboard="alerting",
        ),
    ]


def target_down(settings: MonitoringSettings, server: str, selector: str) -> Alert:
    """The scrape the other alerts read has stopped: every one of them would be silent for good."""
    return Alert(
        name="MonitoringTargetDown",
        expr=f"up{{{selector}}} == 0",
        for_=settings.target_down_for,
        severity="warning",
        team="platform",
        service=server.lower(),
        summary="Prometheus cannot scrape a server of the alerting pipeline.",
        description="Prometheus has failed to scrape "
        f"{server} at {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) for {settings.target_down_for}: no "
        f"alert about {server} itself can fire.",
        dashboard="alerting",
    )


def build(settings: MonitoringSettings, selectors: Selectors) -> list[Group]:
    return [
        Group(
            "monitoring",
            [
                target_down(settings, "Prometheus", selectors.prometheus),
                target_down(settings, "Alertmanager", selectors.alertmanager),
                *prometheus_alerts(settings, selectors.prometheus),
                *alertmanager_alerts(settings, selectors.alertmanager),
            ],
        )
    ]


RULE_SET = RuleSet(
    name="monitoring",
    title="Prometheus and Alertmanager themselves: failing rules, refused reloads, undelivered notifications",
    settings=MonitoringSettings,
    build=build,
)
