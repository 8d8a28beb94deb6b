"""The KPI source kinds: one module each, listed here once. `kpis.sources` accepts exactly these.

Adding a kind: a module defining its config model, its `Source` and its `SourceKind` (see base.py,
and sql.py or http.py), one line in SOURCE_KINDS, and its test. The order matters once: an entry is
of the first kind whose `config_keys` it has, and a query whose source is invalid is checked as the
first kind whose `query_keys` it has (else as the first kind).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

import pydantic

from exporter.kpis.query_config import QueryConfig
from exporter.kpis.sources.base import SourceConfig, SourceKind
from exporter.kpis.sources.http import HTTP
from exporter.kpis.sources.sql import SQL

SOURCE_KINDS: dict[str, SourceKind[Any]] = {kind.name: kind for kind in (SQL, HTTP)}

_KIND_OF_MODEL = {kind.config_model: kind for kind in SOURCE_KINDS.values()}


def source_kind(data: Any) -> SourceKind[Any] | None:
    """The kind of a `kpis.sources` entry (raw config data or a model); None when it fits none."""
    if isinstance(data, SourceConfig):
        return _KIND_OF_MODEL.get(type(data))
    if isinstance(data, dict):
        return next((kind for kind in SOURCE_KINDS.values() if any(key in data for key in kind.config_keys)), None)
    return None


def kind_of(config: SourceConfig) -> SourceKind[Any]:
    """The kind of a validated source config."""
    return _KIND_OF_MODEL[type(config)]


def guess_query_kind(query: QueryConfig) -> SourceKind[Any]:
    """The kind a query's own keys suggest, for a query whose source is invalid (so of unknown kind)."""
    kinds = list(SOURCE_KINDS.values())
    return next((kind for kind in kinds if any(getattr(query, key) is not None for key in kind.query_keys)), kinds[0])


def _discriminator(data: Any) -> str | None:
    kind = source_kind(data)
    # Tags contain "[" so that the loader leaves them out of the field path it reports.
    return None if kind is None else f"[{kind.name}]"


def _requirements() -> str:
    *first, last = (kind.requirement for kind in SOURCE_KINDS.values())
    return f"{', '.join(first)}, or {last}" if first else last


if TYPE_CHECKING:
    AnySourceConfig = SourceConfig
else:
    # A tagged union of the kinds' config models, built from SOURCE_KINDS.
    AnySourceConfig = Annotated[
        Union[tuple(Annotated[kind.config_model, pydantic.Tag(f"[{kind.name}]")] for kind in SOURCE_KINDS.values())],  # noqa: UP007
        pydantic.Discriminator(
            _discriminator, custom_error_type="source_kind", custom_error_message=f"a source needs {_requirements()}"
        ),
    ]
