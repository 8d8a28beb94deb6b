"""The `kpis:` section of pulse.yml: sources, packs and queries, and the checks across them.

Validation happens where the field lives, so the loader can point at the right line: a query's
`source` is checked inside the query model against the section's sources, which the section's wrap
validator declares (query_config.DECLARED_SOURCES) for the duration of its own validation.

`KpisConfig.resolved_queries()` turns the section into `ResolvedQuery` objects (resolved.py): packs
expanded, the section-level defaults (timeout, interval, series_limit, expire_after) filled in. The
engine only ever sees those. The parts live with their jobs: source kinds in sources/, queries and
metrics in query_config.py, packs in pack_config.py.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pydantic

from exporter.config.types import Duration, PositiveDuration, StrictModel
from exporter.kpis.pack_config import PackConfig
from exporter.kpis.query_config import DECLARED_SOURCES, DeclaredSources, QueryConfig, QueryRules, check_name
from exporter.kpis.resolved import ResolvedMetric, ResolvedQuery
from exporter.kpis.sources import AnySourceConfig, guess_query_kind, source_kind

DEFAULT_SERIES_LIMIT = 500
DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 60.0
EXPIRE_INTERVALS = 3  # a gauge series not returned for this many runs (by default) disappears


class KpisConfig(StrictModel):
    sources: dict[str, AnySourceConfig] = {}
    packs: list[PackConfig] = []
    queries: list[QueryConfig] = []
    # Defaults for every query / metric that does not set its own.
    interval: PositiveDuration = DEFAULT_INTERVAL
    timeout: PositiveDuration = DEFAULT_TIMEOUT
    series_limit: int = pydantic.Field(DEFAULT_SERIES_LIMIT, ge=1)
    expire_after: Duration | None = None  # default: 3 runs of the query (3 x interval)

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _with_sources_declared(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
        kinds: dict[str, QueryRules | None] = {}
        if isinstance(data, dict) and isinstance(data.get("sources"), dict):
            kinds = {str(name): source_kind(raw) for name, raw in data["sources"].items()}
        return DECLARED_SOURCES.validate_within(DeclaredSources(kinds, guess_query_kind), handler, data)

    @pydantic.field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            check_name(name, "source name")
        return value

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> KpisConfig:
        queries = self.resolved_queries()  # expands packs: their problems surface here
        seen: dict[str, str] = {}
        for query in queries:
            if query.name in seen:
                raise ValueError(
                    f"queries: two queries are named {query.name!r} ({seen[query.name]} and {query.origin}); "
                    "names must be unique (a pack used twice needs a name_prefix)"
                )
            seen[query.name] = query.origin
            if query.interval is not None and query.timeout > query.interval:
                raise ValueError(
                    f"queries: query {query.name}'s timeout ({query.timeout:g}s) is longer than its interval "
                    f"({query.interval:g}s, the section's default)"
                )
        _check_shared_metrics(queries)
        return self

    def resolved_queries(self) -> list[ResolvedQuery]:
        result = [self._resolve(q, "queries") for q in self.queries]
        for pack in self.packs:
            result.extend(self._resolve(q, f"pack {pack.pack}") for q in pack.expand(self.sources))
        return result

    def _resolve(self, query: QueryConfig, origin: str) -> ResolvedQuery:
        if query.schedule is not None:
            period = schedule_period(query.schedule)
        else:
            period = query.interval if query.interval is not None else self.interval
        timeout = query.timeout if query.timeout is not None else self.timeout
        if query.schedule is None and query.timeout is None:
            timeout = min(timeout, period)
        metrics = tuple(
            ResolvedMetric(
                config=m,
                query=query.name,
                series_limit=m.series_limit or self.series_limit,
                expire_after=_first(m.expire_after, self.expire_after, EXPIRE_INTERVALS * period),
            )
            for m in query.metrics
        )
        return ResolvedQuery(
            config=query,
            origin=origin,
            interval=None if query.schedule is not None else period,
            period=period,
            timeout=timeout,
            metrics=metrics,
        )


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def schedule_period(expression: str) -> float:
    """The time between two consecutive runs of a cron schedule (its shortest gap over the next few runs)."""
    from croniter import croniter  # noqa: PLC0415 - see _cron

    it = croniter(expression, datetime(2026, 1, 1))
    times = [it.get_next(float) for _ in range(6)]
    return min(b - a for a, b in itertools.pairwise(times))


def _check_shared_metrics(queries: list[ResolvedQuery]) -> None:
    """Several queries may feed one metric (e.g. one pack on two shops) if they agree on its shape."""
    by_name: dict[str, ResolvedMetric] = {}
    for query in queries:
        for metric in query.metrics:
            other = by_name.setdefault(metric.name, metric)
            if other is metric:
                continue
            if other.config.type != metric.config.type or set(other.label_names) != set(metric.label_names):
                raise ValueError(
                    f"queries: metric {metric.name} comes from queries {other.query} and {metric.query} with "
                    "different types or label names; a metric shared by queries needs the same type and labels"
                )
            if not metric.config.static_labels or other.config.static_labels == metric.config.static_labels:
                raise ValueError(
                    f"queries: metric {metric.name} comes from queries {other.query} and {metric.query}; "
                    "give each its own static_labels (e.g. {shop: eu}) so their series cannot collide"
                )
