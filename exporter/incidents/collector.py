"""The incidents collector: it owns the journal of a running Pulse (opened when it starts, closed when a
reload drops it) and exposes the journal's figures as metrics. The webhook writes through
`collector.journal` (the web layer finds it with `incidents_journal()` below).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Collector
from exporter.incidents.config import IncidentsConfig

if TYPE_CHECKING:  # SQLAlchemy (~25 MiB) is imported only when the journal opens
    from exporter.incidents.journal import Journal

NAME = "incidents"


class IncidentsCollector(Collector):
    def __init__(self, config: IncidentsConfig) -> None:
        super().__init__(NAME, config)
        self.settings = config
        self.journal: Journal | None = None

    async def start(self, predecessor: Collector | None = None) -> None:
        # Opening creates the database and its tables; a journal that cannot be opened fails the start
        # with the JournalError's message (the database named, its password hidden).
        from exporter.incidents.journal import Journal  # noqa: PLC0415 - see the imports above

        self.journal = await asyncio.to_thread(Journal, self.settings.database)

    async def close(self) -> None:
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)
            self.journal = None

    async def collect(self) -> Sequence[Metric]:
        return []  # the journal's metrics: open incidents, totals, time to acknowledge and to resolve


def build(config: IncidentsConfig) -> list[Collector]:
    return [IncidentsCollector(config)] if config.enabled else []


def incidents_journal(collectors: Sequence[Collector]) -> Journal | None:
    """The running journal, if the incidents section is enabled and its collector started."""
    return next((c.journal for c in collectors if isinstance(c, IncidentsCollector)), None)
