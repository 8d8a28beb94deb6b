"""The collector contract: what every source of metrics in Pulse implements.

A collector is a named unit that, when asked, builds *fresh* metric families (client_python's
custom-collector style): no metric objects live between scrapes, only whatever state the collector
needs (a cursor, a cache), owned by the collector itself.

Most host statistics come from blocking calls (file reads, statvfs). `BlockingCollector` runs them
off the event loop, so it keeps answering `/metrics` and the health endpoints, and refuses to start
a second run while a previous one is still stuck (a hung NFS mount must not eat one thread per scrape).

A collector may also tell people how it is doing, on the landing page: `status_tables()` (say, each probe
target's last result) and `status_note()` (a remark beside its last scrape). Both return plain data,
`StatusTable` and `Cell`; the web layer renders them, knowing no collector type.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client.metrics_core import Metric


class CollectorBusyError(RuntimeError):
    """The previous run of this collector has not finished yet."""


class Collector(ABC):
    """A named source of metric families.

    `name` shows up as the `collector` label of `pulse_exporter_collector_duration_seconds` and
    `pulse_exporter_collector_success`. `config` is the section the collector was built from: after a
    reload, a collector whose name and config are unchanged is kept, state and all.
    """

    # A guest's families come from outside Pulse (the textfile directory): where one is named like a
    # family of Pulse's own, Pulse's is served and the guest's dropped.
    guest = False

    def __init__(self, name: str, config: object = None) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    async def collect(self) -> Sequence[Metric]:
        """Return this collection's metric families. Raise to report failure."""

    async def start(self, predecessor: Collector | None = None) -> None:  # noqa: B027 - optional hook
        """Start background work (schedules, connections). Called once, when the collector goes live.

        `predecessor` is the running collector of the same name that a reload replaces with this one;
        it is closed right after this one has started, so state worth keeping across the reload (counts,
        cursors, caches) can be taken over from it here."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (background tasks, connections). Called once, when the collector is dropped."""

    def status_tables(self) -> list[StatusTable]:
        """Tables of this collector's state for the landing page (optional)."""
        return []

    def status_note(self) -> Cell | None:
        """A remark beside this collector's last scrape on the landing page, e.g. when a successful
        scrape hides failures (optional)."""
        return None


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


# A cell's look: plain text; a result, coloured (ok, bad, or none: no result yet); an error message,
# which may be long and unbroken and wraps anywhere.
CellStyle = Literal["text", "ok", "bad", "none", "error"]


@dataclass(frozen=True)
class Link:
    label: str
    href: str  # relative to the landing page, e.g. "probe?target=...&module=..."


@dataclass(frozen=True)
class Cell:
    """One cell of a status table: `text` in `style`; or, when set, a moment or links instead."""

    text: str = ""
    style: CellStyle = "text"
    when: float | None = None  # a Unix time, shown as date, time and age: "... UTC (5 s ago)"
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class StatusTable:
    """A titled table for the landing page; left out while it has no rows."""

    title: str
    headings: tuple[str, ...]
    rows: Sequence[Sequence[Cell]]
    note: str = ""  # a line under the title


def milliseconds(seconds: float) -> str:
    """A duration as status tables show it: `12.3 ms`."""
    return f"{seconds * 1000:.1f} ms"
