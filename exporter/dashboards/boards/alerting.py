"""Alerting: is the path from a metric to a person working? Prometheus evaluating its rules and sending
alerts, Alertmanager delivering notifications, from their own /metrics (the `prometheus` and
`alertmanager` jobs of prometheus.yml). The board the `monitoring` rules link to (docs/runbooks/monitoring.md).
"""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold

PROMETHEUS = 'job="prometheus"'
ALERTMANAGER = 'job="alertmanager"'


def _rate(metric: str, selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval]))"


# Alertmanager counts every integration it knows (a dozen); the panels keep those that sent anything in
# the last day, the ones the config uses.
_USED_INTEGRATIONS = (
    "\nand on (integration) (sum by (integration) "
    f"(increase(alertmanager_notifications_total{{{ALERTMANAGER}}}[1d])) > 0)"
)


# The counters of "Failures in the time range", each with its legend.
FAILURES = (
    ("prometheus_rule_evaluation_failures_total", PROMETHEUS, "rules failed"),
    ("prometheus_rule_group_iterations_missed_total", PROMETHEUS, "rules skipped"),
    ("prometheus_notifications_errors_total", PROMETHEUS, "alerts not sent"),
    ("alertmanager_notifications_failed_total", ALERTMANAGER, "notifications failed"),
    ("prometheus_tsdb_compactions_failed_total", PROMETHEUS, "compactions failed"),
)


def _healthy_when_one(title: str, description: str, prometheus_metric: str, alertmanager_metric: str) -> Panel:
    """A stat per server, green at 1 (up, reloaded) and red below."""
    return Panel(
        title,
        description,
        "none",
        (
            Query(f"{prometheus_metric}{{{PROMETHEUS}}}", "Prometheus {{instance}}", instant=True),
            Query(f"{alertmanager_metric}{{{ALERTMANAGER}}}", "Alertmanager {{instance}}", instant=True),
        ),
        kind="stat",
        width=6,
        height=5,
        thresholds=(Threshold(1, "green"),),
        base_color="red",
    )


def _in_range(metric: str, selector: str) -> str:
    # `or vector(0)`: no such counter yet (a fresh server) is 0, not an empty stat.
    return f"round(sum(increase({metric}{{{selector}}}[$__range]))) or vector(0)"


BOARD = Board(
    key="alerting",
    title="Pulse / Alerting pipeline",
    description="Prometheus evaluating the rules and sending alerts, Alertmanager delivering them: what the "
    "monitoring alerts watch. A pipeline that is down altogether shows here as gaps; the Watchdog's dead "
    "man's switch is what tells of it.",
    tags=("alerting", "meta"),
    rows=(
        Row(
            "Is alerting working?",
            (
                _healthy_when_one(
                    "Servers scraped",
                    "1 when Prometheus' last scrape of itself and of Alertmanager succeeded. 0: the monitoring "
                    "alerts on that server cannot fire (MonitoringTargetDown).",
                    "up",
                    "up",
                ),
                _healthy_when_one(
                    "Last reload",
                    "1 when the server's last configuration reload succeeded. 0: it runs an older "
                    "configuration and will not start with the file as it is "
                    "(PrometheusConfigurationReloadFailure, AlertmanagerFailedReload).",
                    "prometheus_config_last_reload_successful",
                    "alertmanager_config_last_reload_successful",
                ),
                Panel(
                    "Failures in the time range",
                    "Rule evaluations that failed (their alerts cannot fire) or were skipped (a group slower "
                    "than its interval), alerts Prometheus could not send, notifications Alertmanager gave up "
                    "on, and failed compactions of Prometheus' storage. All 0 is healthy.",
                    "none",
                    tuple(
                        Query(_in_range(metric, selector), legend, instant=True)
                        for metric, selector, legend in FAILURES
                    ),
                    kind="stat",
                    width=12,
                    height=5,
                    thresholds=(Threshold(1, "red"),),
                ),
            ),
        ),
        Row(
            "Prometheus",
            (
                Panel(
                    "Rule group evaluation time, share of its interval",
                    "How long each rule group's last evaluation took, as a share of its interval. At 100 % "
                    "the next evaluation is skipped (PrometheusMissingRuleEvaluations): its alerts fire late.",
                    "percentunit",
                    (
                        Query(
                            # rule_group is "FILE;GROUP": the group's name alone makes a legend.
                            f"label_replace(prometheus_rule_group_last_duration_seconds{{{PROMETHEUS}}}\n"
                            f"/ prometheus_rule_group_interval_seconds{{{PROMETHEUS}}}, "
                            '"group", "$1", "rule_group", ".*;(.*)")',
                            "{{group}}",
                        ),
                    ),
                    width=12,
                    minimum=0,
                    thresholds=(Threshold(0.5, "yellow"), Threshold(1, "red")),
                ),
                Panel(
                    "Alerts sent to Alertmanager",
                    "Alerts per second Prometheus sent to its Alertmanagers (firing alerts are resent every "
                    "minute), and those that failed (PrometheusErrorSendingAlertsToSomeAlertmanagers names "
                    "the Alertmanager).",
                    "cps",
                    (
                        Query(_rate("prometheus_notifications_sent_total", PROMETHEUS, "instance"), "sent"),
                        Query(_rate("prometheus_notifications_errors_total", PROMETHEUS, "instance"), "failed"),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Alerts by state",
                    "Alerting rules' alerts now: pending (their condition holds, waiting for `for:`) and "
                    "firing, per severity. The Watchdog is the firing `info` that never goes away.",
                    "short",
                    (
                        Query(
                            'count by (alertstate, severity) (ALERTS{alertstate=~"pending|firing"})',
                            "{{alertstate}} {{severity}}",
                        ),
                    ),
                    width=12,
                    minimum=0,
                    stacked=True,
                ),
                Panel(
                    "Series in memory",
                    "Series in Prometheus' head block: what memory use follows. A sudden rise is a new label "
                    "with many values (a user id, a URL) in some scrape.",
                    "short",
                    (Query(f"prometheus_tsdb_head_series{{{PROMETHEUS}}}", "{{instance}}"),),
                    width=12,
                    minimum=0,
                ),
            ),
        ),
        Row(
            "Alertmanager",
            (
                Panel(
                    "Notifications by integration",
                    "Notifications per second Alertmanager sent through each integration (webhook: the pager, "
                    "the dead man's switch and Pulse's incident journal; email; slack...), and those it gave "
                    "up on after its retries (AlertmanagerFailedToSendAlerts).",
                    "cps",
                    (
                        Query(
                            _rate("alertmanager_notifications_total", ALERTMANAGER, "integration") + _USED_INTEGRATIONS,
                            "{{integration}}",
                        ),
                        Query(
                            _rate("alertmanager_notifications_failed_total", ALERTMANAGER, "integration")
                            + _USED_INTEGRATIONS,
                            "{{integration}} failed",
                        ),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Notification latency, 99th percentile",
                    "How long a notification took to deliver through each integration, retries included. "
                    "Nothing for an integration that sent nothing.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.99, sum by (integration, le) (rate("
                            f"alertmanager_notification_latency_seconds_bucket{{{ALERTMANAGER}}}[$__rate_interval])))",
                            "{{integration}}",
                        ),
                    ),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Alerts held",
                    "Alerts Alertmanager holds: active (notified), suppressed (silenced or inhibited: a "
                    "maintenance window, a critical twin, a service down) and unprocessed.",
                    "short",
                    (Query(f"sum by (state) (alertmanager_alerts{{{ALERTMANAGER}}})", "{{state}}"),),
                    width=12,
                    minimum=0,
                    stacked=True,
                ),
                Panel(
                    "Silences",
                    "Silences by state: active ones mute alerts now (maintenance windows from `pulse-exporter "
                    "maintenance add` among them), pending ones start later.",
                    "short",
                    (
                        Query(
                            f'sum by (state) (alertmanager_silences{{{ALERTMANAGER}, state=~"active|pending"}})',
                            "{{state}}",
                        ),
                    ),
                    width=12,
                    minimum=0,
                ),
            ),
        ),
    ),
)
