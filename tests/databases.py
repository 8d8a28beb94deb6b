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
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.engine import Engine, make_url

from tests.conftest import IN_CI

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
    _engines: list[Engine] = field(default_factory=list, repr=False)

    def engine(self, **kwargs: Any) -> Engine:
        """A new engine on this database; disposed when the database is dropped."""
        engine = sqlalchemy.create_engine(self.url, **kwargs)
        self._engines.append(engine)
        return engine

    def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()


def _unreachable(what: str, err: Exception) -> None:
    reason = f"{what} is not reachable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
    reason += "run ./scripts/test, which starts the database servers"
    if IN_CI:
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


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


def _server_database(admin_url: str, what: str, dialect: str) -> Iterator[TestDatabase]:
    """CREATE DATABASE pulse_test_<random> on a server; DROP it afterwards (even when tests failed)."""
    admin = _admin_engine(admin_url, what)
    name = f"pulse_test_{secrets.token_hex(6)}"
    quote = '"' if dialect == "postgresql" else "`"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {quote}{name}{quote}"))
    database = TestDatabase(make_url(admin_url).set(database=name).render_as_string(hide_password=False), dialect)
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            if dialect == "postgresql":
                # Connections a test left open (or an exporter process still running) must not block the drop.
                conn.execute(
                    sqlalchemy.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                )
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}"))
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
