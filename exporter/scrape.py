"""One scrape: run the collectors side by side, time each, and encode what they returned.

A collector that raises or overruns the timeout is reported as `success 0` with a log line; the
others' metrics are served as usual (node_exporter's rule: one failing collector hides nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from exporter import exposition
from exporter.collectors.base import BlockingCollector, Collector

log = logging.getLogger(__name__)

STALL_SECONDS = 0.5  # host collectors finish in well under a millisecond; this long means stuck


class DaemonWorkers:
    """Threads for blocking collectors. Daemon threads, unlike asyncio's default executor: a
    collector stuck in the kernel (statvfs on a dead NFS server) must not keep the exporter from
    exiting on SIGTERM. A thread is added whenever none is idle, so a stuck one never blocks others."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._tasks.put(task)
        if spawn:
            threading.Thread(target=self._work, name="pulse-collector", daemon=True).start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                task()
            except Exception:
                log.exception("collector worker task failed")
            with self._lock:
                self._idle += 1


WORKERS = DaemonWorkers()


@dataclass(frozen=True)
class Outcome:
    collector: str
    families: Sequence[Metric]
    seconds: float
    success: bool


async def collect_all(collectors: Sequence[Collector], timeout: float) -> list[Outcome]:
    """Run every collector within `timeout` seconds; outcomes in the order of `collectors`.

    Blocking collectors run one after another in a worker thread (parallel threads only queue for
    the GIL: measured slower). If that worker stalls in one collector for STALL_SECONDS, a fresh
    worker takes over the collectors still waiting, so a hung one delays no one else.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = deque(c for c in collectors if isinstance(c, BlockingCollector))
    results: dict[str, asyncio.Future[Outcome]] = {c.name: loop.create_future() for c in pending}
    queue_lock = threading.Lock()
    abandoned = threading.Event()

    def run_blocking() -> None:
        while not abandoned.is_set():  # once the scrape is answered, later collectors are wasted work
            with queue_lock:
                if not pending:
                    return
                collector = pending.popleft()
            start = time.perf_counter()
            try:
                outcome = Outcome(collector.name, collector.run_guarded(), time.perf_counter() - start, True)
            except Exception as err:
                _log_failure(collector.name, err)
                outcome = Outcome(collector.name, (), time.perf_counter() - start, False)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, results[collector.name], outcome)

    async def watch_for_stalls() -> None:
        settled = -1
        while pending:
            done = sum(f.done() for f in results.values())
            if done == settled:
                log.warning("a collector is stalling; starting another worker for the rest")
                WORKERS.submit(run_blocking)
            settled = done
            await asyncio.sleep(STALL_SECONDS)

    async def one(collector: Collector) -> Outcome:
        start = time.perf_counter()
        try:
            if collector.name in results:
                return await asyncio.wait_for(asyncio.shield(results[collector.name]), deadline - loop.time())
            families = await asyncio.wait_for(collector.collect(), deadline - loop.time())
            return Outcome(collector.name, families, time.perf_counter() - start, True)
        except TimeoutError:
            log.warning("collector timed out", extra={"collector": collector.name, "timeout_seconds": timeout})
        except Exception as err:
            _log_failure(collector.name, err)
        return Outcome(collector.name, (), time.perf_counter() - start, False)

    watchdog = None
    if pending:
        WORKERS.submit(run_blocking)
        watchdog = asyncio.ensure_future(watch_for_stalls())
    try:
        return list(await asyncio.gather(*(one(c) for c in collectors)))
    finally:
        abandoned.set()
        if watchdog is not None:
            watchdog.cancel()


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _log_failure(collector: str, err: Exception) -> None:
    log.warning("collector failed", extra={"collector": collector, "err": f"{type(err).__name__}: {err}"})


def encode(families: Iterable[Metric], accept_header: str) -> tuple[bytes, str]:
    """Encode in the format the scraper asked for: OpenMetrics if it says so, else the text format."""
    unique: list[Metric] = []
    names: set[str] = set()
    for family in families:
        if family.name in names:
            # Two families under one name would make the whole scrape invalid for Prometheus.
            log.error("metric family exposed twice; dropping the second", extra={"metric": family.name})
            continue
        names.add(family.name)
        unique.append(family)
    return exposition.encode(unique, accept_header)
