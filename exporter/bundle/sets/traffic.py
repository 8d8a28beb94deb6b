"""Web traffic from the access logs Pulse follows (docs/access-logs.md): the RED method's recording rules,
and alerts on server errors, slowness and logs that stopped telling us anything.

The recording rules are the shared vocabulary: dashboards, reports and SLOs read
`service:http_requests:rate5m` and its siblings instead of repeating the sums. Each is computed per service
and per service and route, over 5 minutes (alerts, live panels) and 1 hour (reports, trends).

The access-log self-metrics (`pulse_access_log_*`) carry the log's name in `log`, not a service, so the
alerts on them name the component that reads the logs: `service="pulse"`.
"""

from __future__ import annotations

from typing import Annotated

import pydantic

from exporter.bundle.rules import Alert, Group, Recording, Severity
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors
from exporter.bundle.sets.promql import number, percent, seconds

Ratio = Annotated[float, pydantic.Field(gt=0, le=1)]

# Aggregation level (the recording rule's first part) -> the labels it keeps.
LEVELS = {"service": "service", "service_route": "service, route"}
WINDOWS = ("5m", "1h")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


class TrafficSettings(RuleSetSettings):
    min_request_rate: float = pydantic.Field(default=0.1, ge=0)  # requests/s below which no HTTP alert fires
    error_ratio_critical: Ratio = 0.05
    error_ratio_critical_for: PromDuration = "5m"
    error_ratio_warning: Ratio = 0.01
    error_ratio_warning_for: PromDuration = "15m"
    latency_p99_seconds: float = pydantic.Field(default=1.0, gt=0)
    latency_for: PromDuration = "10m"
    stale_after: PromDuration = "1h"  # no new line for this long ...
    stale_compared_with: PromDuration = "1d"  # ... while the same stretch this long ago ...
    stale_usual_lines: int = pydantic.Field(default=10, ge=1)  # ... had at least this many lines
    unparsed_ratio: Ratio = 0.05
    unparsed_for: PromDuration = "15m"
    unreadable_for: PromDuration = "15m"

    @pydantic.model_validator(mode="after")
    def _warning_below_critical(self) -> TrafficSettings:
        if self.error_ratio_warning >= self.error_ratio_critical:
            raise ValueError("error_ratio_warning must be below error_ratio_critical")
        return self


def red_recordings(selector: str, window: str) -> list[Recording]:
    """Rate, errors (4xx, 5xx: rate and ratio) and duration quantiles, per service and per route."""
    rules: list[Recording] = []
    for level, by in LEVELS.items():
        requests = f"{level}:http_requests:rate{window}"
        rules.append(Recording(requests, f"sum by ({by}) (rate(http_requests_total{{{selector}}}[{window}]))"))
        for kind, codes in (("errors4xx", "4.."), ("errors5xx", "5..")):
            # A service without such answers gets 0, not a missing series: panels and ratios show 0 %.
            errors = f'sum by ({by}) (rate(http_requests_total{{{selector}, code=~"{codes}"}}[{window}]))'
            rules.append(Recording(f"{level}:http_requests_{kind}:rate{window}", f"{errors} or 0 * {requests}"))
        for kind in ("errors4xx", "errors5xx"):
            ratio = f"{level}:http_requests_{kind}:rate{window} / {requests}"
            rules.append(Recording(f"{level}:http_requests_{kind}:ratio_rate{window}", ratio))
        buckets = f"sum by (le, {by}) (rate(http_request_duration_seconds_bucket{{{selector}}}[{window}]))"
        for name, quantile in QUANTILES.items():
            expr = f"histogram_quantile({quantile}, {buckets})"
            rules.append(Recording(f"{level}:http_request_duration_seconds:{name}_rate{window}", expr))
    return rules


def http_alerts(settings: TrafficSettings) -> list[Alert]:
    busy = f"and on (service)\nservice:http_requests:rate5m >= {number(settings.min_request_rate)}"
    busy_text = f"at {number(settings.min_request_rate)} requests/s or more"
    levels: list[tuple[Severity, float, str]] = [
        ("critical", settings.error_ratio_critical, settings.error_ratio_critical_for),
        ("warning", settings.error_ratio_warning, settings.error_ratio_warning_for),
    ]
    error_ratio = [
        Alert(
            name="HttpErrorRatioHigh",
            expr=f"service:http_requests_errors5xx:ratio_rate5m > {number(threshold)}\n{busy}",
            for_=wait,
            severity=severity,
            team="platform",
            summary="A service answers too many requests with a server error (5xx).",
            description="{{ $value | humanizePercentage }} of the requests to {{ $labels.service }} got a 5xx "
            f"answer over the last 5 minutes ({severity} above {percent(threshold)}, {busy_text}).",
            dashboard="traffic",
        )
        for severity, threshold, wait in levels
    ]
    latency = Alert(
        name="HttpLatencyHigh",
        expr=f"service:http_request_duration_seconds:p99_rate5m > {number(settings.latency_p99_seconds)}\n{busy}",
        for_=settings.latency_for,
        severity="warning",
        team="platform",
        summary="A service's slowest requests take too long.",
        description="The 99th percentile of {{ $labels.service }}'s response times over the last 5 minutes "
        f"is {{{{ $value | humanizeDuration }}}} (warning above {number(settings.latency_p99_seconds)}s, "
        f"{busy_text}).",
        dashboard="traffic",
    )
    return [*error_ratio, latency]


def access_log_alerts(settings: TrafficSettings, selector: str) -> list[Alert]:
    lines_read = f"pulse_access_log_lines_read_total{{{selector}}}"
    where = "access log {{ $labels.log }} on {{ $labels.instance }}"
    return [
        Alert(
            # A log that moved at this time of day before: a log that is quiet every night stays silent.
            name="AccessLogStale",
            # Once firing, it stays until a line arrives (the ALERTS term): a silence that reaches the log's
            # quiet hours, or lasts beyond a day, is the same silence and must not look resolved.
            expr=f"time() - pulse_access_log_last_line_timestamp_seconds{{{selector}}} > "
            f"{seconds(settings.stale_after)}\nand on (instance, job, log) (\n"
            f"  increase({lines_read}[{settings.stale_after}] offset {settings.stale_compared_with}) "
            f">= {settings.stale_usual_lines}\n"
            '  or ALERTS{alertname="AccessLogStale", alertstate="firing"}\n)',
            severity="warning",
            team="platform",
            service="pulse",
            summary="An access log that usually moves has had no new line for a while.",
            description=f"Pulse has read no new line from {where} for {{{{ $value | humanizeDuration }}}}, "
            f"though it read {settings.stale_usual_lines} lines or more in the same {settings.stale_after} "
            f"{settings.stale_compared_with} before: its web server may have stopped, or stopped logging there.",
            dashboard="traffic",
        ),
        Alert(
            name="AccessLogUnparsedLines",
            expr=f"rate(pulse_access_log_lines_unparsed_total{{{selector}}}[5m]) / rate({lines_read}[5m]) > "
            f"{number(settings.unparsed_ratio)}",
            for_=settings.unparsed_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="Many lines of an access log do not match its format.",
            description=f"{{{{ $value | humanizePercentage }}}} of the lines read from {where} over the last "
            f"5 minutes did not match its format (warning above {percent(settings.unparsed_ratio)}): "
            "their requests are not counted.",
            dashboard="traffic",
        ),
        Alert(
            name="AccessLogUnreadable",
            expr=f"pulse_access_log_files_unreadable{{{selector}}} > 0",
            for_=settings.unreadable_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="Pulse cannot read an access log.",
            description=f"{{{{ $value }}}} path(s) matching {where} cannot be read (no permission, a directory "
            "or a FIFO): their requests are not counted.",
            dashboard="traffic",
            # `problem` tells the two AccessLogUnreadable rules apart (promtool's lint refuses twins).
            labels={"problem": "unreadable"},
        ),
        Alert(
            name="AccessLogUnreadable",
            expr=f"pulse_access_log_files_followed{{{selector}}} == 0\n"
            f"unless\npulse_access_log_files_unreadable{{{selector}}} > 0",
            for_=settings.unreadable_for,
            severity="warning",
            team="platform",
            service="pulse",
            summary="Pulse cannot read an access log.",
            description=f"No file matches the paths of {where}: its requests are not counted.",
            dashboard="traffic",
            labels={"problem": "no_file"},
        ),
    ]


def build(settings: TrafficSettings, selectors: Selectors) -> list[Group]:
    return [
        *(Group(f"traffic_red_{window}", red_recordings(selectors.pulse, window)) for window in WINDOWS),
        Group("traffic", [*http_alerts(settings), *access_log_alerts(settings, selectors.pulse)]),
    ]


RULE_SET = RuleSet(
    name="traffic",
    title="Web traffic from access logs: RED recording rules, errors, latency and the logs themselves",
    settings=TrafficSettings,
    build=build,
)
