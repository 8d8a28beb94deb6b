"""A small HTTP/1.1 server on asyncio streams, with h11 doing the protocol work.

Why not aiohttp or uvicorn: measured on our machine, importing aiohttp costs 25 MiB of resident memory
and the uvicorn stack 16 MiB; asyncio plus h11 (already a dependency of httpx) keeps the whole
exporter inside its 40 MiB budget. h11 parses and validates; this module only moves bytes, enforces
timeouts and limits, and hands each request to one async handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import h11
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024  # the default cap on a request body; a path may allow more (`body_limit`)
HEADER_TIMEOUT = 10.0  # a client slower than this to send its request is dropped (slowloris)
IDLE_TIMEOUT = 60.0  # keep-alive connections idle longer than this are closed
MAX_CONNECTIONS = 512  # open connections: well below the usual 1024 file descriptors; ~10 KiB each when idle


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    peer: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]
BodyLimit = Callable[[str], int]  # a request path -> the most bytes its body may have


def default_body_limit(_path: str) -> int:
    return MAX_BODY_BYTES


@dataclass
class ConnectionStats:
    """What the connection limit did, for the exporter's own metrics."""

    limit: int  # 0: no limit
    open: int = 0
    idle_closed: int = 0  # idle keep-alive connections closed early to make room for a new one
    rejected: int = 0  # new connections closed at once: at the limit, with no idle connection to close

    def metrics(self) -> list[Metric]:
        return [
            GaugeMetricFamily("pulse_exporter_http_connections", "Open HTTP connections.", value=self.open),
            GaugeMetricFamily(
                "pulse_exporter_http_connections_limit",
                "Maximum open HTTP connections (--web.max-connections); 0 for no limit.",
                value=self.limit,
            ),
            CounterMetricFamily(
                "pulse_exporter_http_idle_connections_closed",
                "Idle keep-alive connections closed early to make room for a new connection at the limit.",
                value=self.idle_closed,
            ),
            CounterMetricFamily(
                "pulse_exporter_http_connections_rejected",
                "New connections closed unanswered at the limit because no connection was idle.",
                value=self.rejected,
            ),
        ]


@dataclass
class _Connection:
    task: asyncio.Task[None]
    idle_since: float | None = None  # set while waiting for the first byte of a request


class HttpServer:
    """Serves `handler`. TLS, when `tls()` returns a context, is started on each connection with the
    context current at that moment, so a reload swaps certificates and client CAs for new connections
    without rebinding (OpenSSL can add trusted CAs to a live context but never remove one).

    At most `max_connections` connections are open (0: no limit). A new connection above the limit
    closes the connection that has been idle longest between requests (a keep-alive client such as
    Prometheus simply reconnects for its next scrape); when every connection is busy with a request,
    the new connection is closed at once, unanswered.

    A request body may have at most `body_limit(path)` bytes (MAX_BODY_BYTES unless the handler's
    routes say otherwise): more is answered 413 and the connection closed, before any of it is kept.
    """

    def __init__(
        self,
        handler: Handler,
        tls: Callable[[], ssl.SSLContext | None] = lambda: None,
        max_connections: int = MAX_CONNECTIONS,
        body_limit: BodyLimit = default_body_limit,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.body_limit = body_limit
        self.header_timeout = HEADER_TIMEOUT
        self.idle_timeout = IDLE_TIMEOUT
        self.stats = ConnectionStats(limit=max_connections)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()  # every connection task, for close()
        self._connections: dict[asyncio.Task[None], _Connection] = {}  # those counted against the limit

    async def listen(self, host: str | None, port: int) -> list[tuple[str, int]]:
        """Start listening; returns the bound (host, port) pairs (port 0 picks a free one)."""
        server = await asyncio.start_server(self._accept, host, port, reuse_address=True, limit=READ_CHUNK)
        self._servers.append(server)
        return [sock.getsockname()[:2] for sock in server.sockets]

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def _admit(self, task: asyncio.Task[None]) -> _Connection | None:
        """Count a new connection against the limit, closing the longest-idle one to make room if needed;
        None when there is no room."""
        limit = self.stats.limit
        if limit > 0 and len(self._connections) >= limit:
            idle = [c for c in self._connections.values() if c.idle_since is not None]
            if not idle:
                self.stats.rejected += 1
                return None
            victim = min(idle, key=lambda c: c.idle_since or 0.0)
            del self._connections[victim.task]  # its slot is free now, though its task ends a moment later
            victim.task.cancel()
            self.stats.idle_closed += 1
        connection = _Connection(task)
        self._connections[task] = connection
        self.stats.open = len(self._connections)
        return connection

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = self._admit(task)
        try:
            if connection is None:
                return
            context = self.tls()
            if context is not None:
                await writer.start_tls(context, ssl_handshake_timeout=self.header_timeout)
            await self._serve(reader, writer, connection)
        except (ConnectionError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            self._tasks.discard(task)
            self._connections.pop(task, None)
            self.stats.open = len(self._connections)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "unknown"

        loop = asyncio.get_running_loop()
        request_deadline: float | None = None  # set by a request's first byte, cleared after the response

        async def next_event() -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
            # An idle keep-alive connection may wait for the idle timeout; once a request has begun,
            # all of it must arrive within the header timeout (slow clients must not hold sockets).
            nonlocal request_deadline
            while True:
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    return event
                timeout = self.idle_timeout if request_deadline is None else max(0.0, request_deadline - loop.time())
                if request_deadline is None:
                    connection.idle_since = loop.time()  # may be closed to make room for a new connection
                data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
                connection.idle_since = None
                if request_deadline is None:
                    request_deadline = loop.time() + self.header_timeout
                conn.receive_data(data)

        async def send(*events: h11.Event) -> None:
            writer.write(b"".join(conn.send(e) or b"" for e in events))
            await writer.drain()

        while True:
            request_deadline = None
            try:
                event = await next_event()
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if not isinstance(event, h11.Request):
                    return
                request_event = event
                framing_problem = _ambiguous_framing(request_event)
                if framing_problem:
                    # Checked before the body is read: the bytes after it may be a smuggled request.
                    await self._send_error(send, 400, f"bad request: {framing_problem}")
                    return
                limit = self.body_limit(_path_of(request_event))
                if _declared_length(request_event) > limit:  # refused before a byte of it is read
                    await self._send_error(send, 413, f"request body too large: at most {limit} bytes")
                    return
                if conn.they_are_waiting_for_100_continue:
                    await send(h11.InformationalResponse(status_code=100, headers=[]))
                body = bytearray()
                while True:
                    event = await next_event()
                    if isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > limit:
                            await self._send_error(send, 413, f"request body too large: at most {limit} bytes")
                            return
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
            except h11.RemoteProtocolError as err:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    # h11 hints 501 for a Transfer-Encoding other than one `chunked`; the body's length is
                    # then unknown, which RFC 9112 section 6.3 answers with 400 (and closing).
                    status = 400 if err.error_status_hint == 501 else err.error_status_hint
                    await self._send_error(send, status, f"bad request: {err}")
                return

            request = _to_request(request_event, bytes(body), peer)
            try:
                response = await self.handler(request)
            except Exception:
                log.exception("request handler failed", extra={"path": request.path})
                response = Response(500, b"internal error\n")
            await self._send_response(send, request.method, response)

            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    @staticmethod
    async def _send_response(send: Callable[..., Awaitable[None]], method: str, response: Response) -> None:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ]
        events: list[h11.Event] = [h11.Response(status_code=response.status, headers=headers)]
        if method != "HEAD" and response.body:
            events.append(h11.Data(data=response.body))
        events.append(h11.EndOfMessage())
        await send(*events)

    async def _send_error(self, send: Callable[..., Awaitable[None]], status: int, message: str) -> None:
        with contextlib.suppress(h11.LocalProtocolError):
            response = Response(status, message.encode() + b"\n", headers=[("Connection", "close")])
            await self._send_response(send, "GET", response)


def _ambiguous_framing(event: h11.Request) -> str | None:
    """Why the request's body length is ambiguous, or None. h11 refuses conflicting Content-Length values
    and transfer codings other than chunked, but lets Transfer-Encoding override Content-Length; a proxy in
    front that honours Content-Length instead would see a different request boundary (request smuggling).
    RFC 9112 section 6.3 allows rejecting such a request, and requires closing the connection after it."""
    names = {name.lower() for name, _ in event.headers}
    if b"transfer-encoding" not in names:
        return None
    if b"content-length" in names:
        return "both Content-Length and Transfer-Encoding"
    if event.http_version == b"1.0":
        return "Transfer-Encoding in an HTTP/1.0 request"  # RFC 9112 section 6.1: faulty framing
    return None


def _path_of(event: h11.Request) -> str:
    return urlsplit(event.target.decode("latin-1")).path or "/"


def _declared_length(event: h11.Request) -> int:
    """The Content-Length the client declared (h11 has checked it is one number), or 0."""
    for name, value in event.headers:
        if name.lower() == b"content-length":
            return int(value)
    return 0


def _to_request(event: h11.Request, body: bytes, peer: str) -> Request:
    target = event.target.decode("latin-1")
    parts = urlsplit(target)
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=event.method.decode("ascii"),
        path=parts.path or "/",
        query=parse_qs(parts.query),
        headers=headers,
        body=body,
        peer=peer,
    )


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """':10135' -> (None, 10135) (every interface); '127.0.0.1:80'; '[::1]:80'."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address {address!r} is not host:port (e.g. :10135, 127.0.0.1:10135, [::1]:10135)")
    host = host.removeprefix("[").removesuffix("]")
    return (host or None), int(port_text)
