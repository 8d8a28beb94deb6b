"""The `kpis.packs` entries: a ready set of queries (exporter.kpis.packs.PACKS) run against one SQL source."""

from __future__ import annotations

from collections.abc import Mapping

import pydantic

from exporter.config.types import PositiveDuration, StrictModel, registered
from exporter.kpis.packs import PACKS
from exporter.kpis.packs.marketplace import MAX_TOP_N, TOP_N
from exporter.kpis.query_config import (
    DECLARED_SOURCES,
    DeclaredSources,
    QueryConfig,
    StaticLabels,
    check_name,
    check_source_name,
)
from exporter.kpis.sources import guess_query_kind
from exporter.kpis.sources.base import SourceConfig
from exporter.kpis.sources.sql import SQL
from exporter.kpis.sources.sql_config import SqlSourceConfig


class PackConfig(StrictModel):
    """A ready set of queries (e.g. `marketplace`) run against one SQL source."""

    pack: str
    source: str
    name_prefix: str = ""  # prepended to the pack's query names: needed when one pack serves two sources
    static_labels: StaticLabels = {}  # added to every metric of the pack (e.g. {shop: eu})
    interval: PositiveDuration | None = None  # overrides the pack's intervals
    timeout: PositiveDuration | None = None
    # Products and categories with their own label value; the rest are summed as "other".
    top_n: int = pydantic.Field(TOP_N, ge=1, le=MAX_TOP_N)

    @pydantic.field_validator("pack")
    @classmethod
    def _known_pack(cls, value: str) -> str:
        return registered(value, PACKS, "pack")

    @pydantic.field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_name(value, "name_prefix") if value else value

    @pydantic.field_validator("source")
    @classmethod
    def _sql_source(cls, value: str) -> str:
        return check_source_name(value, want=SQL.name)

    def expand(self, sources: Mapping[str, SourceConfig]) -> list[QueryConfig]:
        """The pack's queries for its source; none while that source is not a valid SQL source (its
        own error is reported)."""
        source = sources.get(self.source)
        if not isinstance(source, SqlSourceConfig):  # packs are SQL: their queries come per dialect
            return []
        try:
            raw_queries = PACKS[self.pack](self.source, source.dialect, top_n=self.top_n)
        except (ValueError, KeyError) as err:
            raise ValueError(f"pack {self.pack}: {err}") from None
        declared = DeclaredSources({self.source: SQL}, guess_query_kind)
        queries = []
        for raw in raw_queries:
            data = dict(raw)
            data["name"] = self.name_prefix + str(data.get("name", ""))
            data["source"] = self.source
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
                queries.append(DECLARED_SOURCES.validate_within(declared, QueryConfig.model_validate, data))
            except pydantic.ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"pack {self.pack}: query {data['name']}: {where}: {first['msg']}") from None
        return queries
