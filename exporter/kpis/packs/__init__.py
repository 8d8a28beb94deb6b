"""Ready KPI query sets ("packs"), expanded into `kpis.queries` for a source by `packs:` entries.

`PACKS[name](source_name, dialect_name)` returns query dicts in the config format; dialect_name is
SQLAlchemy's (`sqlite`, `postgresql`, `mysql`; `mariadb` is treated as `mysql`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.kpis.packs import marketplace

Pack = Callable[[str, str], list[dict[str, Any]]]

PACKS: dict[str, Pack] = {"marketplace": marketplace.queries}
