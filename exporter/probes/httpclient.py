"""A lean HTTP/1.1 client for probes: one connection per request, timed by blackbox_exporter's phases.

Why not httpx: a probe needs the time of each phase (connect, TLS handshake, time to first byte,
transfer), which httpx does not expose, and it must be cheap: blackbox_exporter spends about 1.2 ms of
CPU per probe. This client is an asyncio Protocol feeding h11 (the parser the server already uses), on
a connection opened to an address resolved beforehand, so the caller times resolution itself.

Phases (seconds, added to `Phases`, so redirects sum up as in blackbox):
  connect    — TCP connect (to the proxy, when there is one, plus its CONNECT exchange for https)
  tls        — TLS handshake
  processing — request written until the first byte of the response
  transfer   — first byte until the end of the body
Compression: gzip and deflate (what the standard library decodes); `br` is refused by the config.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import h11

from exporter.probes.base import FailureReason

READ_CHUNK_LIMIT = 256 * 1024  # pause the socket when this much arrived and was not parsed yet


@dataclass
class Phases:
    resolve: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    processing: float = 0.0
    transfer: float = 0.0

    def items(self) -> list[tuple[str, float]]:
        return [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
        ]


class RequestFailed(Exception):
    """The exchange did not produce a usable response; `reason` is the probe's failure reason."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TLSHandshakeFailed(Exception):
    """The TLS handshake failed: the caller classifies it (and fetches the certificate, see tls.py)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # origin-form "/path?query", or absolute-form through an HTTP proxy
    headers: list[tuple[str, str]]  # Host included
    body: bytes = b""


@dataclass(frozen=True)
class TLSSettings:
    context: ssl.SSLContext
    server_hostname: str | None


@dataclass(frozen=True)
class BodyOptions:
    size_limit: int = 0  # bytes after decoding; 0 = no limit
    compression: str = ""  # "", "gzip" or "deflate"
    keep: bool = False  # keep the body (for regex checks); otherwise only count it


@dataclass
class Response:
    status: int
    http_version: str  # "1.0" or "1.1"
    headers: list[tuple[str, str]]  # names in lower case
    content_length: int  # the Content-Length header; -1 when the response has none (as Go reports it)
    body_length: int = 0  # bytes after decoding
    body: bytes | None = None  # kept only when asked for (regex checks)
    ssl_object: ssl.SSLObject | None = None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


class _Connection(asyncio.Protocol):
    """Receives bytes into a queue; `read()` hands them to the h11 loop (b"" at end of stream)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_CHUNK_LIMIT and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered < READ_CHUNK_LIMIT // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data


class _Decoder:
    """gzip / deflate decoding that never inflates more than `limit` bytes (a zip bomb stays small)."""

    def __init__(self, compression: str) -> None:
        # deflate on the web is zlib-wrapped (RFC 9110), and a few servers send it raw; 32+15 reads gzip.
        self._compression = compression
        self._inflater = zlib.decompressobj(32 + zlib.MAX_WBITS if compression == "gzip" else zlib.MAX_WBITS)
        self._first = True

    def decode(self, data: bytes, room: int) -> bytes:
        if self._first and self._compression == "deflate" and data and (data[0] & 0x0F) != 8:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
        self._first = False
        try:
            return self._inflater.decompress(self._inflater.unconsumed_tail + data, room)
        except zlib.error as err:
            raise RequestFailed(
                FailureReason.PROTOCOL_ERROR, f"cannot decode {self._compression} body: {err}"
            ) from None

    @property
    def has_more(self) -> bool:
        return bool(self._inflater.unconsumed_tail)

    def finish(self) -> None:
        if not self._inflater.eof:
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"{self._compression} body ends early")


async def exchange(
    address: str,
    port: int,
    request: Request,
    *,
    tls: TLSSettings | None,
    phases: Phases,
    proxy: tuple[str, int] | None = None,
    connect_authority: str = "",
    body: BodyOptions = BodyOptions(),
    on_head: Callable[[Response], None] | None = None,
) -> Response:
    """Send `request` on a new connection to address:port (or through `proxy`) and read the response.

    `connect_authority` is the host:port asked of the proxy in CONNECT (https through a proxy).
    `on_head` sees the response as soon as its head arrived (its body is still being read), so a probe
    cut at the deadline in the middle of a body still reports the status.
    Raises RequestFailed, TLSHandshakeFailed; cancellation closes the connection.
    """
    loop = asyncio.get_running_loop()
    connection = _Connection()
    started = time.perf_counter()
    try:
        try:
            transport, _ = await loop.create_connection(
                lambda: connection, *(proxy if proxy is not None else (address, port))
            )
        except ConnectionRefusedError as err:
            raise RequestFailed(FailureReason.CONNECTION_REFUSED, f"connection refused: {err.strerror}") from None
        except OSError as err:
            raise RequestFailed(FailureReason.CONNECTION_ERROR, f"cannot connect: {err.strerror or err}") from None
        if proxy is not None and tls is not None:
            await _connect_tunnel(connection, connect_authority)
        connected = time.perf_counter()
        phases.connect += connected - started

        ssl_object: ssl.SSLObject | None = None
        if tls is not None:
            try:
                new_transport = await loop.start_tls(
                    transport, connection, tls.context, server_hostname=tls.server_hostname or None
                )
            except (ssl.SSLError, ConnectionError) as err:
                raise TLSHandshakeFailed(err) from None
            if new_transport is None:  # the peer closed the connection during the handshake
                raise TLSHandshakeFailed(ConnectionResetError("connection closed during the TLS handshake"))
            connection.transport = new_transport
            ssl_object = new_transport.get_extra_info("ssl_object")
            handshaken = time.perf_counter()
            phases.tls += handshaken - connected
            connected = handshaken

        return await _request_response(
            connection, request, phases, connected, options=body, on_head=on_head, ssl_object=ssl_object
        )
    finally:
        if connection.transport is not None:
            connection.transport.abort()


async def _connect_tunnel(connection: _Connection, authority: str) -> None:
    """CONNECT host:port through an HTTP proxy; afterwards the connection is a tunnel to the origin."""
    assert connection.transport is not None
    tunnel = h11.Connection(h11.CLIENT)
    connection.transport.write(
        tunnel.send(h11.Request(method="CONNECT", target=authority, headers=[("Host", authority)]))
        + tunnel.send(h11.EndOfMessage())
    )
    while True:
        event = await _next_event(tunnel, connection)
        if isinstance(event, h11.Response | h11.InformationalResponse) and event.status_code >= 200:
            break
    if not 200 <= event.status_code < 300:
        raise RequestFailed(FailureReason.CONNECTION_ERROR, f"proxy refused CONNECT {authority}: {event.status_code}")
    if tunnel.trailing_data[0]:
        raise RequestFailed(FailureReason.PROTOCOL_ERROR, "proxy sent data after accepting CONNECT")


async def _next_event(conn: h11.Connection, connection: _Connection) -> object:
    closed = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as err:
            if closed:  # the peer closed the connection in the middle of a message
                raise RequestFailed(FailureReason.CONNECTION_ERROR, f"connection closed early: {err}") from None
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"not a valid HTTP/1.x response: {err}") from None
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await connection.read()
        except (ConnectionError, ssl.SSLError) as err:
            raise RequestFailed(FailureReason.CONNECTION_ERROR, f"connection lost: {err}") from None
        closed = not data
        conn.receive_data(data)


async def _request_response(
    connection: _Connection,
    request: Request,
    phases: Phases,
    sent_at: float,
    *,
    options: BodyOptions,
    on_head: Callable[[Response], None] | None,
    ssl_object: ssl.SSLObject | None,
) -> Response:
    assert connection.transport is not None
    conn = h11.Connection(h11.CLIENT)
    headers = list(request.headers)
    if request.body and not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers):
        headers.append(("Content-Length", str(len(request.body))))
    try:
        data = conn.send(h11.Request(method=request.method, target=request.target, headers=headers))
        if request.body:
            data += conn.send(h11.Data(data=request.body))
        data += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError as err:
        raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"cannot send this request: {err}") from None
    connection.transport.write(data)

    # h11 does not report the first byte: the first read that returns data is it.
    first_byte: float | None = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as err:
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"not a valid HTTP/1.x response: {err}") from None
        if event is h11.NEED_DATA:
            try:
                chunk = await connection.read()
            except (ConnectionError, ssl.SSLError) as err:
                raise RequestFailed(FailureReason.CONNECTION_ERROR, f"connection lost: {err}") from None
            if first_byte is None and chunk:
                first_byte = time.perf_counter()
                phases.processing += first_byte - sent_at
            if not chunk and first_byte is None:
                raise RequestFailed(FailureReason.CONNECTION_ERROR, "connection closed before any response")
            conn.receive_data(chunk)
            continue
        if isinstance(event, h11.Response):
            break
    assert first_byte is not None
    response = Response(
        status=event.status_code,
        http_version=event.http_version.decode(),
        headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers],
        content_length=-1,
        ssl_object=ssl_object,
    )
    length = response.header_values("content-length")
    if length and length[0].isdigit():
        response.content_length = int(length[0])
    if on_head is not None:
        on_head(response)
    try:
        await _read_body(conn, connection, response, options)
    finally:
        phases.transfer += time.perf_counter() - first_byte
    return response


async def _read_body(
    conn: h11.Connection,
    connection: _Connection,
    response: Response,
    options: BodyOptions,
) -> None:
    decoder = _Decoder(options.compression) if options.compression in ("gzip", "deflate") else None
    limit = options.size_limit if options.size_limit > 0 else 1 << 62
    parts: list[bytes] = []
    total = 0
    while True:
        event = await _next_event(conn, connection)
        if isinstance(event, h11.EndOfMessage):
            break
        if not isinstance(event, h11.Data):
            continue
        data = bytes(event.data)
        while True:
            piece = decoder.decode(data, limit - total + 1) if decoder else data
            total += len(piece)
            if total > limit:
                raise RequestFailed(
                    FailureReason.BODY_TOO_LARGE, f"body is larger than body_size_limit ({limit} bytes)"
                )
            if options.keep:
                parts.append(piece)
            if decoder is None or not decoder.has_more:
                break
            data = b""
    if decoder is not None:
        decoder.finish()
    response.body_length = total
    if options.keep:
        response.body = b"".join(parts)
