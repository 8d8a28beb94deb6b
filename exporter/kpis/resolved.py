"""The queries the engine runs: a query and its metrics with the section's defaults filled in.

`KpisConfig.resolved_queries()` (config.py) builds them: packs expanded, the section-level defaults
(timeout, interval, series_limit, expire_after) applied. The engine and the sources only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.kpis.query_config import MetricConfig, QueryConfig


@dataclass(frozen=True)
class ResolvedMetric:
    config: MetricConfig
    query: str
    series_limit: int
    expire_after: float
    label_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_names", self.config.label_names())

    @property
    def name(self) -> str:
        return self.config.base_name


@dataclass(frozen=True)
class ResolvedQuery:
    config: QueryConfig
    origin: str  # "queries" or "pack <name>", for error messages
    interval: float | None  # None: runs on config.schedule
    period: float  # interval, or the schedule's gap between runs
    timeout: float
    metrics: tuple[ResolvedMetric, ...]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def source(self) -> str:
        return self.config.source

    def describe_schedule(self) -> str:
        if self.config.schedule is not None:
            return f"on schedule '{self.config.schedule}'"
        return f"every {_human_duration(self.period)}"


def _human_duration(seconds: float) -> str:
    if seconds % 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
