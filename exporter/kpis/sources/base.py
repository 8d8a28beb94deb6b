"""The KPI source interface: what a source kind provides, and what the engine asks of an open source.

A source kind (`SourceKind`, one per module in this package, listed in `SOURCE_KINDS`) brings:
- its config model (a `SourceConfig` under `kpis.sources`), recognized by the keys only it has;
- the checks of a query run on it (`check_query`: the query fields it needs or refuses);
- `open`: a `Source` built from a validated config.

An open `Source` runs one query at a time per call of `fetch` and returns each metric's samples;
it reports failures with the errors in errors.py, which the engine counts and logs. Sources whose
client library blocks (SQL drivers) run their calls through the `run_blocking` the engine hands
them, in daemon worker threads; the others (HTTP) run on the event loop.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import pydantic

from exporter.config.types import StrictModel
from exporter.kpis.query_config import QueryConfig
from exporter.kpis.resolved import ResolvedQuery
from exporter.kpis.samples import Samples

T = TypeVar("T")


class SourceConfig(StrictModel):
    """A source's config model. Sources are a tagged union, which hides them from the loader's "did you
    mean" hints; they name an unknown key's likely intent themselves."""

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


ConfigT = TypeVar("ConfigT", bound=SourceConfig)


@dataclass(frozen=True)
class Fetched:
    """One run's outcome: each metric's samples (by metric name), and the cursor after the rows."""

    samples: dict[str, Samples]
    cursor: Any  # advanced past the rows for a cursor query, else as it was given


class Source(ABC):
    """An open source: the engine's only view of a database or an API."""

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        self.where = where  # what it is, without credentials: for logs and the landing page

    @abstractmethod
    async def fetch(self, query: ResolvedQuery, cursor: Any) -> Fetched:
        """Run `query` once (within query.timeout). Raises QueryError when the source answered with an
        error of the query's own, SourceDownError / SourceRefusedError / QueryTimeoutError otherwise
        (SourceStalledError when even a grace period after the timeout brought no answer)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and clients; never raises."""


class RunBlocking(Protocol):
    """Runs a blocking call off the event loop (in a daemon worker thread) and awaits its result."""

    def __call__(self, function: Callable[[], T], /) -> Awaitable[T]: ...


@dataclass(frozen=True)
class Opening:
    """What the engine tells a source it opens, beyond the source's own config."""

    longest_timeout: float  # of the queries run on it (SQL: the session's backstop timeout)
    run_blocking: RunBlocking


@dataclass(frozen=True)
class SourceKind(Generic[ConfigT]):
    """One kind of KPI source (SQL database, HTTP JSON API): one module each, listed in SOURCE_KINDS."""

    name: str  # "sql", "http": the tag in config errors and the kind on the landing page
    config_model: type[ConfigT]
    config_keys: tuple[str, ...]  # keys that make a `kpis.sources` entry one of this kind
    requirement: str  # what such an entry needs, for the error when it matches no kind
    query_keys: tuple[str, ...]  # query keys that suggest this kind when the query's source is invalid
    check_query: Callable[[QueryConfig], None]  # raises ValueError for what a query on this kind lacks
    open: Callable[[str, ConfigT, Opening], Source]  # may raise: that source's queries then fail
