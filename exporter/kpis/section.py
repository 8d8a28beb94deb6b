"""The `kpis:` section of pulse.yml: business KPIs from SQL and HTTP-JSON sources (docs/kpis.md).

The section builds one collector, `kpis`, that runs every query on its own schedule and serves the
cached results at scrape time. Config models live in config.py, the engine in engine.py.
"""

from __future__ import annotations

from exporter.collectors.base import Collector, CollectorType
from exporter.kpis.config import KpisConfig


def build(config: KpisConfig) -> list[Collector]:
    # Imported here: the engine imports the collector framework, whose package imports this module.
    from exporter.kpis.engine import KpiCollector  # noqa: PLC0415

    if not config.queries and not config.packs:
        return []
    return [KpiCollector(config)]


KPIS = CollectorType("kpis", KpisConfig, build)

__all__ = ["KPIS", "KpisConfig", "build"]
