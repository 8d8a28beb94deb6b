"""One scrape: run the collectors side by side, time each, and drop duplicate families from their results.

A collector that raises or overruns the timeout is reported as `success 0`, with the reason in its
Outcome; the others' metrics are served as usual (node_exporter's rule: one failing collector hides
nothing). Logging the reasons is the caller's choice (app.py logs changes, not every scrape).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector, Collector
from exporter.workers import WORKERS

log = logging.getLogger(__name__)

STALL_SECONDS = 0.5  # host collectors finish in well under a millisecond; this long means stuck


@dataclass(frozen=True)
class Outcome:
    collector: str
    families: Sequence[Metric]
    seconds: float
    success: bool
    error: str = ""  # why it failed, for logs and the landing page


class _BlockingBatch:
    """One scrape's blocking collectors, worked through by one worker thread (or more, on stalls).

    Workers record each outcome and wake the event loop once, when the last collector is done:
    waking it per collector cost more CPU than the collectors themselves (the loop thread and the
    worker then take turns at the GIL).
    """

    def __init__(self, collectors: list[BlockingCollector], loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending = deque(collectors)
        self.outcomes: dict[str, Outcome] = {}
        self.lock = threading.Lock()
        self.abandoned = threading.Event()  # the scrape has been answered: stop starting collectors
        self.done: asyncio.Future[None] = loop.create_future()
        self._total = len(collectors)
        if not collectors:
            self.done.set_result(None)

    def work(self) -> None:
        """Runs in a worker thread: take collectors from the queue until it is empty."""
        while not self.abandoned.is_set():
            with self.lock:
                if not self.pending:
                    return
                collector = self.pending.popleft()
            start = time.perf_counter()
            try:
                outcome = Outcome(collector.name, collector.run_guarded(), time.perf_counter() - start, True)
            except Exception as err:
                outcome = Outcome(collector.name, (), time.perf_counter() - start, False, _error_text(err))
            with self.lock:
                self.outcomes[collector.name] = outcome
                finished = len(self.outcomes) == self._total
            if finished:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
                    self.loop.call_soon_threadsafe(_resolve, self.done)

    async def run(self, deadline: float) -> None:
        """Work through the batch until done or `deadline`; a stalled worker gets a fresh helper."""
        if not self.done.done():
            WORKERS.submit(self.work)
        progress = -1
        while not self.done.done():
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.done), min(STALL_SECONDS, remaining))
            if self.pending and len(self.outcomes) == progress:
                log.warning("a collector is stalling; starting another worker for the rest")
                WORKERS.submit(self.work)
            progress = len(self.outcomes)
        self.abandoned.set()


async def collect_all(collectors: Sequence[Collector], timeout: float) -> list[Outcome]:
    """Run every collector within `timeout` seconds; outcomes in the order of `collectors`.

    Blocking collectors run one after another in a worker thread (parallel threads only queue for
    the GIL: measured slower); if one stalls for STALL_SECONDS, a fresh worker takes over the
    collectors still waiting, so a hung one delays no one else. Async collectors run on the loop.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    batch = _BlockingBatch([c for c in collectors if isinstance(c, BlockingCollector)], loop)

    async def run_async(collector: Collector) -> Outcome:
        start = time.perf_counter()
        try:
            families = await asyncio.wait_for(collector.collect(), deadline - loop.time())
            return Outcome(collector.name, families, time.perf_counter() - start, True)
        except TimeoutError:
            error = _timed_out(timeout)
        except Exception as err:
            error = _error_text(err)
        return Outcome(collector.name, (), time.perf_counter() - start, False, error)

    blocking_done = asyncio.ensure_future(batch.run(deadline))
    async_outcomes = await asyncio.gather(*(run_async(c) for c in collectors if not isinstance(c, BlockingCollector)))
    await blocking_done
    by_name = {o.collector: o for o in async_outcomes}
    with batch.lock:
        by_name.update(batch.outcomes)
    result = []
    for collector in collectors:
        outcome = by_name.get(collector.name)
        if outcome is None:  # a blocking collector that did not finish in time
            outcome = Outcome(collector.name, (), timeout, False, _timed_out(timeout))
        result.append(outcome)
    return result


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _timed_out(timeout: float) -> str:
    return f"timed out after {timeout:.1f}s"


def _error_text(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def unique_families(families: Iterable[Metric]) -> list[Metric]:
    """The families without any whose name an earlier one already has (logged as an error)."""
    unique: list[Metric] = []
    names: set[str] = set()
    for family in families:
        if family.name in names:
            # Two families under one name would make the whole scrape invalid for Prometheus.
            log.error("metric family exposed twice; dropping the second", extra={"metric": family.name})
            continue
        names.add(family.name)
        unique.append(family)
    return unique
