"""From query rows to KPI series, and from the cached series to metric families.

- Row mapping: a metric's value and labels come from columns (SQL: by name, case-insensitively if
  the exact name is missing, since some databases fold case) or JMESPath expressions (HTTP).
  A missing column is an error naming the query, the metric and the column.
- Values: numbers, booleans (1/0), dates (Unix seconds), durations (seconds), numeric strings, or
  any string listed in the metric's `value_map`. NULL means "no value": that series is not exposed.
- `MetricState` keeps one metric's series between runs: gauges (and counters read as totals) take
  the latest value and expire when no run has returned them for `expire_after`; cursor counters add
  each run's rows and never expire. At most `series_limit` series; the rest are dropped and counted.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jmespath
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.kpis.config import ResolvedMetric, ResolvedQuery
from exporter.kpis.errors import QueryError

log = logging.getLogger(__name__)

LabelValues = tuple[str, ...]
Samples = dict[LabelValues, float]
Lookup = Callable[[Any, str], Any]  # (row, column or expression) -> raw value


def to_number(raw: Any, value_map: Mapping[str, float]) -> float | None:
    """A cell's value as a float, None for NULL. Raises ValueError for anything else."""
    if raw is None:
        return None
    if value_map:
        key = raw if isinstance(raw, str) else label_value(raw)
        if key in value_map:
            return value_map[key]
        if isinstance(raw, str):
            raise ValueError(f"{raw!r} is not in value_map ({', '.join(sorted(value_map))})")
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float | decimal.Decimal):
        return float(raw)
    if isinstance(raw, datetime.datetime):
        moment = raw if raw.tzinfo else raw.replace(tzinfo=datetime.UTC)  # naive timestamps are UTC
        return moment.timestamp()
    if isinstance(raw, datetime.date):
        return datetime.datetime(raw.year, raw.month, raw.day, tzinfo=datetime.UTC).timestamp()
    if isinstance(raw, datetime.timedelta):
        return raw.total_seconds()
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number (map strings to numbers with value_map)") from None
    raise ValueError(f"a {type(raw).__name__} is not a number")


def label_value(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, decimal.Decimal):
        return format(raw.normalize(), "f") if raw == raw.to_integral_value() else str(raw)
    if isinstance(raw, datetime.datetime | datetime.date):
        return raw.isoformat()
    if isinstance(raw, str):
        return raw
    return str(raw)


class SqlRows:
    """Rows of a SQL result, addressed by column name."""

    def __init__(self, query: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.query = query
        self.columns = list(columns)
        self.rows = rows
        self._index = {name: i for i, name in enumerate(self.columns)}
        for i, name in enumerate(self.columns):
            self._index.setdefault(name.lower(), i)

    def column(self, name: str, what: str) -> int:
        index = self._index.get(name, self._index.get(name.lower()))
        if index is None:
            raise QueryError(
                f"query {self.query}: {what}: column {name!r} is not in the result "
                f"(columns: {', '.join(self.columns) or 'none'})"
            )
        return index


def sql_samples(metric: ResolvedMetric, result: SqlRows) -> Samples:
    spec = metric.config
    value_index = result.column(spec.value, f"metric {spec.name}: value")
    label_indexes = [
        result.column(column, f"metric {spec.name}: label {label}") for label, column in spec.label_columns().items()
    ]
    return _samples(
        metric, result.query, result.rows, lambda row: row[value_index], lambda row: [row[i] for i in label_indexes]
    )


def http_samples(metric: ResolvedMetric, query: str, rows: Sequence[Any]) -> Samples:
    spec = metric.config
    value_expression = jmespath.compile(spec.value)
    label_expressions = [jmespath.compile(e) for e in spec.label_columns().values()]

    def value_of(row: Any) -> Any:
        return value_expression.search(row)

    def labels_of(row: Any) -> list[Any]:
        return [e.search(row) for e in label_expressions]

    return _samples(metric, query, rows, value_of, labels_of)


def _samples(
    metric: ResolvedMetric,
    query: str,
    rows: Iterable[Any],
    value_of: Callable[[Any], Any],
    labels_of: Callable[[Any], list[Any]],
) -> Samples:
    spec = metric.config
    static = tuple(spec.static_labels[name] for name in sorted(spec.static_labels))
    samples: Samples = {}
    for row in rows:
        try:
            value = to_number(value_of(row), spec.value_map)
        except ValueError as err:
            raise QueryError(f"query {query}: metric {spec.name}: value {spec.value!r}: {err}") from None
        if value is None:
            continue
        labels = (*(label_value(v) for v in labels_of(row)), *static)
        if spec.type == "counter" and labels in samples:
            samples[labels] += value  # rows for one label set add up (e.g. one row per day)
        else:
            samples[labels] = value
    return samples


@dataclass
class Series:
    value: float
    seen: float  # monotonic time a run last returned it


class MetricState:
    def __init__(self, metric: ResolvedMetric, cumulative: bool) -> None:
        self.metric = metric
        self.cumulative = cumulative  # cursor counter: add each run's rows, never expire
        self.series: dict[LabelValues, Series] = {}
        self.dropped_total = 0
        self._limit_logged = False
        self._oldest_seen = math.inf  # of all series: lets a scrape's expiry check skip the scan

    def update(self, samples: Samples, now: float) -> None:
        # Runs on the event loop: with a label explosion (100,000 samples, 500 kept) it must not visit
        # every sample. Known series are found by a set intersection (C speed, over the smaller side);
        # new ones are added in order only while there is room.
        known = self.series.keys() & samples.keys()
        for labels in known:
            series = self.series[labels]
            series.value = series.value + samples[labels] if self.cumulative else samples[labels]
            series.seen = now
        limit = self.metric.series_limit
        room = limit - len(self.series)
        new = len(samples) - len(known)
        if room > 0 and new:
            for labels, value in samples.items():
                if labels not in self.series:
                    self.series[labels] = Series(value, now)
                    self._oldest_seen = min(self._oldest_seen, now)
                    room -= 1
                    new -= 1
                    if not room or not new:
                        break
        dropped = new
        if dropped:
            self.dropped_total += dropped
            if not self._limit_logged:
                self._limit_logged = True
                log.warning(
                    "KPI metric reached its series limit; further series are dropped",
                    extra={"metric": self.metric.name, "query": self.metric.query, "series_limit": limit},
                )
        self.expire(now, self.metric.expire_after)

    def expire(self, now: float, after: float) -> bool:
        """Drop series no run has returned for `after` seconds (cursor counters never expire).
        Returns whether any went."""
        cutoff = now - after
        if self.cumulative or self._oldest_seen >= cutoff:
            return False
        stale = [labels for labels, series in self.series.items() if series.seen < cutoff]
        for labels in stale:
            del self.series[labels]
        self._oldest_seen = min((series.seen for series in self.series.values()), default=math.inf)
        return bool(stale)


@dataclass
class FamilySpec:
    """One exposed metric family, possibly fed by several queries (each with its own static labels)."""

    name: str
    type: str
    help: str
    label_names: tuple[str, ...]
    states: list[tuple[MetricState, tuple[int, ...]]]  # state, and where each of its labels goes

    def build(self) -> Metric:
        family: Metric
        if self.type == "counter":
            family = CounterMetricFamily(self.name, self.help, labels=self.label_names)
        else:
            family = GaugeMetricFamily(self.name, self.help, labels=self.label_names)
        seen: set[LabelValues] = set()
        for state, order in self.states:
            for labels, series in state.series.items():
                values = tuple(labels[i] for i in order)
                if values in seen:
                    continue
                seen.add(values)
                family.add_metric(values, series.value)
        return family


def family_specs(queries: Sequence[ResolvedQuery], states: Mapping[tuple[str, str], MetricState]) -> list[FamilySpec]:
    """The families to expose, with HELP saying the values are cached and how often they refresh."""
    specs: dict[str, FamilySpec] = {}
    feeders: dict[str, list[ResolvedQuery]] = {}
    for query in queries:
        for metric in query.metrics:
            state = states[(query.name, metric.name)]
            spec = specs.get(metric.name)
            if spec is None:
                spec = specs[metric.name] = FamilySpec(
                    metric.name, metric.config.type, metric.config.help, metric.label_names, []
                )
            order = tuple(metric.label_names.index(name) for name in spec.label_names)
            spec.states.append((state, order))
            feeders.setdefault(metric.name, []).append(query)
    for name, spec in specs.items():
        queries_for = feeders[name]
        base = spec.help.strip() or f"KPI {name}."
        if not base.endswith("."):
            base += "."
        if len(queries_for) == 1:
            refresh = f"refreshed by query {queries_for[0].name} {queries_for[0].describe_schedule()}"
        else:
            refresh = "refreshed by queries " + ", ".join(f"{q.name} ({q.describe_schedule()})" for q in queries_for)
        spec.help = f"{base} Cached: {refresh}, not at scrape time."
    return list(specs.values())
