"""Real databases for the KPI tests: SQLite, PostgreSQL and MariaDB, each private to the test run.

Use in a test module (import the type under TYPE_CHECKING only, so pytest can still rewrite this
module's asserts when it loads it as a plugin):

    if TYPE_CHECKING:
        from tests.databases import TestDatabase
    pytest_plugins = ("tests.databases",)

    def test_something(database: TestDatabase) -> None:   # runs once per backend
        with database.engine().begin() as conn: ...

- `database` (session-scoped, parametrized sqlite / postgresql / mysql): one fresh database per
  backend for the whole test session, created at first use and dropped at the end.
- `fresh_database` (per test, same parameters): a brand-new, empty database for one test, for tests
  that must not see other tests' tables.
- `sqlite_database`, `postgresql_database`, `mariadb_database`: one backend only.

Each database has two URLs: `url`, the admin account that created it (to create tables and insert
rows), and `reader_url`, an account of its own that may only read it (SELECT on every table, those
created later too). Pulse refuses an admin account as a KPI source (a superuser or an account with
FILE could write files on the server), so KPI sources use `reader_url`. SQLite: both are the file.

PostgreSQL is 127.0.0.1:5432 (user postgres) and MariaDB 127.0.0.1:3306 (user root) unless
PULSE_TEST_POSTGRES_URL / PULSE_TEST_MARIADB_URL give another admin URL (any database in the path is
ignored). A server that does not answer skips its tests with the reason, but fails them under CI=true:
CI must never pass by testing less than it claims.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy
from sqlalchemy.engine import Engine, make_url

from tests.helpers import unavailable

POSTGRES_ADMIN_URL = os.environ.get("PULSE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("PULSE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql")
DIALECTS = ("sqlite", "postgresql", "mysql")
IDS = ("sqlite", "postgresql", "mariadb")


@dataclass
class TestDatabase:
    """One private database. `url` is a SQLAlchemy URL string (with the password, if any)."""

    __test__ = False  # not a test class, despite the name

    url: str
    dialect: str  # "sqlite" | "postgresql" | "mysql" (MariaDB)
    reader_url: str = ""  # an unprivileged account that may only read; SQLite: the same file as url
    _engines: list[Engine] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.reader_url = self.reader_url or self.url

    def engine(self, **kwargs: Any) -> Engine:
        """A new engine on this database; disposed when the database is dropped."""
        engine = sqlalchemy.create_engine(self.url, **kwargs)
        self._engines.append(engine)
        return engine

    def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()


def _unreachable(what: str, err: Exception) -> NoReturn:
    reason = f"{what} is not reachable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
    unavailable(reason + "run ./scripts/test, which starts the database servers")


def _admin_engine(admin_url: str, what: str) -> Engine:
    url = make_url(admin_url)
    connect_args = {"connect_timeout": 5}
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as err:
        engine.dispose()
        _unreachable(f"{what} at {url.render_as_string(hide_password=True)}", err)
    return engine


def create_reader(admin_url: str, dialect: str, reader: str) -> str:
    """A login `reader` that may only read the admin URL's database: SELECT on its tables, including
    those the admin creates later. Returns its URL; `drop_reader` removes it."""
    url = make_url(admin_url)
    password = secrets.token_hex(8)
    if dialect == "postgresql":
        statements = [
            f"CREATE ROLE \"{reader}\" LOGIN PASSWORD '{password}'",
            f'GRANT CONNECT ON DATABASE "{url.database}" TO "{reader}"',
            f'GRANT USAGE ON SCHEMA public TO "{reader}"',
            f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{reader}"',
            f'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO "{reader}"',  # tables the admin creates later
        ]
    else:
        statements = [
            f"CREATE USER '{reader}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT SELECT ON `{url.database}`.* TO '{reader}'@'%'",  # tables created later too
        ]
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(sqlalchemy.text(statement))  # text(): escapes the % of a MariaDB host
    finally:
        admin.dispose()
    return url.set(username=reader, password=password).render_as_string(hide_password=False)


def drop_reader(admin: Engine, dialect: str, reader: str) -> None:
    """Remove a reader (after its database: a PostgreSQL role's default privileges live in it)."""
    with admin.connect() as conn:
        if dialect == "postgresql":
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{reader}"')
        else:
            conn.execute(sqlalchemy.text(f"DROP USER IF EXISTS '{reader}'@'%'"))


def _server_database(admin_url: str, what: str, dialect: str) -> Iterator[TestDatabase]:
    """CREATE DATABASE pulse_test_<random> on a server, with its reader; DROP both afterwards (even
    when tests failed)."""
    admin = _admin_engine(admin_url, what)
    name = f"pulse_test_{secrets.token_hex(6)}"
    reader = f"{name}_reader"
    quote = '"' if dialect == "postgresql" else "`"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {quote}{name}{quote}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    database = None
    try:
        database = TestDatabase(url, dialect, create_reader(url, dialect, reader))
        yield database
    finally:
        if database is not None:
            database.dispose()
        with admin.connect() as conn:
            if dialect == "postgresql":
                # Connections a test left open (or an exporter process still running) must not block the drop.
                conn.execute(
                    sqlalchemy.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                )
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}"))
        drop_reader(admin, dialect, reader)
        admin.dispose()


def _sqlite_database(directory: Path) -> Iterator[TestDatabase]:
    database = TestDatabase(f"sqlite:///{directory / 'pulse_test.db'}", "sqlite")
    yield database
    database.dispose()


def _database_for(dialect: str, directory: Callable[[], Path]) -> Iterator[TestDatabase]:
    if dialect == "sqlite":
        return _sqlite_database(directory())
    if dialect == "postgresql":
        return _server_database(POSTGRES_ADMIN_URL, "PostgreSQL", "postgresql")
    return _server_database(MARIADB_ADMIN_URL, "MariaDB", "mysql")


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    yield from _database_for("sqlite", lambda: tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgresql_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    yield from _database_for("postgresql", lambda: tmp_path_factory.mktemp("unused"))


@pytest.fixture(scope="session")
def mariadb_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    yield from _database_for("mysql", lambda: tmp_path_factory.mktemp("unused"))


_SESSION_FIXTURES = {"sqlite": "sqlite_database", "postgresql": "postgresql_database", "mysql": "mariadb_database"}


@pytest.fixture(scope="session", params=DIALECTS, ids=IDS)
def database(request: pytest.FixtureRequest) -> TestDatabase:
    """The session's private database on each backend in turn (tests run once per backend)."""
    result: TestDatabase = request.getfixturevalue(_SESSION_FIXTURES[request.param])
    return result


@pytest.fixture(params=DIALECTS, ids=IDS)
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    """A new, empty database for this test only, on each backend in turn."""
    yield from _database_for(request.param, lambda: tmp_path)
