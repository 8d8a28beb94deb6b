"""Response times and error rates: from the probes and from the access logs.

Probes: the average probe duration is sum_over_time/count_over_time of probe_duration_seconds over the
period (exact over its samples); the percentiles are quantile_over_time over the same samples (exact for
a service with one target; with several, the slowest target's).

Access logs: requests, 4xx and 5xx are the exact increase of http_requests_total over the period
(context.counter_increase); the latency percentiles are histogram_quantile over the exact increase of
each http_request_duration_seconds bucket: the counts are exact, the quantile is interpolated inside its
bucket, as on the dashboards.
"""

from __future__ import annotations

from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import Context, SectionSpec, counter_increase, in_period, over, ratio

PROBE_DURATION = 'probe_duration_seconds{job="pulse-probes"}'
REQUESTS = 'http_requests_total{job="pulse"}'
BUCKETS = 'http_request_duration_seconds_bucket{job="pulse"}'
QUANTILES = (0.5, 0.95, 0.99)
LOG_QUANTILES = (0.5, 0.9, 0.99)


def probe_times(ctx: Context, window: ReportWindow) -> dict[str, dict[str, float]]:
    """{service: {"avg": s, "p50": s, ...}} of the probes' durations over the window."""
    start, end = window.start, window.end
    total = ctx.by(f"sum by (service) ({over('sum_over_time', PROBE_DURATION, start, end)})", "service", "probe times")
    count = ctx.by(
        f"sum by (service) ({over('count_over_time', PROBE_DURATION, start, end)})", "service", "probe times"
    )
    found: dict[str, dict[str, float]] = {}
    for service, seconds in total.items():
        if count.get(service):
            found.setdefault(service, {})["avg"] = seconds / count[service]
    for q in QUANTILES:
        expr = f"max by (service) (quantile_over_time({q}, {in_period(PROBE_DURATION, start, end)}))"
        for service, seconds in ctx.by(expr, "service", f"the probes' {q:.0%} percentile").items():
            found.setdefault(service, {})[f"p{round(q * 100)}"] = seconds
    return found


def requests(ctx: Context, window: ReportWindow, codes: str = "") -> dict[str, float]:
    """{service: requests (whose code matches `codes`, a regex)} over the window, exact."""
    selector = REQUESTS if not codes else REQUESTS.replace("}", f', code=~"{codes}"}}')
    expr = f"sum by (service) ({counter_increase(selector, window.start, window.end)})"
    return ctx.by(expr, "service", "the access logs' requests")


def latency(ctx: Context, window: ReportWindow, q: float) -> dict[str, float]:
    buckets = f"sum by (le, service) ({counter_increase(BUCKETS, window.start, window.end)})"
    return ctx.by(f"histogram_quantile({q}, {buckets})", "service", f"the {q:.0%} percentile of response times")


def build(ctx: Context) -> Section:
    figures: list[Figure] = []
    probes, probes_before = probe_times(ctx, ctx.window), probe_times(ctx, ctx.previous)
    probe_rows = []
    for service in sorted(probes):
        times = probes[service]
        figures.append(
            Figure(f"probe_p95_{service}", f"Probe time, 95th percentile, {service}", times.get("p95"), "s",
                   probes_before.get(service, {}).get("p95"), "lower")
        )  # fmt: skip
        probe_rows.append((service, times.get("avg"), times.get("p50"), times.get("p95"), times.get("p99")))
    traffic = {window: _traffic(ctx, window) for window in ctx.windows()}
    rows = []
    for service in sorted(traffic[ctx.window]):
        now, before = traffic[ctx.window][service], traffic[ctx.previous].get(service, {})
        figures += [
            Figure(f"requests_{service}", f"Requests, {service}", now.get("requests"), "short", before.get("requests")),
            Figure(f"error_ratio_{service}", f"Server errors (5xx), {service}", now.get("ratio5xx"), "percentunit",
                   before.get("ratio5xx"), "lower"),
            Figure(f"latency_p99_{service}", f"Response time, 99th percentile, {service}", now.get("p99"), "s",
                   before.get("p99"), "lower"),
        ]  # fmt: skip
        rows.append(
            (service, now.get("requests"), now.get("errors5xx"), now.get("ratio5xx"), now.get("ratio4xx"),
             now.get("p50"), now.get("p90"), now.get("p99"))
        )  # fmt: skip
    notes = []
    if not probe_rows:
        notes.append("No data for probe response times (probe_duration_seconds).")
    if not rows:
        notes.append("No data for access logs (http_requests_total).")
    tables = (
        Table("Probe response times", (Column("Service"), Column("Average", "s"), Column("50th percentile", "s"),
              Column("95th percentile", "s"), Column("99th percentile", "s")), tuple(probe_rows)),
        Table("Access logs", (Column("Service"), Column("Requests", "short"), Column("5xx", "short"),
              Column("5xx ratio", "percentunit"), Column("4xx ratio", "percentunit"), Column("50th percentile", "s"),
              Column("90th percentile", "s"), Column("99th percentile", "s")), tuple(rows)),
    )  # fmt: skip
    charts = (
        ctx.chart("probes", "Total probe duration"),
        ctx.chart("traffic", "Status codes"),
        ctx.chart("traffic", "Latency per service"),
    )
    return Section("performance", "Response times and errors", tuple(figures), tables, charts, tuple(notes))


def _traffic(ctx: Context, window: ReportWindow) -> dict[str, dict[str, float | None]]:
    percentiles: dict[str, dict[str, float]]
    total, errors5xx, errors4xx = requests(ctx, window), requests(ctx, window, "5.."), requests(ctx, window, "4..")
    percentiles = {f"p{round(q * 100)}": latency(ctx, window, q) for q in LOG_QUANTILES}
    return {
        service: {
            "requests": count,
            "errors5xx": errors5xx.get(service, 0.0),
            "ratio5xx": ratio(errors5xx.get(service, 0.0), count),
            "ratio4xx": ratio(errors4xx.get(service, 0.0), count),
            **{name: values.get(service) for name, values in percentiles.items()},
        }
        for service, count in total.items()
    }


SECTION = SectionSpec("performance", "Response times and errors", build)
