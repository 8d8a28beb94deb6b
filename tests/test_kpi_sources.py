"""The KPI source interface, as the engine uses it: any `Source` will do, whatever its kind.

The SQL and HTTP sources have their own tests (test_kpi_readonly.py, test_kpi_http.py, ...); these
hold the engine to the contract in exporter/kpis/sources/base.py with a source written here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exporter.exposition import encode_text
from exporter.kpis.config import KpisConfig
from exporter.kpis.engine import KpiCollector, kpi_status
from exporter.kpis.errors import QueryError, SourceStalledError
from exporter.kpis.resolved import ResolvedQuery
from exporter.kpis.sources import SOURCE_KINDS, source_kind
from exporter.kpis.sources.base import Fetched, Source
from tests.helpers import parse_samples

CONFIG = {
    "sources": {"api": {"url": "http://127.0.0.1:9/"}},
    "queries": [{"name": "orders", "source": "api", "metrics": [{"name": "shop_orders", "value": "n"}]}],
}


class ScriptedSource(Source):
    """Answers each fetch with the next of `answers`: a Fetched, or an exception to raise."""

    def __init__(self, answers: list[Fetched | Exception]) -> None:
        super().__init__("api", "scripted://api")
        self.answers = answers
        self.closed = False

    async def fetch(self, query: ResolvedQuery, cursor: Any) -> Fetched:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        self.closed = True


def run(collector: KpiCollector, runs: int) -> dict[str, float]:
    async def go() -> dict[str, float]:
        for _ in range(runs):
            await collector.run_query(collector.runners["orders"])
        return parse_samples(encode_text(await collector.collect()).decode())

    return asyncio.run(go())


def collector_with(source: Source) -> KpiCollector:
    collector = KpiCollector(KpisConfig.model_validate(CONFIG))
    collector.sources["api"] = source
    return collector


def test_a_source_of_any_kind_feeds_metrics_and_the_landing_page() -> None:
    source = ScriptedSource([Fetched({"shop_orders": {(): 7.0}}, None)])
    collector = collector_with(source)
    samples = run(collector, 1)
    assert samples["shop_orders"] == 7
    assert samples['pulse_kpi_source_up{source="api"}'] == 1
    sources, queries = kpi_status(collector)
    assert [(s.name, s.kind, s.where, s.up) for s in sources] == [("api", "http", "scripted://api", True)]
    assert queries[0].success
    asyncio.run(collector.close())
    assert source.closed


def test_a_query_error_means_the_source_answered() -> None:
    collector = collector_with(ScriptedSource([QueryError("HTTP 404 from scripted://api")]))
    samples = run(collector, 1)
    assert samples['pulse_kpi_source_up{source="api"}'] == 1
    assert kpi_status(collector)[1][0].error == "query orders: HTTP 404 from scripted://api"


def test_a_stalled_source_is_down_and_its_query_waits_for_the_pending_call() -> None:
    async def go() -> tuple[dict[str, float], list[str]]:
        pending: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        collector = collector_with(ScriptedSource([SourceStalledError("no answer", pending)]))
        runner = collector.runners["orders"]
        errors = []
        for _ in range(2):  # the second run is skipped: the first one's call has not ended
            await collector.run_query(runner)
            errors.append(runner.last_error)
        pending.cancel()
        return parse_samples(encode_text(await collector.collect()).decode()), errors

    samples, errors = asyncio.run(go())
    assert errors == ["query orders: no answer", "query orders: the previous run is still waiting for the database"]
    assert samples['pulse_kpi_queries_total{query="orders",status="timeout"}'] == 2
    assert samples['pulse_kpi_source_up{source="api"}'] == 0


@pytest.mark.parametrize(
    ("entry", "kind"),
    [({"dsn": "sqlite://"}, "sql"), ({"dsn_file": "dsn"}, "sql"), ({"url": "http://x"}, "http"), ({"x": 1}, None)],
)
def test_an_entry_is_of_the_kind_whose_keys_it_has(entry: dict[str, Any], kind: str | None) -> None:
    found = source_kind(entry)
    assert (found.name if found else None) == kind
    assert kind is None or SOURCE_KINDS[kind] is found
