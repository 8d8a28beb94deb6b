"""What the journal holds: incidents (one per alert firing: fingerprint and startsAt) and maintenance windows.

Times are Unix seconds (float). An incident's times, in the order they happen:

    started_at          the alert's startsAt: when Prometheus began firing it
    first_notified_at   when Pulse first received it from Alertmanager (time to detect = this - started_at)
    acknowledged_at     when a person acknowledged it (`incidents ack`, or a silence in Alertmanager)
    resolved_at         the alert's endsAt once Alertmanager sends it resolved (time to resolve = this - started_at)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

AlertStatus = Literal["firing", "resolved"]


@dataclass(frozen=True)
class AlertNotice:
    """One alert of one webhook delivery, as Alertmanager sent it."""

    fingerprint: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None  # set when resolved; a firing alert's endsAt is only its validity, not kept
    generator_url: str = ""


@dataclass(frozen=True)
class Incident:
    id: int
    fingerprint: str
    started_at: float
    first_notified_at: float
    last_notified_at: float
    resolved_at: float | None
    acknowledged_at: float | None
    acknowledged_by: str | None  # a person's name, or "silence <id> by <createdBy>"
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    generator_url: str
    notifications: int  # deliveries received for it (Alertmanager repeats and retries)
    cause: str | None = None
    resolution: str | None = None

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def team(self) -> str:
        return self.labels.get("team", "")

    @property
    def service(self) -> str:
        return self.labels.get("service", "")

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def time_to_detect(self) -> float:
        return max(0.0, self.first_notified_at - self.started_at)

    @property
    def time_to_acknowledge(self) -> float | None:
        return None if self.acknowledged_at is None else max(0.0, self.acknowledged_at - self.started_at)

    @property
    def time_to_resolve(self) -> float | None:
        return None if self.resolved_at is None else max(0.0, self.resolved_at - self.started_at)

    def duration(self, now: float) -> float:
        """How long it lasted, or has lasted so far when still open."""
        return max(0.0, (self.resolved_at if self.resolved_at is not None else now) - self.started_at)


@dataclass(frozen=True)
class Maintenance:
    """A planned window for one service: silenced in Alertmanager, shown on the status page, and taken out
    of the SLA figures of the reports."""

    id: int
    service: str
    starts_at: float
    ends_at: float
    comment: str
    created_by: str
    silence_id: str | None = None  # the Alertmanager silence that mutes its alerts

    def overlaps(self, start: float, end: float) -> bool:
        return self.starts_at < end and self.ends_at > start
