"""The journal's figures for Prometheus, counted by the database in one pass (GROUP BY), never by loading
incidents: open incidents, incidents recorded, the oldest unacknowledged start, and histograms of the
time to acknowledge and to resolve.

Labels are bounded whatever the webhook sends:
- `severity` is folded to critical, warning, info or "other" (in SQL);
- `team` and `service` keep their own value for the first MAX_TEAMS / MAX_SERVICES distinct values the
  journal holds, in the order they first appeared (the lowest incident id); every later value, and any
  value longer than MAX_LABEL_LENGTH, is counted under "other". The journal never deletes incidents, so
  a value never changes its place: a counter folded into "other" stays there, and none goes backwards.

SQLAlchemy is imported only when the figures are read (the registry imports the collector, and with it
this module, whether the journal is enabled or not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SEVERITIES = ("critical", "warning", "info")
OTHER = "other"
MAX_TEAMS = 20
MAX_SERVICES = 50
MAX_LABEL_LENGTH = 100
# Upper bounds (seconds) of the time-to-acknowledge and time-to-resolve buckets: a minute to three days.
BUCKETS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)


@dataclass
class Histogram:
    """Cumulative counts per bucket of BUCKETS (then +Inf = count), and the sum of the observed seconds."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    sum: float = 0.0

    def add(self, buckets: Iterable[int], count: int, total: float) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, buckets, strict=True)]
        self.count += count
        self.sum += total


@dataclass
class ServiceFigures:
    """Per (severity, team, service)."""

    total: int = 0
    open_acknowledged: int = 0
    open_unacknowledged: int = 0
    oldest_unacknowledged_start: float | None = None  # started_at of the oldest open, unacknowledged one


@dataclass
class Figures:
    by_service: dict[tuple[str, str, str], ServiceFigures] = field(default_factory=dict)  # severity, team, service
    acknowledge: dict[tuple[str, str], Histogram] = field(default_factory=dict)  # severity, team
    resolve: dict[tuple[str, str], Histogram] = field(default_factory=dict)


def _duration(later: str) -> str:
    """Seconds from the start to `later` (never negative), NULL while `later` is NULL."""
    return f"CASE WHEN {later} IS NULL THEN NULL WHEN {later} < started_at THEN 0 ELSE {later} - started_at END"


def _bucket_columns(prefix: str, column: str) -> str:
    return ", ".join(
        f"SUM(CASE WHEN {column} <= {bound:g} THEN 1 ELSE 0 END) AS {prefix}_le_{index}"
        for index, bound in enumerate(BUCKETS)
    )


_SEVERITY = "CASE WHEN severity IN (" + ", ".join(f"'{s}'" for s in SEVERITIES) + f") THEN severity ELSE '{OTHER}' END"
_OPEN_UNACKNOWLEDGED = "resolved_at IS NULL AND acknowledged_at IS NULL"
QUERY = f"""
SELECT severity, team, service,
       MIN(id) AS first_id,
       COUNT(*) AS total,
       SUM(CASE WHEN resolved_at IS NULL AND acknowledged_at IS NOT NULL THEN 1 ELSE 0 END) AS open_acknowledged,
       SUM(CASE WHEN {_OPEN_UNACKNOWLEDGED} THEN 1 ELSE 0 END) AS open_unacknowledged,
       MIN(CASE WHEN {_OPEN_UNACKNOWLEDGED} THEN started_at END) AS oldest_unacknowledged,
       COUNT(tta) AS ack_count, COALESCE(SUM(tta), 0) AS ack_sum, {_bucket_columns("ack", "tta")},
       COUNT(ttr) AS res_count, COALESCE(SUM(ttr), 0) AS res_sum, {_bucket_columns("res", "ttr")}
FROM (
    SELECT id, {_SEVERITY} AS severity, team, service, started_at, resolved_at, acknowledged_at,
           {_duration("acknowledged_at")} AS tta, {_duration("resolved_at")} AS ttr
    FROM pulse_incidents
) AS incidents
GROUP BY 1, 2, 3
"""  # built from the constants above only: no user input


def change_counter(connection: Connection) -> int | None:
    """SQLite's `data_version`: the same number on the same connection until another connection commits.
    None for PostgreSQL (no such counter; its hash aggregate is quick anyway)."""
    if connection.dialect.name != "sqlite":
        return None
    return int(connection.exec_driver_sql("PRAGMA data_version").scalar_one())


def read_figures(connection: Connection) -> Figures:
    import sqlalchemy  # noqa: PLC0415 - see the module's docstring

    rows = [dict(row) for row in connection.execute(sqlalchemy.text(QUERY)).mappings()]
    return figures_of(rows)


def figures_of(rows: Sequence[Mapping[str, Any]]) -> Figures:
    """Fold the per-(severity, team, service) rows of QUERY into bounded label values."""
    team = _kept(rows, "team", MAX_TEAMS)
    service = _kept(rows, "service", MAX_SERVICES)
    figures = Figures()
    for row in rows:
        labels = (str(row["severity"]), team(str(row["team"])), service(str(row["service"])))
        own = figures.by_service.setdefault(labels, ServiceFigures())
        own.total += int(row["total"])
        own.open_acknowledged += int(row["open_acknowledged"])
        own.open_unacknowledged += int(row["open_unacknowledged"])
        oldest = row["oldest_unacknowledged"]
        if oldest is not None:
            current = own.oldest_unacknowledged_start
            own.oldest_unacknowledged_start = float(oldest) if current is None else min(current, float(oldest))
        for prefix, histograms in (("ack", figures.acknowledge), ("res", figures.resolve)):
            histogram = histograms.setdefault(labels[:2], Histogram())
            buckets = (int(row[f"{prefix}_le_{index}"] or 0) for index in range(len(BUCKETS)))
            histogram.add(buckets, int(row[f"{prefix}_count"]), float(row[f"{prefix}_sum"]))
    return figures


def _kept(rows: Sequence[Mapping[str, Any]], label: str, limit: int) -> Callable[[str], str]:
    """A function giving each value of `label` its exposed value: itself for the first `limit` distinct
    values by first appearance (the empty value, an absent label, is always itself), OTHER for the rest."""
    first_seen: dict[str, int] = {}
    for row in rows:
        value = str(row[label])
        if value and len(value) <= MAX_LABEL_LENGTH:
            first_seen[value] = min(first_seen.get(value, row["first_id"]), row["first_id"])
    kept = set(sorted(first_seen, key=first_seen.__getitem__)[:limit])

    def exposed(value: str) -> str:
        return value if not value or value in kept else OTHER

    return exposed
