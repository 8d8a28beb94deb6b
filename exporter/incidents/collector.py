"""The incidents collector: it owns the journal of a running Pulse (opened when it starts, closed when a
reload drops it) and exposes the journal's figures as metrics. The webhook writes through
`collector.journal` (the web layer finds it with `incidents_journal()` below).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Collector
from exporter.config.platform import EndpointConfig
from exporter.incidents.config import IncidentsConfig

if TYPE_CHECKING:  # SQLAlchemy (~25 MiB) is imported only when the journal opens
    from exporter.incidents.journal import Journal

NAME = "incidents"
log = logging.getLogger(__name__)


class IncidentsCollector(Collector):
    def __init__(self, config: IncidentsConfig, alertmanager: EndpointConfig | None = None) -> None:
        # Both sections make its config: a reload that changes Alertmanager's URL restarts the sync.
        super().__init__(NAME, (config, alertmanager))
        self.settings = config
        self.alertmanager = alertmanager
        self.journal: Journal | None = None
        self._silence_sync: asyncio.Task[None] | None = None

    async def start(self, predecessor: Collector | None = None) -> None:
        # Opening creates the database and its tables; a journal that cannot be opened fails the start
        # with the JournalError's message (the database named, its password hidden).
        from exporter.incidents.journal import Journal  # noqa: PLC0415 - see the imports above

        self.journal = await asyncio.to_thread(Journal, self.settings.database)
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
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)
            self.journal = None

    async def collect(self) -> Sequence[Metric]:
        return []  # the journal's metrics: open incidents, totals, time to acknowledge and to resolve


def build(config: IncidentsConfig, alertmanager: EndpointConfig | None = None) -> list[Collector]:
    return [IncidentsCollector(config, alertmanager)] if config.enabled else []


def incidents_journal(collectors: Sequence[Collector]) -> Journal | None:
    """The running journal, if the incidents section is enabled and its collector started."""
    return next((c.journal for c in collectors if isinstance(c, IncidentsCollector)), None)
