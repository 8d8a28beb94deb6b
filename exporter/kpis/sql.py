"""SQL sources: a SQLAlchemy engine per source, read-only sessions, timeouts the server enforces.

Calls here block (DBAPI drivers are synchronous); the engine runs them in worker threads.

- Pool: `pool_pre_ping` tests a pooled connection before use, so after a database restart the first
  query reconnects instead of failing; on a connection-level error the whole pool is disposed, since
  its other connections died with the same server.
- Read-only: every new connection is switched to read-only transactions (PostgreSQL
  `default_transaction_read_only`, MariaDB/MySQL `SET SESSION TRANSACTION READ ONLY`, SQLite opened
  with `mode=ro` plus `PRAGMA query_only`), so a KPI query can never change data, whatever its SQL.
- Timeouts cancel the statement on the server, not just our wait for it: PostgreSQL
  `SET LOCAL statement_timeout`, MariaDB `SET STATEMENT max_statement_time=… FOR …`, MySQL the
  `MAX_EXECUTION_TIME` optimizer hint, SQLite a progress handler that interrupts the statement.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from exporter.kpis.config import SqlSourceConfig
from exporter.kpis.errors import QueryError, QueryTimeoutError, SourceDownError

log = logging.getLogger(__name__)

# MariaDB 1969: max_statement_time exceeded; MySQL 3024: MAX_EXECUTION_TIME exceeded; 1317: interrupted.
_MYSQL_TIMEOUT_CODES = {1969, 3024, 1317}
_LEADING_SELECT = re.compile(r"^\s*select\b", re.IGNORECASE)


def first_line(err: BaseException) -> str:
    """An error's message without SQLAlchemy's trailing SQL echo and background links."""
    original = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0]


class SqlSource:
    def __init__(self, name: str, config: SqlSourceConfig, longest_timeout: float) -> None:
        self.name = name
        self.config = config
        self.dialect = config.dialect
        self.safe_dsn = config.safe_dsn  # for logs: never the password
        self.slots = config.pool_size + config.max_overflow  # connections that may be in use at once
        self._engine = self._create_engine(longest_timeout)

    def _create_engine(self, longest_timeout: float) -> Engine:
        url = make_url(self.config.dsn)
        connect_args: dict[str, Any] = {}
        connect_timeout = max(1, math.ceil(self.config.connect_timeout))
        if self.dialect == "sqlite":
            url = self._sqlite_url(url)
            connect_args["check_same_thread"] = False  # queries run in worker threads
        elif self.dialect == "postgresql":
            connect_args["connect_timeout"] = max(2, connect_timeout)  # libpq ignores values below 2
            connect_args["application_name"] = "pulse-exporter"
            # Notice a dead server or network within about a minute, instead of the OS' two hours.
            connect_args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        elif self.dialect == "mysql":
            connect_args["connect_timeout"] = connect_timeout
            # A client-side backstop if the server-side timeout never comes (network partition).
            connect_args["read_timeout"] = math.ceil(longest_timeout) + 10
            connect_args["write_timeout"] = connect_timeout
        kwargs: dict[str, Any] = {
            "pool_pre_ping": True,
            "pool_recycle": self.config.pool_recycle,
            "connect_args": connect_args,
        }
        if self.dialect != "sqlite":
            kwargs.update(pool_size=self.config.pool_size, max_overflow=self.config.max_overflow)
        engine = sqlalchemy.create_engine(url, **kwargs)
        if self.config.read_only:
            event.listen(engine, "connect", self._make_read_only)
        return engine

    def _sqlite_url(self, url: URL) -> URL:
        database = url.database or ""
        if (
            not self.config.read_only
            or database in ("", ":memory:")
            or url.query.get("uri")
            or database.startswith("file:")
        ):
            return url
        # mode=ro: a missing file is an error (the source is down), not a new empty database.
        return url.set(database=f"file:{database}", query={**url.query, "mode": "ro", "uri": "true"})

    def _make_read_only(self, dbapi_connection: Any, _record: Any) -> None:
        statements = {
            "postgresql": ["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"],
            "mysql": ["SET SESSION TRANSACTION READ ONLY"],
            "sqlite": ["PRAGMA query_only = ON"],
        }.get(self.dialect, [])
        if not statements:
            return
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
        if self.dialect != "sqlite":
            dbapi_connection.commit()  # a SET inside a rolled-back transaction would be undone

    def run(self, sql: str, params: dict[str, Any], timeout: float) -> tuple[list[str], Sequence[Sequence[Any]]]:
        """Run one query; return its column names and rows. Raises one of the errors in errors.py."""
        started = time.monotonic()
        try:
            connection = self._engine.connect()
        except SQLAlchemyError as err:
            self._engine.dispose()
            raise SourceDownError(first_line(err)) from None
        try:
            with connection:
                transaction = connection.begin()
                try:
                    return self._execute(connection, sql, params, timeout)
                finally:
                    if transaction.is_active:
                        transaction.rollback()
        except DBAPIError as err:
            if err.connection_invalidated:
                self._engine.dispose()
                raise SourceDownError(first_line(err)) from None
            if self._is_timeout(err, time.monotonic() - started, timeout):
                raise QueryTimeoutError(f"cancelled after the {timeout:g}s timeout") from None
            raise QueryError(first_line(err)) from None
        except SQLAlchemyError as err:
            raise QueryError(first_line(err)) from None

    def _execute(
        self, connection: Connection, sql: str, params: dict[str, Any], timeout: float
    ) -> tuple[list[str], Sequence[Sequence[Any]]]:
        statement = sql.strip().rstrip(";")
        milliseconds = max(1, math.ceil(timeout * 1000))
        sqlite_connection: sqlite3.Connection | None = None
        if self.dialect == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        elif self.dialect == "mysql":
            if connection.dialect.is_mariadb:  # type: ignore[attr-defined]
                statement = f"SET STATEMENT max_statement_time={milliseconds / 1000:.3f} FOR {statement}"
            elif _LEADING_SELECT.match(statement):
                statement = _LEADING_SELECT.sub(f"SELECT /*+ MAX_EXECUTION_TIME({milliseconds}) */", statement, 1)
        elif self.dialect == "sqlite":
            raw = connection.connection.dbapi_connection
            if isinstance(raw, sqlite3.Connection):
                sqlite_connection = raw
                deadline = time.monotonic() + timeout
                # Called every 1000 SQLite VM instructions; a non-zero return interrupts the statement.
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            result = connection.execute(sqlalchemy.text(statement), params)
            columns = list(result.keys())
            rows = result.fetchall()
        finally:
            if sqlite_connection is not None:
                sqlite_connection.set_progress_handler(None, 0)
        return columns, rows

    def _is_timeout(self, err: DBAPIError, elapsed: float, timeout: float) -> bool:
        original = err.orig
        if self.dialect == "postgresql":
            return type(original).__name__ == "QueryCanceled"
        if self.dialect == "mysql":
            code = original.args[0] if original is not None and original.args else None
            return code in _MYSQL_TIMEOUT_CODES
        if self.dialect == "sqlite":
            return "interrupted" in str(original) and elapsed >= timeout
        return elapsed >= timeout

    def close(self) -> None:
        self._engine.dispose()
