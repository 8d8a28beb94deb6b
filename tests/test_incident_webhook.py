"""Alertmanager's webhook into a real `pulse-exporter`: what it records, what it refuses (and then changes
nothing), that it sits behind basic auth like everything else, and that a notification answered 200 is in
the journal even when the process is killed with SIGKILL right after."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from exporter.incidents import webhook
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.webhook import InvalidWebhook, parse_time
from tests.helpers import StartExporter
from tests.incident_pulse import WEBHOOK, ZERO_TIME, PulseWithJournal, alert, rfc3339, webhook_body

pytestmark = pytest.mark.integration

T0 = 1_800_000_000
DISK = {"alertname": "DiskFull", "severity": "warning", "service": "shop", "team": "ops"}


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseWithJournal]:
    with PulseWithJournal(tmp_path_factory.mktemp("webhook")) as running:
        yield running.start()


def journal_rows(pulse: PulseWithJournal) -> list[dict[str, Any]]:
    with pulse.open_journal() as journal:
        return [vars(i) for i in journal.incidents()]


# ------------------------------------------------------------------------------------------- times


def test_times_are_rfc_3339_kept_to_the_millisecond() -> None:
    base = parse_time("2026-12-07T06:00:00Z", "t")
    assert base is not None
    assert parse_time("2026-12-07T06:00:00.123456789Z", "t") == base + 0.123
    assert parse_time("2026-12-07T07:30:00.5+01:30", "t") == base + 0.5
    assert parse_time("2026-12-07t06:00:00z", "t") == base
    assert parse_time(ZERO_TIME, "t") is None
    for bad in ("2026-12-07 06:00:00Z", "2026-12-07T06:00:00", "2026-02-30T00:00:00Z", "yesterday", 1700000000):
        with pytest.raises(InvalidWebhook, match=r"^t: not an RFC 3339 time"):
            parse_time(bad, "t")


# -------------------------------------------------------------------------------------- deliveries


def test_a_delivery_is_recorded_and_its_resolution_follows(pulse: PulseWithJournal) -> None:
    starts = rfc3339(T0, 123456789)
    firing = alert("0a1b2c3d4e5f6071", DISK, starts, annotations={"summary": "Disk 91% full"})
    answer = pulse.deliver(webhook_body([firing], notification_reason="new", future_field={"x": 1}))
    assert (answer.status_code, answer.text) == (200, "recorded 1 alert\n")

    (row,) = [r for r in journal_rows(pulse) if r["fingerprint"] == "0a1b2c3d4e5f6071"]
    assert (row["started_at"], row["resolved_at"], row["labels"]) == (T0 + 0.123, None, DISK)
    assert row["annotations"] == {"summary": "Disk 91% full"}

    ended = {**firing, "status": "resolved", "endsAt": rfc3339(T0 + 600, 5_000_000)}
    assert pulse.deliver(webhook_body([ended])).status_code == 200
    assert pulse.deliver(webhook_body([firing])).status_code == 200  # a late retry: still resolved
    (row,) = [r for r in journal_rows(pulse) if r["fingerprint"] == "0a1b2c3d4e5f6071"]
    assert (row["resolved_at"], row["notifications"]) == (T0 + 600.005, 3)


VALID = alert("abcdef0123456789", DISK, rfc3339(T0))
MALFORMED: list[tuple[str, bytes, str]] = [
    ("not JSON", b"{alerts: [", "body: not JSON"),
    ("not an object", b"[]", "body: not a JSON object"),
    ("an old payload version", json.dumps({**webhook_body([VALID]), "version": "3"}).encode(), 'version: "3"'),
    ("no alerts", json.dumps({"version": "4"}).encode(), "alerts: not a list"),
    ("an alert not an object", json.dumps(webhook_body([VALID, 7])).encode(), "alerts[1]: not an object"),  # type: ignore[list-item]
    (
        "a bad start",
        json.dumps(webhook_body([VALID, VALID, VALID, {**VALID, "startsAt": "monday"}])).encode(),
        "alerts[3].startsAt: not an RFC 3339 time",
    ),
    ("a bad status", json.dumps(webhook_body([{**VALID, "status": "pending"}])).encode(), "alerts[0].status"),
    ("no fingerprint", json.dumps(webhook_body([{**VALID, "fingerprint": ""}])).encode(), "alerts[0].fingerprint"),
    (
        "a label that is not a string",
        json.dumps(webhook_body([{**VALID, "labels": {"alertname": 5}}])).encode(),
        "alerts[0].labels.alertname: not a string",
    ),
    (
        "a resolved alert without its end",
        json.dumps(webhook_body([{**VALID, "status": "resolved", "endsAt": ZERO_TIME}])).encode(),
        "alerts[0].endsAt: a resolved alert needs its end",
    ),
    (
        "a huge label value",
        json.dumps(webhook_body([{**VALID, "labels": {"alertname": "x" * 5000}}])).encode(),
        "alerts[0].labels.alertname: 5000 characters; at most 4096",
    ),
    (
        "too many alerts",
        json.dumps(webhook_body([{**VALID, "fingerprint": f"{n:016x}"} for n in range(1001)])).encode(),
        "alerts: 1001 alerts; at most 1000",
    ),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "body: not JSON"),
]


@pytest.mark.parametrize(("case", "body", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_delivery_gets_400_naming_the_field_and_changes_nothing(
    pulse: PulseWithJournal, case: str, body: bytes, message: str
) -> None:
    before = journal_rows(pulse)
    answer = pulse.deliver(body)
    assert answer.status_code == 400, case
    assert answer.text.startswith(message), answer.text
    assert answer.text.count("\n") == 1  # one line
    assert journal_rows(pulse) == before


def test_bodies_up_to_one_mebibyte_are_taken_at_the_webhook_and_64_kibibytes_elsewhere(
    pulse: PulseWithJournal,
) -> None:
    prose = {f"note{n}": "x" * 16_000 for n in range(60)}  # about 960 KiB of annotations
    big = webhook_body([alert("00000000000000b1", DISK, rfc3339(T0), annotations=prose)])
    assert 900_000 < len(json.dumps(big)) < 1024 * 1024
    assert pulse.deliver(big).status_code == 200

    before = journal_rows(pulse)
    too_big = webhook_body([alert("00000000000000b2", DISK, rfc3339(T0), annotations={**prose, "more": "y" * 90_000})])
    answer = pulse.deliver(too_big)
    assert (answer.status_code, answer.text) == (413, "request body too large: at most 1048576 bytes\n")
    assert journal_rows(pulse) == before

    elsewhere = pulse.client.post(f"{pulse.url}/-/reload", content=b"x" * 70_000)
    assert (elsewhere.status_code, elsewhere.text) == (413, "request body too large: at most 65536 bytes\n")


def test_the_webhook_needs_basic_auth_and_a_post(pulse: PulseWithJournal) -> None:
    before = journal_rows(pulse)
    body = webhook_body([alert("00000000000000c1", DISK, rfc3339(T0))])
    assert httpx.post(f"{pulse.url}{WEBHOOK}", json=body).status_code == 401
    assert httpx.post(f"{pulse.url}{WEBHOOK}", json=body, auth=("alertmanager", "guess")).status_code == 401
    assert journal_rows(pulse) == before
    wrong_method = pulse.client.get(f"{pulse.url}{WEBHOOK}")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")


def test_without_the_journal_the_webhook_is_404(start_exporter: StartExporter) -> None:
    running = start_exporter("incidents: {enabled: false}\n")
    answer = running.post(WEBHOOK, json=webhook_body([VALID]))
    assert (answer.status_code, answer.text) == (
        404,
        "The incident journal is off: set incidents.enabled: true in pulse.yml\n",
    )


def test_a_journal_that_cannot_write_answers_503_so_alertmanager_retries(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "incidents.db")
    with Journal(url) as journal:
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE pulse_incidents")  # a journal gone wrong under Pulse
        engine.dispose()
        body = json.dumps(webhook_body([VALID])).encode()
        answer = asyncio.run(webhook.receive(body, journal))
    assert answer.status == 503
    assert "retry" in answer.message
    assert "incidents.db" not in answer.message  # the reason goes to the log, not to the client


def test_every_notification_answered_200_survives_kill_9(pulse: PulseWithJournal) -> None:
    """Rounds of deliveries, the process killed with SIGKILL the moment the last 200 arrives, then
    restarted on the same journal: every accepted alert is there."""
    accepted: list[str] = []
    for round_ in range(3):
        for n in range(4):
            fingerprint = f"{round_:08x}{n:08x}"
            answer = pulse.deliver(webhook_body([alert(fingerprint, {**DISK, "n": str(n)}, rfc3339(T0 + n))]))
            assert answer.status_code == 200
            accepted.append(fingerprint)
        pulse.kill9()
        with pulse.open_journal() as journal:
            kept = {i.fingerprint for i in journal.incidents()}
        assert set(accepted) <= kept, f"lost after kill -9: {set(accepted) - kept}"
        pulse.start()
