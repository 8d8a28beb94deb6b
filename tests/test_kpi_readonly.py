"""A KPI query can never change data, nor outlive its timeout, on real SQLite, PostgreSQL and MariaDB.

The attacks are the ones from the hardening review: several statements (`COMMIT; …; DELETE …`), a
single statement that flips the session to read-write, SQLite statements that write files
(`VACUUM INTO`, `ATTACH`), a SQLite lock wait that ignored the timeout, and an account privileged
enough to write files on the database server whatever the transaction (PostgreSQL superuser `COPY …
TO`, MariaDB FILE `INTO OUTFILE`).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy

from exporter.kpis.engine import kpi_status
from exporter.kpis.sources import sql as sql_source_module
from exporter.kpis.sources.sql import sql_samples
from tests.kpi_harness import Harness, kpi_harness

if TYPE_CHECKING:
    from tests.databases import TestDatabase

pytest_plugins = ("tests.databases",)

# The exact repro from the review, and its equivalent on the other backends.
SEVERAL_STATEMENTS = {
    "postgresql": "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT; "
    "DELETE FROM victim WHERE id = 1 RETURNING id AS v",
    "mysql": "COMMIT; SET SESSION TRANSACTION READ WRITE; COMMIT; DELETE FROM victim WHERE id = 1 RETURNING id AS v",
    "sqlite": "SELECT 1 AS v; PRAGMA query_only = OFF; DELETE FROM victim WHERE id = 1 RETURNING id AS v",
}
# 1 while the session (and the transaction a query runs in) is read-only.
SESSION_IS_READ_ONLY = {
    "postgresql": "SELECT current_setting('transaction_read_only') = 'on' "
    "AND current_setting('default_transaction_read_only') = 'on' AS v",
    "mysql": "SELECT @@session.tx_read_only AS v",
    "sqlite": "PRAGMA query_only",
}
READ_ONLY_COLUMN = {"postgresql": "v", "mysql": "v", "sqlite": "query_only"}
CONNECTION_ID = {"postgresql": "SELECT pg_backend_pid() AS v", "mysql": "SELECT CONNECTION_ID() AS v"}


def create_victim(database: TestDatabase) -> sqlalchemy.Engine:
    engine = database.engine()
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE victim (id INTEGER PRIMARY KEY)"))
        conn.execute(sqlalchemy.text("INSERT INTO victim VALUES (1), (2)"))
    return engine


def victims(engine: sqlalchemy.Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(sqlalchemy.text("SELECT id FROM victim ORDER BY id"))]


def one_connection(database: TestDatabase, *queries: dict[str, Any]) -> dict[str, Any]:
    """A source with a single pooled connection: every run reuses the one the previous run used.
    Through the admin account, which could write: read-only must stop it all the same."""
    source = {"dsn": database.url, "pool_size": 1, "max_overflow": 0, "allow_privileged_account": True}
    return {"sources": {"shop": source}, "queries": list(queries)}


def query(name: str, sql: str, value: str = "v", **options: Any) -> dict[str, Any]:
    metric = {"name": f"shop_{name}", "value": value}
    return {"name": name, "source": "shop", "interval": "30s", "sql": sql, "metrics": [metric], **options}


def outcome(kpis: Harness, name: str) -> tuple[str, str]:
    """The status of the query's last run and the error the engine recorded for it."""
    samples = kpis.samples()
    statuses = [
        s for s in ("success", "error", "timeout") if samples[f'pulse_kpi_queries_total{{query="{name}",status="{s}"}}']
    ]
    assert len(statuses) == 1, f"{name} ran more than once: {statuses}"
    return statuses[0], kpis.collector.runners[name].last_error


def running(database: TestDatabase, fragment: str) -> list[str]:
    """Statements containing `fragment` the server is still running, from other connections."""
    url = sqlalchemy.make_url(database.url)
    if database.dialect == "postgresql":
        sql = (
            "SELECT query FROM pg_stat_activity WHERE datname = :db AND state = 'active' "
            "AND query LIKE :like AND pid <> pg_backend_pid()"
        )
    else:
        sql = (
            "SELECT info FROM information_schema.processlist WHERE db = :db "
            "AND info LIKE :like AND id <> CONNECTION_ID()"
        )
    with database.engine().connect() as conn:
        rows = conn.execute(sqlalchemy.text(sql), {"db": url.database, "like": f"%{fragment}%"})
        return [str(row[0]) for row in rows]


def test_several_statements_are_refused_and_nothing_changes(fresh_database: TestDatabase) -> None:
    engine = create_victim(fresh_database)
    attack = query("attack", SEVERAL_STATEMENTS[fresh_database.dialect])
    check = query(
        "still_read_only", SESSION_IS_READ_ONLY[fresh_database.dialect], READ_ONLY_COLUMN[fresh_database.dialect]
    )
    with kpi_harness(one_connection(fresh_database, attack, check)) as kpis:
        kpis.run("attack", "still_read_only")
        status, error = outcome(kpis, "attack")
        read_only = kpis.value("shop_still_read_only")
    assert status == "error"
    assert "query attack: a KPI query must be a single SQL statement" in error
    assert victims(engine) == [1, 2]
    assert read_only == 1, "the pooled connection the attack ran on is still read-only"


def test_one_statement_cannot_leave_a_pooled_postgresql_connection_read_write(
    postgresql_database: TestDatabase,
) -> None:
    """set_config(…, false) is a session-level SET inside one SELECT: the run's rollback undoes it."""
    engine = create_victim(postgresql_database)
    flip = query("flip", "SELECT set_config('default_transaction_read_only', 'off', false) = 'off' AS v")
    delete = query("delete", "DELETE FROM victim WHERE id = 1 RETURNING id AS v")
    check = query("still_read_only", SESSION_IS_READ_ONLY["postgresql"])
    pid = query("pid", CONNECTION_ID["postgresql"])
    with kpi_harness(one_connection(postgresql_database, pid, flip, delete, check)) as kpis:
        kpis.run("pid")
        first_pid = kpis.value("shop_pid")
        kpis.run("flip", "delete", "still_read_only", "pid")
        samples = kpis.samples()
        delete_status, delete_error = outcome(kpis, "delete")
    assert samples["shop_flip"] == 1  # it did run, as one statement
    assert delete_status == "error"
    assert "read-only transaction" in delete_error
    assert samples["shop_still_read_only"] == 1
    assert samples["shop_pid"] == first_pid, "the same pooled connection served every run"
    assert victims(engine) == [1, 2]


def test_a_mariadb_connection_switched_to_read_write_is_discarded(mariadb_database: TestDatabase) -> None:
    """MariaDB session settings are not transactional: one `SET SESSION TRANSACTION READ WRITE`
    would leave the pooled connection read-write for the next run, so that connection is dropped."""
    flip = query("flip", "SET SESSION TRANSACTION READ WRITE")
    check = query("still_read_only", SESSION_IS_READ_ONLY["mysql"])
    connection = query("connection", CONNECTION_ID["mysql"])
    with kpi_harness(one_connection(mariadb_database, connection, flip, check)) as kpis:
        kpis.run("connection")
        first_connection = kpis.value("shop_connection")
        kpis.run("flip", "still_read_only", "connection")
        status, error = outcome(kpis, "flip")
        samples = kpis.samples()
    assert status == "error"
    assert "query flip: the query made its session read-write; the connection was discarded" in error
    assert samples["shop_still_read_only"] == 1
    assert samples["shop_connection"] != first_connection, "the read-write connection was not reused"


TIMEOUT_ESCAPES = {
    # The review's repro: the COMMIT would drop SET LOCAL statement_timeout for what follows.
    "several": {
        "postgresql": "COMMIT; SELECT pg_sleep(15) IS NULL AS v",
        "mysql": "COMMIT; SELECT SLEEP(15) IS NULL AS v",
    },
    # One statement that lifts its own timeout: set_config() before sleeping; MariaDB's SET STATEMENT
    # inside the one Pulse wraps the query in (the inner one wins).
    "one": {
        "postgresql": "SELECT set_config('statement_timeout', '0', false) IS NULL OR pg_sleep(15) IS NULL AS v",
        "mysql": "SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(15) AS v",
    },
}


@pytest.mark.parametrize("escape", ["several", "one"])
@pytest.mark.parametrize("dialect", ["postgresql", "mysql"], ids=["postgresql", "mariadb"])
def test_the_timeout_cannot_be_escaped(escape: str, dialect: str, request: pytest.FixtureRequest) -> None:
    database: TestDatabase = request.getfixturevalue(
        f"{'postgresql' if dialect == 'postgresql' else 'mariadb'}_database"
    )
    sleep = query("sleep", TIMEOUT_ESCAPES[escape][dialect], timeout="2s")
    with kpi_harness(one_connection(database, sleep)) as kpis:
        kpis.run("sleep")
        status, error = outcome(kpis, "sleep")
        left_running = running(database, "(15)")
    assert left_running == []
    if escape == "several":
        assert status == "error"
        assert "a KPI query must be a single SQL statement" in error
    else:
        assert (status, error) == ("timeout", "query sleep: cancelled after the 2s timeout")


@pytest.fixture
def sqlite_victim(tmp_path: Path) -> Iterator[TestDatabase]:
    from tests.databases import TestDatabase  # noqa: PLC0415 (a plugin module: imported at use)

    database = TestDatabase(f"sqlite:///{tmp_path / 'shop.db'}", "sqlite")
    create_victim(database)
    yield database
    database.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "VACUUM INTO '{dir}/copy.db'",
        "ATTACH DATABASE '{dir}/attached.db' AS e",
        "PRAGMA query_only = OFF",
        "PRAGMA journal_mode = DELETE",
        "CREATE TEMP TABLE scratch (x INTEGER)",
        "BEGIN IMMEDIATE",
    ],
)
def test_a_read_only_sqlite_source_writes_no_file_and_no_setting(
    sqlite_victim: TestDatabase, tmp_path: Path, statement: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    attack = query("attack", statement.format(dir=outside))
    check = query("still_read_only", SESSION_IS_READ_ONLY["sqlite"], "query_only")
    with kpi_harness(one_connection(sqlite_victim, attack, check)) as kpis:
        kpis.run("attack", "still_read_only")
        status, error = outcome(kpis, "attack")
        read_only = kpis.value("shop_still_read_only")
    assert status == "error"
    assert "not authorized" in error or "authorization denied" in error
    assert list(outside.iterdir()) == []
    assert read_only == 1


def test_a_read_only_sqlite_source_still_reads_pragmas_and_recursive_queries(sqlite_victim: TestDatabase) -> None:
    pages = query("pages", "PRAGMA page_count", "page_count")
    key = query("key", "PRAGMA table_info(victim)", "pk")
    counting = query(
        "counting",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT SUM(x) AS v FROM c",
    )
    with kpi_harness(one_connection(sqlite_victim, pages, key, counting)) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples["shop_pages"] > 0
    assert samples["shop_key"] == 1
    assert samples["shop_counting"] == 15


def test_a_sqlite_lock_wait_ends_as_a_timeout(sqlite_victim: TestDatabase) -> None:
    """Another connection holds an exclusive lock: the query waits for it until its timeout, and
    that counts as a timeout (it was an `error` after SQLite's own 5 s busy timeout)."""
    writer = sqlalchemy.create_engine(sqlite_victim.url, poolclass=sqlalchemy.pool.NullPool)
    locked = query("locked", "SELECT COUNT(*) AS v FROM victim", timeout="1s")
    try:
        with writer.connect() as conn, kpi_harness(one_connection(sqlite_victim, locked)) as kpis:
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            kpis.run("locked")
            status, error = outcome(kpis, "locked")
            conn.exec_driver_sql("ROLLBACK")
            kpis.run("locked")  # the lock is gone: it reads again
            after = kpis.value("shop_locked")
    finally:
        writer.dispose()
    assert (status, error) == ("timeout", "query locked: the database stayed locked for the whole 1s timeout")
    assert after == 2


def test_a_missing_sqlite_file_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "shop.db"
    config = {
        "sources": {"shop": {"dsn": f"sqlite:///{missing}"}},
        "queries": [query("count", "SELECT 1 AS v")],
    }
    with kpi_harness(config) as kpis:
        kpis.run("count")
        status, error = outcome(kpis, "count")
    assert status == "error"
    assert error == f"query count: source shop unreachable: unable to open database file: {missing}"


def test_a_large_result_becomes_series_off_the_event_loop(
    sqlite_victim: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building series from rows is CPU work (0.6 s for 100,000 rows): it runs in the query's worker
    thread, never on the event loop that serves scrapes."""
    threads: list[threading.Thread] = []

    def recording_sql_samples(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return sql_samples(*args)

    monkeypatch.setattr(sql_source_module, "sql_samples", recording_sql_samples)
    rows = query(
        "rows",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x, 1 AS v FROM c",
    )
    rows["metrics"][0]["labels"] = ["x"]
    with kpi_harness(one_connection(sqlite_victim, rows)) as kpis:
        kpis.run("rows")  # the harness runs the event loop in this (the main) thread
        series = kpis.value('pulse_kpi_series{metric="shop_rows"}')
    assert series == 500  # the default series_limit
    assert threads, "the series were built"
    assert all(thread is not threading.current_thread() for thread in threads)


# ------------------------------------------------------------------------------------ privileged accounts
# A read-only transaction does not stop a PostgreSQL superuser from `COPY (…) TO '/file'` (or
# `TO PROGRAM`), nor a MariaDB account with FILE from `SELECT … INTO OUTFILE`: such an account is
# refused unless the source says allow_privileged_account: true.

WRITE_A_FILE = {
    "postgresql": "COPY (SELECT 1 AS v) TO '{path}'",
    "mysql": "SELECT 1 AS v INTO OUTFILE '{path}'",
}


@pytest.fixture
def server_writable_directory() -> Iterator[Path]:
    """A directory the database servers (their own OS users) could write to; pytest's tmp_path is not."""
    directory = Path(tempfile.mkdtemp(prefix="pulse-privileged-"))
    directory.chmod(0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def account(database: TestDatabase, *grants: str) -> Iterator[str]:
    """A login of its own on the database's server that may read the database, with `grants`
    (`{who}` stands for it); its URL. Dropped afterwards."""
    name = f"pulse_test_{secrets.token_hex(4)}"
    password = secrets.token_hex(8)
    url = sqlalchemy.make_url(database.url).set(username=name, password=password)
    if database.dialect == "postgresql":
        who = f'"{name}"'
        create = [f"CREATE ROLE {who} LOGIN PASSWORD '{password}'"]
    else:
        who = f"'{name}'@'%'"
        create = [f"CREATE USER {who} IDENTIFIED BY '{password}'", f"GRANT SELECT ON `{url.database}`.* TO {who}"]
    admin = database.engine(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in (*create, *grants):
            conn.execute(sqlalchemy.text(statement.format(who=who)))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if database.dialect == "postgresql":
                conn.execute(sqlalchemy.text(f"DROP ROLE IF EXISTS {who}"))
            else:
                conn.execute(sqlalchemy.text(f"DROP USER IF EXISTS {who}"))


def source(dsn: str, *queries: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"sources": {"shop": {"dsn": dsn, "pool_size": 1, "max_overflow": 0, **options}}, "queries": list(queries)}


def source_error(kpis: Harness) -> str:
    """The source's error as the landing page shows it."""
    sources, _ = kpi_status(kpis.collector)
    return sources[0].error


def test_a_postgresql_superuser_is_refused_and_its_query_writes_no_file(
    postgresql_database: TestDatabase, server_writable_directory: Path
) -> None:
    target = server_writable_directory / "copied"
    copy = query("copy", WRITE_A_FILE["postgresql"].format(path=target))
    with kpi_harness(source(postgresql_database.url, copy)) as kpis:
        kpis.run("copy")
        status, error = outcome(kpis, "copy")
        up = kpis.value('pulse_kpi_source_up{source="shop"}')
        shown = source_error(kpis)
    refusal = (
        "source shop: account 'postgres' is a superuser: a KPI query could write or read files on the database "
        "server (COPY ... TO, lo_export) or run programs there (COPY ... TO PROGRAM); connect as a role without "
        "superuser, pg_write_server_files, pg_read_server_files and pg_execute_server_program, or set "
        "allow_privileged_account: true"
    )
    assert not target.exists()
    assert (status, error) == ("error", f"query copy: {refusal}")
    assert up == 0
    assert shown == refusal


def test_a_privileged_account_is_used_when_allowed_with_one_warning(
    postgresql_database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    # Two queries at once on two connections (the sleep keeps the first one busy): one warning.
    one = query("one", "SELECT 1 AS v FROM pg_sleep(0.2)")
    two = query("two", "SELECT 2 AS v FROM pg_sleep(0.2)")
    allowed = source(postgresql_database.url, one, two, allow_privileged_account=True, max_overflow=1)
    with caplog.at_level(logging.WARNING), kpi_harness(allowed) as kpis:
        kpis.run_together("one", "two")
        kpis.run("one")
        samples = kpis.samples()
    warnings = [r for r in caplog.records if r.getMessage().startswith("KPI source uses a privileged account")]
    assert (samples["shop_one"], samples["shop_two"]) == (1, 2)
    assert len(warnings) == 1
    assert warnings[0].__dict__["err"] == "account 'postgres' is a superuser"


@pytest.mark.parametrize(
    ("role", "attack"),
    [
        ("pg_write_server_files", "COPY (SELECT 1 AS v) TO '{path}'"),
        ("pg_execute_server_program", "COPY (SELECT 1 AS v) TO PROGRAM 'touch {path}'"),
    ],
)
def test_a_member_of_a_postgresql_file_role_is_refused(
    postgresql_database: TestDatabase, server_writable_directory: Path, role: str, attack: str
) -> None:
    target = server_writable_directory / "written"
    copy = query("copy", attack.format(path=target))
    with account(postgresql_database, f"GRANT {role} TO {{who}}") as url, kpi_harness(source(url, copy)) as kpis:
        kpis.run("copy")
        status, error = outcome(kpis, "copy")
    assert not target.exists()
    assert status == "error"
    assert f"is a member of {role}: a KPI query could write or read files on the database server" in error


@pytest.mark.parametrize("through", ["grant", "role"])
def test_a_mariadb_account_with_file_is_refused_and_writes_no_file(
    mariadb_database: TestDatabase, server_writable_directory: Path, through: str
) -> None:
    """FILE granted to the account, or to a role it may enable: one `SET ROLE` query would gain it
    for the pooled connection's later queries."""
    target = server_writable_directory / "dumped"
    role = f"pulse_test_filer_{secrets.token_hex(3)}"
    grants = ["GRANT FILE ON *.* TO {who}"]
    if through == "role":
        grants = [f"CREATE ROLE {role}", f"GRANT FILE ON *.* TO {role}", f"GRANT {role} TO {{who}}"]
    enable = query("enable", f"SET ROLE {role}")
    dump = query("dump", WRITE_A_FILE["mysql"].format(path=target))
    try:
        with account(mariadb_database, *grants) as url, kpi_harness(source(url, enable, dump)) as kpis:
            kpis.run("enable", "dump")
            status, error = outcome(kpis, "dump")
    finally:
        with mariadb_database.engine().connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP ROLE IF EXISTS {role}"))
    assert not target.exists()
    assert status == "error"
    held = "has the FILE privilege" if through == "grant" else f"has FILE through role {role}"
    assert f"{held}: a KPI query could write or read files on the database server" in error


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"], ids=["postgresql", "mariadb"])
def test_an_unprivileged_reader_reads_and_cannot_write_a_file(
    dialect: str, request: pytest.FixtureRequest, server_writable_directory: Path
) -> None:
    database: TestDatabase = request.getfixturevalue(
        f"{'postgresql' if dialect == 'postgresql' else 'mariadb'}_database"
    )
    target = server_writable_directory / "written"
    table = f"created_after_the_reader_{secrets.token_hex(3)}"  # the reader may read it all the same
    with database.engine().begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)"))
        conn.execute(sqlalchemy.text(f"INSERT INTO {table} VALUES (1), (2)"))
    count = query("count", f"SELECT COUNT(*) AS v FROM {table}")
    write = query("write", WRITE_A_FILE[dialect].format(path=target))
    try:
        with kpi_harness(source(database.reader_url, count, write)) as kpis:
            kpis.run("count", "write")
            counted = kpis.value("shop_count")
            status, _ = outcome(kpis, "write")
            up = kpis.value('pulse_kpi_source_up{source="shop"}')
    finally:
        with database.engine().begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP TABLE {table}"))
    assert counted == 2
    assert status == "error"  # refused by the server: the reader may not write files
    assert up == 1
    assert not target.exists()
