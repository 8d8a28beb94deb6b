"""The incident journal as Prometheus sees it: the incidents collector's metrics, counted by the database
(SQLite and PostgreSQL) from a journal filled through Journal.record(), with labels that stay bounded
whatever the webhooks send, and an exposition that promtool accepts.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy
from prometheus_client.metrics_core import Metric

from exporter.exposition import encode_text
from exporter.incidents.collector import IncidentsCollector
from exporter.incidents.config import IncidentsConfig
from exporter.incidents.figures import BUCKETS, MAX_SERVICES, MAX_TEAMS
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice
from tests.helpers import by_name, require_binary

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

T0 = 1_700_000_000.0  # when the first incident began
PLATFORM_SHOP = {"team": "platform", "service": "shop"}


def notice(
    fingerprint: str, starts_at: float, labels: Mapping[str, str], resolved_at: float | None = None
) -> AlertNotice:
    return AlertNotice(
        fingerprint=fingerprint,
        status="firing" if resolved_at is None else "resolved",
        labels={"alertname": f"Alert{fingerprint}", **labels},
        annotations={"summary": "A test alert."},
        starts_at=starts_at,
        ends_at=resolved_at,
    )


def collect(url: str) -> list[Metric]:
    """One collector, started, collected twice (the second from the cache), closed."""

    async def run() -> list[Metric]:
        collector = IncidentsCollector(IncidentsConfig(enabled=True, database=url))
        await collector.start()
        try:
            first = list(await collector.collect())
            again = list(await collector.collect())
            assert by_name(again) == by_name(first)
            return first
        finally:
            await collector.close()

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "incidents.db")
        return
    database: TestDatabase = request.getfixturevalue("postgresql_database")
    drop = "DROP TABLE IF EXISTS pulse_incidents, pulse_maintenance, pulse_journal_schema"
    with database.engine().begin() as connection:  # the session's database: start from an empty journal
        connection.execute(sqlalchemy.text(drop))
    yield database.url
    with database.engine().begin() as connection:
        connection.execute(sqlalchemy.text(drop))


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def histogram(found: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **group: str) -> list[float]:
    """A histogram's bucket counts (in BUCKETS order, then +Inf), count and sum, for one label set."""
    bounds = [*(f"{bound:g}" for bound in BUCKETS), "+Inf"]
    buckets = [found[f"{name}_bucket"][labels(**group, le=bound)] for bound in bounds]
    return [*buckets, found[f"{name}_count"][labels(**group)], found[f"{name}_sum"][labels(**group)]]


def test_open_recorded_oldest_unacknowledged_and_the_times_to_act_are_the_journals(journal_url: str) -> None:
    with Journal(journal_url) as journal:
        # Acknowledged after 2 minutes, resolved after 10.
        (acked_resolved,) = journal.record([notice("a", T0, {"severity": "critical", **PLATFORM_SHOP})], T0 + 30)
        journal.acknowledge(acked_resolved, "alice", T0 + 120)
        journal.record([notice("a", T0, {"severity": "critical", **PLATFORM_SHOP}, resolved_at=T0 + 600)], T0 + 660)
        # Open, nobody acknowledged them: the older is the one an alert speaks of.
        journal.record([notice("b", T0 + 1000, {"severity": "critical", **PLATFORM_SHOP})], T0 + 1030)
        journal.record([notice("c", T0 + 2000, {"severity": "critical", **PLATFORM_SHOP})], T0 + 2030)
        # Open and acknowledged after 30 s: in the time to acknowledge, not in the time to resolve.
        (acked_open,) = journal.record([notice("d", T0 + 3000, {"severity": "warning", "team": "marketing"})], T0)
        journal.acknowledge(acked_open, "bob", T0 + 3030)
        # Resolved after 4000 s without an acknowledgement, with a severity no route knows.
        journal.record([notice("e", T0, {"severity": "page", **PLATFORM_SHOP}, resolved_at=T0 + 4000)], T0 + 4060)

    found = by_name(collect(journal_url))

    critical = {"severity": "critical", **PLATFORM_SHOP}
    marketing = {"severity": "warning", "team": "marketing", "service": ""}
    other = {"severity": "other", **PLATFORM_SHOP}
    assert found["pulse_incidents_open"] == {
        labels(**critical, acknowledged="false"): 2,
        labels(**critical, acknowledged="true"): 0,
        labels(**marketing, acknowledged="false"): 0,
        labels(**marketing, acknowledged="true"): 1,
        labels(**other, acknowledged="false"): 0,
        labels(**other, acknowledged="true"): 0,
    }
    assert found["pulse_incidents_total"] == {labels(**critical): 3, labels(**marketing): 1, labels(**other): 1}
    assert found["pulse_incident_oldest_unacknowledged_start_timestamp_seconds"] == {labels(**critical): T0 + 1000}

    #                          60 300 900 1800 3600 7200 ... 259200 +Inf  count  sum
    tta = "pulse_incident_time_to_acknowledge_seconds"
    assert histogram(found, tta, severity="critical", team="platform") == [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 120]
    assert histogram(found, tta, severity="warning", team="marketing") == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 30]
    assert histogram(found, tta, severity="other", team="platform") == [0] * 13
    ttr = "pulse_incident_time_to_resolve_seconds"
    assert histogram(found, ttr, severity="critical", team="platform") == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 600]
    assert histogram(found, ttr, severity="warning", team="marketing") == [0] * 13  # open: no time to resolve yet
    assert histogram(found, ttr, severity="other", team="platform") == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 4000]


def test_a_new_incident_is_counted_at_the_next_scrape(tmp_path: Path) -> None:
    """The collector keeps its last figures while SQLite says nothing changed: a write must show at once."""
    url = sqlite_url(tmp_path / "incidents.db")

    async def run() -> tuple[float, float, float]:
        collector = IncidentsCollector(IncidentsConfig(enabled=True, database=url))
        await collector.start()
        try:
            assert collector.journal is not None
            counts = []
            for fingerprint in ("a", "b"):
                collector.journal.record([notice(fingerprint, T0, {"severity": "critical", **PLATFORM_SHOP})], T0)
                counts.append(sum(by_name(await collector.collect())["pulse_incidents_total"].values()))
            counts.append(sum(by_name(await collector.collect())["pulse_incidents_total"].values()))
            return counts[0], counts[1], counts[2]
        finally:
            await collector.close()

    assert asyncio.run(run()) == (1, 2, 2)


def test_team_and_service_values_from_hostile_webhooks_are_bounded(tmp_path: Path) -> None:
    """Each incident a new team and service: the first MAX_TEAMS teams and MAX_SERVICES services seen keep
    their names, the rest (and any over-long value) count as "other"; later values never take a place, so
    the kept series' counters go on from where they were."""
    url = sqlite_url(tmp_path / "incidents.db")
    with Journal(url) as journal:
        journal.record([notice("long", T0, {"severity": "warning", "team": "t" * 500, "service": "s" * 500})], T0)
        first = [notice(f"n{i}", T0 + i, {"severity": "warning", "team": f"team{i}", "service": f"svc{i}"})
                 for i in range(100)]  # fmt: skip
        for arrival in first:  # one delivery each: the journal numbers a delivery's alerts in key order
            journal.record([arrival], T0 + 100)
    before = by_name(collect(url))["pulse_incidents_total"]
    with Journal(url) as journal:
        later = [notice(f"m{i}", T0 + i, {"severity": "warning", "team": f"late{i}", "service": f"late{i}"})
                 for i in range(100)]  # fmt: skip
        journal.record(later, T0 + 200)
    after = by_name(collect(url))["pulse_incidents_total"]

    teams = {dict(key)["team"] for key in after}
    services = {dict(key)["service"] for key in after}
    assert teams == {f"team{i}" for i in range(MAX_TEAMS)} | {"other"}
    assert services == {f"svc{i}" for i in range(MAX_SERVICES)} | {"other"}
    assert len(after) == len(before)  # the same series: the newcomers all went to "other"
    for key, value in before.items():
        grown = 100 if dict(key) == {"severity": "warning", "team": "other", "service": "other"} else 0
        assert after[key] == value + grown, key
    assert sum(after.values()) == 201


def test_every_family_has_help_and_promtool_accepts_the_exposition(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "incidents.db")
    with Journal(url) as journal:
        journal.record([notice("a", T0, {"severity": "critical", **PLATFORM_SHOP})], T0)
        journal.record([notice("b", T0, {"severity": "info", "team": 'with "quotes"\\'}, resolved_at=T0 + 90)], T0)
    families: Sequence[Metric] = collect(url)
    assert [family.name for family in families] == [
        "pulse_incidents_open",
        "pulse_incidents",
        "pulse_incident_oldest_unacknowledged_start_timestamp_seconds",
        "pulse_incident_time_to_acknowledge_seconds",
        "pulse_incident_time_to_resolve_seconds",
    ]
    assert all(len(family.documentation) > 40 for family in families)
    lint = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=encode_text(families).decode(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
