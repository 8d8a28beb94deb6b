"""The `probes:` section of pulse.yml (filled in by the probes work)."""

from __future__ import annotations

from exporter.collectors.base import Collector, CollectorType
from exporter.config.types import StrictModel


class ProbesConfig(StrictModel):
    pass


def build(config: ProbesConfig) -> list[Collector]:
    return []


PROBES = CollectorType("probes", ProbesConfig, build)
