"""The KPI engine on real SQLite, PostgreSQL and MariaDB databases (one fresh database per test).

Queries are run explicitly (see tests/kpi_harness.py); what a scrape then shows is the specification.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy

from exporter.kpis.schedule import Schedule
from exporter.kpis.sources import sql as sql_source_module
from tests.helpers import wait_until
from tests.kpi_harness import kpi_harness

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

ORDERS = [
    (1, "paid", "EUR", "10.50"),
    (2, "paid", "EUR", "3.00"),
    (3, "new", "USD", "1.25"),
    (4, "refunded", "EUR", "7.00"),
]


def create_orders(database: TestDatabase, rows: list[tuple[int, str, str, str]] = ORDERS) -> sqlalchemy.Engine:
    engine = database.engine()
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, status VARCHAR(20), currency VARCHAR(3), "
                "amount NUMERIC(12, 2))"
            )
        )
    insert_orders(engine, rows)
    return engine


def insert_orders(engine: sqlalchemy.Engine, rows: list[tuple[int, str, str, str]]) -> None:
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                sqlalchemy.text("INSERT INTO orders VALUES (:id, :status, :currency, :amount)"),
                {"id": row[0], "status": row[1], "currency": row[2], "amount": row[3]},
            )


def config(database: TestDatabase, *queries: dict[str, Any], **section: Any) -> dict[str, Any]:
    """The database as a source, through its unprivileged reader (what an operator should configure)."""
    return {"sources": {"shop": {"dsn": database.reader_url}}, "queries": list(queries), **section}


def as_admin(settings: dict[str, Any], database: TestDatabase) -> dict[str, Any]:
    """The source through the admin account instead: it could write, so read-only must stop it."""
    settings["sources"]["shop"] = {"dsn": database.url, "allow_privileged_account": True}
    return settings


def query(name: str, sql: str, *metrics: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"name": name, "source": "shop", "interval": "30s", "sql": sql, "metrics": list(metrics), **options}


BY_STATUS = query(
    "orders_by_status",
    "SELECT status, COUNT(*) AS n FROM orders GROUP BY status",
    {"name": "shop_orders", "value": "n", "labels": ["status"], "help": "Orders by status."},
)


def test_gauges_with_labels_and_static_labels(fresh_database: TestDatabase) -> None:
    create_orders(fresh_database)
    sql = "SELECT status, currency, COUNT(*) AS n, SUM(amount) AS amount FROM orders GROUP BY status, currency"
    metrics = [
        {"name": "shop_orders", "value": "n", "labels": ["status", "currency"], "static_labels": {"shop": "eu"}},
        {"name": "shop_order_amount", "value": "amount", "labels": {"state": "status"}},
    ]
    with kpi_harness(config(fresh_database, query("orders", sql, *metrics))) as kpis:
        assert kpis.samples().get('shop_orders{status="paid",currency="EUR",shop="eu"}') is None  # before any run
        kpis.run()
        samples = kpis.samples()
    assert samples['shop_orders{status="paid",currency="EUR",shop="eu"}'] == 2
    assert samples['shop_orders{status="new",currency="USD",shop="eu"}'] == 1
    assert samples['shop_order_amount{state="paid"}'] == 13.5
    assert samples['shop_order_amount{state="refunded"}'] == 7
    assert samples['pulse_kpi_query_success{query="orders"}'] == 1
    assert samples['pulse_kpi_queries_total{query="orders",status="success"}'] == 1
    assert samples['pulse_kpi_source_up{source="shop"}'] == 1
    assert samples['pulse_kpi_query_last_success_timestamp_seconds{query="orders"}'] > 0


def test_help_says_the_value_is_cached_and_how_often_it_refreshes(sqlite_database: TestDatabase) -> None:
    cron = query(
        "nightly", "SELECT 1 AS n", {"name": "shop_nightly", "value": "n"}, interval=None, schedule="0 3 * * *"
    )
    with kpi_harness(config(sqlite_database, BY_STATUS, cron)) as kpis:
        text = kpis.text()
        samples = kpis.samples()
    # One freshness alert for every query: time() - last_success > 2 * interval.
    assert samples['pulse_kpi_query_interval_seconds{query="orders_by_status"}'] == 30
    assert samples['pulse_kpi_query_interval_seconds{query="nightly"}'] == 86400
    assert (
        "# HELP shop_orders Orders by status. Cached: refreshed by query orders_by_status every 30s, "
        "not at scrape time." in text
    )
    assert "Cached: refreshed by query nightly on schedule '0 3 * * *', not at scrape time." in text


def test_cursor_counter_adds_only_new_rows_and_a_restart_comes_back_at_the_same_total(
    fresh_database: TestDatabase,
) -> None:
    engine = create_orders(fresh_database)
    counter = query(
        "order_totals",
        "SELECT status, COUNT(*) AS n, SUM(amount) AS amount, MAX(id) AS last_id FROM orders "
        "WHERE id > :cursor GROUP BY status",
        {"name": "shop_orders", "type": "counter", "value": "n", "labels": ["status"]},
        {"name": "shop_gmv_total", "type": "counter", "value": "amount", "labels": ["status"]},
        cursor={"column": "last_id", "initial": 0},
    )
    with kpi_harness(config(fresh_database, counter)) as kpis:
        kpis.run()
        assert kpis.value('shop_orders_total{status="paid"}') == 2
        assert kpis.value('shop_gmv_total{status="paid"}') == 13.5
        kpis.run()  # nothing new: nothing added
        assert kpis.value('shop_orders_total{status="paid"}') == 2
        # A row the cursor has passed is never counted again, even if it changes.
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE orders SET status = 'paid' WHERE id = 3"))
        insert_orders(engine, [(5, "paid", "EUR", "1.00"), (6, "new", "EUR", "2.00")])
        kpis.run()
        before_restart = kpis.samples()
    assert before_restart['shop_orders_total{status="paid"}'] == 3
    assert before_restart['shop_orders_total{status="new"}'] == 2
    assert before_restart['shop_gmv_total{status="paid"}'] == 14.5

    with kpi_harness(config(fresh_database, counter)) as restarted:
        assert 'shop_orders_total{status="paid"}' not in restarted.samples()  # no 0 before the first run
        restarted.run()
        after_restart = restarted.samples()
    # Counted from the start again, the totals reflect the rows as they are now (id 3 became paid).
    assert after_restart['shop_orders_total{status="paid"}'] == 4
    assert after_restart['shop_orders_total{status="paid"}'] >= before_restart['shop_orders_total{status="paid"}']
    assert sum(v for k, v in after_restart.items() if k.startswith("shop_orders_total")) == 6


def test_counter_read_as_a_total_is_exposed_as_it_is(sqlite_database: TestDatabase, tmp_path: Any) -> None:
    total = query(
        "order_count",
        "SELECT COUNT(*) AS n FROM orders_total_test",
        {"name": "shop_all_orders", "type": "counter", "value": "n"},
    )
    with sqlite_database.engine().begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE orders_total_test (id INTEGER)"))
        conn.execute(sqlalchemy.text("INSERT INTO orders_total_test VALUES (1), (2), (3)"))
    with kpi_harness(config(sqlite_database, total)) as kpis:
        kpis.run()
        kpis.run()
        text = kpis.text()
    assert "# TYPE shop_all_orders_total counter" in text
    assert "shop_all_orders_total 3.0" in text


def test_series_a_query_stops_returning_expire(fresh_database: TestDatabase) -> None:
    engine = create_orders(fresh_database)
    at_once = {**BY_STATUS, "metrics": [{**BY_STATUS["metrics"][0], "expire_after": "0s"}]}
    kept = query(
        "kept", BY_STATUS["sql"], {"name": "shop_orders_kept", "value": "n", "labels": ["status"], "expire_after": "1h"}
    )
    with kpi_harness(config(fresh_database, at_once, kept)) as kpis:
        kpis.run()
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("DELETE FROM orders WHERE status = 'refunded'"))
        kpis.run()
        samples = kpis.samples()
    assert 'shop_orders{status="refunded"}' not in samples
    assert samples['shop_orders{status="paid"}'] == 2
    assert samples['shop_orders_kept{status="refunded"}'] == 1  # within its expire_after


def test_series_expire_while_the_query_keeps_failing(sqlite_database: TestDatabase) -> None:
    with sqlite_database.engine().begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE flaky (n INTEGER)"))
        conn.execute(sqlalchemy.text("INSERT INTO flaky VALUES (5)"))
    flaky = query(
        "flaky",
        "SELECT n FROM flaky",
        {"name": "shop_flaky", "value": "n", "expire_after": "200ms"},
        interval="200ms",
        timeout="100ms",
    )
    with kpi_harness(config(sqlite_database, flaky)) as kpis:
        kpis.run()
        assert kpis.value("shop_flaky") == 5
        with sqlite_database.engine().begin() as conn:
            conn.execute(sqlalchemy.text("DROP TABLE flaky"))
        kpis.run()
        assert kpis.value('pulse_kpi_query_success{query="flaky"}') == 0
        time.sleep(0.6)  # longer than expire_after and one interval: the stale value must be gone
        samples = kpis.samples()
    assert "shop_flaky" not in samples
    assert samples['pulse_kpi_query_last_success_timestamp_seconds{query="flaky"}'] > 0


def test_wrong_column_names_the_query_and_column_and_others_keep_running(
    fresh_database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    create_orders(fresh_database)
    wrong = query(
        "wrong_column",
        "SELECT status, COUNT(*) AS n FROM orders GROUP BY status",
        {"name": "shop_wrong", "value": "cnt", "labels": ["status"]},
    )
    broken_sql = query("broken_sql", "SELECT nope FROM no_such_table", {"name": "shop_broken", "value": "nope"})
    with caplog.at_level(logging.WARNING), kpi_harness(config(fresh_database, BY_STATUS, wrong, broken_sql)) as kpis:
        kpis.run()
        kpis.run()
        samples = kpis.samples()
    assert samples['shop_orders{status="paid"}'] == 2
    assert samples['pulse_kpi_query_success{query="orders_by_status"}'] == 1
    assert samples['pulse_kpi_query_success{query="wrong_column"}'] == 0
    assert samples['pulse_kpi_queries_total{query="wrong_column",status="error"}'] == 2
    assert samples['pulse_kpi_queries_total{query="broken_sql",status="error"}'] == 2
    assert samples['pulse_kpi_source_up{source="shop"}'] == 1  # the database answered
    failures = [r for r in caplog.records if r.getMessage() == "KPI query failed"]
    wrong_column = [r for r in failures if getattr(r, "query", "") == "wrong_column"]
    assert len(wrong_column) == 1, "a failure that repeats unchanged is logged once"
    message = wrong_column[0].err  # type: ignore[attr-defined]
    assert "query wrong_column" in message
    assert "'cnt'" in message
    assert "columns: status, n" in message
    assert any("no_such_table" in r.err.lower() for r in failures if getattr(r, "query", "") == "broken_sql")  # type: ignore[attr-defined]


SLOW_QUERIES = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
    "SELECT COUNT(*) AS n FROM c",
    "postgresql": "SELECT 1 AS n FROM pg_sleep(60)",
    "mysql": "SELECT SLEEP(60) AS n",
}


def still_running(database: TestDatabase) -> list[str]:
    """Statements of the slow query the server is still running (SQLite: none, it is in-process)."""
    if database.dialect == "sqlite":
        return []
    url = sqlalchemy.make_url(database.url)
    engine = database.engine()
    with engine.connect() as conn:
        if database.dialect == "postgresql":
            sql = (
                "SELECT query FROM pg_stat_activity WHERE datname = :db AND state = 'active' "
                "AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
            )
        else:
            sql = (
                "SELECT info FROM information_schema.processlist WHERE db = :db "
                "AND info LIKE '%SLEEP(60)%' AND id <> CONNECTION_ID()"
            )
        return [str(row[0]) for row in conn.execute(sqlalchemy.text(sql), {"db": url.database})]


def test_a_slow_query_is_cancelled_on_the_server_and_counted(fresh_database: TestDatabase) -> None:
    create_orders(fresh_database)  # SQLite: the file must exist (opened read-only, it is never created)
    slow = query("slow", SLOW_QUERIES[fresh_database.dialect], {"name": "shop_slow", "value": "n"}, timeout="1s")
    with kpi_harness(config(fresh_database, slow)) as kpis:
        kpis.run()
        samples = kpis.samples()
        assert still_running(fresh_database) == []
        kpis.run()  # the connection is usable again afterwards
        samples = kpis.samples()
    assert samples['pulse_kpi_queries_total{query="slow",status="timeout"}'] == 2
    assert samples['pulse_kpi_query_success{query="slow"}'] == 0
    assert 1 <= samples['pulse_kpi_query_duration_seconds{query="slow"}'] < 60


WRITES = ["DELETE FROM orders", "UPDATE orders SET amount = 0", "CREATE TABLE sneaky (x INTEGER)"]


@pytest.mark.parametrize("statement", WRITES)
def test_queries_are_read_only(fresh_database: TestDatabase, statement: str) -> None:
    engine = create_orders(fresh_database)
    write = query("write", statement, {"name": "shop_write", "value": "n"})
    with kpi_harness(as_admin(config(fresh_database, write), fresh_database)) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pulse_kpi_queries_total{query="write",status="error"}'] == 1
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT COUNT(*), SUM(amount) FROM orders")).one() == (4, 21.75)
        tables = sqlalchemy.inspect(conn).get_table_names()
    assert "sneaky" not in tables


def test_series_limit_holds_against_a_label_explosion(
    fresh_database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    engine = fresh_database.engine()
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
        conn.execute(sqlalchemy.text("INSERT INTO customers VALUES " + ",".join(f"({i})" for i in range(1, 1001))))
    explosion = query(
        "per_customer",
        "SELECT id AS customer_id, 1 AS n FROM customers",
        {"name": "shop_customer_orders", "value": "n", "labels": ["customer_id"], "series_limit": 100},
    )
    with (
        caplog.at_level(logging.WARNING),
        kpi_harness(config(fresh_database, BY_STATUS | {"sql": "SELECT 'x' AS status, 1 AS n"}, explosion)) as kpis,
    ):
        kpis.run()
        kpis.run()
        samples = kpis.samples()
    exposed = [k for k in samples if k.startswith("shop_customer_orders{")]
    assert len(exposed) == 100
    assert samples['pulse_kpi_series{metric="shop_customer_orders"}'] == 100
    assert samples['pulse_kpi_series_dropped_total{metric="shop_customer_orders"}'] == 1800  # 900 per run
    assert samples['pulse_kpi_query_success{query="per_customer"}'] == 1
    assert samples['shop_orders{status="x"}'] == 1  # other metrics unaffected
    warnings = [r for r in caplog.records if "series limit" in r.getMessage()]
    assert len(warnings) == 1


def test_section_wide_series_limit_is_the_default(sqlite_database: TestDatabase) -> None:
    many = query(
        "many",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) SELECT x, x AS n FROM c",
        {"name": "shop_many", "value": "n", "labels": ["x"]},
    )
    with kpi_harness(config(sqlite_database, many, series_limit=20)) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pulse_kpi_series{metric="shop_many"}'] == 20
    assert samples['pulse_kpi_series_dropped_total{metric="shop_many"}'] == 30


def test_value_types_and_value_map(fresh_database: TestDatabase) -> None:
    create_orders(fresh_database)
    mapped = query(
        "states",
        "SELECT status, COUNT(*) AS n FROM orders GROUP BY status",
        {
            "name": "shop_status_code",
            "value": "status",
            "labels": ["status"],
            "value_map": {"paid": 1, "new": 0, "refunded": -1},
        },
    )
    unmapped = query(
        "unmapped",
        "SELECT status FROM orders WHERE id = 4",
        {"name": "shop_unmapped", "value": "status", "value_map": {"paid": 1}},
    )
    nulls = query(
        "nulls", "SELECT MAX(amount) AS top FROM orders WHERE id > 100", {"name": "shop_top_amount", "value": "top"}
    )
    with kpi_harness(config(fresh_database, mapped, unmapped, nulls)) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['shop_status_code{status="refunded"}'] == -1
    assert samples['shop_status_code{status="paid"}'] == 1
    assert samples['pulse_kpi_queries_total{query="unmapped",status="error"}'] == 1
    assert "shop_top_amount" not in samples  # NULL: no value, no series
    assert samples['pulse_kpi_query_success{query="nulls"}'] == 1


def test_one_metric_from_two_sources_with_their_own_static_labels(tmp_path: Any) -> None:
    urls = {}
    for shop, count in (("eu", 3), ("us", 5)):
        path = tmp_path / f"{shop}.db"
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE orders (id INTEGER)"))
            conn.execute(sqlalchemy.text("INSERT INTO orders VALUES " + ",".join(f"({i})" for i in range(count))))
        engine.dispose()
        urls[shop] = f"sqlite:///{path}"
    queries = [
        {"name": f"orders_{shop}", "source": shop, "interval": "1m", "sql": "SELECT COUNT(*) AS n FROM orders",
         "metrics": [{"name": "shop_orders", "value": "n", "static_labels": {"shop": shop}}]}
        for shop in urls
    ]  # fmt: skip
    with kpi_harness({"sources": {s: {"dsn": u} for s, u in urls.items()}, "queries": queries}) as kpis:
        kpis.run()
        text = kpis.text()
    assert text.count("# HELP shop_orders ") == 1
    assert 'shop_orders{shop="eu"} 3.0' in text
    assert 'shop_orders{shop="us"} 5.0' in text


def test_the_dsn_password_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    dsn = "postgresql+psycopg://pulse:s3cret-pa55@127.0.0.1:1/shop"
    down = {
        "name": "q",
        "source": "shop",
        "interval": "1m",
        "sql": "SELECT 1 AS n",
        "metrics": [{"name": "x_n", "value": "n"}],
    }
    with caplog.at_level(logging.DEBUG), kpi_harness({"sources": {"shop": {"dsn": dsn}}, "queries": [down]}) as kpis:
        kpis.run()
        kpis.run()
        samples = kpis.samples()
    assert samples['pulse_kpi_source_up{source="shop"}'] == 0
    assert samples['pulse_kpi_queries_total{query="q",status="error"}'] == 2
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "unreachable" in logged
    assert "s3cret-pa55" not in logged


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_the_still_running_check_sees_a_running_query(dialect: str, request: pytest.FixtureRequest) -> None:
    """The cancellation test above relies on this check: it must see a slow query while it runs."""
    fixture = "postgresql_database" if dialect == "postgresql" else "mariadb_database"
    database: TestDatabase = request.getfixturevalue(fixture)
    engine = database.engine()
    limit = "SET statement_timeout = 5000" if dialect == "postgresql" else "SET SESSION max_statement_time = 5"
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(limit)
                conn.execute(sqlalchemy.text(SLOW_QUERIES[dialect]))
        except sqlalchemy.exc.SQLAlchemyError as err:
            errors.append(err)

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        wait_until(lambda: still_running(database), 4, "the slow query seen running", interval=0.05)
    finally:
        worker.join()


def test_interval_schedule_runs_at_once_then_at_a_fixed_rate() -> None:
    schedule = Schedule(interval=60, cron=None)
    assert schedule.seconds_until_next() == 0
    schedule.started()
    assert 59 < schedule.seconds_until_next() <= 60


def test_cron_schedule_runs_on_start_only_when_asked() -> None:
    on_start = Schedule(interval=None, cron="0 3 * * *")
    assert on_start.seconds_until_next() == 0
    quiet = Schedule(interval=None, cron="0 3 * * *", run_on_start=False)
    assert 0 < quiet.seconds_until_next() <= 86400
    every_minute = Schedule(interval=None, cron="* * * * *")
    every_minute.started()
    # Never the slot it is running for: at least the rest of this second, at most a minute away.
    assert 0 < every_minute.seconds_until_next() <= 61


def test_queries_wait_for_a_free_connection_without_looking_like_an_outage(
    postgresql_database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_source_module, "THREAD_GRACE_SECONDS", 0.2)
    source = {"dsn": postgresql_database.reader_url, "pool_size": 1, "max_overflow": 0}
    queries = [
        query(
            f"slow_{i}", "SELECT 1 AS n FROM pg_sleep(0.3)", {"name": f"shop_slow_{i}", "value": "n"}, timeout="500ms"
        )
        for i in range(3)
    ]
    with kpi_harness({"sources": {"shop": source}, "queries": queries}) as kpis:
        kpis.run_together("slow_0", "slow_1", "slow_2")  # the last one waits 0.6s for the one connection
        samples = kpis.samples()
    for i in range(3):
        assert samples[f'pulse_kpi_queries_total{{query="slow_{i}",status="success"}}'] == 1
    assert samples['pulse_kpi_source_up{source="shop"}'] == 1
