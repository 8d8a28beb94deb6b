"""One scrape: run the collectors side by side, time each, and encode what they returned.

A collector that raises or overruns the timeout is reported as `success 0` with a log line; the
others' metrics are served as usual (node_exporter's rule: one failing collector hides nothing).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector, Collector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    collector: str
    families: Sequence[Metric]
    seconds: float
    success: bool


async def collect_all(collectors: Sequence[Collector], timeout: float) -> list[Outcome]:
    """Run every collector within `timeout` seconds; outcomes in the order of `collectors`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    blocking = [c for c in collectors if isinstance(c, BlockingCollector)]
    # Each blocking collector's result: its families, or the error it raised, and its own run time.
    results: dict[str, asyncio.Future[Outcome]] = {c.name: loop.create_future() for c in blocking}
    abandoned = threading.Event()

    def run_blocking() -> None:
        for collector in blocking:
            if abandoned.is_set():
                return  # the scrape has been answered; later collectors would be wasted work
            start = time.perf_counter()
            try:
                outcome = Outcome(collector.name, collector.run_guarded(), time.perf_counter() - start, True)
            except Exception as err:
                _log_failure(collector.name, err)
                outcome = Outcome(collector.name, (), time.perf_counter() - start, False)
            loop.call_soon_threadsafe(_settle, results[collector.name], outcome)

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

    if blocking:
        loop.run_in_executor(None, run_blocking)
    try:
        return list(await asyncio.gather(*(one(c) for c in collectors)))
    finally:
        abandoned.set()


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _log_failure(collector: str, err: Exception) -> None:
    log.warning("collector failed", extra={"collector": collector, "err": f"{type(err).__name__}: {err}"})


class _Snapshot(CollectorRegistry):
    """A registry that serves a fixed list of families, so the standard encoders can write it."""

    def __init__(self, families: Sequence[Metric]) -> None:
        super().__init__(auto_describe=False)
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


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
    encoder, content_type = choose_encoder(accept_header)
    return encoder(_Snapshot(unique)), content_type
