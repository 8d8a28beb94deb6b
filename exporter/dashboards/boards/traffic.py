"""Web traffic, by the RED method (rate, errors, duration): per service, then per route, then what was
answered, and last whether Pulse is keeping up with the access logs it counts all of this from.

The per-service and per-route panels read the recording rules of prometheus/rules/traffic.yml (5-minute
rates and quantiles); the service rows cover the whole service whatever routes are selected."""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold, Variable

SERVICE = 'service=~"$service"'
ROUTE = 'service=~"$service", route=~"$route"'
RAW = 'job="pulse", service=~"$service", route=~"$route"'  # the access-log series themselves
QUANTILES = ("p50", "p90", "p99")


def _rate(metric: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{RAW}}}[$__rate_interval]))"


BOARD = Board(
    key="traffic",
    title="Pulse / Web traffic",
    description="Requests, errors and latency of each web service and route, counted from its access logs, "
    "and the health of the log following itself.",
    tags=("traffic", "red"),
    variables=(
        Variable("service", "Service", 'http_requests_total{job="pulse"}', "service"),
        Variable("route", "Route", 'http_requests_total{job="pulse", service=~"$service"}', "route"),
    ),
    rows=(
        Row(
            "Per service",
            (
                Panel(
                    "Requests per second per service",
                    "Requests each service answers per second, averaged over 5 minutes (the recording rule "
                    "service:http_requests:rate5m): every route and status code.",
                    "reqps",
                    (Query(f"service:http_requests:rate5m{{{SERVICE}}}", "{{service}}"),),
                    width=8,
                ),
                Panel(
                    "Error ratio per service",
                    "The share of requests answered with a server error (5xx: the service's fault, "
                    "HttpErrorRatioHigh alerts on it) or a client error (4xx: missing pages, bad input), over "
                    "5 minutes.",
                    "percentunit",
                    tuple(
                        Query(
                            f"service:http_requests_errors{kind}:ratio_rate5m{{{SERVICE}}}", f"{{{{service}}}} {kind}"
                        )
                        for kind in ("5xx", "4xx")
                    ),
                    width=8,
                    minimum=0,
                    thresholds=(Threshold(0.01, "yellow"), Threshold(0.05, "red")),
                ),
                Panel(
                    "Latency per service",
                    "How long requests take, from the access log's request time: half are faster than p50, "
                    "nine in ten than p90, ninety-nine in a hundred than p99 (quantiles over 5 minutes, "
                    "service:http_request_duration_seconds:p50_rate5m and its siblings).",
                    "s",
                    tuple(
                        Query(
                            f"service:http_request_duration_seconds:{quantile}_rate5m{{{SERVICE}}}",
                            f"{{{{service}}}} {quantile}",
                        )
                        for quantile in QUANTILES
                    ),
                    width=8,
                ),
            ),
        ),
        Row(
            "Per route",
            (
                Panel(
                    "Requests per second per route",
                    "Requests per second to each route (the routes the log's config names; any other path "
                    "is `other`), over 5 minutes, stacked: the top is the service's total.",
                    "reqps",
                    (Query(f"service_route:http_requests:rate5m{{{ROUTE}}}", "{{service}} {{route}}"),),
                    stacked=True,
                ),
                Panel(
                    "Error ratio per route",
                    "The share of each route's requests answered 5xx (server errors) and 4xx (client "
                    "errors) over 5 minutes: which page or endpoint the errors of the service come from.",
                    "percentunit",
                    tuple(
                        Query(
                            f"service_route:http_requests_errors{kind}:ratio_rate5m{{{ROUTE}}}",
                            f"{{{{route}}}} {kind}",
                        )
                        for kind in ("5xx", "4xx")
                    ),
                    minimum=0,
                    thresholds=(Threshold(0.01, "yellow"), Threshold(0.05, "red")),
                ),
                Panel(
                    "Latency per route",
                    "p50, p90 and p99 request time of each route over 5 minutes "
                    "(service_route:http_request_duration_seconds:p99_rate5m and its siblings): a slow "
                    "route shows here before it moves the service's quantiles.",
                    "s",
                    tuple(
                        Query(
                            f"service_route:http_request_duration_seconds:{quantile}_rate5m{{{ROUTE}}}",
                            f"{{{{route}}}} {quantile}",
                        )
                        for quantile in QUANTILES
                    ),
                    width=24,
                ),
            ),
        ),
        Row(
            "Responses",
            (
                Panel(
                    "Status codes",
                    "Requests per second by status code, stacked, for the selected services and routes: "
                    "200s and redirects at the bottom of a healthy stack, 404s from missing pages and "
                    "scanners, 5xx from failures.",
                    "reqps",
                    (Query(_rate("http_requests_total", "code"), "{{code}}"),),
                    stacked=True,
                ),
                Panel(
                    "Average response size per route",
                    "The mean body size each route sends (bytes sent over requests, from the access log's "
                    "$body_bytes_sent), over the rate interval: a page that suddenly grows or shrinks to a "
                    "few bytes is worth a look.",
                    "bytes",
                    (
                        Query(
                            f"{_rate('http_response_size_bytes_sum', 'service, route')} / "
                            f"{_rate('http_response_size_bytes_count', 'service, route')}",
                            "{{service}} {{route}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Access-log following",
            (
                Panel(
                    "Log lines read and unparsed per second",
                    "Lines Pulse reads from each access log (pulse_access_log_lines_read_total) and those "
                    "that do not match the log's format (unparsed, not counted as requests: "
                    "AccessLogUnparsedLines warns above 5 %).",
                    "cps",
                    (
                        Query('rate(pulse_access_log_lines_read_total{job="pulse"}[$__rate_interval])', "{{log}} read"),
                        Query(
                            'rate(pulse_access_log_lines_unparsed_total{job="pulse"}[$__rate_interval])',
                            "{{log}} unparsed",
                        ),
                    ),
                    width=12,
                ),
                Panel(
                    "Last line age per log",
                    "How long ago Pulse last read a line from each log: a busy site writes every second, so "
                    "minutes of silence mean the server stopped logging, the log moved, or nobody visits "
                    "(AccessLogStale).",
                    "s",
                    (
                        Query(
                            'time() - pulse_access_log_last_line_timestamp_seconds{job="pulse"}',
                            "{{log}}",
                            instant=True,
                        ),
                    ),
                    kind="stat",
                    width=6,
                    thresholds=(Threshold(300, "yellow"), Threshold(900, "red")),
                ),
                Panel(
                    "Files followed and unreadable",
                    "How many files of each log Pulse follows now, and how many paths matching it it cannot "
                    "read (permissions: AccessLogUnreadable). Followed 0 means the log's paths match nothing.",
                    "short",
                    (
                        Query('pulse_access_log_files_followed{job="pulse"}', "{{log}} followed", instant=True),
                        Query('pulse_access_log_files_unreadable{job="pulse"}', "{{log}} unreadable", instant=True),
                    ),
                    kind="stat",
                    width=6,
                ),
            ),
        ),
    ),
)
