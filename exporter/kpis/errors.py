"""How a KPI query run can fail; the engine counts and logs each kind differently."""

from __future__ import annotations

import asyncio
from typing import Any


class SourceDownError(Exception):
    """The source cannot be reached (connection refused, lost, authentication failed; HTTP 5xx)."""


class QueryTimeoutError(Exception):
    """The query ran longer than its timeout and was cancelled."""


class QueryError(Exception):
    """The query failed for a reason of its own (SQL error, missing column, bad value, HTTP 4xx)."""


class SourceRefusedError(Exception):
    """The source answered, but Pulse will not run queries on it: its account could write or read
    files on the database server (a superuser, MariaDB's FILE privilege, ...)."""


class SourceStalledError(QueryTimeoutError):
    """Not even a grace period after its timeout brought an answer: the server or the network is not
    answering. The source counts as down, and the call is left `pending`: until it ends, the query's
    runs are skipped."""

    def __init__(self, message: str, pending: asyncio.Future[Any]) -> None:
        super().__init__(message)
        self.pending = pending
