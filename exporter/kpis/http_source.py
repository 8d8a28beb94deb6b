"""HTTP JSON sources: an httpx client per source; a query is one request whose JSON becomes rows.

`rows` (JMESPath) selects a list of objects from the document (a single object counts as one row;
without `rows` the document itself is the row or the rows). Each metric's value and labels are
JMESPath expressions evaluated on each row.

Transport errors and 5xx answers mean the source is down; 4xx answers and documents that do not
fit the mapping are the query's own errors.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jmespath

from exporter.config.tls import client_ssl_context
from exporter.kpis.config import HttpSourceConfig, RequestConfig
from exporter.kpis.errors import QueryError, QueryTimeoutError, SourceDownError


class HttpSource:
    def __init__(self, name: str, config: HttpSourceConfig) -> None:
        self.name = name
        self.config = config
        self.safe_url = config.url.split("?", 1)[0]
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

    async def fetch(self, request: RequestConfig | None, rows_path: str | None, timeout: float) -> list[Any]:
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
            raise SourceDownError(f"HTTP {response.status_code} from {self.safe_url}")
        if response.status_code >= 400:
            raise QueryError(f"HTTP {response.status_code} from {self.safe_url}")
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

    async def aclose(self) -> None:
        await self._client.aclose()
