"""A SQL source's database: a SQLAlchemy engine per source, read-only sessions, timeouts the server enforces.

Calls here block (DBAPI drivers are synchronous); the SQL source (sql.py) runs them in worker threads.
Imported only when a SQL source opens: SQLAlchemy costs ~25 MiB of RSS.

- Pool: `pool_pre_ping` tests a pooled connection before use, so after a database restart the first
  query reconnects instead of failing; on a connection-level error the whole pool is disposed, since
  its other connections died with the same server.
- One statement per query, refused by the server or driver otherwise (so nothing can follow a
  `COMMIT`): PostgreSQL through psycopg's extended protocol (`prepare_threshold=0`: every statement
  is prepared), MariaDB/MySQL without the `MULTI_STATEMENTS` client flag, SQLite by the sqlite3 module.
- Read-only (`read_only: true`): PostgreSQL sessions default to read-only and psycopg opens every
  transaction `BEGIN READ ONLY`; each run checks it and rolls back, which also undoes any setting
  the statement changed. MariaDB/MySQL runs start `START TRANSACTION READ ONLY` and a connection whose
  session the statement switched to read-write is discarded. SQLite: opened `mode=ro`, `PRAGMA
  query_only`, no attached databases, and an authorizer that lets a query only read (so no `VACUUM
  INTO` or `ATTACH` can write a file).
- Timeouts cancel the statement on the server, not just our wait for it: PostgreSQL
  `set_config('statement_timeout', …, true)` per run (and the longest timeout as the session's
  default), MariaDB `SET STATEMENT max_statement_time=… FOR …`, MySQL the `MAX_EXECUTION_TIME`
  optimizer hint, SQLite a progress handler that interrupts the statement and a busy timeout that
  ends a lock wait at the deadline.
- Privileged accounts are refused (unless `allow_privileged_account: true`): a read-only transaction
  does not stop a PostgreSQL superuser from `COPY (…) TO '/file'` or `TO PROGRAM`, nor a MariaDB
  account with FILE from `SELECT … INTO OUTFILE`. Each new connection checks its account first; a
  privileged one is closed and the run fails with SourceRefusedError.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from exporter.kpis.errors import QueryError, QueryTimeoutError, SourceDownError, SourceRefusedError
from exporter.kpis.sources.sql_config import SqlSourceConfig

log = logging.getLogger(__name__)

# MariaDB 1969: max_statement_time exceeded; MySQL 3024: MAX_EXECUTION_TIME exceeded; 1317: interrupted.
_MYSQL_TIMEOUT_CODES = {1969, 3024, 1317}
_MYSQL_SYNTAX_ERROR = 1064
_MYSQL_MULTI_STATEMENTS = 1 << 16  # CLIENT_MULTI_STATEMENTS (PyMySQL and mysqlclient: `client_flag`)
# MariaDB/MySQL: a statement still running this long after its timeout is killed from another
# connection (one statement can lift its own max_statement_time: `SET STATEMENT max_statement_time=0
# FOR …` inside ours).
KILL_AFTER_SECONDS = 1.0
_LEADING_SELECT = re.compile(r"^\s*select\b", re.IGNORECASE)
# SQLite errors about the file itself: the message gets the file's path.
_SQLITE_FILE_ERRORS = ("unable to open database file", "file is not a database", "disk image is malformed")
_SQLITE_LOCKED = ("database is locked", "database table is locked")
_SQLITE_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
# Pragmas that only read (as `PRAGMA x` or the table-valued `pragma_x(...)`), and those whose
# argument names a table or index rather than setting a value.
_SQLITE_READ_PRAGMAS = {
    "application_id", "collation_list", "compile_options", "data_version", "database_list", "encoding",
    "freelist_count", "function_list", "module_list", "page_count", "page_size", "pragma_list",
    "query_only", "schema_version", "user_version",
}  # fmt: skip
# PostgreSQL: what makes an account able to reach the server's files or programs. Superuser also
# counts when only reachable through SET ROLE (a NOINHERIT member of a superuser role).
_POSTGRESQL_FILE_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
_POSTGRESQL_FILE_FUNCTIONS = ("lo_export", "lo_import", "pg_read_binary_file", "pg_read_file")
_POSTGRESQL_PRIVILEGES = f"""
SELECT session_user::text,
  EXISTS (SELECT 1 FROM pg_roles WHERE rolsuper AND pg_has_role(session_user, oid, 'MEMBER')),
  ARRAY(SELECT rolname::text FROM pg_roles WHERE rolname IN {_POSTGRESQL_FILE_ROLES}
        AND pg_has_role(session_user, oid, 'MEMBER') ORDER BY 1),
  ARRAY(SELECT DISTINCT proname::text FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
        AND proname IN {_POSTGRESQL_FILE_FUNCTIONS} AND has_function_privilege(session_user, oid, 'EXECUTE')
        ORDER BY 1)
"""
# MariaDB/MySQL: FILE reads and writes server files (INTO OUTFILE, LOAD_FILE); SUPER changes server
# settings (SET GLOBAL general_log_file = …). ALL PRIVILEGES ON *.* is listed as each of them.
_MYSQL_FILE_PRIVILEGES = ("FILE", "SUPER")
_MYSQL_GLOBAL_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON \*\.\* TO (?P<grantee>\S+)")
_POSTGRESQL_RISK = (
    "a KPI query could write or read files on the database server (COPY ... TO, lo_export) or run "
    "programs there (COPY ... TO PROGRAM); connect as a role without superuser, pg_write_server_files, "
    "pg_read_server_files and pg_execute_server_program, or set allow_privileged_account: true"
)
_MYSQL_RISK = (
    "a KPI query could write or read files on the database server (SELECT ... INTO OUTFILE, LOAD_FILE) "
    "or change its settings (SET GLOBAL); connect as a user without FILE and SUPER (nor a role that has "
    "them), or set allow_privileged_account: true"
)
_SQLITE_PRAGMAS_NAMING_A_TABLE = {
    "foreign_key_list", "index_info", "index_list", "index_xinfo", "table_info", "table_list", "table_xinfo",
}  # fmt: skip


def _sqlite_read_only_authorizer(action: int, arg1: str | None, arg2: str | None, *_: str | None) -> int:
    """Let a statement read and nothing else: no ATTACH, no VACUUM (INTO), no writing pragma, no DDL."""
    if action in _SQLITE_READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 is not None:
        name = arg1.lower()
        if (arg2 is None and name in _SQLITE_READ_PRAGMAS) or name in _SQLITE_PRAGMAS_NAMING_A_TABLE:
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _postgresql_privileges(cursor: Any) -> tuple[str, list[str]]:
    """The login role and what lets it reach server files ([] when nothing)."""
    cursor.execute(_POSTGRESQL_PRIVILEGES)
    account, superuser, roles, functions = cursor.fetchone()
    if superuser:
        return account, ["is a superuser"]
    reasons = []
    if roles:
        reasons.append(f"is a member of {_and(roles)}")
    if functions:
        reasons.append(f"may execute {_and([f'{function}()' for function in functions])}")
    return account, reasons


def _mysql_privileges(cursor: Any, is_mariadb: bool) -> tuple[str, list[str]]:
    """The account ('user'@'host') and its FILE / SUPER privileges, its own or (MariaDB) through a role."""
    cursor.execute("SELECT CURRENT_USER()")
    user, _, host = str(cursor.fetchone()[0]).rpartition("@")
    account = f"'{user}'@'{host}'"  # how information_schema names it
    placeholders = ", ".join(["%s"] * len(_MYSQL_FILE_PRIVILEGES))
    cursor.execute(
        "SELECT DISTINCT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES "
        f"WHERE GRANTEE = %s AND PRIVILEGE_TYPE IN ({placeholders}) ORDER BY 1",
        (account, *_MYSQL_FILE_PRIVILEGES),
    )
    own = [str(row[0]) for row in cursor.fetchall()]
    reasons = [f"has the {_and(own)} privilege{'s' if len(own) > 1 else ''}"] if own else []
    if is_mariadb:
        reasons += [
            f"has {privilege} through role {role}"
            for role, privilege in _mariadb_role_privileges(cursor, f"{user}@{host}")
        ]
    return account, reasons


def _mariadb_role_privileges(cursor: Any, user: str) -> list[tuple[str, str]]:
    """(role, privilege) for FILE / SUPER held by a role the account may enable. A role's grants are
    only visible to its members while it is enabled, so each is enabled in turn (its nested roles
    come with it), then the session's own role is restored: one `SET ROLE` in a KPI query would
    otherwise be enough to gain them."""
    cursor.execute("SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES WHERE GRANTEE = %s", (user,))
    roles = sorted(str(row[0]) for row in cursor.fetchall())
    if not roles:
        return []
    cursor.execute("SELECT CURRENT_ROLE()")
    current = cursor.fetchone()[0]
    found: list[tuple[str, str]] = []
    try:
        for role in roles:
            cursor.execute(f"SET ROLE {_backquoted(role)}")
            cursor.execute("SHOW GRANTS")
            for (line,) in cursor.fetchall():
                grant = _MYSQL_GLOBAL_GRANT.match(str(line))
                if grant is None or "`@`" in grant["grantee"]:
                    continue  # not global, or a user's grant (the account's own: checked above)
                held = {p.strip().upper() for p in grant["privileges"].split(",")}
                for privilege in _MYSQL_FILE_PRIVILEGES:
                    if privilege in held or "ALL PRIVILEGES" in held:
                        found.append((grant["grantee"].strip("`"), privilege))
    finally:
        cursor.execute("SET ROLE NONE" if current is None else f"SET ROLE {_backquoted(str(current))}")
    return sorted(set(found))


def _and(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def _backquoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class _SessionNotReadOnly(Exception):
    """The connection's session is no longer read-only: it is discarded, never reused."""


def first_line(err: BaseException) -> str:
    """An error's message without SQLAlchemy's trailing SQL echo and background links."""
    original = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0]


class SqlDatabase:
    def __init__(self, name: str, config: SqlSourceConfig, longest_timeout: float) -> None:
        self.name = name
        self.config = config
        self.dialect = config.dialect
        self.safe_dsn = config.safe_dsn  # for logs: never the password
        self.slots = config.pool_size + config.max_overflow  # connections that may be in use at once
        self._longest_timeout = longest_timeout
        self._engine = self._create_engine()
        self._killer: Engine | None = None  # MariaDB/MySQL: opened at the first statement to kill
        self._killer_lock = threading.Lock()
        self._sqlite_path = _sqlite_file(self._engine.url) if self.dialect == "sqlite" else ""
        self._privileged_warned = False  # allow_privileged_account: warned once, then never checked again
        self._warn_lock = threading.Lock()

    def _create_engine(self) -> Engine:
        url = make_url(self.config.dsn)
        connect_args: dict[str, Any] = {}
        connect_timeout = max(1, math.ceil(self.config.connect_timeout))
        if self.dialect == "sqlite":
            url = self._sqlite_url(url)
            connect_args["check_same_thread"] = False  # queries run in worker threads
        elif self.dialect == "postgresql":
            if url.get_driver_name() != "psycopg":
                # Only psycopg can send a statement with the extended protocol, which refuses several.
                raise ValueError(
                    f"PostgreSQL sources need the psycopg driver (postgresql+psycopg://…), not {url.drivername}"
                )
            connect_args["connect_timeout"] = max(2, connect_timeout)  # libpq ignores values below 2
            connect_args["application_name"] = "pulse-exporter"
            # Prepare every statement: the server then refuses a query of several statements
            # (`COMMIT; DELETE …`), which the simple protocol would run one after the other.
            connect_args["prepare_threshold"] = 0
            # Notice a dead server or network within about a minute, instead of the OS' two hours.
            connect_args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        elif self.dialect == "mysql":
            connect_args["connect_timeout"] = connect_timeout
            # A client-side backstop if the server-side timeout never comes (network partition).
            connect_args["read_timeout"] = math.ceil(self._longest_timeout) + 10
            connect_args["write_timeout"] = connect_timeout
        kwargs: dict[str, Any] = {
            "pool_pre_ping": True,
            "pool_recycle": self.config.pool_recycle,
            "connect_args": connect_args,
        }
        if self.dialect != "sqlite":
            kwargs.update(pool_size=self.config.pool_size, max_overflow=self.config.max_overflow)
        engine = sqlalchemy.create_engine(url, **kwargs)
        if self.dialect == "mysql":
            event.listen(engine, "do_connect", _without_multi_statements)
        event.listen(engine, "connect", self._prepare_session)
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

    def _prepare_session(self, dbapi_connection: Any, _record: Any) -> None:
        """Set up a new connection: its account checked, read-only by default, and the longest
        timeout as a backstop."""
        self._check_account(dbapi_connection)
        statements: list[str] = []
        if self.dialect == "postgresql":
            if self.config.read_only:
                statements.append("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            if self._longest_timeout > 0:
                statements.append(f"SET statement_timeout = {math.ceil(self._longest_timeout * 1000)}")
        elif self.dialect == "mysql" and self.config.read_only:
            statements.append("SET SESSION TRANSACTION READ ONLY")
        elif self.dialect == "sqlite" and self.config.read_only:
            statements.append("PRAGMA query_only = ON")
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)  # no ATTACH, no VACUUM INTO
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
        if self.dialect == "postgresql" and self.config.read_only:
            dbapi_connection.read_only = True  # psycopg: every transaction starts BEGIN READ ONLY

    def _check_account(self, dbapi_connection: Any) -> None:
        """Refuse an account that can reach the server's files or programs: SourceRefusedError,
        raised out of the pool's connect (which closes the connection), so out of `run`."""
        if self.dialect not in ("postgresql", "mysql") or self._privileged_warned:
            return
        cursor = dbapi_connection.cursor()
        try:
            if self.dialect == "postgresql":
                account, reasons = _postgresql_privileges(cursor)
            else:
                account, reasons = _mysql_privileges(cursor, bool(getattr(self._engine.dialect, "is_mariadb", False)))
        finally:
            cursor.close()
        dbapi_connection.rollback()
        if not reasons:
            return
        who = f"account {account!r}" if self.dialect == "postgresql" else f"account {account}"
        risk = _POSTGRESQL_RISK if self.dialect == "postgresql" else _MYSQL_RISK
        if self.config.allow_privileged_account:
            with self._warn_lock:
                if self._privileged_warned:
                    return
                self._privileged_warned = True
            log.warning(
                "KPI source uses a privileged account (allow_privileged_account: true)",
                extra={"source": self.name, "target": self.safe_dsn, "err": f"{who} {', '.join(reasons)}"},
            )
            return
        raise SourceRefusedError(  # the pool closes the connection on the way out
            f"source {self.name}: {who} {', '.join(reasons)}: {risk}"
        )

    def run(self, sql: str, params: dict[str, Any], timeout: float) -> tuple[list[str], Sequence[Sequence[Any]]]:
        """Run one query; return its column names and rows. Raises one of the errors in errors.py."""
        started = time.monotonic()
        try:
            connection = self._engine.connect()
        except SQLAlchemyError as err:
            self._engine.dispose()
            raise SourceDownError(self._describe(err)) from None
        try:
            with connection:
                transaction = connection.begin()
                try:
                    return self._execute(connection, sql, params, timeout)
                finally:
                    if transaction.is_active:
                        transaction.rollback()
                    self._discard_if_read_write(connection)
        except _SessionNotReadOnly as err:
            raise QueryError(str(err)) from None
        except DBAPIError as err:
            if err.connection_invalidated:
                self._engine.dispose()
                raise SourceDownError(self._describe(err)) from None
            if self._is_timeout(err, time.monotonic() - started, timeout):
                if self.dialect == "sqlite" and _is_sqlite_lock(err):
                    raise QueryTimeoutError(f"the database stayed locked for the whole {timeout:g}s timeout") from None
                raise QueryTimeoutError(f"cancelled after the {timeout:g}s timeout") from None
            raise QueryError(self._describe(err, sql)) from None
        except SQLAlchemyError as err:
            raise QueryError(self._describe(err)) from None

    def _execute(
        self, connection: Connection, sql: str, params: dict[str, Any], timeout: float
    ) -> tuple[list[str], Sequence[Sequence[Any]]]:
        statement = sql.strip().rstrip(";")
        milliseconds = max(1, math.ceil(timeout * 1000))
        sqlite_connection: sqlite3.Connection | None = None
        if self.dialect == "postgresql":
            # One round trip: this transaction's timeout, and proof that it is read-only.
            check = "SELECT set_config('statement_timeout', :ms, true), current_setting('transaction_read_only')"
            _, read_only = connection.execute(sqlalchemy.text(check), {"ms": str(milliseconds)}).one()
            if self.config.read_only and read_only != "on":
                self._discard(connection, "its transaction was not read-only")
        elif self.dialect == "mysql":
            if self.config.read_only:
                connection.exec_driver_sql("START TRANSACTION READ ONLY")
            if connection.dialect.is_mariadb:  # type: ignore[attr-defined]
                statement = f"SET STATEMENT max_statement_time={milliseconds / 1000:.3f} FOR {statement}"
            elif _LEADING_SELECT.match(statement):
                statement = _LEADING_SELECT.sub(f"SELECT /*+ MAX_EXECUTION_TIME({milliseconds}) */", statement, 1)
        elif self.dialect == "sqlite":
            raw = connection.connection.dbapi_connection
            if isinstance(raw, sqlite3.Connection):
                sqlite_connection = raw
                deadline = time.monotonic() + timeout
                # A lock held by another connection is waited for until the deadline, not longer.
                raw.execute(f"PRAGMA busy_timeout = {milliseconds}")
                # Called every 1000 SQLite VM instructions; a non-zero return interrupts the statement.
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
                if self.config.read_only:
                    raw.set_authorizer(_sqlite_read_only_authorizer)
        try:
            with self._kill_when_overdue(connection, timeout):
                result = connection.execute(sqlalchemy.text(statement), params)
                columns = list(result.keys())
                rows = result.fetchall()
        finally:
            if sqlite_connection is not None:
                sqlite_connection.set_authorizer(None)
                sqlite_connection.set_progress_handler(None, 0)
        return columns, rows

    @contextmanager
    def _kill_when_overdue(self, connection: Connection, timeout: float) -> Iterator[None]:
        """MariaDB/MySQL: `KILL QUERY` the statement from another connection if it outlives its
        timeout by KILL_AFTER_SECONDS (the server-side limit normally ends it first)."""
        if self.dialect != "mysql":
            yield
            return
        raw: Any = connection.connection.dbapi_connection
        thread_id = int(
            raw.thread_id()
            if hasattr(raw, "thread_id")
            else connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
        )
        running = True
        lock = threading.Lock()  # the kill never lands after the statement ended (on a later one)

        def kill() -> None:
            with lock:
                if running:
                    self._kill_query(thread_id)

        timer = threading.Timer(timeout + KILL_AFTER_SECONDS, kill)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            with lock:
                running = False

    def _kill_query(self, thread_id: int) -> None:
        with self._killer_lock:
            if self._killer is None:  # outside the pool: its connections may all be busy
                self._killer = sqlalchemy.create_engine(
                    self._engine.url,
                    poolclass=NullPool,
                    connect_args={"connect_timeout": max(1, math.ceil(self.config.connect_timeout))},
                )
        try:
            with self._killer.connect() as conn:
                conn.exec_driver_sql(f"KILL QUERY {thread_id}")
            log.warning("KPI query killed: it outlived its timeout", extra={"source": self.name})
        except SQLAlchemyError as err:
            log.warning("KPI query could not be killed", extra={"source": self.name, "err": first_line(err)})

    def _discard_if_read_write(self, connection: Connection) -> None:
        """MariaDB/MySQL session settings survive a rollback: a statement such as `SET SESSION
        TRANSACTION READ WRITE` would leave its pooled connection read-write, so it is discarded."""
        if self.dialect != "mysql" or not self.config.read_only or connection.invalidated or connection.closed:
            return
        variable = "tx_read_only" if connection.dialect.is_mariadb else "transaction_read_only"  # type: ignore[attr-defined]
        try:
            read_only = connection.exec_driver_sql(f"SELECT @@session.{variable}").scalar()
            connection.rollback()
        except SQLAlchemyError:
            connection.invalidate()  # cannot tell: never reuse it
            raise
        if not read_only:
            self._discard(connection, "the query made its session read-write")

    def _discard(self, connection: Connection, why: str) -> None:
        connection.invalidate()
        log.warning("KPI source connection discarded", extra={"source": self.name, "reason": why})
        raise _SessionNotReadOnly(f"{why}; the connection was discarded")

    def _describe(self, err: BaseException, sql: str = "") -> str:
        """The error's first line, with what helps act on it: the SQLite file, or that a query must be
        one statement."""
        message = first_line(err)
        if self.dialect == "sqlite" and any(text in message for text in _SQLITE_FILE_ERRORS):
            return f"{message}: {self._sqlite_path}"
        if self._refused_as_several_statements(err, message, sql):
            return f"a KPI query must be a single SQL statement ({message})"
        return message

    def _refused_as_several_statements(self, err: BaseException, message: str, sql: str) -> bool:
        if self.dialect == "postgresql":
            return "cannot insert multiple commands" in message
        if self.dialect == "sqlite":
            return "one statement at a time" in message
        if self.dialect == "mysql" and isinstance(err, DBAPIError) and err.orig is not None and err.orig.args:
            # MariaDB/MySQL see the second statement as a syntax error.
            return bool(err.orig.args[0] == _MYSQL_SYNTAX_ERROR and ";" in sql.strip().rstrip(";"))
        return False

    def _is_timeout(self, err: DBAPIError, elapsed: float, timeout: float) -> bool:
        original = err.orig
        if self.dialect == "postgresql":
            return type(original).__name__ == "QueryCanceled"
        if self.dialect == "mysql":
            code = original.args[0] if original is not None and original.args else None
            return code in _MYSQL_TIMEOUT_CODES
        if self.dialect == "sqlite":
            # A lock wait ends at the busy timeout, which is the query's timeout.
            return _is_sqlite_lock(err) or ("interrupted" in str(original) and elapsed >= timeout)
        return elapsed >= timeout

    def close(self) -> None:
        self._engine.dispose()
        if self._killer is not None:
            self._killer.dispose()


def _without_multi_statements(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """Never let the driver ask for several statements per query (a DSN could set the flag)."""
    if "client_flag" in cparams:
        cparams["client_flag"] = int(cparams["client_flag"]) & ~_MYSQL_MULTI_STATEMENTS


def _is_sqlite_lock(err: DBAPIError) -> bool:
    return any(text in str(err.orig) for text in _SQLITE_LOCKED)


def _sqlite_file(url: URL) -> str:
    """The database file a SQLite URL opens, as an absolute path (what an operator can check)."""
    database = url.database or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return database or ":memory:"
    return os.path.abspath(database)
