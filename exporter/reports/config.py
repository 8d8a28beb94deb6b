"""The `reports:` section of pulse.yml: where scheduled reports go, when, and how many are kept.

    reports:
      directory: /var/lib/pulse/reports
      keep: 30                      # per period: older reports are deleted
      timezone: Europe/Paris        # days, weeks and months begin at midnight here
      schedule:
        - {period: day, cron: "0 7 * * *"}
        - {period: week, cron: "0 7 * * 1"}
        - {period: month, cron: "0 7 1 * *"}

Reports read `prometheus.url`, the journal (`incidents:`) and the SLA targets of `services:`.
"""

from __future__ import annotations

import zoneinfo
from typing import Literal

import pydantic

from exporter.config.types import StrictModel

Period = Literal["day", "week", "month"]


class ScheduledReport(StrictModel):
    period: Period
    cron: str

    @pydantic.field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter  # noqa: PLC0415

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (minute hour day-of-month month day-of-week)")
        return value


class ReportsConfig(StrictModel):
    directory: str = "/var/lib/pulse/reports"
    keep: int = pydantic.Field(30, ge=1, le=10_000)
    timezone: str = "UTC"
    schedule: list[ScheduledReport] = []

    @pydantic.field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Paris)") from None
        return value
