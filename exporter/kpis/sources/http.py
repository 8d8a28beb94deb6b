"""The HTTP JSON source kind: an httpx client per source; a query is one request whose JSON becomes rows.

`rows` (JMESPath) selects a list of objects from the document (a single object counts as one row;
without `rows` the document itself is the row or the rows). Each metric's value and labels are
JMESPath expressions evaluated on each row.

Transport errors and 5xx answers mean the source is down; 4xx answers and documents that do not
fit the mapping are the query's own errors. Requests run on the event loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import jmespath
import pydantic

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.config.types import PositiveDuration, secret_field
from exporter.kpis.errors import QueryError, QueryTimeoutError, SourceDownError
from exporter.kpis.query_config import QueryConfig, RequestConfig, compile_jmespath
from exporter.kpis.resolved import ResolvedMetric, ResolvedQuery
from exporter.kpis.samples import Samples, samples_from_rows
from exporter.kpis.sources.base import Fetched, Opening, Source, SourceConfig, SourceKind


class HttpSourceConfig(SourceConfig):
    """A JSON API. Queries add a path and parameters to `url`."""

    url: str
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    bearer_token: str | None = secret_field(default=None)
    timeout: PositiveDuration = 10.0  # connect timeout; each query's own timeout bounds the whole request
    tls_config: TLSClientConfig = TLSClientConfig()

    @pydantic.field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @pydantic.model_validator(mode="after")
    def _one_authorization(self) -> HttpSourceConfig:
        if self.bearer_token is not None and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError("bearer_token: set either bearer_token or an Authorization header, not both")
        return self


def check_http_query(query: QueryConfig) -> None:
    """A query on an HTTP source: no SQL fields; its metrics' values and labels are JMESPath expressions."""
    if query.sql is not None:
        raise ValueError("sql: this query's source is an HTTP API; use request (and rows) instead of sql")
    if query.cursor is not None:
        raise ValueError("cursor: cursors are for SQL sources")
    for metric in query.metrics:
        compile_jmespath(metric.value, f"metric {metric.name}: value")
        for label, expression in metric.label_columns().items():
            compile_jmespath(expression, f"metric {metric.name}: label {label}")


def http_samples(metric: ResolvedMetric, query: str, rows: Sequence[Any]) -> Samples:
    spec = metric.config
    value_expression = jmespath.compile(spec.value)
    label_expressions = [jmespath.compile(e) for e in spec.label_columns().values()]

    def value_of(row: Any) -> Any:
        return value_expression.search(row)

    def labels_of(row: Any) -> list[Any]:
        return [e.search(row) for e in label_expressions]

    return samples_from_rows(metric, query, rows, value_of, labels_of)


def _without_credentials(url: str) -> str:
    """The URL without its query string and without a user:password@."""
    parts = urlsplit(url.split("?", 1)[0])
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class HttpSource(Source):
    def __init__(self, name: str, config: HttpSourceConfig, _opening: Opening) -> None:
        super().__init__(name, _without_credentials(config.url))
        self.config = config
        headers = dict(config.headers)
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        headers.setdefault("Accept", "application/json")
        # tls_config.server_name: the name sent in SNI and checked in the certificate, as in prometheus/common.
        server_name = config.tls_config.server_name
        self._extensions = {"sni_hostname": server_name} if server_name else None
        self._client = httpx.AsyncClient(
            headers=headers,
            params=config.params,
            verify=client_ssl_context(config.tls_config) if config.url.startswith("https:") else True,
            follow_redirects=True,
            timeout=httpx.Timeout(None, connect=config.timeout),
        )

    async def fetch(self, query: ResolvedQuery, cursor: Any) -> Fetched:
        rows = await self._rows(query.config.request, query.config.rows, query.timeout)
        try:
            samples = {m.name: http_samples(m, query.name, rows) for m in query.metrics}
        except QueryError:
            raise
        except Exception as err:  # e.g. a JMESPath function given the wrong type: the API did answer
            raise QueryError(f"{type(err).__name__}: {err}") from err
        return Fetched(samples, cursor)

    async def _rows(self, request: RequestConfig | None, rows_path: str | None, timeout: float) -> list[Any]:
        """The rows of one request's JSON document."""
        request = request or RequestConfig()
        url = self.config.url.rstrip("/") + "/" + request.path.lstrip("/") if request.path else self.config.url
        try:
            response = await self._client.request(
                self.config.method,
                url,
                params=request.params or None,
                json=request.body,
                timeout=httpx.Timeout(timeout, connect=min(timeout, self.config.timeout)),
                extensions=self._extensions,
            )
        except httpx.TimeoutException:
            raise QueryTimeoutError(f"no answer within the {timeout:g}s timeout") from None
        except httpx.HTTPError as err:
            raise SourceDownError(f"{type(err).__name__}: {err}") from None
        if response.status_code >= 500:
            raise SourceDownError(f"HTTP {response.status_code} from {self.where}")
        if response.status_code >= 400:
            raise QueryError(f"HTTP {response.status_code} from {self.where}")
        try:
            document = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise QueryError(f"the answer is not JSON ({err})") from None
        selected = jmespath.search(rows_path, document) if rows_path else document
        if selected is None:
            raise QueryError(f"rows: {rows_path!r} selects nothing in the answer")
        if isinstance(selected, list):
            return selected
        return [selected]

    async def close(self) -> None:
        await self._client.aclose()


HTTP = SourceKind(
    name="http",
    config_model=HttpSourceConfig,
    config_keys=("url",),
    requirement="url for an HTTP JSON API",
    query_keys=("request",),
    check_query=check_http_query,
    open=HttpSource,
)
