"""Every kind of collector Pulse knows, by its key under `collectors:` in the config file.

Adding one: write its module (a config model and a `build` function, see base.CollectorType) and
list it here. The config schema, the landing page and reloads pick it up from this tuple.
"""

from __future__ import annotations

from exporter.collectors.base import Collector, CollectorType
from exporter.collectors.host import HOST

COLLECTOR_TYPES: tuple[CollectorType, ...] = (HOST,)  # type: ignore[type-arg]

__all__ = ["COLLECTOR_TYPES", "Collector", "CollectorType"]
