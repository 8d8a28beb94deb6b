"""The demo's history, backfilled into a real Prometheus: the series Pulse would have exported.

A small history (9 days up to now) is generated into SQLite and backfilled. Every series is checked
against the pack's own SQL run over the database as it was at chosen instants (its rows of then, the
clock pinned), so the backfill cannot drift from the pack; then real promtool makes blocks, a real
Prometheus serves them, and PromQL at a past instant gives what the rows say.
"""

from __future__ import annotations

import itertools
import math
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.demo import backfill, generator
from exporter.kpis.packs import marketplace
from tests.prometheus_server import PrometheusServer, create_blocks, running_prometheus

STEP = 300
Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Backfilled:
    db: Path
    grid: backfill.Grid
    families: list[backfill.Family]
    openmetrics: Path


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Backfilled:
    """Nine days of history ending now (a quiet shop, frequent incidents), backfilled every 5 minutes."""
    directory = tmp_path_factory.mktemp("history")
    db = directory / "demo.db"
    args = ["--url", f"sqlite:///{db}", "--backfill", "9d", "--sessions-per-day", "3000", "--seed", "11"]
    assert generator.main([*args, "--burst-every", "2h"]) == 0
    end = int(time.time()) - backfill.END_MARGIN
    end -= end % STEP
    out = directory / "history.om"
    assert backfill.main(["--db", str(db), "--out", str(out), "--step", "5m", "--end", iso(end)]) == 0
    connection = sqlite3.connect(db)
    try:
        span = backfill.history_span(connection)
        assert span is not None
        start = span[0] - span[0] % STEP
        grid = backfill.Grid(start, STEP, (end - start) // STEP + 1)
        families = backfill.compute(backfill.read_history(connection), grid)
    finally:
        connection.close()
    return Backfilled(db, grid, families, out)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def sql_time(seconds: int) -> str:
    """As SQLite's datetime() writes it: what the pack's SQL compares the columns with."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------ the pack's SQL, pinned


def database_as_of(db: Path, instant: int, copy: Path) -> Path:
    """A copy of `db` holding only the rows written by `instant`: a session once it ended, with its events,
    orders (and their items) and checkout payments; a later payment or refund at its own time."""
    shutil.copy(db, copy)
    at = sql_time(instant)
    with sqlite3.connect(copy) as conn:
        statements = [
            f"DELETE FROM sessions WHERE julianday(COALESCE(ended_at, started_at)) > julianday('{at}')",
            f"DELETE FROM events WHERE julianday(occurred_at) > julianday('{at}')"
            " OR session_id NOT IN (SELECT id FROM sessions)",
            "CREATE TEMP TABLE orders_gone AS SELECT id FROM orders WHERE julianday(created_at) > julianday("
            f"'{at}') OR (session_id IS NOT NULL AND session_id NOT IN (SELECT id FROM sessions))",
            "DELETE FROM orders WHERE id IN (SELECT id FROM orders_gone)",
            "DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders_gone)",
            f"DELETE FROM payments WHERE julianday(created_at) > julianday('{at}')"
            " OR order_id IN (SELECT id FROM orders_gone)",
            f"DELETE FROM refunds WHERE julianday(created_at) > julianday('{at}')"
            " OR order_id IN (SELECT id FROM orders_gone)",
        ]
        for statement in statements:
            conn.execute(statement)
    return copy


def pack_values_at(db: Path, instant: int) -> dict[Key, float]:
    """Every series of the pack (but those the backfill leaves out) over `db`, its clock pinned at `instant`:
    the pack's own SQL with SQLite's 'now' replaced by the instant, cursors at 0 (counters count it all)."""
    values: dict[Key, float] = {}
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        for query in marketplace.queries("demo", "sqlite"):
            sql = query["sql"].replace("'now'", f"'{sql_time(instant)}'")
            rows = conn.execute(sql.replace(":cursor", "0")).fetchall()
            for metric in query["metrics"]:
                if metric["name"] in backfill.LEFT_OUT:
                    continue
                for row in rows:
                    if row[metric["value"]] is None:
                        continue
                    labels = tuple(sorted((name, str(row[name])) for name in metric["labels"]))
                    values[metric["name"], labels] = float(row[metric["value"]])
    return values


def backfilled_at(history: Backfilled, instant: int) -> dict[Key, float]:
    samples = backfill.samples_at(history.families, history.grid, instant)
    return {(name, tuple(sorted(labels))): float(value) for name, labels, value in samples if value is not None}


def assert_same_series(expected: dict[Key, float], found: dict[Key, float], what: str) -> None:
    assert set(found) == set(expected), (
        f"{what}: only in the backfill {sorted(set(found) - set(expected))}, "
        f"only from the pack {sorted(set(expected) - set(found))}"
    )
    wrong = {
        key: (found[key], value)
        for key, value in expected.items()
        # Money: the backfill writes the exact sum less half a cent; the pack's SQL sums floats.
        if not math.isclose(found[key], value, rel_tol=1e-9, abs_tol=0.0051)
    }
    assert not wrong, f"{what}: (backfill, pack) {wrong}"


def test_every_series_matches_the_packs_sql_at_past_instants(history: Backfilled, tmp_path: Path) -> None:
    grid = history.grid
    last = grid.instant(grid.count - 1)
    # A quiet night, a busy evening, the day the history's first week ends, and the very end.
    for instant in (grid.instant(8 * 12 + 3), last - 3 * 86400 - 5 * 3600, last - 8 * 86400 + 7 * 3600, last):
        expected = pack_values_at(database_as_of(history.db, instant, tmp_path / f"{instant}.db"), instant)
        assert_same_series(expected, backfilled_at(history, instant), f"at {iso(instant)}")
    names = {name for name, _ in expected}
    assert {"business_funnel_sessions", "business_refund_rate_ratio", "business_category_orders"} <= names


def test_counters_never_go_backwards_and_end_at_the_live_value(history: Backfilled, tmp_path: Path) -> None:
    """What Pulse exports on its first run over today's database (cursors at 0) is at least where the history
    ends: the live series continues it with no drop that rate() would read as a counter reset."""
    live = pack_values_at(history.db, int(time.time()))
    last = history.grid.instant(history.grid.count - 1)
    ended = backfilled_at(history, last)
    counters = [f for f in history.families if f.type == "counter"]
    assert len(counters) == 9
    for family in counters:
        for labels, values in family.series.items():
            present = [v for v in values if v is not None]
            assert all(a <= b for a, b in itertools.pairwise(present)), (family.name, labels)
            key = (family.name, tuple(sorted(labels)))
            assert ended[key] <= live[key], (key, ended[key], live[key])


# --------------------------------------------------------------------------------- a real Prometheus


@pytest.fixture(scope="module")
def prometheus(history: Backfilled, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    data = directory / "data"
    create_blocks(history.openmetrics, data)
    config = "global: {scrape_interval: 15s}\nscrape_configs: []\n"
    # A retention longer than the history: Prometheus deletes older blocks when it starts.
    with running_prometheus(directory, config, data_dir=data, retention="400d") as server:
        yield server


def written_by(history: Backfilled, instant: int) -> list[sqlite3.Row]:
    """The orders written by `instant`, read independently of the backfill: an order is written with its
    session, once the session has ended."""
    at = sql_time(instant)
    with sqlite3.connect(history.db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(
            "SELECT o.currency, o.amount FROM orders o LEFT JOIN sessions s ON s.id = o.session_id "
            f"WHERE julianday(o.created_at) <= julianday('{at}') "
            f"AND (s.id IS NULL OR julianday(COALESCE(s.ended_at, s.started_at)) <= julianday('{at}'))"
        ).fetchall()


def test_prometheus_serves_the_history_with_scrape_labels(history: Backfilled, prometheus: PrometheusServer) -> None:
    instant = history.grid.instant(history.grid.count - 1) - 4 * 86400 - 2 * 3600
    orders = written_by(history, instant)
    per_currency = Counter(row["currency"] for row in orders)
    found = prometheus.values("business_orders_total", instant)
    expected = {
        (("__name__", "business_orders_total"), ("currency", c), ("instance", "127.0.0.1:10135"), ("job", "pulse")): n
        for c, n in per_currency.items()
    }
    assert found == expected
    gmv = prometheus.values("sum by (currency) (business_gmv_total)", instant)
    for currency in per_currency:
        exact = sum(round(row["amount"] * 100) for row in orders if row["currency"] == currency and row["amount"] > 0)
        assert gmv[(("currency", currency),)] == pytest.approx(exact / 100, abs=0.0051)
    with sqlite3.connect(history.db) as conn:
        at, day_before = sql_time(instant), sql_time(instant - 86400)
        dau = conn.execute(
            "SELECT COUNT(DISTINCT user_id) FROM sessions WHERE user_id IS NOT NULL "
            f"AND julianday(ended_at) <= julianday('{at}') AND julianday(started_at) >= julianday('{day_before}')"
        ).fetchone()[0]
    assert prometheus.values("business_daily_active_users", instant) == {
        (("__name__", "business_daily_active_users"), ("instance", "127.0.0.1:10135"), ("job", "pulse")): dau
    }
    names = {labels[0][1] for labels in prometheus.values('count by (__name__) ({job="pulse"})', instant)}
    assert names == {f.name for f in history.families}


def test_week_over_week_expressions_have_last_week_to_compare_with(prometheus: PrometheusServer) -> None:
    """What the business alerts and dashboards ask, now, of a Prometheus that has scraped nothing yet."""
    for expression in (
        "sum(rate(business_orders_total[1h] offset 1w))",
        'business_funnel_sessions{step="paid",window="1h"} offset 1w',
        "rate(business_payment_attempts_total[1h] offset 1w)",
        "business_daily_active_users offset 1w",
    ):
        result = prometheus.query(expression)
        assert result, f"{expression}: empty"
    # A night hour of this quiet shop may have no order: a day of them has some.
    orders_last_week = float(prometheus.query("sum(increase(business_orders_total[1d] offset 1w))")[0]["value"][1])
    assert orders_last_week > 0
