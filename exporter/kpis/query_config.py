"""The `kpis.queries` entries: a query, its metrics, and the names and expressions they are made of.

What a query needs beyond its common fields depends on its source's kind (SQL queries have `sql`,
HTTP queries a `request`): each source kind checks its own (`SourceKind.check_query`). The section
(config.py) declares its sources' kinds through DECLARED_SOURCES while it validates, so an unknown
source or a field meant for another kind is reported at the query's own line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import jmespath
import jmespath.exceptions
import pydantic

from exporter.config.scope import ValidationScope
from exporter.config.types import Duration, PositiveDuration, StrictModel

NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_PREFIX = "pulse_kpi_"


def check_name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{what} {value!r} is not valid: use letters, digits and _, not starting with a digit")
    return value


def check_label_name(name: str) -> None:
    check_name(name, "label name")
    if name.startswith("__"):
        raise ValueError(f"label name {name!r}: names starting with __ are reserved by Prometheus")


def compile_jmespath(expression: str, what: str) -> str:
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as err:
        raise ValueError(f"{what} {expression!r} is not a valid JMESPath expression ({err})") from None
    return expression


def _check_static_labels(labels: dict[str, str]) -> dict[str, str]:
    for name in labels:
        check_label_name(name)
    return labels


StaticLabels = Annotated[dict[str, str], pydantic.AfterValidator(_check_static_labels)]


# ---------------------------------------------------------------------------------------------- declared sources


class QueryRules(Protocol):
    """What a source kind checks in a query run on one of its sources (satisfied by SourceKind)."""

    @property
    def name(self) -> str: ...

    def check_query(self, query: QueryConfig, /) -> None: ...


@dataclass(frozen=True)
class DeclaredSources:
    """What the section being validated tells its queries and packs about its sources."""

    kinds: Mapping[str, QueryRules | None]  # source name -> its kind; None when the source itself is invalid
    guess: Callable[[QueryConfig], QueryRules]  # the kind a query's own fields suggest, when its source's is unknown

    def check_name(self, name: str, want: str | None = None) -> str:
        """Checked as a field, so an unknown source is reported at its line together with every other problem."""
        if name not in self.kinds:
            known = list(self.kinds)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(known)) or 'none defined'}"
            raise ValueError(f"no source named {name!r} under kpis.sources ({hint})")
        kind = self.kinds[name]
        if want is not None and kind is not None and kind.name != want:
            raise ValueError(f"{name!r} is not a {want.upper()} source under kpis.sources")
        return name


DECLARED_SOURCES: ValidationScope[DeclaredSources] = ValidationScope("kpi_sources")


def check_source_name(name: str, want: str | None = None) -> str:
    """A source name, checked against the section's sources (not at all outside of a section)."""
    declared = DECLARED_SOURCES.get()
    return name if declared is None else declared.check_name(name, want)


# ---------------------------------------------------------------------------------------------- queries


class MetricConfig(StrictModel):
    name: str
    type: Literal["gauge", "counter"] = "gauge"
    value: str  # a column (SQL) or a JMESPath expression (HTTP)
    labels: list[str] | dict[str, str] = []  # columns, or {label: column / JMESPath}
    static_labels: StaticLabels = {}
    help: str = ""
    value_map: dict[str, float] = {}
    series_limit: int | None = pydantic.Field(None, ge=1)
    expire_after: Duration | None = None

    @pydantic.field_validator("name")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        check_name(value, "metric name")
        if value.startswith(RESERVED_PREFIX):
            raise ValueError(f"names starting with {RESERVED_PREFIX} are Pulse's own metrics")
        return value

    @pydantic.field_validator("labels")
    @classmethod
    def _label_names(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        names = list(value)
        for name in names:
            check_label_name(name)
        if isinstance(value, list) and len(set(names)) != len(names):
            raise ValueError("a label is listed twice")
        return value

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> MetricConfig:
        if self.type == "gauge" and self.name.endswith("_total"):
            raise ValueError("name: _total is for counters; a gauge's name must not end with it")
        clash = set(self.label_columns()) & set(self.static_labels)
        if clash:
            raise ValueError(f"static_labels: {', '.join(sorted(clash))} is also a label from the query")
        return self

    @property
    def base_name(self) -> str:
        """The name without `_total`: counters get `_total` added on exposition, whether or not written."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    def label_columns(self) -> dict[str, str]:
        """{label name: column or JMESPath expression}."""
        return {name: name for name in self.labels} if isinstance(self.labels, list) else dict(self.labels)

    def label_names(self) -> tuple[str, ...]:
        return (*self.label_columns(), *sorted(self.static_labels))


class RequestConfig(StrictModel):
    path: str = ""
    params: dict[str, str] = {}
    body: dict[str, Any] | list[Any] | None = None  # sent as JSON with method POST


class CursorConfig(StrictModel):
    column: str
    initial: int | float | str = 0


class QueryConfig(StrictModel):
    name: str
    source: str
    interval: PositiveDuration | None = None
    schedule: str | None = None
    run_on_start: bool = True  # a scheduled query also runs once when the exporter starts
    timeout: PositiveDuration | None = None
    sql: str | None = None
    request: RequestConfig | None = None
    rows: str | None = None  # HTTP: JMESPath selecting the list of rows (default: the whole document)
    cursor: CursorConfig | None = None
    metrics: list[MetricConfig] = pydantic.Field(min_length=1)

    @pydantic.field_validator("name")
    @classmethod
    def _query_name(cls, value: str) -> str:
        return check_name(value, "query name")

    @pydantic.field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return check_source_name(value)

    @pydantic.field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        from croniter import croniter  # noqa: PLC0415 - 1.3 MiB RSS, paid only by configs with a schedule

        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (like '*/5 * * * *': minute hour day month weekday)")
        return value

    @pydantic.field_validator("rows")
    @classmethod
    def _rows_path(cls, value: str | None) -> str | None:
        return None if value is None else compile_jmespath(value, "rows")

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> QueryConfig:
        if self.interval is not None and self.schedule is not None:
            raise ValueError("schedule: set either interval or schedule, not both")
        if self.timeout is not None and self.interval is not None and self.timeout > self.interval:
            raise ValueError("timeout: longer than the interval; the next run would start before this one ends")
        declared = DECLARED_SOURCES.get()
        if declared is not None:
            kind = declared.kinds.get(self.source)
            (kind or declared.guess(self)).check_query(self)
        names = [m.base_name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("metrics: the same metric name is listed twice in this query")
        return self
