"""The `kpis:` section of pulse.yml (filled in by the KPI work)."""

from __future__ import annotations

from exporter.collectors.base import Collector, CollectorType
from exporter.config.types import StrictModel


class KpisConfig(StrictModel):
    pass


def build(config: KpisConfig) -> list[Collector]:
    return []


KPIS = CollectorType("kpis", KpisConfig, build)
