"""The `status:` section of pulse.yml: the public status page at /status.

    status:
      enabled: true
      title: Example Shop status
      public: true      # served without authentication while every other endpoint stays protected

It shows each service of `services:` marked public (its title only), from `prometheus.url`'s probe
history, with the journal's open incidents and maintenance windows: never labels, hosts or alert text.
"""

from __future__ import annotations

import pydantic

from exporter.config.types import PositiveDuration, StrictModel


class StatusConfig(StrictModel):
    enabled: bool = False
    title: str = pydantic.Field("Service status", min_length=1, max_length=80)
    public: bool = False  # explicit: the page is behind basic auth like everything else unless this is true
    days: int = pydantic.Field(90, ge=1, le=400)  # the uptime history shown
    cache_for: PositiveDuration = 30.0  # answers are reused this long: an anonymous crowd cannot load Prometheus
