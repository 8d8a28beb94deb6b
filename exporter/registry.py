"""The registry: every section of pulse.yml and the collectors each one builds, listed in one place.

`PulseConfig` is the schema of pulse.yml, declared here, above the plugins (collectors/host, probes,
kpis, access_logs), which know nothing of each other or of this module. Adding a section is one field in
`PulseConfig` (or `CollectorsConfig`, for `collectors.<name>`) and one line in `build_collectors`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pydantic

from exporter.access_logs.collector import build as build_access_logs
from exporter.access_logs.config import LogsConfig
from exporter.collectors import host
from exporter.collectors.base import Collector
from exporter.collectors.host import HostConfig
from exporter.config.loader import load_model
from exporter.config.platform import EndpointConfig, ServiceConfig, check_service_names
from exporter.config.types import StrictModel
from exporter.incidents.collector import build as build_incidents
from exporter.incidents.config import IncidentsConfig
from exporter.kpis.config import KpisConfig
from exporter.kpis.section import build as build_kpis
from exporter.probes.collector import build as build_probes
from exporter.probes.config import ProbesConfig
from exporter.reports.config import ReportsConfig
from exporter.reports.schedule import build as build_report_schedule
from exporter.status.config import StatusConfig

DEFAULT_CONFIG_NAME = "<embedded default config>"


class CollectorsConfig(StrictModel):
    host: HostConfig = HostConfig()


class PulseConfig(StrictModel):
    """pulse.yml. `probes:`, `kpis:` and `logs:` are top-level sections because users know them by those names."""

    collectors: CollectorsConfig = pydantic.Field(default_factory=CollectorsConfig)
    probes: ProbesConfig = pydantic.Field(default_factory=ProbesConfig)
    kpis: KpisConfig = pydantic.Field(default_factory=KpisConfig)
    logs: LogsConfig = pydantic.Field(default_factory=LogsConfig)
    # The platform as the journal, the reports and the status page see it (config/platform.py).
    services: dict[str, ServiceConfig] = {}
    prometheus: EndpointConfig | None = None
    alertmanager: EndpointConfig | None = None
    incidents: IncidentsConfig = pydantic.Field(default_factory=IncidentsConfig)
    status: StatusConfig = pydantic.Field(default_factory=StatusConfig)
    reports: ReportsConfig = pydantic.Field(default_factory=ReportsConfig)

    @pydantic.field_validator("services")
    @classmethod
    def _service_names(cls, value: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        return check_service_names(value)

    @pydantic.model_validator(mode="after")
    def _needs_prometheus(self) -> PulseConfig:
        if self.prometheus is None and (self.status.enabled or self.reports.schedule):
            users = " and ".join(
                n for n, on in (("status", self.status.enabled), ("reports.schedule", self.reports.schedule)) if on
            )
            raise ValueError(f"prometheus: {users} read history from Prometheus: set prometheus.url")
        return self


def build_collectors(config: PulseConfig, config_path: Path | None = None) -> list[Collector]:
    """The collectors `config` asks for, freshly built (app.py keeps the unchanged ones of a reload).
    `config_path` is the file `config` was read from: scheduled reports run with it."""
    return [
        *host.build(config.collectors.host),
        *build_probes(config.probes),
        *build_kpis(config.kpis),
        *build_access_logs(config.logs),
        *build_incidents(config.incidents, config.alertmanager),
        *build_report_schedule(config.reports, config_path),
    ]


def default_config_text() -> str:
    return resources.files("exporter.config").joinpath("default.yml").read_text(encoding="utf-8")


def load_config(path: Path | None) -> PulseConfig:
    """Load pulse.yml from `path`, or the embedded default when there is none."""
    if path is None:
        return load_model(PulseConfig, DEFAULT_CONFIG_NAME, default_config_text())
    return load_model(PulseConfig, path)
