"""The KPI collector: every query on its own schedule in the background; scrapes read the cache.

`start()` opens the sources and starts one asyncio task per query; `close()` cancels them and
closes the sources. A scrape (`collect()`) never touches a database: it serves families built from
the cached series (rebuilt after each run), so any number of Prometheus replicas cause one execution
per query per interval.

A failing query is a metric and a log line, never a crash, and never removes another query's
series. Failures are logged when they start, change or end, not at every run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.base import Cell, Collector, StatusTable
from exporter.kpis.config import KpisConfig
from exporter.kpis.errors import QueryError, QueryTimeoutError, SourceDownError, SourceRefusedError, SourceStalledError
from exporter.kpis.resolved import ResolvedQuery
from exporter.kpis.schedule import Schedule
from exporter.kpis.series import MetricState, family_specs
from exporter.kpis.sources import kind_of
from exporter.kpis.sources.base import Opening, Source
from exporter.workers import run_in_daemon_thread

log = logging.getLogger(__name__)

STATUSES = ("success", "error", "timeout")


class QueryRunner:
    """One query's schedule, cursor, series and freshness."""

    def __init__(self, query: ResolvedQuery) -> None:
        self.query = query
        self.schedule = Schedule(query.interval, query.config.schedule, query.config.run_on_start)
        self.cursor_config = query.config.cursor
        self.cursor: Any = self.cursor_config.initial if self.cursor_config else None
        self.states = {m.name: MetricState(m, cumulative=self.cursor_config is not None) for m in query.metrics}
        self.counts = dict.fromkeys(STATUSES, 0)
        self.ran = False
        self.last_success = False
        self.last_duration = 0.0
        self.last_success_time = 0.0
        self.last_error = ""
        self.in_flight: asyncio.Future[Any] | None = None  # a source call we stopped waiting for (stalled)
        self.lock = asyncio.Lock()  # one run at a time, even while a reload hands the runner over
        self.generation = 0  # runs completed: the cached families are stale when this moves


class KpiCollector(Collector):
    def __init__(self, config: KpisConfig) -> None:
        super().__init__("kpis", config)
        self.kpis = config
        self.queries = config.resolved_queries()
        self.runners = {q.name: QueryRunner(q) for q in self.queries}
        states = {(r.query.name, name): state for r in self.runners.values() for name, state in r.states.items()}
        self.families = family_specs(self.queries, states)
        self.sources: dict[str, Source] = {}
        self.source_errors: dict[str, str] = {}  # sources that could not even be set up
        self.source_up: dict[str, bool] = {}
        self.source_last_error: dict[str, str] = {}  # why each source was last found unreachable
        self._tasks: list[asyncio.Task[None]] = []
        self._families_cache: list[Metric] | None = None  # what collect() returns until the next change
        self._cache_generations: tuple[int, ...] = ()

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self, predecessor: Collector | None = None) -> None:
        self.open_sources()
        if isinstance(predecessor, KpiCollector):
            self._adopt_unchanged_queries(predecessor)
        for runner in self.runners.values():
            self._tasks.append(asyncio.create_task(self._loop(runner), name=f"kpi-query-{runner.query.name}"))
        log.info("KPI queries scheduled", extra={"queries": len(self.runners), "sources": len(self.kpis.sources)})

    def _adopt_unchanged_queries(self, previous: KpiCollector) -> None:
        """Take over the state of queries a reload did not change (same query, same source config):
        their series, cursors and counts carry on, with no gap on /metrics and no recount of history.
        The collector being replaced is closed right after this one starts; its runs are serialized
        with ours by each runner's lock, and a run it has in flight is cancelled, not applied."""
        adopted = 0
        for name, runner in self.runners.items():
            old = previous.runners.get(name)
            same_source = previous.kpis.sources.get(runner.query.source) == self.kpis.sources.get(runner.query.source)
            if old is not None and old is not runner and old.query == runner.query and same_source:
                self.runners[name] = old
                adopted += 1
        for source, up in previous.source_up.items():
            if previous.kpis.sources.get(source) == self.kpis.sources.get(source):
                self.source_up.setdefault(source, up)
                if source in previous.source_last_error:
                    self.source_last_error.setdefault(source, previous.source_last_error[source])
        if adopted:
            states = {(r.query.name, n): state for r in self.runners.values() for n, state in r.states.items()}
            self.families = family_specs(self.queries, states)
            self._families_cache = None
            log.info("KPI queries kept across the reload", extra={"queries": adopted})

    def open_sources(self) -> None:
        """Set up every source (no connection yet: SQL pools connect on first use)."""
        longest = dict.fromkeys(self.kpis.sources, 0.0)
        for query in self.queries:
            longest[query.source] = max(longest[query.source], query.timeout)
        for name, source_config in self.kpis.sources.items():
            try:
                opening = Opening(longest_timeout=longest[name], run_blocking=run_in_daemon_thread)
                self.sources[name] = kind_of(source_config).open(name, source_config, opening)
            except Exception as err:  # e.g. a driver that is not installed: this source's queries fail
                self.source_errors[name] = f"cannot set up source: {type(err).__name__}: {err}"
                log.error("KPI source cannot be set up", extra={"source": name, "err": self.source_errors[name]})

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for source in self.sources.values():
            await source.close()
        self.sources.clear()

    async def _loop(self, runner: QueryRunner) -> None:
        while True:
            await asyncio.sleep(runner.schedule.seconds_until_next())
            runner.schedule.started()
            try:
                await self.run_query(runner)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end this query's schedule
                log.exception("KPI query run failed unexpectedly", extra={"query": runner.query.name})

    # ------------------------------------------------------------------------------------ one run

    async def run_query(self, runner: QueryRunner) -> None:
        """Run a query once and record the outcome (public so tests can drive runs directly)."""
        async with runner.lock:
            try:
                await self._run_query(runner)
            finally:
                runner.generation += 1

    async def _run_query(self, runner: QueryRunner) -> None:
        query = runner.query
        started = time.monotonic()
        status, error = "success", ""
        try:
            await self._execute(runner)
        except QueryTimeoutError as err:
            status, error = "timeout", f"query {query.name}: {err}"
        except SourceDownError as err:
            status, error = "error", f"query {query.name}: source {query.source} unreachable: {err}"
            self._set_source_up(query.source, False, str(err))
        except SourceRefusedError as err:  # reachable, but not to be used as it is: down until fixed
            status, error = "error", f"query {query.name}: {err}"
            self._set_source_up(query.source, False, str(err))
        except QueryError as err:
            status, error = "error", str(err) if str(err).startswith("query ") else f"query {query.name}: {err}"
        except Exception as err:  # a driver's own exception type, an odd value: still this query's error
            status, error = "error", f"query {query.name}: {type(err).__name__}: {err}"
        runner.last_duration = time.monotonic() - started
        runner.counts[status] += 1
        previous_ok, previous_error, first = runner.last_success, runner.last_error, not runner.ran
        runner.ran = True
        runner.last_success = status == "success"
        runner.last_error = error
        if runner.last_success:
            runner.last_success_time = time.time()
            if not previous_ok and not first:
                log.info("KPI query recovered", extra={"query": query.name, "source": query.source})
        elif first or previous_ok or error != previous_error:
            log.warning(
                "KPI query failed", extra={"query": query.name, "source": query.source, "status": status, "err": error}
            )

    async def _execute(self, runner: QueryRunner) -> None:
        query = runner.query
        if query.source in self.source_errors:
            raise QueryError(self.source_errors[query.source])
        source = self.sources[query.source]
        if runner.in_flight is not None and not runner.in_flight.done():
            raise QueryTimeoutError("the previous run is still waiting for the database")
        try:
            fetched = await source.fetch(query, runner.cursor)
        except SourceStalledError as err:
            runner.in_flight = err.pending
            self._set_source_up(query.source, False, str(err))
            raise
        except QueryError:
            self._set_source_up(query.source, True)  # it answered, with an error of the query's own
            raise
        self._set_source_up(query.source, True)
        runner.cursor = fetched.cursor
        now = time.monotonic()
        for name, metric_samples in fetched.samples.items():
            runner.states[name].update(metric_samples, now)

    def _set_source_up(self, name: str, up: bool, error: str = "") -> None:
        previous = self.source_up.get(name)
        self.source_up[name] = up
        if not up:
            self.source_last_error[name] = error
        if previous is None or previous == up:
            return
        source = self.sources.get(name)
        where = source.where if source is not None else ""
        if up:
            log.info("KPI source is reachable again", extra={"source": name, "target": where})
        else:
            log.warning("KPI source is unreachable", extra={"source": name, "target": where, "err": error})

    # ------------------------------------------------------------------------------------ scrape

    async def collect(self) -> Sequence[Metric]:
        """The cached families; rebuilt only after a run or when series expire (families change
        then and only then, so N scrapes between two runs share one build)."""
        now = time.monotonic()
        for runner in self.runners.values():
            # Between two runs nothing expires (expire_after may be 0: "only the last run's series");
            # a query that stopped succeeding loses its series once they are older than expire_after.
            grace = runner.query.period + runner.query.timeout
            for state in runner.states.values():
                if state.expire(now, max(state.metric.expire_after, grace)):
                    self._families_cache = None
        generations = tuple(runner.generation for runner in self.runners.values())
        if self._families_cache is None or generations != self._cache_generations:
            families = [spec.build() for spec in self.families]
            families.extend(self._self_metrics())
            self._families_cache, self._cache_generations = families, generations
        return self._families_cache

    def _self_metrics(self) -> list[Metric]:
        success = GaugeMetricFamily(
            "pulse_kpi_query_success",
            "Whether the last run of each KPI query succeeded (1) or not (0).",
            labels=["query"],
        )
        duration = GaugeMetricFamily(
            "pulse_kpi_query_duration_seconds", "How long the last run of each KPI query took.", labels=["query"]
        )
        last_success = GaugeMetricFamily(
            "pulse_kpi_query_last_success_timestamp_seconds",
            "When each KPI query last succeeded (Unix time; 0 if it has run but never succeeded). "
            "Alert on time() minus this for stale KPIs.",
            labels=["query"],
        )
        interval = GaugeMetricFamily(
            "pulse_kpi_query_interval_seconds",
            "How often each KPI query runs (for a cron schedule: the shortest gap between runs).",
            labels=["query"],
        )
        runs = CounterMetricFamily(
            "pulse_kpi_queries", "KPI query runs by outcome (success, error, timeout).", labels=["query", "status"]
        )
        for name, runner in self.runners.items():
            interval.add_metric([name], runner.query.period)
            for status in STATUSES:
                runs.add_metric([name, status], runner.counts[status])
            if runner.ran:
                success.add_metric([name], 1 if runner.last_success else 0)
                duration.add_metric([name], runner.last_duration)
                last_success.add_metric([name], runner.last_success_time)
        up = GaugeMetricFamily(
            "pulse_kpi_source_up",
            "Whether each KPI source answered its last query (1) or could not be reached or was refused (0).",
            labels=["source"],
        )
        for name in self.kpis.sources:
            if name in self.source_errors:
                up.add_metric([name], 0)
            elif name in self.source_up:
                up.add_metric([name], 1 if self.source_up[name] else 0)
        series = GaugeMetricFamily("pulse_kpi_series", "Series each KPI metric exposes now.", labels=["metric"])
        dropped = CounterMetricFamily(
            "pulse_kpi_series_dropped",
            "Series of each KPI metric dropped because the metric reached its series_limit.",
            labels=["metric"],
        )
        for spec in self.families:
            series.add_metric([spec.name], sum(len(state.series) for state, _ in spec.states))
            dropped.add_metric([spec.name], sum(state.dropped_total for state, _ in spec.states))
        return [success, duration, last_success, interval, runs, up, series, dropped]

    # ------------------------------------------------------------------------------------ landing page

    def status_tables(self) -> list[StatusTable]:
        sources, queries = kpi_status(self)
        return [_source_table(sources), _query_table(queries)]

    def status_note(self) -> Cell:
        # It serves cached results: a successful scrape says nothing of whether the queries work.
        queries = kpi_status(self)[1]
        failing = sum(1 for q in queries if q.ran and not q.success)
        if failing:
            return Cell(f"{failing} of {len(queries)} queries failing", "bad")
        return Cell("served from the last runs", "none")


# ------------------------------------------------------------------------------------ status (landing page)


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str  # the source kind's name: "sql", "http"
    where: str  # the source's own description, without credentials (the DSN or URL)
    up: bool | None  # None: no query has reached it yet
    error: str  # why it is down (or could not be set up); empty while up


@dataclass(frozen=True)
class QueryStatus:
    name: str
    source: str
    ran: bool
    success: bool  # of the last run
    last_success_time: float  # Unix time; 0 if it never succeeded
    error: str  # of the last run; empty after a success
    runs: dict[str, int]  # by status: success, error, timeout


def kpi_status(collector: KpiCollector) -> tuple[list[SourceStatus], list[QueryStatus]]:
    """A read-only snapshot of each source's and each query's state, for the landing page."""
    sources = []
    for name, config in collector.kpis.sources.items():
        kind = kind_of(config).name
        source = collector.sources.get(name)
        where = source.where if source is not None else ""
        if name in collector.source_errors:
            sources.append(SourceStatus(name, kind, where, False, collector.source_errors[name]))
        else:
            up = collector.source_up.get(name)
            error = collector.source_last_error.get(name, "") if up is False else ""
            sources.append(SourceStatus(name, kind, where, up, error))
    queries = [
        QueryStatus(
            name,
            runner.query.source,
            runner.ran,
            runner.last_success,
            runner.last_success_time,
            runner.last_error,
            dict(runner.counts),
        )
        for name, runner in collector.runners.items()
    ]
    return sources, queries


def _source_table(sources: Sequence[SourceStatus]) -> StatusTable:
    rows = []
    for source in sources:
        if source.up is None:
            state = Cell("not queried yet", "none")
        else:
            state = Cell("up", "ok") if source.up else Cell("DOWN", "bad")
        rows.append([Cell(source.name), Cell(source.kind), Cell(source.where), state, Cell(source.error, "error")])
    return StatusTable("KPI sources", ("Source", "Kind", "Where", "State", "Last error"), rows)


def _query_table(queries: Sequence[QueryStatus]) -> StatusTable:
    rows = []
    for query in queries:
        if not query.ran:
            state = Cell("not run yet", "none")
        else:
            state = Cell("ok", "ok") if query.success else Cell("FAILING", "bad")
        last_success = Cell(when=query.last_success_time) if query.last_success_time else Cell("never")
        runs = ", ".join(f"{count} {status}" for status, count in query.runs.items())
        rows.append([Cell(query.name), Cell(query.source), state, last_success, Cell(query.error, "error"), Cell(runs)])
    return StatusTable("KPI queries", ("Query", "Source", "State", "Last success", "Last error", "Runs"), rows)
