"""The `kpis:` section of pulse.yml: sources, packs and queries, checked when the config loads.

Validation happens where the field lives, so the loader can point at the right line: a query's
`source` is checked inside the query model against the section's source names, which the section's
wrap validator puts in a context variable for the duration of its own validation.

`KpisConfig.resolved_queries()` turns the section into `ResolvedQuery` objects: packs expanded, the
section-level defaults (timeout, interval, series_limit, expire_after) filled in. The engine only
ever sees those.
"""

from __future__ import annotations

import contextvars
import difflib
import importlib
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import jmespath
import jmespath.exceptions
import pydantic

from exporter.config.tls import TLSClientConfig
from exporter.config.types import Duration, PositiveDuration, StrictModel, secret_field

NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_PREFIX = "pulse_kpi_"
DEFAULT_SERIES_LIMIT = 500
DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 60.0
EXPIRE_INTERVALS = 3  # a gauge series not returned for this many runs (by default) disappears

# Source name -> kind ("sql" / "http", None when the source itself is invalid) while a KpisConfig
# validates; None outside of it.
_SOURCE_KINDS: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "kpi_sources", default=None
)


def _check_source_name(name: str, want: str | None = None) -> str:
    """Checked as a field, so an unknown source is reported at its line together with every other problem."""
    kinds = _SOURCE_KINDS.get()
    if kinds is None:
        return name
    if name not in kinds:
        close = difflib.get_close_matches(name, list(kinds), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(kinds)) or 'none defined'}"
        raise ValueError(f"no source named {name!r} under kpis.sources ({hint})")
    if want is not None and kinds[name] not in (None, want):
        raise ValueError(f"{name!r} is not a {want.upper()} source under kpis.sources")
    return name


def _check_name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{what} {value!r} is not valid: use letters, digits and _, not starting with a digit")
    return value


def source_kind(data: Any) -> str | None:
    """'sql' for a source with a dsn, 'http' for one with a url (raw config data or a model)."""
    if isinstance(data, SqlSourceConfig):
        return "sql"
    if isinstance(data, HttpSourceConfig):
        return "http"
    if isinstance(data, dict):
        if "dsn" in data or "dsn_file" in data:
            return "sql"
        if "url" in data:
            return "http"
    return None


# ---------------------------------------------------------------------------------------------- sources


class _SourceModel(StrictModel):
    """A source model. Sources are a tagged union, which hides them from the loader's "did you mean"
    hints; they name an unknown key's likely intent themselves."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = [
            name
            for field_name, field in cls.model_fields.items()
            for name in (field_name, f"{field_name}_file") if name == field_name or field.json_schema_extra
        ]  # fmt: skip
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(sorted(known))}"
                raise ValueError(f"{key}: unknown field ({hint})")
        return data


class SqlSourceConfig(_SourceModel):
    """A database reached through SQLAlchemy. `dsn` is a SQLAlchemy URL (its password is a secret)."""

    dsn: str = secret_field()
    read_only: bool = True
    pool_size: int = pydantic.Field(2, ge=1, le=100)
    max_overflow: int = pydantic.Field(2, ge=0, le=100)
    pool_recycle: PositiveDuration = 1800.0
    connect_timeout: PositiveDuration = 10.0
    # A superuser or an account that may write/read server files (PostgreSQL COPY ... TO, MariaDB
    # INTO OUTFILE) is refused unless this says the operator accepts it (sql.py checks at connect).
    allow_privileged_account: bool = False

    @pydantic.field_validator("dsn")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        # Imported here, like everything SQLAlchemy: it costs ~25 MiB of RSS, which an exporter
        # without SQL sources should not pay.
        from sqlalchemy.engine import make_url  # noqa: PLC0415
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError  # noqa: PLC0415

        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            # Never echo the DSN: it may hold a password.
            raise ValueError("not a SQLAlchemy URL (write it like postgresql+psycopg://user@host/db)") from None
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ValueError(f"SQLAlchemy has no database dialect {url.drivername!r}") from None
        except ImportError as err:
            raise ValueError(f"the driver for {url.drivername} is not installed ({err.name or err})") from None
        return value

    @property
    def dialect(self) -> str:
        """SQLAlchemy's backend name, with MariaDB folded into mysql ("sqlite", "postgresql", "mysql", ...)."""
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        name = make_url(self.dsn).get_backend_name()
        return "mysql" if name == "mariadb" else name

    @property
    def safe_dsn(self) -> str:
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        return make_url(self.dsn).render_as_string(hide_password=True)


class HttpSourceConfig(_SourceModel):
    """A JSON API. Queries add a path and parameters to `url`."""

    url: str
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    bearer_token: str | None = secret_field(default=None)
    timeout: PositiveDuration = 10.0  # connect timeout; each query's own timeout bounds the whole request
    tls_config: TLSClientConfig = TLSClientConfig()

    @pydantic.field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @pydantic.model_validator(mode="after")
    def _one_authorization(self) -> HttpSourceConfig:
        if self.bearer_token is not None and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError("bearer_token: set either bearer_token or an Authorization header, not both")
        return self


def _source_discriminator(data: Any) -> str | None:
    kind = source_kind(data)
    # Tags contain "[" so that the loader leaves them out of the field path it reports.
    return None if kind is None else f"[{kind}]"


Source = Annotated[
    Annotated[SqlSourceConfig, pydantic.Tag("[sql]")] | Annotated[HttpSourceConfig, pydantic.Tag("[http]")],
    pydantic.Discriminator(
        _source_discriminator,
        custom_error_type="source_kind",
        custom_error_message="a source needs dsn (or dsn_file) for a SQL database, or url for an HTTP JSON API",
    ),
]


# ---------------------------------------------------------------------------------------------- queries


def _compile_jmespath(expression: str, what: str) -> str:
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as err:
        raise ValueError(f"{what} {expression!r} is not a valid JMESPath expression ({err})") from None
    return expression


def _check_static_labels(labels: dict[str, str]) -> dict[str, str]:
    for name in labels:
        _check_label_name(name)
    return labels


StaticLabels = Annotated[dict[str, str], pydantic.AfterValidator(_check_static_labels)]


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
        _check_name(value, "metric name")
        if value.startswith(RESERVED_PREFIX):
            raise ValueError(f"names starting with {RESERVED_PREFIX} are Pulse's own metrics")
        return value

    @pydantic.field_validator("labels")
    @classmethod
    def _label_names(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        names = list(value)
        for name in names:
            _check_label_name(name)
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


def _check_label_name(name: str) -> None:
    _check_name(name, "label name")
    if name.startswith("__"):
        raise ValueError(f"label name {name!r}: names starting with __ are reserved by Prometheus")


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
        return _check_name(value, "query name")

    @pydantic.field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return _check_source_name(value)

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
        return None if value is None else _compile_jmespath(value, "rows")

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> QueryConfig:
        if self.interval is not None and self.schedule is not None:
            raise ValueError("schedule: set either interval or schedule, not both")
        if self.timeout is not None and self.interval is not None and self.timeout > self.interval:
            raise ValueError("timeout: longer than the interval; the next run would start before this one ends")
        kinds = _SOURCE_KINDS.get()
        kind = kinds.get(self.source) if kinds is not None else None
        if kind == "sql" or (kind is None and self.request is None):
            self._check_sql()
        else:
            self._check_http()
        names = [m.base_name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("metrics: the same metric name is listed twice in this query")
        return self

    def _check_sql(self) -> None:
        if self.sql is None or not self.sql.strip():
            raise ValueError("sql: a query on a SQL source needs sql")
        if self.request is not None or self.rows is not None:
            raise ValueError("request: request and rows are for HTTP sources; this query's source is SQL")
        if self.cursor is not None:
            if not re.search(r"(?<![:\w]):cursor\b", self.sql):
                raise ValueError("sql: a query with a cursor must use :cursor (e.g. WHERE id > :cursor)")
            gauges = [m.name for m in self.metrics if m.type != "counter"]
            if gauges:
                raise ValueError(f"cursor: a cursor query adds up new rows, so its metrics are counters: {gauges}")

    def _check_http(self) -> None:
        if self.sql is not None:
            raise ValueError("sql: this query's source is an HTTP API; use request (and rows) instead of sql")
        if self.cursor is not None:
            raise ValueError("cursor: cursors are for SQL sources")
        for metric in self.metrics:
            _compile_jmespath(metric.value, f"metric {metric.name}: value")
            for label, expression in metric.label_columns().items():
                _compile_jmespath(expression, f"metric {metric.name}: label {label}")


# ---------------------------------------------------------------------------------------------- packs


def load_packs() -> Mapping[str, Callable[[str, str], list[dict[str, Any]]]]:
    """exporter.kpis.packs.PACKS, or nothing while that module does not exist."""
    try:
        module = importlib.import_module("exporter.kpis.packs")
    except ModuleNotFoundError as err:
        if err.name not in ("exporter.kpis.packs", "exporter.kpis"):
            raise
        return {}
    packs: Mapping[str, Callable[[str, str], list[dict[str, Any]]]] = getattr(module, "PACKS", {})
    return packs


class PackConfig(StrictModel):
    """A ready set of queries (e.g. `marketplace`) run against one SQL source."""

    pack: str
    source: str
    name_prefix: str = ""  # prepended to the pack's query names: needed when one pack serves two sources
    static_labels: StaticLabels = {}  # added to every metric of the pack (e.g. {shop: eu})
    interval: PositiveDuration | None = None  # overrides the pack's intervals
    timeout: PositiveDuration | None = None

    @pydantic.field_validator("pack")
    @classmethod
    def _known_pack(cls, value: str) -> str:
        packs = load_packs()
        if value not in packs:
            raise ValueError(f"unknown pack {value!r} (known: {', '.join(sorted(packs)) or 'none installed'})")
        return value

    @pydantic.field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _check_name(value, "name_prefix") if value else value

    @pydantic.field_validator("source")
    @classmethod
    def _sql_source(cls, value: str) -> str:
        return _check_source_name(value, want="sql")

    def expand(self, source: SqlSourceConfig, source_name: str) -> list[QueryConfig]:
        try:
            raw_queries = load_packs()[self.pack](source_name, source.dialect)
        except (ValueError, KeyError) as err:
            raise ValueError(f"pack {self.pack}: {err}") from None
        queries = []
        for raw in raw_queries:
            data = dict(raw)
            data["name"] = self.name_prefix + str(data.get("name", ""))
            data["source"] = source_name
            if self.interval is not None:
                data.pop("schedule", None)
                data["interval"] = self.interval
            if self.timeout is not None:
                data["timeout"] = self.timeout
            if self.static_labels:
                metrics = data.get("metrics", [])
                data["metrics"] = [
                    {**m, "static_labels": {**m.get("static_labels", {}), **self.static_labels}} for m in metrics
                ]
            try:
                queries.append(QueryConfig.model_validate(data))
            except pydantic.ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"pack {self.pack}: query {data['name']}: {where}: {first['msg']}") from None
        return queries


# ---------------------------------------------------------------------------------------------- section


class KpisConfig(StrictModel):
    sources: dict[str, Source] = {}
    packs: list[PackConfig] = []
    queries: list[QueryConfig] = []
    # Defaults for every query / metric that does not set its own.
    interval: PositiveDuration = DEFAULT_INTERVAL
    timeout: PositiveDuration = DEFAULT_TIMEOUT
    series_limit: int = pydantic.Field(DEFAULT_SERIES_LIMIT, ge=1)
    expire_after: Duration | None = None  # default: 3 runs of the query (3 x interval)

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _with_source_kinds(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
        kinds: dict[str, str | None] = {}
        if isinstance(data, dict) and isinstance(data.get("sources"), dict):
            kinds = {str(name): source_kind(raw) for name, raw in data["sources"].items()}
        token = _SOURCE_KINDS.set(kinds)
        try:
            return handler(data)
        finally:
            _SOURCE_KINDS.reset(token)

    @pydantic.field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _check_name(name, "source name")
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
            source = self.sources.get(pack.source)
            if isinstance(source, SqlSourceConfig):
                result.extend(self._resolve(q, f"pack {pack.pack}") for q in pack.expand(source, pack.source))
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


# ---------------------------------------------------------------------------------------------- resolved


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
