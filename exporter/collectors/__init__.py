"""Every kind of collector Pulse knows, by its key in the config file.

COLLECTOR_TYPES live under `collectors:` (collectors.host); SECTIONS are whole top-level sections of
pulse.yml that also build collectors (`probes:`, `kpis:`), because users know them by those names.
Adding one: write its module (a config model and a `build` function, see base.CollectorType) and
list it here. The config schema, the landing page and reloads pick it up from these tuples.
"""

from __future__ import annotations

from exporter.collectors.base import Collector, CollectorType
from exporter.collectors.host import HOST
from exporter.kpis.section import KPIS
from exporter.probes.collector import PROBES

COLLECTOR_TYPES: tuple[CollectorType, ...] = (HOST,)  # type: ignore[type-arg]
SECTIONS: tuple[CollectorType, ...] = (PROBES, KPIS)  # type: ignore[type-arg]

__all__ = ["COLLECTOR_TYPES", "SECTIONS", "Collector", "CollectorType"]
