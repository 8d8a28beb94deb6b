"""The status page's data: what the platform's own users may know, and nothing more.

For each service of `services:` marked public, by its title only (never its key, hosts or instances):
- its current state, from the probes' `probe_success` of the last five minutes (every probe series
  carrying its `service` label, averaged): 1 operational, 0 down, in between degraded; no sample
  unknown; a maintenance window in progress overrides them all;
- its uptime over the last `status.days` days (days of `reports.timezone`, today so far included): the
  share of successful probes per day and over all those days, from range queries for all services at
  once (sums and counts of samples per day, so a day with fewer samples weighs less in the total; two
  per run of days of one length, as the 23- and 25-hour days of a clock change cut the runs);
- open incidents of critical or warning severity, one line per service (its worst severity, since its
  earliest start, acknowledged or not): never an alert's name, labels, annotations or text;
- maintenance windows in progress and to come, with their comment (written for users).

Prometheus or the journal may be unreachable: the page still answers and says so plainly. Building
blocks (HTTP, database): the web layer runs `build_status` in a worker thread and caches the result
(`StatusAnswers`), so a crowd of anonymous visitors costs one build per `status.cache_for`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import httpx

from exporter.config.platform import EndpointConfig
from exporter.reports.periods import local_midnight
from exporter.status.config import PlatformConfig

if TYPE_CHECKING:  # SQLAlchemy is imported only when a journal is open
    from exporter.incidents.journal import Journal
    from exporter.incidents.model import Incident, Maintenance

log = logging.getLogger(__name__)

T = TypeVar("T")
State = Literal["operational", "degraded", "down", "maintenance", "unknown"]
Severity = Literal["critical", "warning"]
RECENT = "5m"  # the probes' window behind a current state: as the recording rule service:probe_success:avg_over_time5m
MAX_MAINTENANCE_SHOWN = 20
# What reading an answer that is not shaped as Prometheus' API promises raises: still "unknown", not a 500.
ODD_ANSWER = (AttributeError, KeyError, IndexError, TypeError, ValueError)
SEVERITIES: tuple[Severity, ...] = ("critical", "warning")  # worst first; other severities are not shown


@dataclass(frozen=True)
class Day:
    date: str  # the local date, 2026-12-07
    uptime: float | None  # share of successful probes that day (0 to 1); None: no probe ran


@dataclass(frozen=True)
class ServiceStatus:
    title: str
    state: State
    uptime: float | None  # over all the days shown; None without any probe data
    days: tuple[Day, ...]


@dataclass(frozen=True)
class PublicIncident:
    service: str  # the service's title
    severity: Severity
    started_at: float
    acknowledged: bool  # someone is working on it


@dataclass(frozen=True)
class PublicMaintenance:
    service: str  # the service's title
    starts_at: float
    ends_at: float
    comment: str


@dataclass(frozen=True)
class StatusPage:
    title: str
    generated_at: float
    timezone: str  # times are shown in reports.timezone
    days: int
    services: tuple[ServiceStatus, ...]
    incidents: tuple[PublicIncident, ...]
    maintenance: tuple[PublicMaintenance, ...]
    states_known: bool  # False: Prometheus could not be asked for the current states
    history_known: bool  # False: Prometheus could not be asked for the uptime history
    journal_known: bool  # False: the journal could not be read (or none is configured)

    @property
    def overall(self) -> State:
        """The headline: the worst state of any service; maintenance, being planned, ranks last."""
        states = {service.state for service in self.services}
        worst_first: tuple[State, ...] = ("down", "degraded", "unknown", "maintenance")
        return next((state for state in worst_first if state in states), "operational")

    def in_progress(self, window: PublicMaintenance) -> bool:
        return window.starts_at <= self.generated_at < window.ends_at

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "generated_at": iso(self.generated_at),
            "overall": self.overall,
            "days": self.days,
            "states_known": self.states_known,
            "history_known": self.history_known,
            "journal_known": self.journal_known,
            "services": [
                {
                    "title": service.title,
                    "state": service.state,
                    "uptime": service.uptime,
                    "days": [{"date": day.date, "uptime": day.uptime} for day in service.days],
                }
                for service in self.services
            ],
            "incidents": [
                {
                    "service": incident.service,
                    "severity": incident.severity,
                    "started_at": iso(incident.started_at),
                    "acknowledged": incident.acknowledged,
                }
                for incident in self.incidents
            ],
            "maintenance": [
                {
                    "service": window.service,
                    "starts_at": iso(window.starts_at),
                    "ends_at": iso(window.ends_at),
                    "comment": window.comment,
                    "in_progress": self.in_progress(window),
                }
                for window in self.maintenance
            ],
        }


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------ Prometheus


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or not as its API does."""


class Prometheus:
    """The two calls the page needs. The bearer token goes to `endpoint`'s origin only: no redirect is
    followed (httpx follows none unless asked)."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        headers = {"Authorization": f"Bearer {endpoint.bearer_token}"} if endpoint.bearer_token else {}
        self._http = httpx.Client(base_url=endpoint.base, timeout=endpoint.timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self._call("query", {"query": expr, "time": f"{at:.3f}"})

    def query_range(self, expr: str, start: int, end: int, step: int) -> list[dict[str, Any]]:
        return self._call("query_range", {"query": expr, "start": str(start), "end": str(end), "step": str(step)})

    def _call(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            response = self._http.post(f"/api/v1/{path}", data=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise PrometheusUnavailable(f"{type(err).__name__}: {err}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise PrometheusUnavailable(f"HTTP {response.status_code}: {str(body)[:200]}")
        result = body.get("data", {}).get("result")
        if not isinstance(result, list):
            raise PrometheusUnavailable(f"unexpected answer: {str(body)[:200]}")
        return result


def service_matcher(services: Sequence[str]) -> str:
    """`service=~"a|b\\.c"`: service names allow letters, digits, '_', '-' and '.', of which only the dot
    means something in a regex."""
    alternatives = "|".join(name.replace(".", "\\\\.") for name in services)
    return f'service=~"{alternatives}"'


def current_ratios(prometheus: Prometheus, services: Sequence[str], now: float) -> dict[str, float]:
    """Each service's share of successful probes over the last five minutes; absent without samples."""
    expr = f"avg by (service) (avg_over_time(probe_success{{{service_matcher(services)}}}[{RECENT}]))"
    found = {}
    for item in prometheus.query(expr, now):
        value = float(item["value"][1])
        if not math.isnan(value):
            found[item["metric"].get("service", "")] = value
    return found


@dataclass(frozen=True)
class DayBounds:
    date: str  # the local date
    start: int  # Unix seconds: its local midnight
    end: int  # the next local midnight (today's is still to come)

    @property
    def seconds(self) -> int:
        return self.end - self.start


def local_days(now: float, days: int, timezone: str) -> list[DayBounds]:
    """The days shown, oldest first, today last, bounded by local midnights: a day lasts 23 or 25 hours
    when the clocks change."""
    zone = ZoneInfo(timezone)
    today = datetime.fromtimestamp(now, zone).date()
    dates = [today - timedelta(days=back) for back in range(days - 1, -2, -1)]
    midnights = [int(local_midnight(day, zone)) for day in dates]
    return [
        DayBounds(day.isoformat(), start, end)
        for day, start, end in zip(dates[:-1], midnights[:-1], midnights[1:], strict=True)
    ]


def uptime_history(
    prometheus: Prometheus, services: Sequence[str], now: float, days: int, timezone: str
) -> dict[str, tuple[list[Day], float | None]]:
    """Per service, each day's share of successful probe samples (oldest first) and the share over all
    the days. A range query's point at a day's end covers that day (its window is the day's length);
    today's end is the coming midnight, so it covers today so far. One range query per run of days of
    one length (two runs and a 23- or 25-hour day between them around a clock change). Sums and counts
    rather than averages: the overall figure weighs each day by its samples (today's few count less)."""
    bounds = local_days(now, days, timezone)
    sums: dict[str, dict[int, float]] = {}
    counts: dict[str, dict[int, float]] = {}
    for run in _runs_of_one_length(bounds):
        span = (run[0].end, run[-1].end, run[0].seconds)
        selector = f"probe_success{{{service_matcher(services)}}}[{run[0].seconds}s]"
        for found, function in ((sums, "sum_over_time"), (counts, "count_over_time")):
            answer = prometheus.query_range(f"sum by (service) ({function}({selector}))", *span)
            for service, points in _points(answer).items():
                found.setdefault(service, {}).update(points)
    result = {}
    for service in services:
        up, total = sums.get(service, {}), counts.get(service, {})
        daily = [Day(day.date, up.get(day.end, 0.0) / total[day.end] if total.get(day.end) else None) for day in bounds]
        samples = sum(total.values())
        result[service] = (daily, sum(up.values()) / samples if samples else None)
    return result


def _runs_of_one_length(bounds: Sequence[DayBounds]) -> list[list[DayBounds]]:
    runs: list[list[DayBounds]] = []
    for day in bounds:
        if runs and runs[-1][-1].seconds == day.seconds:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _points(result: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    return {
        item["metric"].get("service", ""): {int(float(t)): float(v) for t, v in item.get("values", [])}
        for item in result
    }


# ------------------------------------------------------------------------------------------ the journal


def public_incidents(open_incidents: Sequence[Incident], titles: Mapping[str, str]) -> list[PublicIncident]:
    """One line per public service with open incidents: its worst severity, since the earliest start.
    Only the service's title, a severity and times leave this function."""
    by_service: dict[str, list[Incident]] = {}
    for incident in open_incidents:
        if incident.service in titles and incident.severity in SEVERITIES:
            by_service.setdefault(incident.service, []).append(incident)
    shown = [
        PublicIncident(
            service=titles[service],
            severity=next(s for s in SEVERITIES if any(i.severity == s for i in incidents)),
            started_at=min(i.started_at for i in incidents),
            acknowledged=any(i.acknowledged_at is not None for i in incidents),
        )
        for service, incidents in by_service.items()
    ]
    return sorted(shown, key=lambda i: (SEVERITIES.index(i.severity), i.started_at, i.service))


def public_maintenance(windows: Sequence[Maintenance], titles: Mapping[str, str]) -> list[PublicMaintenance]:
    shown = [
        PublicMaintenance(titles[w.service], w.starts_at, w.ends_at, w.comment) for w in windows if w.service in titles
    ]
    return sorted(shown, key=lambda w: (w.starts_at, w.service))[:MAX_MAINTENANCE_SHOWN]


# ------------------------------------------------------------------------------------------ the page


def public_services(config: PlatformConfig) -> dict[str, str]:
    """The services shown: key -> title, in the config's order."""
    return {key: service.title for key, service in config.services.items() if service.public}


def build_status(config: PlatformConfig, journal: Journal | None, now: float | None = None) -> StatusPage:
    """The page as of `now` (blocking: HTTP and database calls). Never raises for an unreachable
    Prometheus or journal: what is unknown is marked so."""
    now = time.time() if now is None else now
    titles = public_services(config)
    keys = list(titles)
    days = config.status.days

    incidents: list[PublicIncident] = []
    windows: list[Maintenance] = []
    journal_known = journal is not None
    if journal is not None:
        from exporter.incidents.journal import JournalError  # noqa: PLC0415 - loaded with the journal already

        try:
            incidents = public_incidents(journal.incidents(open_only=True), titles)
            windows = journal.maintenance(since=now)
        except JournalError as err:
            log.warning("status page: cannot read the journal", extra={"err": str(err)})
            journal_known = False
    in_maintenance = {w.service for w in windows if w.starts_at <= now < w.ends_at}

    ratios: dict[str, float] | None = None
    history: dict[str, tuple[list[Day], float | None]] | None = None
    if keys and config.prometheus is not None:
        prometheus = Prometheus(config.prometheus)
        try:
            ratios = _asked(lambda: current_ratios(prometheus, keys, now), "current states")
            if ratios is not None:  # else it would only wait for the same timeout again
                history = _asked(
                    lambda: uptime_history(prometheus, keys, now, days, config.reports.timezone), "uptime history"
                )
        finally:
            prometheus.close()

    blank = [Day(day.date, None) for day in local_days(now, days, config.reports.timezone)]
    services = []
    for key, title in titles.items():
        state: State = "unknown" if ratios is None or key not in ratios else _state(ratios[key])
        if key in in_maintenance:
            state = "maintenance"
        daily, uptime = (history or {}).get(key, (blank, None))
        services.append(ServiceStatus(title, state, uptime, tuple(daily)))
    return StatusPage(
        title=config.status.title,
        generated_at=now,
        timezone=config.reports.timezone,
        days=days,
        services=tuple(services),
        incidents=tuple(incidents),
        maintenance=tuple(public_maintenance(windows, titles)),
        states_known=ratios is not None,
        history_known=history is not None,
        journal_known=journal_known,
    )


def _state(ratio: float) -> State:
    if ratio >= 1:
        return "operational"
    return "down" if ratio <= 0 else "degraded"


def _asked(question: Callable[[], T], what: str) -> T | None:
    try:
        return question()
    except (PrometheusUnavailable, *ODD_ANSWER) as err:
        log.warning("status page: cannot ask Prometheus", extra={"what": what, "err": str(err)})
        return None


# ------------------------------------------------------------------------------------------ answers


@dataclass(frozen=True)
class Answers:
    page: StatusPage
    html: bytes
    json: bytes


class StatusAnswers:
    """The last page built, reused for `max_age` seconds; one build at a time: visitors who arrive while
    it runs wait for it and share it. `key` holds what the page was built from (the config, the journal):
    when one of them is another object (a reload, the journal opening) the page is built afresh."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._built: tuple[tuple[object, ...], float, Answers] | None = None

    async def get(self, key: tuple[object, ...], max_age: float, build: Callable[[], Awaitable[Answers]]) -> Answers:
        async with self._lock:
            if self._built is not None:
                built_key, built_at, answers = self._built
                same = len(key) == len(built_key) and all(a is b for a, b in zip(key, built_key, strict=True))
                if same and time.monotonic() - built_at < max_age:
                    return answers
            answers = await build()
            self._built = (key, time.monotonic(), answers)
            return answers


def answers_for(page: StatusPage, render_html: Callable[[StatusPage], str]) -> Answers:
    body = json.dumps(page.to_json(), ensure_ascii=False, indent=1).encode() + b"\n"
    return Answers(page, render_html(page).encode(), body)
