"""Series state: each KPI metric's series kept between runs, and the metric families built from them.

- `MetricState` keeps one metric's series between runs: gauges (and counters read as totals) take
  the latest value and expire when no run has returned them for `expire_after`; cursor counters add
  each run's rows and never expire. At most `series_limit` series; the rest are dropped and counted.
- `family_specs` groups the states into the families /metrics exposes (one metric may be fed by
  several queries), with HELP saying the values are cached and how often they refresh.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.kpis.resolved import ResolvedMetric, ResolvedQuery
from exporter.kpis.samples import LabelValues, Samples

log = logging.getLogger(__name__)


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
