"""The reports' figures, checked against the synthetic history they are computed from.

A real Prometheus runs on a backfilled history (every 5 minutes from 25 September to 2 November 2026):
two probed services with known outages, an access log with a known 5xx burst, the marketplace's counters
and gauges, a backup that failed, a filling disk, CPU and memory peaks, an SLO's budget. The incident
journal is a real SQLite file with known incidents and a maintenance window. Reports are built for a day,
a week and a month in Europe/Paris around the end of summer time (Sunday 25 October 2026 lasts 25 hours),
and every figure is compared with what this test computes from the samples it wrote — by plain Python
over the sample lists (the definitions in docs/reports.md), never by running PromQL.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from exporter.config.platform import ServiceConfig
from exporter.dashboards.render.data import PrometheusClient, PrometheusUnreachable, QueryError
from exporter.demo import backfill, generator
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice
from exporter.reports.build import ReportInputs, build_report
from exporter.reports.model import Figure, Report, ReportWindow, Section
from exporter.reports.periods import period_windows
from exporter.reports.sections.context import counter_increase
from tests.helpers import free_port
from tests.prometheus_server import PrometheusServer, create_blocks, running_prometheus

pytestmark = pytest.mark.integration

PARIS = "Europe/Paris"
STEP = 300
START = int(datetime(2026, 9, 25, tzinfo=UTC).timestamp())
STOP = int(datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp())  # exclusive
TIMES = range(START, STOP, STEP)
SERVICES = {"shop": ServiceConfig(title="Online shop", sla=99.9), "api": ServiceConfig(title="Public API", sla=99.0)}
ENDS = {  # when each report is made: the last whole day, week and month before
    "day": datetime(2026, 10, 26, 7, tzinfo=ZoneInfo(PARIS)),  # Sunday 25 October, 25 hours
    "week": datetime(2026, 10, 27, 7, tzinfo=ZoneInfo(PARIS)),  # week 43, 19-25 October: 169 hours
    "month": datetime(2026, 11, 2, 7, tzinfo=ZoneInfo(PARIS)),  # October: 745 hours
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def matching(**wanted: str) -> Callable[[dict[str, str]], bool]:
    return lambda labels: wanted.items() <= labels.items()


def between(start: float, end: float) -> Callable[[float], bool]:
    return lambda t: start <= t < end


SHOP_OUTAGES = (
    between(utc(2026, 10, 10, 12), utc(2026, 10, 10, 13)),
    between(utc(2026, 10, 25, 10), utc(2026, 10, 25, 10, 30)),
)
API_OUTAGES = (
    between(utc(2026, 10, 20, 8), utc(2026, 10, 20, 8, 20)),
    between(utc(2026, 9, 29, 3), utc(2026, 9, 29, 5)),
)
MAINTENANCE = (utc(2026, 10, 25, 1), utc(2026, 10, 25, 2))  # shop: down throughout, taken out of its SLA
IN_MAINTENANCE = between(*MAINTENANCE)
# A counter restarts from 0: at the first sample of Sunday 25 October (Paris), and on Wednesday 21st; the
# reports' counters fall back to increase() for it then (close, not exact).
RESTARTS = (utc(2026, 10, 24, 22), utc(2026, 10, 21, 12))
RESTARTED = 'test_restarted_total{instance="restarted:9184"}'
BURST = between(utc(2026, 10, 25, 10), utc(2026, 10, 25, 10, 30))  # shop's 5xx and slow responses


# ------------------------------------------------------------------------------------------ the history


@dataclass
class History:
    """Every series written, as (labels, [value per time of TIMES]); counters also by their increments."""

    series: dict[str, list[tuple[dict[str, str], list[float]]]] = field(default_factory=dict)
    increments: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = field(default_factory=dict)

    def gauge(self, name: str, labels: dict[str, str], value: Callable[[int, int], float]) -> None:
        self.series.setdefault(name, []).append((labels, [value(k, t) for k, t in enumerate(TIMES)]))

    def counter(
        self,
        name: str,
        labels: dict[str, str],
        increment: Callable[[int, int], float],
        restarts: tuple[float, ...] = (),
    ) -> None:
        """A counter made of its increments; at a restart it begins again from 0 (its first sample then is
        that step's increment)."""
        steps = [float(increment(k, t)) for k, t in enumerate(TIMES)]
        self.increments[(name, tuple(sorted(labels.items())))] = steps
        total, values = 0.0, []
        for t, step in zip(TIMES, steps, strict=True):
            total = step if t in restarts else total + step
            values.append(total)
        self.series.setdefault(name, []).append((labels, values))

    def openmetrics(self) -> str:
        lines = []
        for name, series in self.series.items():
            lines.append(f"# TYPE {name} gauge")
            for labels, values in series:
                text = ",".join(f'{key}="{value}"' for key, value in labels.items())
                lines.extend(f"{name}{{{text}}} {value!r} {t}" for t, value in zip(TIMES, values, strict=True))
        return "\n".join([*lines, "# EOF", ""])

    # What the test expects, from the samples: plain Python over the lists written above.

    def increase(
        self, name: str, window: ReportWindow, keep: Callable[[dict[str, str]], bool] = lambda _: True
    ) -> float:
        """The sum of the counter's increments written at times in [start, end)."""
        first, stop = index(window.start), index(window.end)
        return sum(
            sum(steps[first:stop])
            for (family, labels), steps in self.increments.items()
            if family == name and keep(dict(labels))
        )

    def in_window(self, name: str, window: ReportWindow, **match: str) -> list[float]:
        first, stop = index(window.start), index(window.end)
        return [
            v for labels, values in self.series[name] if match.items() <= labels.items() for v in values[first:stop]
        ]

    def at(self, name: str, instant: float, **match: str) -> float:
        """The sum over the matching series of each one's last sample before `instant` (within a day)."""
        last = index(instant) - 1
        if last < 0 or TIMES[min(last, len(TIMES) - 1)] < instant - 86400:
            return 0.0
        return sum(values[min(last, len(TIMES) - 1)] for labels, values in self.series[name]
                   if match.items() <= labels.items())  # fmt: skip


def index(instant: float) -> int:
    """The index in TIMES of the first sample at or after `instant` (0 before the history, its length after)."""
    return min(len(TIMES), max(0, math.ceil((instant - START) / STEP)))


def latency_bucket(normal: float, slow: float, k: int, t: int) -> float:
    return (slow if BURST(t) else normal) * (1 + k % 3)


def funnel_step(n: int, _k: int, t: int) -> float:
    return float((120 + (t // 3600) % 24) // (n + 1))


def product_orders(n: int, _k: int, t: int) -> float:
    return float(30 - 7 * n + (t // 86400) % (n + 2))


def history() -> History:
    h = History()
    probes = {"job": "pulse-probes", "module": "http"}
    h.gauge(
        "probe_success",
        {**probes, "service": "shop", "instance": "https://shop.example"},
        lambda k, t: 0.0 if any(o(t) for o in SHOP_OUTAGES) or IN_MAINTENANCE(t) else 1.0,
    )
    h.gauge(
        "probe_success",
        {**probes, "service": "api", "instance": "https://api.example"},
        lambda k, t: 0.0 if any(o(t) for o in API_OUTAGES) else 1.0,
    )
    h.gauge(
        "probe_duration_seconds",
        {**probes, "service": "shop", "instance": "https://shop.example"},
        lambda k, t: 0.1 + 0.01 * (k % 13) + (2.0 if BURST(t) else 0.0),
    )
    h.gauge(
        "probe_duration_seconds",
        {**probes, "service": "api", "instance": "https://api.example"},
        lambda k, t: 0.05 + 0.002 * (k % 17),
    )
    pulse = {"job": "pulse", "instance": "shop-host:9184"}
    h.counter(
        "http_requests_total", {**pulse, "service": "shop", "route": "/", "code": "200"}, lambda k, t: 100 + k % 5
    )
    h.counter("http_requests_total", {**pulse, "service": "shop", "route": "/", "code": "404"}, lambda k, t: 2)
    h.counter(
        "http_requests_total",
        {**pulse, "service": "shop", "route": "/", "code": "500"},
        lambda k, t: 50 if BURST(t) else k % 2,
    )
    h.counter("http_requests_total", {**pulse, "service": "api", "route": "/v1", "code": "200"}, lambda k, t: 20)
    normal = {"0.1": 60, "0.5": 90, "1": 98, "2.5": 100, "+Inf": 100}
    slow = {"0.1": 10, "0.5": 30, "1": 60, "2.5": 90, "+Inf": 100}
    for le, usual in normal.items():
        h.counter(
            "http_request_duration_seconds_bucket",
            {**pulse, "service": "shop", "route": "/", "le": le},
            partial(latency_bucket, usual, slow[le]),
        )
    market = {"job": "pulse", "instance": "kpi:9184"}
    h.counter("business_sessions_total", market, lambda k, t: 10 + k % 7)
    h.counter("business_orders_total", {**market, "currency": "EUR"}, lambda k, t: 1 + (k % 3 == 0))
    h.counter("business_orders_total", {**market, "currency": "USD"}, lambda k, t: k % 4 == 0)
    h.counter("business_gmv_total", {**market, "currency": "EUR"}, lambda k, t: 25.5 * (1 + (k % 3 == 0)))
    h.counter("business_gmv_total", {**market, "currency": "USD"}, lambda k, t: 40.0 * (k % 4 == 0))
    h.counter("business_refunds_total", {**market, "kind": "refund", "currency": "EUR"}, lambda k, t: k % 12 == 0)
    h.counter(
        "business_payment_attempts_total",
        {**market, "status": "succeeded", "method": "card"},
        lambda k, t: 1 + (k % 3 == 0) + (k % 4 == 0),
    )
    h.counter(
        "business_payment_attempts_total",
        {**market, "status": "failed", "method": "card"},
        lambda k, t: (k % 6 == 0) + (5 if BURST(t) else 0),
    )
    h.counter("test_restarted_total", {**market, "instance": "restarted:9184"}, lambda k, t: 3, RESTARTS)
    h.gauge("business_daily_active_users", market, lambda k, t: 500 + (k // 288) % 9 + k % 5)
    h.gauge("business_weekly_active_users", market, lambda k, t: 2000 + k // 288)
    h.gauge("business_monthly_active_users", market, lambda k, t: 6000 + k // 100)
    h.gauge("business_bounce_rate_ratio", market, lambda k, t: 0.3 + 0.01 * (k % 11))
    for n, step in enumerate(("session_started", "product_viewed", "added_to_cart", "checkout_started", "paid")):
        h.gauge(
            "business_funnel_sessions",
            {**market, "step": step, "window": "1h"},
            partial(funnel_step, n),
        )
    for n, product in enumerate(("sku-1", "sku-2", "sku-3", "other")):
        h.gauge(
            "business_product_orders",
            {**market, "product": product},
            partial(product_orders, n),
        )
    pulse_host = {"job": "pulse", "instance": "db-host:9184"}
    h.counter("pulse_job_runs_total", {**pulse_host, "job_name": "nightly_backup"}, lambda k, t: t % 86400 == 7200)
    h.counter(
        "pulse_job_failures_total", {**pulse_host, "job_name": "nightly_backup"}, lambda k, t: t == utc(2026, 10, 25, 2)
    )
    h.counter("pulse_job_runs_total", {**pulse_host, "job_name": "cleanup"}, lambda k, t: t % 3600 == 0)
    h.counter(
        "pulse_job_failures_total",
        {**pulse_host, "job_name": "cleanup"},
        lambda k, t: t in (utc(2026, 10, 10, 5), utc(2026, 9, 27, 5)),
    )
    h.gauge(
        "pulse_job_last_exit_code",
        {**pulse_host, "job_name": "nightly_backup"},
        lambda k, t: 1.0 if utc(2026, 10, 25, 2) <= t < utc(2026, 10, 26, 2) else 0.0,
    )
    disk = {**pulse_host, "mountpoint": "/", "fstype": "ext4", "device": "sda1"}
    h.gauge("node_filesystem_avail_bytes", disk, lambda k, t: 60e9 - 2e5 * k)
    h.gauge("node_filesystem_size_bytes", disk, lambda k, t: 100e9)
    h.gauge(
        "instance:node_cpu_utilisation:rate5m",
        pulse_host,
        lambda k, t: 0.2 + 0.1 * math.sin(k / 50) + (0.6 if t == utc(2026, 10, 14, 12) else 0.0),
    )
    h.gauge(
        "instance:node_memory_utilisation:ratio",
        pulse_host,
        lambda k, t: 0.5 + 0.05 * math.cos(k / 70) + (0.3 if t == utc(2026, 10, 25, 4) else 0.0),
    )
    slo = {"sloth_id": "shop-availability", "sloth_service": "shop", "sloth_slo": "availability"}
    h.gauge("slo:period_error_budget_remaining:ratio", slo, lambda k, t: 1 - k / 20000)
    h.gauge("sloth_slo_info", {**slo, "sloth_objective": "99.9"}, lambda k, t: 1.0)
    return h


# ------------------------------------------------------------------------------------------ the journal


@dataclass(frozen=True)
class KnownIncident:
    alertname: str
    service: str
    severity: str
    started: float
    resolved: float | None
    acknowledged: float | None = None
    cause: str | None = None


INCIDENTS = (
    KnownIncident(
        "ProbeFailing", "shop", "critical", utc(2026, 10, 10, 12), utc(2026, 10, 10, 13), cause="certificate"
    ),
    KnownIncident("ProbeFailing", "shop", "critical", utc(2026, 10, 25, 10), utc(2026, 10, 25, 10, 30), cause="deploy"),
    KnownIncident(
        "HttpErrorRatioHigh",
        "shop",
        "warning",
        utc(2026, 10, 25, 10, 5),
        utc(2026, 10, 25, 10, 40),
        acknowledged=utc(2026, 10, 25, 10, 10),
    ),
    KnownIncident("DiskFilling", "db", "warning", utc(2026, 10, 25, 22), None),
    KnownIncident("JobFailed", "db", "warning", utc(2026, 10, 24, 3), utc(2026, 10, 24, 4), cause="disk full"),
    KnownIncident("JobFailed", "db", "warning", utc(2026, 9, 28, 3), utc(2026, 9, 28, 5)),
)


def fill_journal(journal: Journal) -> None:
    for number, known in enumerate(INCIDENTS):
        labels = {"alertname": known.alertname, "service": known.service, "severity": known.severity}
        firing = AlertNotice(f"fp{number}", "firing", labels, {}, known.started, None)
        [incident_id] = journal.record([firing], received_at=known.started + 30)
        if known.resolved is not None:
            journal.record([AlertNotice(f"fp{number}", "resolved", labels, {}, known.started, known.resolved)],
                           received_at=known.resolved + 5)  # fmt: skip
        if known.acknowledged is not None:
            journal.acknowledge(incident_id, "alice", known.acknowledged)
        if known.cause is not None:
            journal.annotate(incident_id, cause=known.cause)
    journal.add_maintenance("shop", *MAINTENANCE, comment="database upgrade", created_by="alice", silence_id=None)


# ------------------------------------------------------------------------------------- what is expected


def quantile(q: float, values: list[float]) -> float:
    """quantile_over_time's definition: linear interpolation between the closest ranks, rank q*(n-1)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bucket_quantile(q: float, buckets: dict[float, float]) -> float:
    """histogram_quantile's definition over cumulative bucket counts {upper bound: count}."""
    bounds = sorted(buckets)
    rank = q * buckets[math.inf]
    index = next(i for i, bound in enumerate(bounds) if buckets[bound] >= rank)
    if bounds[index] == math.inf:
        return bounds[-2]
    lower, below = (0.0, 0.0) if index == 0 else (bounds[index - 1], buckets[bounds[index - 1]])
    return lower + (bounds[index] - lower) * (rank - below) / (buckets[bounds[index]] - below)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def local_midnights(window: ReportWindow) -> list[float]:
    zone = ZoneInfo(PARIS)
    day = datetime.fromtimestamp(window.start, zone).date()
    found = []
    while (instant := datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).timestamp()) <= window.end:
        found.append(instant)
        day += timedelta(days=1)
    return found


def expected_figures(h: History, window: ReportWindow) -> dict[str, float | None]:
    """Every checked figure over the window, from the samples."""
    figures: dict[str, float | None] = {}
    for service in SERVICES:
        samples = [v for labels, values in h.series["probe_success"] if labels["service"] == service
                   for t, v in zip(TIMES, values, strict=True)
                   if window.start <= t < window.end and not (service == "shop" and IN_MAINTENANCE(t))]  # fmt: skip
        up = sum(samples) / len(samples) if samples else None
        figures[f"uptime_{service}"] = up
        measured = window.seconds - (
            max(0.0, min(window.end, MAINTENANCE[1]) - max(window.start, MAINTENANCE[0])) if service == "shop" else 0
        )
        figures[f"downtime_{service}"] = None if up is None else (1 - up) * measured
        durations = h.in_window("probe_duration_seconds", window, service=service)
        figures[f"probe_p95_{service}"] = quantile(0.95, durations) if durations else None
    for service in SERVICES:
        requests = h.increase("http_requests_total", window, matching(service=service))
        errors = h.increase("http_requests_total", window,
                            matching(service=service, code="500"))  # fmt: skip
        figures[f"requests_{service}"] = requests
        figures[f"error_ratio_{service}"] = ratio(errors, requests)
        buckets = {float(le): h.increase("http_request_duration_seconds_bucket", window,
                                         matching(service=service, le=le))
                   for le in ("0.1", "0.5", "1", "2.5", "+Inf")}  # fmt: skip
        figures[f"latency_p99_{service}"] = bucket_quantile(0.99, buckets) if buckets[math.inf] else None
    incidents = [i for i in INCIDENTS if window.start <= i.started < window.end]
    resolved = [i.resolved - i.started for i in incidents if i.resolved is not None and i.resolved < window.end]
    acknowledged = [i.acknowledged - i.started for i in incidents if i.acknowledged is not None]
    figures |= {
        "incidents": len(incidents),
        "incidents_critical": sum(i.severity == "critical" for i in incidents),
        "incidents_open": sum(i.resolved is None or i.resolved >= window.end for i in incidents),
        "mttr": sum(resolved) / len(resolved) if resolved else None,
        "mtta": sum(acknowledged) / len(acknowledged) if acknowledged else None,
        "incident_time": sum(min(i.resolved or window.end, window.end) - i.started for i in incidents),
    }
    sessions = h.increase("business_sessions_total", window)
    orders = h.increase("business_orders_total", window)
    dau = h.in_window("business_daily_active_users", window)
    bounce = h.in_window("business_bounce_rate_ratio", window)
    figures |= {
        "sessions": sessions,
        "dau": sum(dau) / len(dau),
        "wau": h.at("business_weekly_active_users", window.end),
        "mau": h.at("business_monthly_active_users", window.end),
        "conversion": orders / sessions,
        "bounce_rate": sum(bounce) / len(bounce),
    }
    hours = list(range(int(window.start) + 3600, int(window.end) + 1, 3600))
    funnel = {step: sum(h.at("business_funnel_sessions", t + 1, step=step, window="1h") for t in hours)
              for step in ("session_started", "paid")}  # fmt: skip
    figures["funnel_paid"] = funnel["paid"] / funnel["session_started"]
    refunds = h.increase("business_refunds_total", window)
    attempts = h.increase("business_payment_attempts_total", window)
    failed = h.increase("business_payment_attempts_total", window, matching(status="failed"))
    figures |= {
        "orders": orders,
        "refunds": refunds,
        "refund_rate": refunds / orders,
        "payment_failures": failed,
        "payment_failure_ratio": failed / attempts,
    }
    for currency in ("EUR", "USD"):
        gmv = h.increase("business_gmv_total", window, matching(currency=currency))
        count = h.increase("business_orders_total", window, matching(currency=currency))
        figures[f"gmv_{currency}"] = gmv
        figures[f"aov_{currency}"] = gmv / count
    cpu = h.in_window("instance:node_cpu_utilisation:rate5m", window)
    memory = h.in_window("instance:node_memory_utilisation:ratio", window)
    avail = h.at("node_filesystem_avail_bytes", window.end)
    figures |= {
        "cpu_peak": max(cpu),
        "memory_peak": max(memory),
        "disk_used_max": 1 - avail / 100e9,
        "disk_time_to_full": avail / (2e5 / STEP),
    }
    failures = {name: h.increase("pulse_job_failures_total", window, matching(job_name=name))
                for name in ("nightly_backup", "cleanup")}  # fmt: skip
    figures["backups_failed"] = failures["nightly_backup"]
    figures["jobs_failed"] = failures["cleanup"]
    figures["slo_budget_shop-availability"] = h.at("slo:period_error_budget_remaining:ratio", window.end)
    return figures


def expected_top_products(h: History, window: ReportWindow) -> list[tuple[str, float]]:
    totals = {
        product: sum(h.at("business_product_orders", end, product=product) for end in local_midnights(window))
        for product in ("sku-1", "sku-2", "sku-3")
    }
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


# -------------------------------------------------------------------------------------------- fixtures


@dataclass
class Reports:
    history: History
    reports: dict[str, Report]
    seconds: dict[str, float]
    progress: list[str]
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    directory = tmp_path_factory.mktemp("reports")
    h = history()
    (directory / "history.om").write_text(h.openmetrics())
    create_blocks(directory / "history.om", directory / "data", max_block_duration="1000h")  # few blocks: fast
    journal = Journal(sqlite_url(directory / "incidents.db"))
    fill_journal(journal)
    config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
    with (
        running_prometheus(directory, config, data_dir=directory / "data", retention="400d") as server,
        PrometheusClient(server.url) as client,
    ):
        steps: list[str] = []
        inputs = ReportInputs(client, journal, SERVICES, PARIS, progress=steps.append)
        reports, seconds = {}, {}
        for period, end in ENDS.items():
            began = time.monotonic()
            reports[period] = build_report(period, inputs, end)  # type: ignore[arg-type]
            seconds[period] = time.monotonic() - began
        yield Reports(h, reports, seconds, steps, server)
    journal.close()


def figures_of(report: Report) -> dict[str, Figure]:
    found = {f.key: f for section in report.sections for f in section.figures}
    assert len(found) == sum(len(section.figures) for section in report.sections), "figure keys repeat"
    return found


def section(report: Report, key: str) -> Section:
    return next(s for s in report.sections if s.key == key)


def close(actual: float | None, expected: float | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


# ---------------------------------------------------------------------------------------------- windows


def test_windows_follow_the_local_calendar_across_daylight_saving_time() -> None:
    paris = ZoneInfo(PARIS)
    day, before = period_windows("day", ENDS["day"], PARIS)
    assert (day.seconds, before.seconds) == (25 * 3600, 24 * 3600)  # summer time ends on the 25th
    assert day.start == datetime(2026, 10, 25, tzinfo=paris).timestamp() == utc(2026, 10, 24, 22)
    assert day.end == utc(2026, 10, 25, 23)
    assert before.end == day.start
    assert day.label == "Sunday 25 October 2026"
    spring, _ = period_windows("day", datetime(2026, 3, 30, 7, tzinfo=paris), PARIS)
    assert spring.seconds == 23 * 3600
    assert spring.label == "Sunday 29 March 2026"
    week, previous_week = period_windows("week", ENDS["week"], PARIS)
    assert (week.start, week.end) == (utc(2026, 10, 18, 22), utc(2026, 10, 25, 23))
    assert week.seconds == 169 * 3600
    assert previous_week.seconds == 168 * 3600
    assert week.label == "week 43, 2026 (19 to 25 October 2026)"
    month, previous_month = period_windows("month", ENDS["month"], PARIS)
    assert (month.start, month.end) == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))
    assert month.label == "October 2026"
    assert previous_month.label == "September 2026"
    assert previous_month.seconds == 30 * 86400
    # The ISO week that straddles the new year belongs to 2026 (its Thursday's year).
    straddling, _ = period_windows("week", datetime(2027, 1, 5, tzinfo=paris), PARIS)
    assert straddling.label == "week 53, 2026 (28 December to 3 January 2027)"
    # An end exactly at midnight: the day before it; a naive end is read in the report's time zone.
    assert period_windows("day", datetime(2026, 10, 26), PARIS)[0] == day
    january, december = period_windows("month", datetime(2027, 1, 1, 0, 0, 1, tzinfo=paris), PARIS)
    assert (january.label, december.label) == ("December 2026", "November 2026")


# ---------------------------------------------------------------------------------------------- figures


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_every_figure_is_what_the_history_holds(built: Reports, period: str) -> None:
    report = built.reports[period]
    found = figures_of(report)
    assert report.window == period_windows(period, ENDS[period], PARIS)[0]  # type: ignore[arg-type]
    for window, attribute in ((report.window, "value"), (report.previous, "previous")):
        assert window is not None
        wanted = expected_figures(built.history, window)
        for key, value in wanted.items():
            assert key in found, f"{period}: no figure {key}"
            actual = getattr(found[key], attribute)
            assert close(actual, value), f"{period} {attribute} of {key}: {actual!r}, expected {value!r}"


def test_a_counter_that_restarted_is_counted_from_zero_again(built: Reports) -> None:
    restarted = matching(instance="restarted:9184")
    with PrometheusClient(built.prometheus.url) as client:
        for period in ("day", "week", "month"):
            window = built.reports[period].window
            total = built.history.increase("test_restarted_total", window, restarted)
            expr = f"sum({counter_increase(RESTARTED, window.start, window.end)})"
            [found] = client.query(expr, int(window.end))
            # increase() extrapolates to the edges: within a sample interval's worth.
            assert float(found["value"][1]) == pytest.approx(total, rel=STEP / window.seconds * 1.01), period
        # A day without a restart in it or the day before: exact again.
        day = ReportWindow(utc(2026, 10, 19, 22), utc(2026, 10, 20, 22), "Tuesday 20 October 2026")
        expr = f"sum({counter_increase(RESTARTED, day.start, day.end)})"
        [found] = client.query(expr, int(day.end))
        assert float(found["value"][1]) == built.history.increase("test_restarted_total", day, restarted)


def test_the_maintenance_window_is_taken_out_of_the_sla(built: Reports) -> None:
    report = built.reports["day"]
    shop = figures_of(report)["uptime_shop"]
    samples = built.history.in_window("probe_success", report.window, service="shop")
    with_maintenance = sum(samples) / len(samples)
    assert shop.value is not None
    # 30 minutes of outage over the 24 hours left: missed (99.9 %), though the hour of maintenance,
    # down too, is not counted.
    assert shop.value == pytest.approx(1 - 6 / (25 * 12 - 12))
    assert with_maintenance < shop.value
    assert shop.target == 0.999
    assert shop.met is False
    assert figures_of(report)["uptime_api"].met is True
    table = section(report, "uptime").tables[0]
    shop_row = next(row for row in table.rows if row[0] == "Online shop")
    assert shop_row[3] == "missed"
    assert shop_row[5] == 3600.0


def test_incidents_mttr_open_and_recurring(built: Reports) -> None:
    day = section(built.reports["day"], "incidents")
    open_table = day.tables[0]
    assert open_table.title.startswith("Still open")
    assert [row[1] for row in open_table.rows] == ["DiskFilling"]
    causes = {row[0]: row[1] for row in day.tables[-1].rows}
    assert causes == {"deploy": 1.0, "not written": 2.0}
    recurring = section(built.reports["month"], "recurring")
    assert recurring.tables[0].rows == (("ProbeFailing", "shop", 2.0, 3600.0 + 1800.0),)
    assert all(s.key != "recurring" for s in built.reports["day"].sections)


def test_filesystems_against_a_month_before(built: Reports) -> None:
    for period in ("day", "week", "month"):
        report = built.reports[period]
        [row] = section(report, "capacity").tables[0].rows
        end = datetime.fromtimestamp(report.window.end, ZoneInfo(PARIS))
        month_before = end.replace(month=end.month - 1).timestamp()  # 26 September or 1 October, midnight
        assert row[:3] == ("db-host:9184", "/", figures_of(report)["disk_used_max"].value)
        assert close(row[3], 1 - built.history.at("node_filesystem_avail_bytes", month_before) / 100e9)  # type: ignore[arg-type]
        assert close(row[4], 2e5 * report.window.seconds / STEP)  # type: ignore[arg-type]


def test_top_products_add_up_the_days(built: Reports) -> None:
    for period in ("day", "week"):
        report = built.reports[period]
        table = section(report, "transactions").tables[0]
        assert list(table.rows) == expected_top_products(built.history, report.window), period


def test_the_month_has_its_weeks_as_trends(built: Reports) -> None:
    report = built.reports["month"]
    table = section(report, "trends").tables[0]
    labels = [row[0] for row in table.rows]
    assert labels == ["week 40 (1 to 4 Oct)", "week 41 (5 to 11 Oct)", "week 42 (12 to 18 Oct)",
                      "week 43 (19 to 25 Oct)", "week 44 (26 to 31 Oct)"]  # fmt: skip
    names = [column.name for column in table.columns]
    week_43 = dict(zip(names, table.rows[3], strict=True))
    expected = expected_figures(built.history, built.reports["week"].window)
    assert close(week_43["Uptime, Online shop"], expected["uptime_shop"])  # type: ignore[arg-type]
    assert close(week_43["Orders"], expected["orders"])  # type: ignore[arg-type]
    assert close(week_43["GMV (EUR)"], expected["gmv_EUR"])  # type: ignore[arg-type]
    orders = [dict(zip(names, row, strict=True))["Orders"] for row in table.rows]
    assert sum(orders) == pytest.approx(figures_of(report)["orders"].value)  # type: ignore[arg-type]


def test_regressions_rank_what_got_worse(built: Reports) -> None:
    report = built.reports["day"]
    rows = section(report, "regressions").tables[0].rows
    assert rows, "the 5xx burst of the 25th is a regression"
    changes = [row[4] for row in rows]
    labels = [row[1] for row in rows]
    assert "Server errors (5xx), shop" in labels
    for label in labels:
        item = next(f for f in figures_of(report).values() if f.label == label)
        assert item.change is not None
        assert (item.change > 0) == (item.better == "lower")
    badness = [abs(change) for change in changes]  # type: ignore[arg-type]
    assert badness == sorted(badness, reverse=True)


def test_sections_are_in_order_and_progress_is_told(built: Reports) -> None:
    keys = ["uptime", "performance", "incidents", "behaviour", "transactions", "capacity", "jobs", "regressions"]
    assert [s.key for s in built.reports["day"].sections] == keys
    assert [s.key for s in built.reports["month"].sections] == [*keys, "trends", "recurring"]
    assert built.progress[:3] == ["Uptime and SLA", "Response times and errors", "Incidents"]
    charts = [chart for report in built.reports.values() for s in report.sections for chart in s.charts]
    assert charts
    assert all(chart.png.startswith(b"\x89PNG") for chart in charts)
    drawn = {chart.panel for chart in charts if chart.has_data}
    assert {"Probe success per target", "Status codes", "Orders per hour", "Daily active users"} <= drawn
    # api has no latency histogram: said, not shown as 0.
    notes = section(built.reports["day"], "performance").notes
    assert any("Response time, 99th percentile, api" in note for note in notes)
    print(f"\nreport build times: { {p: round(s, 2) for p, s in built.seconds.items()} }")


# ---------------------------------------------------------------------------------------- without data


def test_a_period_without_data_says_so_in_every_section(built: Reports) -> None:
    with PrometheusClient(built.prometheus.url) as client:
        inputs = ReportInputs(client, None, SERVICES, PARIS)
        report = build_report("day", inputs, datetime(2026, 6, 2, tzinfo=ZoneInfo(PARIS)))
    assert [s.key for s in report.sections] == [s.key for s in built.reports["day"].sections]
    for item in report.sections:
        assert item.notes, f"{item.key}: no data and no note"
    assert section(report, "incidents").notes == ("No journal configured (incidents: in pulse.yml): the incidents "
                                                   "are not known.",)  # fmt: skip
    assert not any(f.value for f in figures_of(report).values() if f.key.startswith("uptime"))


def test_a_refused_query_becomes_a_note_and_an_unreachable_prometheus_an_error(built: Reports) -> None:
    class Refusing(PrometheusClient):
        def query(self, expr: str, at: int) -> list[dict[str, Any]]:
            if "business_orders_total" in expr:
                raise QueryError("query timed out in expression evaluation")
            return super().query(expr, at)

    with Refusing(built.prometheus.url) as client:
        report = build_report("day", ReportInputs(client, None, SERVICES, PARIS), ENDS["day"])
    notes = section(report, "transactions").notes
    assert any("failed: query timed out" in note for note in notes)
    assert figures_of(report)["orders"].value is None
    with PrometheusClient(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(PrometheusUnreachable):
        build_report("day", ReportInputs(nowhere, None, SERVICES, PARIS), ENDS["day"])


# ------------------------------------------------------------------------------------- the demo's history


@dataclass
class Demo:
    grid: backfill.Grid
    families: dict[str, backfill.Family]
    report: Report


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Three weeks of the demo shop (exporter/demo), backfilled as Pulse would have exported them, and the
    weekly report of the last whole week (UTC)."""
    directory = tmp_path_factory.mktemp("demo")
    db = directory / "demo.db"
    args = ["--url", f"sqlite:///{db}", "--backfill", "22d", "--sessions-per-day", "400", "--seed", "5"]
    assert generator.main(args) == 0
    end = int(time.time()) - backfill.END_MARGIN
    end -= end % STEP
    out = directory / "history.om"
    iso = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert backfill.main(["--db", str(db), "--out", str(out), "--step", "5m", "--end", iso]) == 0
    connection = sqlite3.connect(db)
    try:
        span = backfill.history_span(connection)
        assert span is not None
        grid = backfill.Grid(span[0] - span[0] % STEP, STEP, (end - (span[0] - span[0] % STEP)) // STEP + 1)
        families = {f.name: f for f in backfill.compute(backfill.read_history(connection), grid)}
    finally:
        connection.close()
    create_blocks(out, directory / "data", max_block_duration="1000h")
    config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
    with (
        running_prometheus(directory, config, data_dir=directory / "data", retention="400d") as server,
        PrometheusClient(server.url) as client,
    ):
        report = build_report("week", ReportInputs(client, None, {}, "UTC"), datetime.fromtimestamp(end, UTC))
    return Demo(grid, families, report)


def demo_value(demo: Demo, name: str, instant: float, keep: Callable[[dict[str, str]], bool]) -> float:
    """The backfill's own value of the family (summed over the series kept) at the last grid instant before
    `instant`; 0 before the history."""
    index = math.ceil((instant - demo.grid.start) / STEP) - 1
    if index < 0:
        return 0.0
    return sum(float(values[index] or 0) for labels, values in demo.families[name].series.items() if keep(dict(labels)))


def test_the_weekly_report_of_the_demo_shop(demo: Demo) -> None:
    found = figures_of(demo.report)
    for window, attribute in ((demo.report.window, "value"), (demo.report.previous, "previous")):
        assert window is not None

        def increase(name: str, keep: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
            return demo_value(demo, name, window.end, keep) - demo_value(demo, name, window.start, keep)  # noqa: B023

        orders, sessions = increase("business_orders_total"), increase("business_sessions_total")
        assert orders > 0
        wanted = {
            "orders": orders,
            "sessions": sessions,
            "conversion": orders / sessions,
            "refunds": increase("business_refunds_total"),
            "payment_failures": increase("business_payment_attempts_total", matching(status="failed")),
            **{
                f"gmv_{currency}": increase("business_gmv_total", matching(currency=currency))
                for currency in ("EUR", "USD")
                if f"gmv_{currency}" in found
            },
        }
        for key, value in wanted.items():
            actual = getattr(found[key], attribute)
            assert close(actual, value), f"demo {attribute} of {key}: {actual!r}, expected {value!r}"
    charts = {chart.panel: chart.has_data for s in demo.report.sections for chart in s.charts}
    assert charts["Orders per hour"]
    assert charts["Daily active users"]
