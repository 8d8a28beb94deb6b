"""An httpx transport that resolves host names itself, so a redirect's address is checked before connecting.

httpx (through httpcore) resolves and connects in one call: a check of the name beforehand would let DNS
rebinding give the connection another address than the one checked. Here the network backend resolves
the host, hands each address to `check` (which raises RedirectBlocked to refuse it) and connects to that
very address; TLS still verifies the certificate against the URL's host name, which httpcore passes
separately. Connections are not kept alive, so every request, each redirect included, goes through
this check rather than reusing a connection opened for an earlier, trusted URL.

Imported where a journey runs (httpx costs memory a config without journeys never pays).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable

import httpcore
import httpx

from exporter.probes.base import ProbeSink
from exporter.probes.resolver import ResolveError, resolve_all


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend, with name resolution done here and every address checked first."""

    def __init__(self, sink: ProbeSink) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._sink = sink
        # Called with each address before connecting to it; raises to refuse it. None: no check.
        self.check: Callable[[str], object] | None = None
        self.connected: str | None = None  # the address of the last connection made

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_all(host)
        except ResolveError as err:
            raise httpcore.ConnectError(str(err)) from err
        last_error: httpcore.ConnectError | None = None
        for address in addresses:  # in turn, as the system resolver ordered them
            if self.check is not None:
                self.check(address)
            self._sink.log(f"connecting to {address} port {port}")
            try:
                stream = await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as err:
                last_error = err
                continue
            self.connected = address
            return stream
        assert last_error is not None  # resolve_all returns at least one address
        raise last_error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a PinnedBackend, without keep-alive (see the module docstring)."""

    def __init__(self, backend: PinnedBackend, context: ssl.SSLContext) -> None:
        super().__init__(verify=context, trust_env=False)
        # httpx has no parameter for httpcore's network backend: its pool is replaced by one with the same
        # settings plus the backend (no proxy, no unix socket: a journey uses neither).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, max_keepalive_connections=0, network_backend=backend
        )
