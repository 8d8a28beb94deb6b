"""What a report is built from, and the two ways to build one (sections/ do the work).

inputs = ReportInputs(prometheus=client, journal=journal, services=config.services, timezone="Europe/Paris")
report = build_report("week", inputs, end=None)       # the last whole week before now
report = build_incident_report(42, inputs)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.config.platform import ServiceConfig
from exporter.dashboards.render.data import PrometheusClient
from exporter.incidents.journal import Journal


def _silent(_step: str) -> None:
    return None


@dataclass
class ReportInputs:
    prometheus: PrometheusClient
    journal: Journal | None  # None: no journal configured; the incident sections say so
    services: Mapping[str, ServiceConfig]
    timezone: str = "UTC"
    progress: Callable[[str], None] = field(default=_silent)  # called before each query group: the progress bar
