"""The collector contract: what every source of metrics in Pulse implements.

A collector is a named unit that, when asked, builds *fresh* metric families (client_python's
custom-collector style): no metric objects live between scrapes, only whatever state the collector
needs (a cursor, a cache), owned by the collector itself.

Most host statistics come from blocking calls (file reads, statvfs). `BlockingCollector` runs them
off the event loop, so it keeps answering `/metrics` and the health endpoints, and refuses to start
a second run while a previous one is still stuck (a hung NFS mount must not eat one thread per scrape).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence

from prometheus_client.metrics_core import Metric


class CollectorBusyError(RuntimeError):
    """The previous run of this collector has not finished yet."""


class Collector(ABC):
    """A named source of metric families.

    `name` shows up as the `collector` label of `pulse_exporter_collector_duration_seconds` and
    `pulse_exporter_collector_success`. `config` is the section the collector was built from: after a
    reload, a collector whose name and config are unchanged is kept, state and all.
    """

    def __init__(self, name: str, config: object = None) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    async def collect(self) -> Sequence[Metric]:
        """Return this collection's metric families. Raise to report failure."""

    async def start(self) -> None:  # noqa: B027 - optional hook, most collectors need none
        """Start background work (schedules, connections). Called once, when the collector goes live."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (background tasks, connections). Called once, when the collector is dropped."""


class BlockingCollector(Collector):
    """A collector whose work is synchronous: it runs in a worker thread, one run at a time.

    A scrape runs all blocking collectors one after another in a single worker thread (see
    scrape.py): parallel threads would only queue for the GIL and made scrapes slower, measured.
    """

    def __init__(self, name: str, config: object = None) -> None:
        super().__init__(name, config)
        self._busy = threading.Lock()

    @abstractmethod
    def collect_blocking(self) -> Sequence[Metric]:
        """Build the metric families; runs in a worker thread."""

    def run_guarded(self) -> Sequence[Metric]:
        """collect_blocking(), unless a previous run is still stuck in it."""
        if not self._busy.acquire(blocking=False):
            raise CollectorBusyError("the previous collection is still running")
        try:
            return self.collect_blocking()
        finally:
            self._busy.release()

    async def collect(self) -> Sequence[Metric]:
        """For direct use; a scrape runs its blocking collectors in one batch instead (scrape.py)."""
        return await asyncio.to_thread(self.run_guarded)
