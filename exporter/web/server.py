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

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024  # nothing Pulse accepts has a body worth more
HEADER_TIMEOUT = 10.0  # a client slower than this to send its request is dropped (slowloris)
IDLE_TIMEOUT = 60.0  # keep-alive connections idle longer than this are closed


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


class HttpServer:
    """Serves `handler`. TLS, when `tls()` returns a context, is started on each connection with the
    context current at that moment, so a reload swaps certificates and client CAs for new connections
    without rebinding (OpenSSL can add trusted CAs to a live context but never remove one)."""

    def __init__(self, handler: Handler, tls: Callable[[], ssl.SSLContext | None] = lambda: None) -> None:
        self.handler = handler
        self.tls = tls
        self.header_timeout = HEADER_TIMEOUT
        self.idle_timeout = IDLE_TIMEOUT
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def listen(self, host: str | None, port: int) -> list[tuple[str, int]]:
        """Start listening; returns the bound (host, port) pairs (port 0 picks a free one)."""
        server = await asyncio.start_server(self._accept, host, port, reuse_address=True, limit=READ_CHUNK)
        self._servers.append(server)
        return [sock.getsockname()[:2] for sock in server.sockets]

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            context = self.tls()
            if context is not None:
                await writer.start_tls(context, ssl_handshake_timeout=self.header_timeout)
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
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
                if conn.they_are_waiting_for_100_continue:
                    await send(h11.InformationalResponse(status_code=100, headers=[]))
                body = bytearray()
                while True:
                    event = await next_event()
                    if isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_BODY_BYTES:
                            await self._send_error(send, 413, "request body too large")
                            return
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
            except h11.RemoteProtocolError as err:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send_error(send, err.error_status_hint, f"bad request: {err}")
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
