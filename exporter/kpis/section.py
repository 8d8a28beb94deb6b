"""The `kpis:` section of pulse.yml: business KPIs from SQL and HTTP-JSON sources (docs/kpis.md).

The section builds one collector, `kpis`, that runs every query on its own schedule and serves the
cached results at scrape time. Config models live in config.py, the engine in engine.py.
"""

from __future__ import annotations

from exporter.collectors.base import Collector
from exporter.kpis.config import KpisConfig
from exporter.kpis.engine import KpiCollector


def build(config: KpisConfig) -> list[Collector]:
    if not config.queries and not config.packs:
        return []
    return [KpiCollector(config)]
