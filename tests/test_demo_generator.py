"""The demo generator writes realistic, reproducible marketplace traffic into SQLite, PostgreSQL and MariaDB.

History is checked for its shape (weekend and evening peaks, failure bursts, refund spikes), live mode
is run as a real subprocess, and the KPI pack is run over what the generator wrote.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy

from exporter.demo import generator
from exporter.kpis.packs import PACKS, marketplace
from exporter.kpis.packs import marketplace_schema as schema
from tests.helpers import wait_until

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

UNTIL = "2026-11-23T00:00:00"  # a Monday, midnight UTC: two full weeks before it
WEEKEND = (5, 6)


def rows(url: str, table: sqlalchemy.Table) -> list[Any]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sqlalchemy.select(table).order_by(table.c.id)).all())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two weeks of history at 20000 sessions a day, failure bursts every 3 hours on average."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    args = ["--url", url, "--backfill", "2w", "--until", UNTIL, "--seed", "3", "--burst-every", "3h"]
    assert generator.main(args) == 0
    return url


def test_traffic_peaks_at_the_weekend_and_in_the_evening(history: str) -> None:
    sessions = rows(history, schema.sessions)
    per_day = Counter(s.started_at.date() for s in sessions)
    assert len(per_day) == 14
    weekend = [n for day, n in per_day.items() if day.weekday() in WEEKEND]
    weekday = [n for day, n in per_day.items() if day.weekday() not in WEEKEND]
    ratio = statistics.mean(weekend) / statistics.mean(weekday)
    assert 1.2 < ratio < 1.6, ratio
    assert 15000 < statistics.mean(weekday) < 25000  # --sessions-per-day's default, 20000
    per_hour = Counter(s.started_at.hour for s in sessions)
    night = sum(per_hour[h] for h in range(2, 6))
    evening = sum(per_hour[h] for h in range(18, 22))
    assert night / evening < 0.2, night / evening


def test_every_session_ends_after_it_starts_and_ids_follow_time(history: str) -> None:
    sessions = rows(history, schema.sessions)
    assert all(s.ended_at >= s.started_at for s in sessions)
    assert all(a.started_at <= b.started_at for a, b in itertools.pairwise(sessions))
    assert sessions[-1].started_at < datetime.fromisoformat(UNTIL)
    orders = rows(history, schema.orders)
    assert 0.03 < len(orders) / len(sessions) < 0.1  # a marketplace's conversion


def test_the_behaviour_flow_drops_off_like_a_shop(history: str) -> None:
    """Of all sessions, about 60% view a product, 25% fill a cart, 10% begin checkout and 4-6% pay."""
    sessions = len(rows(history, schema.sessions))
    reached: dict[str, set[int]] = defaultdict(set)
    for event in rows(history, schema.events):
        reached[event.type].add(event.session_id)
    assert set(reached) == set(marketplace.FUNNEL_STEPS)
    shares = [len(reached[step]) / sessions for step in marketplace.FUNNEL_STEPS]
    assert 0.5 < shares[0] < 0.7, shares
    assert 0.18 < shares[1] < 0.32, shares
    assert 0.07 < shares[2] < 0.14, shares
    assert 0.03 < shares[3] < 0.07, shares


def test_an_order_comes_after_the_steps_leading_to_it_and_a_payment_is_a_paid_event(history: str) -> None:
    sessions = {s.id: s for s in rows(history, schema.sessions)}
    events = rows(history, schema.events)
    steps: dict[int, set[str]] = defaultdict(set)
    for event in events:
        steps[event.session_id].add(event.type)
        assert event.occurred_at >= sessions[event.session_id].started_at
        assert event.user_id == sessions[event.session_id].user_id
        assert (event.product_id is not None) == (event.type in ("product_viewed", "added_to_cart"))
    orders = {o.id: o for o in rows(history, schema.orders)}
    assert all({"product_viewed", "added_to_cart", "checkout_started"} <= steps[o.session_id] for o in orders.values())
    # Each successful payment of an order is a `paid` event of the order's session, at the same time.
    paid_events = {(e.session_id, e.occurred_at) for e in events if e.type == "paid"}
    successes = {
        (orders[p.order_id].session_id, p.created_at)
        for p in rows(history, schema.payments)
        if p.status == "succeeded" and p.order_id is not None
    }
    assert successes <= paid_events
    assert len(paid_events - successes) < 0.005 * len(paid_events)  # payments matched to no order (rare)
    products = {p.id: p for p in rows(history, schema.products)}
    assert all(e.product_id in products for e in events if e.product_id is not None)
    assert {i.product for i in rows(history, schema.order_items)} <= {p.sku for p in products.values()}


def test_nothing_is_dated_after_the_end_of_the_history(history: str) -> None:
    until = datetime.fromisoformat(UNTIL)
    for table, column in [(schema.sessions, "ended_at"), (schema.orders, "created_at"), (schema.events, "occurred_at"),
                          (schema.payments, "created_at"), (schema.refunds, "created_at")]:  # fmt: skip
        assert max(getattr(row, column) for row in rows(history, table)) < until, table.name


def test_pending_bank_transfers_are_paid_hours_later_or_cancelled(history: str) -> None:
    """The order's status changes after it was written: what the pack's daily gauge by current status shows."""
    orders = {o.id: o for o in rows(history, schema.orders)}
    payments: dict[int, list[Any]] = defaultdict(list)
    for payment in rows(history, schema.payments):
        payments[payment.order_id].append(payment)
    settled_later = [
        o
        for o in orders.values()
        if o.status == "paid"
        and any(
            p.created_at - o.created_at >= timedelta(hours=1) and p.method == "bank_transfer" for p in payments[o.id]
        )
    ]
    never_arrived = [o for o in orders.values() if o.status == "cancelled" and not payments[o.id]]
    still_pending = [o for o in orders.values() if o.status == "pending"]
    assert len(settled_later) > 5 * len(never_arrived) > 0
    assert still_pending
    assert all(datetime.fromisoformat(UNTIL) - o.created_at < timedelta(hours=30) for o in still_pending)


def test_payment_failures_come_in_bursts(history: str) -> None:
    """A burst: a ten-minute window where one failure reason (a provider outage, a fraud wave) suddenly
    dominates, at twice the usual failure ratio or more."""
    payments = rows(history, schema.payments)
    attempts: Counter[datetime] = Counter()
    reasons: dict[datetime, Counter[str]] = defaultdict(Counter)
    for payment in payments:
        at = payment.created_at.replace(minute=payment.created_at.minute // 10 * 10, second=0)
        attempts[at] += 1
        if payment.status == "failed":
            reasons[at][payment.failure_reason] += 1
    overall = sum(p.status == "failed" for p in payments) / len(payments)
    assert overall < 0.12
    bursts = [
        at for at, counts in reasons.items() if (top := counts.most_common(1)[0][1]) >= 5 and top > 0.5 * counts.total()
    ]
    assert len(bursts) >= 5
    assert len(bursts) < 0.05 * len(attempts)  # ...which stay the exception
    for at in bursts:
        assert reasons[at].total() / attempts[at] > 2 * overall, (at, reasons[at], attempts[at])
    assert all(p.failure_reason in schema.FAILURE_REASONS for p in payments if p.status == "failed")


def test_refunds_spike_now_and_then(history: str) -> None:
    refunds = rows(history, schema.refunds)
    per_hour = Counter(r.created_at.replace(minute=0, second=0) for r in refunds)
    assert max(per_hour.values()) >= 4 * statistics.median(per_hour.values())
    assert {r.kind for r in refunds} == set(schema.REFUND_KINDS)


def test_the_same_seed_writes_the_same_rows_and_another_seed_does_not(tmp_path: Path) -> None:
    def backfill(name: str, seed: str) -> dict[str, list[Any]]:
        url = f"sqlite:///{tmp_path / name}"
        common = ["--backfill", "2d", "--until", UNTIL, "--sessions-per-day", "3000"]
        assert generator.main(["--url", url, "--seed", seed, *common]) == 0
        return {table.name: rows(url, table) for table in schema.TABLES}

    first, again, other = backfill("a.db", "1"), backfill("b.db", "1"), backfill("c.db", "2")
    assert first == again
    assert first["orders"]
    assert first["orders"] != other["orders"]


def run_live(url: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "exporter.demo.generator", "--url", url, "--live", "--tick", "200ms"]
    return subprocess.Popen([*command, *extra], stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def count_rows(url: str, table: sqlalchemy.Table) -> int:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def wait_for_rows(url: str, table: sqlalchemy.Table, more_than: int, process: subprocess.Popen[str]) -> int:
    def more() -> int:
        assert process.poll() is None, process.communicate()[1]
        return count if (count := count_rows(url, table)) > more_than else 0

    return wait_until(more, 60, f"new {table.name} rows", interval=0.2)


def test_live_mode_keeps_writing_until_it_is_stopped(fresh_database: TestDatabase) -> None:
    """Backfill, then live traffic from a subprocess, on each database; the pack runs over the result."""
    url = fresh_database.url
    assert generator.main(["--url", url, "--backfill", "1d", "--sessions-per-day", "4000", "--seed", "5"]) == 0
    before = {table.name: count_rows(url, table) for table in schema.TABLES}
    assert before["orders"] > 50
    started = generator.utc_now()
    # A busy shop (20 sessions a second), so that orders and payments appear within a few ticks.
    process = run_live(url, "--sessions-per-day", "1700000", "--burst-every", "1m")
    try:
        wait_for_rows(url, schema.payments, before["payments"], process)
        wait_for_rows(url, schema.orders, before["orders"], process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "live traffic stopped" in stderr
    stopped = generator.utc_now()
    new_sessions = list(rows(url, schema.sessions)[before["sessions"] :])
    assert new_sessions
    # Live sessions are written once they have ended: nothing is dated in the future.
    assert all(started - timedelta(seconds=1) <= s.ended_at <= stopped + timedelta(seconds=1) for s in new_sessions)
    new_orders = rows(url, schema.orders)[before["orders"] :]
    assert new_orders[0].id == before["orders"] + 1  # ids continue after the history
    new_events = [e for e in rows(url, schema.events) if e.session_id >= new_sessions[0].id]
    assert new_events
    assert all(e.occurred_at <= stopped + timedelta(seconds=1) for e in new_events)
    with sqlalchemy.create_engine(url).connect() as conn:
        for query in PACKS["marketplace"]("demo", fresh_database.dialect):
            params = {"cursor": 0} if "cursor" in query else {}
            result = conn.execute(sqlalchemy.text(query["sql"]), params).mappings().all()
            assert result, f"{query['name']} returned nothing on generated data"
            for metric in query["metrics"]:
                assert all(row[metric["value"]] is not None for row in result), (query["name"], metric["name"])


def test_a_bad_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        generator.main(["--backfill", "four weeks"])
    assert exit_info.value.code == 2
    assert "not a duration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        generator.main([])
    assert "nothing to do" in capsys.readouterr().err


def test_live_mode_rides_out_a_locked_database_without_losing_rows(tmp_path: Path) -> None:
    """A reader holding SQLite's lock past the busy timeout makes writes fail: the generator logs it, keeps
    the rows and writes them once the lock is gone, so every order still has its items."""
    path = tmp_path / "demo.db"
    url = f"sqlite:///{path}"
    assert generator.main(["--url", url, "--backfill", "1h", "--sessions-per-day", "20000"]) == 0
    log_path = tmp_path / "generator.log"
    command = [sys.executable, "-m", "exporter.demo.generator", "--url", url, "--live", "--tick", "200ms"]
    with log_path.open("w") as log:
        process = subprocess.Popen([*command, "--sessions-per-day", "1700000"], stderr=log, text=True)
    try:
        wait_for_rows(url, schema.orders, count_rows(url, schema.orders), process)
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        wait_for_log(log_path, "write failed, retrying", process)
        locker.execute("COMMIT")
        locker.close()
        wait_for_log(log_path, "writing again", process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0, log_path.read_text()
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        without_items = conn.execute(
            sqlalchemy.text(
                "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)"
            )
        ).scalar_one()
        ids = conn.execute(sqlalchemy.select(schema.orders.c.id).order_by(schema.orders.c.id)).scalars().all()
    engine.dispose()
    assert without_items == 0
    assert ids == list(range(1, len(ids) + 1))  # no order id skipped: nothing simulated was dropped


def wait_for_log(path: Path, text: str, process: subprocess.Popen[str]) -> None:
    def logged() -> bool:
        assert process.poll() is None, path.read_text()
        return text in path.read_text()

    wait_until(logged, 60, lambda: f"{text!r} logged; the log:\n{path.read_text()}", interval=0.2)


# ------------------------------------------------------------------------------ the orders knob (--control)


def test_a_checkout_incident_places_no_orders_while_sessions_reach_checkout(tmp_path: Path) -> None:
    """orders_factor 0: the would-be buyers still view, fill a cart and begin checkout; no order, no payment."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    start = datetime.fromisoformat(UNTIL) - timedelta(hours=2)
    simulation = generator.prepare(engine, random.Random(4), 200000, 3600.0, start)
    engine.dispose()
    normal, incident = generator.Rows(), generator.Rows()
    simulation.step(start, start + timedelta(hours=1), normal)
    simulation.orders_factor = 0.0
    simulation.step(start + timedelta(hours=1), start + timedelta(hours=2), incident)
    assert len(normal.orders) > 100
    assert len(incident.sessions) > 1000
    assert not incident.orders
    assert not incident.order_items
    assert all(p["order_id"] is None or p["order_id"] <= normal.orders[-1]["id"] for p in incident.payments)
    # Per session (the two hours' traffic differs): as many checkouts begin, next to no payment.
    steps = Counter(e["type"] for e in incident.events)
    normal_steps = Counter(e["type"] for e in normal.events)
    share, normal_share = len(incident.sessions), len(normal.sessions)
    assert steps["checkout_started"] / share > 0.8 * normal_steps["checkout_started"] / normal_share
    assert steps["paid"] / share < 0.05 * normal_steps["paid"] / normal_share  # earlier bank transfers settling


def test_the_control_file_is_read_leniently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "control.yml"
    control = generator.Control(path)
    assert control.read() == 1.0  # no file: normal
    for text, expected in [("orders_factor: 0\n", 0.0), ('{"orders_factor": 0.25}', 0.25), ("orders_factor: 1", 1.0)]:
        path.write_text(text)
        assert control.read() == expected, text
    path.write_text("")  # being written: no change
    assert control.read() is None
    for text in ("orders_factor: 2", "orders_factor: off", "orders: 0", "[0]", "orders_factor: ["):
        path.write_text(text)
        caplog.clear()
        control = generator.Control(path)
        assert control.read() is None, text
        assert f"control: ignoring {path}" in caplog.text, text
        assert control.read() is None
        assert "ignoring" not in caplog.text.split("\n", 1)[1], "a bad file is logged once, not at every tick"


def write_control(path: Path, text: str) -> None:
    """Replace the file at once (a rename), so the generator never reads half of it."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


def test_live_mode_drops_orders_on_demand_and_takes_them_back(tmp_path: Path) -> None:
    """The knob a demo user turns (docs/demo-history.md): the generator logs when it takes effect, and from
    then on writes sessions that reach checkout without any order; set back to 1, orders return."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert generator.main(["--url", url, "--backfill", "1h", "--sessions-per-day", "20000"]) == 0
    control = tmp_path / "control.yml"
    log_path = tmp_path / "generator.log"
    command = [sys.executable, "-m", "exporter.demo.generator", "--url", url, "--live", "--tick", "200ms"]
    # A very busy shop (100 to 300 sessions a second, 15 at night), so that orders come within seconds.
    with log_path.open("w") as log:
        process = subprocess.Popen([*command, "--sessions-per-day", "8000000", "--control", str(control)],
                                   stderr=log, text=True)  # fmt: skip
    try:
        wait_for_rows(url, schema.orders, count_rows(url, schema.orders), process)
        write_control(control, "orders_factor: 0\n")
        wait_for_log(log_path, "control: orders_factor=0 ", process)
        orders, last_session = count_rows(url, schema.orders), count_rows(url, schema.sessions)

        # 500 sessions written after the change: 15 to 40 would have ordered (a chance below e^-15 of none).
        def sessions_written() -> bool:
            assert process.poll() is None, log_path.read_text()
            return count_rows(url, schema.sessions) > last_session + 500

        wait_until(sessions_written, 300, "500 sessions written after the change", interval=0.5)
        assert count_rows(url, schema.orders) == orders
        write_control(control, "orders_factor: 1\n")
        wait_for_log(log_path, "control: orders_factor=1 ", process)
        wait_for_rows(url, schema.orders, orders, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0, log_path.read_text()
    during = [e for e in rows(url, schema.events) if e.session_id > last_session]
    assert any(e.type == "checkout_started" for e in during)
