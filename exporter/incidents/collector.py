"""The incidents collector: it owns the journal of a running Pulse (opened when it starts, closed when a
reload drops it) and exposes the journal's figures as metrics. The webhook writes through
`collector.journal` (the web layer finds it with `incidents_journal()` below).

Metrics (exporter/incidents/figures.py counts them in the database and bounds their labels):

    pulse_incidents_open{severity, team, service, acknowledged="true|false"}   gauge
    pulse_incidents_total{severity, team, service}                             counter: incidents recorded
    pulse_incident_oldest_unacknowledged_start_timestamp_seconds{severity, team, service}
        gauge, only while an open incident of that group is unacknowledged: when the oldest one began
    pulse_incident_time_to_acknowledge_seconds{severity, team}   histogram over acknowledged incidents
    pulse_incident_time_to_resolve_seconds{severity, team}       histogram over resolved incidents

Acknowledgement is a label of the open gauge rather than a second gauge: `sum without (acknowledged)` is
every open incident, `acknowledged="false"` those nobody has taken. Times count from the alert's start
(startsAt). An open incident is never in the time-to-resolve histogram (it has no such time yet): MTTR is
sum/count of that histogram, over resolved incidents only, and the open ones are the gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Collector, CollectorBusyError
from exporter.config.platform import EndpointConfig
from exporter.incidents.config import IncidentsConfig
from exporter.incidents.figures import BUCKETS, Figures, change_counter, read_figures
from exporter.workers import run_in_daemon_thread

if TYPE_CHECKING:  # SQLAlchemy (~25 MiB) is imported only when the journal opens
    from sqlalchemy.engine import Engine

    from exporter.incidents.journal import Journal

NAME = "incidents"
log = logging.getLogger(__name__)
SERVICE_LABELS = ("severity", "team", "service")
HISTOGRAM_LABELS = ("severity", "team")
_FOLDING = (
    "severity is critical, warning, info or other; team and service keep the first 20 and 50 values the "
    "journal saw, later ones are counted as other"
)


class IncidentsCollector(Collector):
    def __init__(self, config: IncidentsConfig, alertmanager: EndpointConfig | None = None) -> None:
        # Both sections make its config: a reload that changes Alertmanager's URL restarts the sync.
        super().__init__(NAME, (config, alertmanager))
        self.settings = config
        self.alertmanager = alertmanager
        self.journal: Journal | None = None
        self._silence_sync: asyncio.Task[None] | None = None
        self._reader: Engine | None = None
        self._busy = threading.Lock()
        # The last families, and SQLite's change counter when they were read: a scrape while nothing was
        # written since (the usual case) hands out the same families again (never changed once returned,
        # so the exposition's memo reuses their text too). The full reading takes a few hundred
        # milliseconds at 100,000 incidents (benchmarks/incidents_collect.py); this, about a millisecond.
        self._last: tuple[int, list[Metric]] | None = None

    async def start(self, predecessor: Collector | None = None) -> None:
        # Opening creates the database and its tables; a journal that cannot be opened fails the start
        # with the JournalError's message (the database named, its password hidden).
        from exporter.incidents.journal import Journal  # noqa: PLC0415 - see the imports above

        self.journal = await asyncio.to_thread(Journal, self.settings.database)
        self._reader = await asyncio.to_thread(read_only_engine, self.settings.database)
        if self.alertmanager is not None:
            self._silence_sync = asyncio.create_task(self._sync_silences(self.journal, self.alertmanager))

    async def _sync_silences(self, journal: Journal, alertmanager: EndpointConfig) -> None:
        """Every silence_sync_interval: Alertmanager's silences acknowledge incidents (silences.py)."""
        from exporter.incidents.silences import sync_silences  # noqa: PLC0415 - httpx, lazily

        failing = False  # log a failure when it starts and when it ends, not at every interval
        while True:
            try:
                result = await asyncio.to_thread(sync_silences, journal, alertmanager)
            except Exception as err:  # SilenceSyncError, JournalError, or a surprise: the loop outlives each
                if not failing:
                    log.warning("cannot read silences back from Alertmanager", extra={"err": str(err) or repr(err)})
                failing = True
            else:
                if failing:
                    log.info("reading silences from Alertmanager again")
                failing = False
                if result.acknowledged:
                    log.info("incidents acknowledged by silences", extra={"incidents": result.acknowledged})
            await asyncio.sleep(self.settings.silence_sync_interval)

    async def close(self) -> None:
        if self._silence_sync is not None:
            self._silence_sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._silence_sync
            self._silence_sync = None
        if self._reader is not None:
            await asyncio.to_thread(self._reader.dispose)
            self._reader = None
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)
            self.journal = None

    async def collect(self) -> Sequence[Metric]:
        reader = self._reader
        if reader is None:
            raise RuntimeError("the incident journal is not open")
        return await run_in_daemon_thread(lambda: self._read(reader))

    def _read(self, reader: Engine) -> list[Metric]:
        """One query in a worker thread; a second scrape while one is stuck (a locked database) fails at
        once rather than queueing threads."""
        if not self._busy.acquire(blocking=False):
            raise CollectorBusyError("the previous reading of the journal is still running")
        try:
            with reader.connect() as connection:
                version = change_counter(connection)
                if version is not None and self._last is not None and self._last[0] == version:
                    return self._last[1]
                fresh = families(read_figures(connection))
            self._last = None if version is None else (version, fresh)
            return fresh
        finally:
            self._busy.release()


def read_only_engine(url: str) -> Engine:
    """A small pool of its own for the scrapes, read-only (the journal's writes go through Journal)."""
    import sqlalchemy  # noqa: PLC0415 - see the imports above
    from sqlalchemy import event  # noqa: PLC0415

    if sqlalchemy.engine.make_url(url).get_backend_name() == "postgresql":
        return sqlalchemy.create_engine(
            url,
            pool_size=1,
            max_overflow=1,
            pool_pre_ping=True,
            connect_args={"options": "-c default_transaction_read_only=on -c statement_timeout=10000"},
        )
    # One connection, always the same (scrapes take turns, see _read): SQLite's change counter is per connection.
    engine = sqlalchemy.create_engine(
        url, poolclass=sqlalchemy.pool.StaticPool, connect_args={"check_same_thread": False, "timeout": 10}
    )

    @event.listens_for(engine, "connect")
    def _query_only(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA query_only=1")  # type: ignore[attr-defined]

    return engine


def families(figures: Figures) -> list[Metric]:
    """The figures as fresh metric families (client_python's custom-collector style)."""
    open_ = GaugeMetricFamily(
        "pulse_incidents_open",
        f"Incidents of the journal not resolved yet, acknowledged or not ({_FOLDING}).",
        labels=(*SERVICE_LABELS, "acknowledged"),
    )
    total = CounterMetricFamily(
        "pulse_incidents",
        f"Incidents recorded in the journal, one per alert firing (fingerprint and start) ({_FOLDING}).",
        labels=SERVICE_LABELS,
    )
    oldest = GaugeMetricFamily(
        "pulse_incident_oldest_unacknowledged_start_timestamp_seconds",
        "When the oldest open incident nobody has acknowledged began (its alert's startsAt); absent when "
        f"there is none ({_FOLDING}).",
        labels=SERVICE_LABELS,
    )
    for labels, own in sorted(figures.by_service.items()):
        open_.add_metric([*labels, "false"], own.open_unacknowledged)
        open_.add_metric([*labels, "true"], own.open_acknowledged)
        total.add_metric(list(labels), own.total)
        if own.oldest_unacknowledged_start is not None:
            oldest.add_metric(list(labels), own.oldest_unacknowledged_start)
    histograms = []
    for name, what, by_group in (
        ("pulse_incident_time_to_acknowledge_seconds", "acknowledged incidents, from start to acknowledgement",
         figures.acknowledge),
        ("pulse_incident_time_to_resolve_seconds", "resolved incidents, from start to resolution (open ones "
         "are not counted)", figures.resolve),
    ):  # fmt: skip
        family = HistogramMetricFamily(name, f"Time to act on {what} ({_FOLDING}).", labels=HISTOGRAM_LABELS)
        for group, histogram in sorted(by_group.items()):
            buckets = [(f"{bound:g}", float(count)) for bound, count in zip(BUCKETS, histogram.buckets, strict=True)]
            family.add_metric(list(group), [*buckets, ("+Inf", float(histogram.count))], histogram.sum)
        histograms.append(family)
    return [open_, total, oldest, *histograms]


def build(config: IncidentsConfig, alertmanager: EndpointConfig | None = None) -> list[Collector]:
    return [IncidentsCollector(config, alertmanager)] if config.enabled else []


def incidents_journal(collectors: Sequence[Collector]) -> Journal | None:
    """The running journal, if the incidents section is enabled and its collector started."""
    return next((c.journal for c in collectors if isinstance(c, IncidentsCollector)), None)
