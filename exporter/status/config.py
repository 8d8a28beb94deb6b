"""The `status:` section of pulse.yml: the public status page at /status.

    status:
      enabled: true
      title: Example Shop status
      public: true      # served without authentication while every other endpoint stays protected
      days: 90          # the uptime history shown, one bar a day
      cache_for: 30s    # one build per 30 s, however many visitors

It shows each service of `services:` marked public (its title only), from `prometheus.url`'s probe
history, with the journal's open incidents and maintenance windows: never labels, hosts or alert text.
Times are shown in `reports.timezone`. docs/status.md has the whole story.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import pydantic

from exporter.config.platform import EndpointConfig, ServiceConfig
from exporter.config.types import PositiveDuration, StrictModel
from exporter.incidents.config import IncidentsConfig
from exporter.reports.config import ReportsConfig


class StatusConfig(StrictModel):
    enabled: bool = False
    title: str = pydantic.Field("Service status", min_length=1, max_length=80)
    public: bool = False  # explicit: the page is behind basic auth like everything else unless this is true
    days: int = pydantic.Field(90, ge=1, le=400)  # the uptime history shown
    cache_for: PositiveDuration = 30.0  # answers are reused this long: an anonymous crowd cannot load Prometheus


class PlatformConfig(Protocol):
    """What the status page and the maintenance commands read of pulse.yml (registry.PulseConfig, which
    this layer may not import, has these and more)."""

    @property
    def services(self) -> Mapping[str, ServiceConfig]: ...

    @property
    def prometheus(self) -> EndpointConfig | None: ...

    @property
    def alertmanager(self) -> EndpointConfig | None: ...

    @property
    def incidents(self) -> IncidentsConfig: ...

    @property
    def status(self) -> StatusConfig: ...

    @property
    def reports(self) -> ReportsConfig: ...
