"""The platform Pulse watches, as the incident journal, the reports and the status page share it.

    services:                       # keyed by the `service` label the probes and the rules carry
      shop: {title: Online shop, sla: 99.9}
    prometheus: {url: http://127.0.0.1:9090}     # history for the status page and scheduled reports
    alertmanager: {url: http://127.0.0.1:9093}   # silences: acknowledgements and planned maintenance

One place for each fact: a service's public title and its SLA target are written here and nowhere else.
"""

from __future__ import annotations

import re

import pydantic

from exporter.config.types import PositiveDuration, StrictModel, secret_field

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


class ServiceConfig(StrictModel):
    title: str = pydantic.Field(min_length=1, max_length=80)  # what users of the platform call it
    # Percent of the period the service must be up (maintenance windows excluded); None: no SLA, uptime only.
    sla: float | None = pydantic.Field(None, gt=0, le=100)
    public: bool = True  # shown on the status page


class EndpointConfig(StrictModel):
    """Where Pulse reads (and for Alertmanager, writes silences). Credentials never leave this origin."""

    url: pydantic.AnyHttpUrl
    bearer_token: str | None = secret_field(default=None)
    timeout: PositiveDuration = 10.0

    @property
    def base(self) -> str:
        return str(self.url).rstrip("/")


def check_service_names(services: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
    for name in services:
        if not SERVICE_NAME.match(name):
            raise ValueError(f"service name {name!r}: letters, digits, '_', '.', '-', at most 63 characters")
    return services
