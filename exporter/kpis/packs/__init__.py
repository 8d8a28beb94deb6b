"""Ready KPI query sets ("packs"), expanded into `kpis.queries` for a source by `packs:` entries.

`PACKS[name](source_name, dialect_name, top_n=...)` returns query dicts in the config format;
dialect_name is SQLAlchemy's (`sqlite`, `postgresql`, `mysql`; `mariadb` is treated as `mysql`); `top_n`
is how many products or categories get their own label value (the rest are summed as one).
"""

from __future__ import annotations

from typing import Any, Protocol

from exporter.kpis.packs import marketplace


class Pack(Protocol):
    def __call__(self, source: str, dialect: str, *, top_n: int = ...) -> list[dict[str, Any]]: ...


PACKS: dict[str, Pack] = {"marketplace": marketplace.queries}
