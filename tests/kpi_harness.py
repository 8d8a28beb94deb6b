"""Drive a KPI collector from a test: build it from a config dict, run its queries, read /metrics text.

Runs are triggered explicitly (`harness.run("query")`), not by the schedule, so tests do not depend
on timing; the schedule itself is exercised by the process tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from exporter.exposition import encode_text
from exporter.kpis.config import KpisConfig
from exporter.kpis.engine import KpiCollector
from tests.helpers import parse_samples


class Harness:
    def __init__(self, config: dict[str, Any], runner: asyncio.Runner) -> None:
        self.config = KpisConfig.model_validate(config)
        self.collector = KpiCollector(self.config)
        self._runner = runner
        self.collector.open_sources()

    def run(self, *queries: str) -> None:
        """Run the named queries (all of them if none are named) once, in order."""
        for name in queries or tuple(self.collector.runners):
            self._runner.run(self.collector.run_query(self.collector.runners[name]))

    def run_together(self, *queries: str) -> None:
        """Run the named queries once, all at the same time."""
        runs = [self.collector.run_query(self.collector.runners[name]) for name in queries]

        async def together() -> None:
            await asyncio.gather(*runs)

        self._runner.run(together())

    def text(self) -> str:
        families = self._runner.run(self.collector.collect())
        return encode_text(families).decode()

    def samples(self) -> dict[str, float]:
        return parse_samples(self.text())

    def value(self, series: str) -> float | None:
        return self.samples().get(series)

    def close(self) -> None:
        self._runner.run(self.collector.close())


@contextmanager
def kpi_harness(config: dict[str, Any]) -> Iterator[Harness]:
    with asyncio.Runner() as runner:
        harness = Harness(config, runner)
        try:
            yield harness
        finally:
            harness.close()
