"""The SQL source kind: queries run by a database driver in worker threads, rows addressed by column.

The driver calls block, so each run goes to a daemon worker thread (through the engine's
`run_blocking`), where its rows also become samples: turning a large result into series takes long
enough to stall the event loop (a 100,000-row result took 0.6 s). The database code itself, with
its read-only and timeout guarantees, is sql_database.py, loaded only when a SQL source opens.

Columns are found by name, case-insensitively if the exact name is missing (some databases fold
case); a missing column is an error naming the query, the metric and the column. A cursor query
passes `:cursor` and advances it to the largest value of its cursor column.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from exporter.kpis.errors import QueryError, QueryTimeoutError, SourceStalledError
from exporter.kpis.resolved import ResolvedMetric, ResolvedQuery
from exporter.kpis.samples import Samples, samples_from_rows
from exporter.kpis.sources.base import Fetched, Opening, Source, SourceKind
from exporter.kpis.sources.sql_config import SqlSourceConfig, check_sql_query

# How much longer than its timeout we wait for a database call before giving up on the thread
# (the server-side timeout normally ends it well before).
THREAD_GRACE_SECONDS = 5.0


class SqlRows:
    """Rows of a SQL result, addressed by column name."""

    def __init__(self, query: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.query = query
        self.columns = list(columns)
        self.rows = rows
        self._index = {name: i for i, name in enumerate(self.columns)}
        for i, name in enumerate(self.columns):
            self._index.setdefault(name.lower(), i)

    def column(self, name: str, what: str) -> int:
        index = self._index.get(name, self._index.get(name.lower()))
        if index is None:
            raise QueryError(
                f"query {self.query}: {what}: column {name!r} is not in the result "
                f"(columns: {', '.join(self.columns) or 'none'})"
            )
        return index


def sql_samples(metric: ResolvedMetric, result: SqlRows) -> Samples:
    spec = metric.config
    value_index = result.column(spec.value, f"metric {spec.name}: value")
    label_indexes = [
        result.column(column, f"metric {spec.name}: label {label}") for label, column in spec.label_columns().items()
    ]
    return samples_from_rows(
        metric, result.query, result.rows, lambda row: row[value_index], lambda row: [row[i] for i in label_indexes]
    )


class SqlSource(Source):
    def __init__(self, name: str, config: SqlSourceConfig, opening: Opening) -> None:
        # SQLAlchemy costs ~25 MiB of RSS: loaded only by an exporter that has SQL sources.
        from exporter.kpis.sources.sql_database import SqlDatabase  # noqa: PLC0415

        self.database = SqlDatabase(name, config, opening.longest_timeout)
        super().__init__(name, self.database.safe_dsn)
        self._run_blocking = opening.run_blocking
        # One run per pooled connection at a time: a run queued inside the pool would look like a
        # database that does not answer. A slot is held until the database call really ends.
        self._slots = asyncio.Semaphore(self.database.slots)

    async def fetch(self, query: ResolvedQuery, cursor: Any) -> Fetched:
        sql = query.config.sql or ""
        cursor_config = query.config.cursor
        params = {"cursor": cursor} if cursor_config else {}
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=query.period)
        except TimeoutError:
            raise QueryTimeoutError(
                f"all {self.database.slots} connections to source {query.source} stayed busy for a whole interval"
            ) from None
        cursor_column = cursor_config.column if cursor_config else None
        database = self.database

        def run_and_build() -> Fetched:
            # In the worker thread: see the module's docstring.
            columns, rows = database.run(sql, params, query.timeout)
            return _build_samples(query, columns, rows, cursor_column, cursor)

        call = asyncio.ensure_future(self._run_blocking(run_and_build))
        call.add_done_callback(lambda _: self._slots.release())
        try:
            done, _ = await asyncio.wait({call}, timeout=query.timeout + THREAD_GRACE_SECONDS)
        except asyncio.CancelledError:  # the collector is closing: stop waiting for the thread too
            call.cancel()
            raise
        if not done:
            # Even the server-side timeout did not end it: the server or the network is not answering
            # (a partition). The call ends when the driver gives up (TCP keepalive, read timeout);
            # until then this query's runs are skipped rather than piling up threads.
            call.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieve it, silently
            raise SourceStalledError(
                f"no answer from the database {THREAD_GRACE_SECONDS:g}s after the {query.timeout:g}s timeout", call
            )
        return call.result()

    async def close(self) -> None:
        # Disposing closes connections: a network call, so off the event loop.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._run_blocking(self.database.close), 10)


def _build_samples(
    query: ResolvedQuery, columns: list[str], rows: Sequence[Sequence[Any]], cursor_column: str | None, cursor: Any
) -> Fetched:
    """Each metric's samples from a SQL result, and the cursor advanced past its rows."""
    result = SqlRows(query.name, columns, rows)
    samples = {m.name: sql_samples(m, result) for m in query.metrics}
    if cursor_column is not None:
        index = result.column(cursor_column, "cursor")
        cursor = _advance(cursor, (row[index] for row in rows))
    return Fetched(samples, cursor)


def _advance(cursor: Any, values: Any) -> Any:
    """The new high-water mark: the largest non-NULL cursor value returned, if above the old one."""
    candidates = [v for v in values if v is not None]
    if not candidates:
        return cursor
    highest = max(candidates)
    try:
        return highest if highest > cursor else cursor
    except TypeError:  # the initial value's type differs from the column's (0 vs a timestamp)
        return highest


SQL = SourceKind(
    name="sql",
    config_model=SqlSourceConfig,
    config_keys=("dsn", "dsn_file"),
    requirement="dsn (or dsn_file) for a SQL database",
    query_keys=(),  # the kind assumed for a query whose source is invalid, unless another kind's keys say otherwise
    check_query=check_sql_query,
    open=SqlSource,
)
