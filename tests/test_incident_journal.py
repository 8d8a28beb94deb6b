"""The incident journal's store, on SQLite and on PostgreSQL: what it keeps of Alertmanager's deliveries,
that replayed and reordered deliveries give the same journal, and that concurrent writers lose nothing."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.incidents.journal import Journal, JournalError, UnknownIncident, sqlite_url
from exporter.incidents.model import AlertNotice

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0  # an alert's startsAt
DISK = {"alertname": "DiskFull", "severity": "warning", "team": "ops", "service": "shop", "instance": "db1"}
DOWN = {"alertname": "ShopDown", "severity": "critical", "team": "web", "service": "shop"}


def firing(fingerprint: str, labels: dict[str, str], starts_at: float = T0, **annotations: str) -> AlertNotice:
    return AlertNotice(fingerprint, "firing", labels, annotations, starts_at, None, "http://prometheus/graph")


def resolved(notice: AlertNotice, ends_at: float) -> AlertNotice:
    return dataclasses.replace(notice, status="resolved", ends_at=ends_at)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A journal database with no journal in it yet: a fresh SQLite file, or the session's PostgreSQL
    database with the journal's tables dropped."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data" / "incidents.db")
    database: TestDatabase = request.getfixturevalue("postgresql_database")
    drop_tables(database.url)
    return database.url


def reset(url: str) -> None:
    """No journal in the database any more."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
    else:
        drop_tables(url)


def drop_tables(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        for table in ("pulse_incidents", "pulse_maintenance", "pulse_journal_schema"):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    engine.dispose()


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    with Journal(journal_url) as opened:
        yield opened


def snapshot(journal: Journal) -> dict[tuple[str, float], dict[str, Any]]:
    """Every incident as data, keyed by alert (ids depend on arrival order, so they are left out)."""
    return {
        (i.fingerprint, i.started_at): {k: v for k, v in dataclasses.asdict(i).items() if k != "id"}
        for i in journal.incidents()
    }


def test_a_delivery_opens_one_incident_per_alert_with_its_labels_and_times(journal: Journal) -> None:
    ids = journal.record([firing("a1", DISK, summary="Disk full"), firing("b2", DOWN, T0 + 5)], T0 + 40)

    assert len(set(ids)) == 2
    disk = journal.incident(ids[0])
    assert (disk.alertname, disk.severity, disk.team, disk.service) == ("DiskFull", "warning", "ops", "shop")
    assert disk.labels == DISK
    assert disk.annotations == {"summary": "Disk full"}
    assert (disk.started_at, disk.first_notified_at, disk.resolved_at) == (T0, T0 + 40, None)
    assert disk.time_to_detect == 40
    assert disk.is_open
    assert disk.notifications == 1
    assert [i.fingerprint for i in journal.incidents()] == ["b2", "a1"]  # newest first


def test_a_replayed_delivery_changes_nothing_but_the_count_of_notifications(journal: Journal) -> None:
    delivery = [firing("a1", DISK), firing("b2", DOWN)]
    first_ids = journal.record(delivery, T0 + 10)
    before = snapshot(journal)

    assert journal.record(delivery, T0 + 10) == first_ids
    after = snapshot(journal)
    assert {k: {**v, "notifications": 1} for k, v in after.items()} == before
    assert {v["notifications"] for v in after.values()} == {2}


def test_the_resolution_is_kept_when_a_late_retry_of_a_firing_delivery_arrives(journal: Journal) -> None:
    alert = firing("a1", DISK)
    journal.record([alert], T0 + 10)
    (incident_id,) = journal.record([resolved(alert, T0 + 600)], T0 + 620)
    journal.record([alert], T0 + 30)  # Alertmanager retrying the first delivery, late

    incident = journal.incident(incident_id)
    assert incident.resolved_at == T0 + 600
    assert not incident.is_open
    assert incident.time_to_resolve == 600
    assert (incident.first_notified_at, incident.last_notified_at) == (T0 + 10, T0 + 620)
    assert journal.incidents(open_only=True) == []


def test_the_same_alert_firing_again_later_is_a_new_incident(journal: Journal) -> None:
    first = journal.record([resolved(firing("a1", DISK), T0 + 60)], T0 + 70)
    second = journal.record([firing("a1", DISK, T0 + 3600)], T0 + 3610)
    assert first != second
    assert [i.is_open for i in journal.incidents()] == [True, False]


# Deliveries as Alertmanager may send them: a group's first notification, a repeat with an updated
# annotation, one resolving an alert, and another group. Each is (alerts, received_at).
ALERT_A = firing("a1", DISK, summary="Disk 91% full")
ALERT_B = firing("b2", DOWN, T0 + 20, summary="Shop down")
ALERT_A_WORSE = dataclasses.replace(ALERT_A, annotations={"summary": "Disk 97% full"})
DELIVERIES: list[tuple[list[AlertNotice], float]] = [
    ([ALERT_A], T0 + 30),
    ([ALERT_A_WORSE, ALERT_B], T0 + 330),
    ([resolved(ALERT_A_WORSE, T0 + 900), ALERT_B], T0 + 930),
    ([resolved(ALERT_B, T0 + 1200)], T0 + 1230),
]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(len(DELIVERIES))),
    replays=st.lists(st.sampled_from(range(len(DELIVERIES))), max_size=3),
)
def test_deliveries_in_any_order_and_replayed_give_the_same_journal(
    journal_url: str, order: list[int], replays: list[int]
) -> None:
    def journal_after(sequence: list[int]) -> dict[tuple[str, float], dict[str, Any]]:
        reset(journal_url)
        with Journal(journal_url) as journal:
            for index in sequence:
                alerts, received_at = DELIVERIES[index]
                journal.record(alerts, received_at)
            return snapshot(journal)

    expected = journal_after(list(range(len(DELIVERIES))))
    got = journal_after([*order, *replays])

    assert {k: {**v, "notifications": 0} for k, v in got.items()} == {
        k: {**v, "notifications": 0} for k, v in expected.items()
    }
    a, b = got[("a1", T0)], got[("b2", T0 + 20)]
    assert (a["resolved_at"], b["resolved_at"]) == (T0 + 900, T0 + 1200)
    assert a["annotations"] == {"summary": "Disk 97% full"}  # from the latest delivery naming it
    assert a["first_notified_at"] == T0 + 30
    assert a["last_notified_at"] == T0 + 930
    assert a["notifications"] == 3 + sum(1 for r in replays if r in (0, 1, 2))


def test_two_deliveries_received_at_the_same_instant_merge_the_same_in_either_order(journal_url: str) -> None:
    told = [dataclasses.replace(ALERT_A, annotations={"summary": text}) for text in ("first", "second")]
    journals = []
    for order in (told, told[::-1]):
        reset(journal_url)
        with Journal(journal_url) as journal:
            for notice in order:
                journal.record([notice], T0 + 60)
            journals.append(snapshot(journal))
    assert journals[0] == journals[1]


def test_acknowledging_keeps_the_first_acknowledgement(journal: Journal) -> None:
    (incident_id,) = journal.record([firing("a1", DISK)], T0 + 10)

    acknowledged = journal.acknowledge(incident_id, "alice", T0 + 120)
    assert (acknowledged.acknowledged_by, acknowledged.time_to_acknowledge) == ("alice", 120)
    assert journal.acknowledge(incident_id, "bob", T0 + 300).acknowledged_by == "alice"
    assert not journal.acknowledge_alert("a1", T0, "silence x by carol", T0 + 400)
    with pytest.raises(UnknownIncident, match="no incident 999"):
        journal.acknowledge(999, "alice", T0)


def test_an_alert_is_acknowledged_by_fingerprint_and_start_unless_resolved_before(journal: Journal) -> None:
    (open_id,) = journal.record([firing("a1", DISK)], T0 + 10)
    (done_id,) = journal.record([resolved(firing("b2", DOWN), T0 + 50)], T0 + 60)

    assert journal.acknowledge_alert("a1", T0, "silence 42 by carol", T0 + 90)
    assert not journal.acknowledge_alert("a1", T0 + 1, "silence 42 by carol", T0 + 90)  # another firing
    assert not journal.acknowledge_alert("b2", T0, "silence 43 by carol", T0 + 90)  # resolved at T0 + 50
    assert journal.incident(open_id).acknowledged_by == "silence 42 by carol"
    assert journal.incident(done_id).acknowledged_at is None


def test_a_cause_and_a_resolution_are_written_separately(journal: Journal) -> None:
    (incident_id,) = journal.record([firing("a1", DISK)], T0 + 10)

    journal.annotate(incident_id, cause="log rotation stopped")
    incident = journal.annotate(incident_id, resolution="rotated, disk grown")
    assert (incident.cause, incident.resolution) == ("log rotation stopped", "rotated, disk grown")
    with pytest.raises(UnknownIncident):
        journal.annotate(12345, cause="?")
    with pytest.raises(JournalError, match="at most"):
        journal.annotate(incident_id, cause="x" * 10_001)


def test_incidents_going_on_since_a_time(journal: Journal) -> None:
    journal.record([resolved(firing("a1", DISK), T0 + 60)], T0 + 70)
    journal.record([firing("b2", DOWN, T0 + 100)], T0 + 110)

    assert [i.fingerprint for i in journal.incidents(since=T0 + 80)] == ["b2"]
    assert [i.fingerprint for i in journal.incidents(since=T0 + 30)] == ["b2", "a1"]
    assert [i.fingerprint for i in journal.incidents(until=T0 + 90)] == ["a1"]
    assert len(journal.incidents(limit=1)) == 1


def test_concurrent_writers_lose_no_notification(journal_url: str) -> None:
    """Four writers with their own connections (as Pulse and the CLI, or two Pulse processes), each
    delivering the same shared alert and alerts of its own, all at once."""
    Journal(journal_url).close()  # the schema exists before the race
    writers, deliveries = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        try:
            with Journal(journal_url) as journal:
                start.wait()
                for n in range(deliveries):
                    own = firing(f"{writer:x}{n:02x}", {**DISK, "instance": f"w{writer}"}, T0 + n)
                    shared = [firing("fff1", DOWN), firing("fff2", {**DOWN, "service": "api"})]
                    # Opposite orders: writers locking rows as listed would deadlock (PostgreSQL).
                    alerts = [shared[0], own, shared[1]] if (writer + n) % 2 else [shared[1], own, shared[0]]
                    journal.record(alerts, T0 + 100 + n)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with Journal(journal_url) as journal:
        incidents = journal.incidents()
    assert len(incidents) == 2 + writers * deliveries
    assert {i.notifications for i in incidents if i.fingerprint.startswith("fff")} == {writers * deliveries}


def test_a_database_that_cannot_be_opened_is_a_clear_error_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot open the incident journal") as refused:
        Journal("postgresql+psycopg://pulse:s3cret@127.0.0.1:1/journal")
    assert "s3cret" not in str(refused.value)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JournalError, match="cannot open the incident journal"):
        Journal(sqlite_url(blocker / "incidents.db"))
