"""The `incidents:` section of pulse.yml: where the journal lives and how it learns of acknowledgements.

incidents:
  database: sqlite:////var/lib/pulse/incidents.db   # or postgresql+psycopg://pulse@db/pulse
  silence_sync_interval: 30s    # read Alertmanager's silences back as acknowledgements (needs alertmanager.url)
"""

from __future__ import annotations

import pydantic

from exporter.config.types import PositiveDuration, StrictModel, secret_field

DATA_DIRECTORY = "/var/lib/pulse"  # the journal, the reports: what a package or the Dockerfile creates
DEFAULT_DATABASE = f"sqlite:///{DATA_DIRECTORY}/incidents.db"


class IncidentsConfig(StrictModel):
    enabled: bool = False  # the webhook answers 404 and no journal is opened unless this is true
    database: str = secret_field(default=DEFAULT_DATABASE)
    silence_sync_interval: PositiveDuration = 30.0

    @pydantic.field_validator("database")
    @classmethod
    def _supported(cls, value: str) -> str:
        from sqlalchemy.engine import make_url  # noqa: PLC0415 - SQLAlchemy only when the section is used
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            backend = make_url(value).get_backend_name()
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a SQLAlchemy URL (sqlite:////var/lib/pulse/incidents.db or postgresql+psycopg://...)"
            ) from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"the incident journal supports sqlite and postgresql, not {backend}")
        return value
