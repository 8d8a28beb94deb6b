"""A SQL source's config model (`kpis.sources.<name>: {dsn: ...}`) and what a query on it needs.

Apart from the SQL source (sql.py) because the database code (sql_database.py) needs it too, and
that code is loaded only when a SQL source opens.
"""

from __future__ import annotations

import re

import pydantic

from exporter.config.types import PositiveDuration, secret_field
from exporter.kpis.query_config import QueryConfig
from exporter.kpis.sources.base import SourceConfig


class SqlSourceConfig(SourceConfig):
    """A database reached through SQLAlchemy. `dsn` is a SQLAlchemy URL (its password is a secret)."""

    dsn: str = secret_field()
    read_only: bool = True
    pool_size: int = pydantic.Field(2, ge=1, le=100)
    max_overflow: int = pydantic.Field(2, ge=0, le=100)
    pool_recycle: PositiveDuration = 1800.0
    connect_timeout: PositiveDuration = 10.0
    # A superuser or an account that may write/read server files (PostgreSQL COPY ... TO, MariaDB
    # INTO OUTFILE) is refused unless this says the operator accepts it (sql_database.py checks at connect).
    allow_privileged_account: bool = False

    @pydantic.field_validator("dsn")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        # Imported here, like everything SQLAlchemy: it costs ~25 MiB of RSS, which an exporter
        # without SQL sources should not pay.
        from sqlalchemy.engine import make_url  # noqa: PLC0415
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError  # noqa: PLC0415

        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            # Never echo the DSN: it may hold a password.
            raise ValueError("not a SQLAlchemy URL (write it like postgresql+psycopg://user@host/db)") from None
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ValueError(f"SQLAlchemy has no database dialect {url.drivername!r}") from None
        except ImportError as err:
            raise ValueError(f"the driver for {url.drivername} is not installed ({err.name or err})") from None
        return value

    @property
    def dialect(self) -> str:
        """SQLAlchemy's backend name, with MariaDB folded into mysql ("sqlite", "postgresql", "mysql", ...)."""
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        name = make_url(self.dsn).get_backend_name()
        return "mysql" if name == "mariadb" else name

    @property
    def safe_dsn(self) -> str:
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        return make_url(self.dsn).render_as_string(hide_password=True)


def check_sql_query(query: QueryConfig) -> None:
    """A query on a SQL source: `sql` (using :cursor with a cursor), no HTTP fields."""
    if query.sql is None or not query.sql.strip():
        raise ValueError("sql: a query on a SQL source needs sql")
    if query.request is not None or query.rows is not None:
        raise ValueError("request: request and rows are for HTTP sources; this query's source is SQL")
    if query.cursor is not None:
        if not re.search(r"(?<![:\w]):cursor\b", query.sql):
            raise ValueError("sql: a query with a cursor must use :cursor (e.g. WHERE id > :cursor)")
        gauges = [m.name for m in query.metrics if m.type != "counter"]
        if gauges:
            raise ValueError(f"cursor: a cursor query adds up new rows, so its metrics are counters: {gauges}")
