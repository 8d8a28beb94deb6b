"""A lean HTTP/1.1 client for probes: one connection per request, timed by blackbox_exporter's phases.

Why not httpx: a probe needs the time of each phase (connect, TLS handshake, time to first byte,
transfer), which httpx does not expose, and it must be cheap: blackbox_exporter spends about 1.2 ms of
CPU per probe. This client is an asyncio Protocol with a small HTTP/1.x response parser of its own,
on a connection opened to an address resolved beforehand, so the caller times resolution itself.

Why not h11 (which the server uses): measured here, h11 costs ~90 us per request/response pair (26 to
send, 65 to parse a typical nginx answer), about 15% of a whole /probe. A probe reads one response
per connection and closes it, which needs only a small part of HTTP/1.1: the status line, headers,
and the body framing of RFC 9112 section 6.3 (no body for HEAD/1xx/204/304, chunked, Content-Length,
or until the connection closes). That part is written here and tested against real servers.

Phases (seconds, added to the probe's `PhaseDurations`, so redirects sum up as in blackbox):
  connect    — TCP connect (to the proxy, when there is one, plus its CONNECT exchange for https)
  tls        — TLS handshake
  processing — request written until the first byte of the response
  transfer   — first byte until the end of the body
Compression: gzip and deflate (what the standard library decodes); `br` is refused by the config.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from exporter.probes.base import FailureReason, PhaseDurations

READ_CHUNK_LIMIT = 256 * 1024  # pause the socket when this much arrived and was not parsed yet
HEAD_LIMIT = 64 * 1024  # status line and headers together (Go's default MaxResponseHeaderBytes is 1 MiB)
LINE_LIMIT = 4096  # a chunk-size line

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: [^\r\n]*)?\r?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


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
class HttpRequest:
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
class HttpResponse:
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
    """Receives bytes into a queue; `read()` hands them to the parser (b"" at end of stream)."""

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
    request: HttpRequest,
    *,
    tls: TLSSettings | None,
    phases: PhaseDurations,
    proxy: tuple[str, int] | None = None,
    connect_authority: str = "",
    proxy_headers: tuple[tuple[str, str], ...] = (),
    body: BodyOptions = BodyOptions(),
    on_head: Callable[[HttpResponse], None] | None = None,
    on_body_read: Callable[[HttpResponse], None] | None = None,
) -> HttpResponse:
    """Send `request` on a new connection to address:port (or through `proxy`) and read the response.

    `connect_authority` is the host:port asked of the proxy in CONNECT (https through a proxy), sent
    with `proxy_headers` (Proxy-Authorization), which never reach the origin server.
    `on_head` sees the response as soon as its head arrived (its body is still being read), so a probe
    cut at the deadline in the middle of a body still reports the status; `on_body_read` sees it again
    when reading the body ended, however it ended (deadline included), with `body_length` counted.
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
            await _connect_tunnel(connection, connect_authority, proxy_headers)
        connected = time.perf_counter()
        phases.add("connect", connected - started)

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
            phases.add("tls", handshaken - connected)
            connected = handshaken

        assert connection.transport is not None
        connection.transport.write(serialize(request))
        reader = _Reader(connection)
        status, version, headers = await _read_head(reader)
        first_byte = reader.first_data_at
        phases.add("processing", first_byte - connected)
        response = HttpResponse(status, version, headers, content_length=-1, ssl_object=ssl_object)
        length = response.header_values("content-length")
        if length and length[0].isdigit():
            response.content_length = int(length[0])
        if on_head is not None:
            on_head(response)
        try:
            await _read_body(reader, response, request.method, body)
        finally:
            phases.add("transfer", time.perf_counter() - first_byte)
            if on_body_read is not None:
                on_body_read(response)
        return response
    finally:
        if connection.transport is not None:
            connection.transport.abort()


def serialize(request: HttpRequest) -> bytes:
    """The request's bytes. Header names and values were checked when the config was loaded."""
    lines = [f"{request.method} {request.target} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in request.headers)
    if request.body and not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in request.headers):
        lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


class _Reader:
    """Buffered reads over a _Connection; remembers when the first byte came."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._buffer = bytearray()
        self.first_data_at = 0.0

    async def _fill(self) -> bool:
        """Read more into the buffer; False at the end of the stream."""
        try:
            data = await self._connection.read()
        except (ConnectionError, ssl.SSLError) as err:
            raise RequestFailed(FailureReason.CONNECTION_ERROR, f"connection lost: {err}") from None
        if not data:
            return False
        if not self.first_data_at:
            self.first_data_at = time.perf_counter()
        self._buffer += data
        return True

    async def read_head(self) -> bytes:
        """Up to and including the empty line that ends a head."""
        searched = 0
        while True:
            match = _END_OF_HEAD.search(self._buffer, max(0, searched - 3))
            if match and match.end() <= HEAD_LIMIT:
                head = bytes(self._buffer[: match.end()])
                del self._buffer[: match.end()]
                return head
            if len(self._buffer) > HEAD_LIMIT:
                raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"response head larger than {HEAD_LIMIT} bytes")
            self._check_start()
            searched = len(self._buffer)
            if not await self._fill():
                if not self._buffer:
                    raise RequestFailed(FailureReason.CONNECTION_ERROR, "connection closed before any response")
                self._check_start()
                raise RequestFailed(FailureReason.CONNECTION_ERROR, "connection closed in the middle of the head")

    def _check_start(self) -> None:
        """Fail at once on a peer that speaks something else (an SSH or SMTP banner would wait forever)."""
        start = bytes(self._buffer[:5])
        if start and not b"HTTP/".startswith(start):
            shown = bytes(self._buffer[:40]).decode("latin-1").strip()
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"not an HTTP/1.x response: {shown!r}")

    async def read_line(self, limit: int, what: str) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > limit:
                raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"{what} longer than {limit} bytes")
            if not await self._fill():
                raise RequestFailed(FailureReason.CONNECTION_ERROR, f"connection closed in the middle of a {what}")

    async def read_some(self, limit: int) -> bytes:
        """At most `limit` bytes, as soon as some are there; b"" at the end of the stream."""
        if not self._buffer and not await self._fill():
            return b""
        if len(self._buffer) <= limit:
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        data = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return data

    @property
    def pending(self) -> int:
        return len(self._buffer)


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.split(b"\n")
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        shown = lines[0][:80].decode("latin-1").strip()
        raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"not an HTTP/1.x response: {shown!r}")
    major, minor, status = status_line.groups()
    if major != b"1":
        version = f"{major.decode()}.{minor.decode()}"
        raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"unsupported HTTP version {version}")
    headers: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: a continuation of the previous value
            if not headers:
                raise RequestFailed(FailureReason.PROTOCOL_ERROR, "header continuation without a header")
            previous_name, previous_value = headers[-1]
            headers[-1] = (previous_name, f"{previous_value} {line.strip().decode('latin-1')}")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            shown = line[:80].decode("latin-1")
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"not a valid header line: {shown!r}")
        headers.append((name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")))
    return int(status), f"{major.decode()}.{minor.decode()}", headers


async def _read_head(reader: _Reader) -> tuple[int, str, list[tuple[str, str]]]:
    """The final response's head; interim 1xx responses (100 Continue, 103 Early Hints) are skipped."""
    while True:
        status, version, headers = _parse_head(await reader.read_head())
        if status == 101:
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, "the server switched protocols (101) unasked")
        if status >= 200:
            return status, version, headers
        if status < 100:
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"status code {status} is not valid")


async def _connect_tunnel(connection: _Connection, authority: str, headers: tuple[tuple[str, str], ...]) -> None:
    """CONNECT host:port through an HTTP proxy; afterwards the connection is a tunnel to the origin."""
    assert connection.transport is not None
    connection.transport.write(serialize(HttpRequest("CONNECT", authority, [("Host", authority), *headers])))
    reader = _Reader(connection)
    status, _, _ = await _read_head(reader)
    if not 200 <= status < 300:
        raise RequestFailed(FailureReason.CONNECTION_ERROR, f"proxy refused CONNECT {authority}: status {status}")
    if reader.pending:
        raise RequestFailed(FailureReason.PROTOCOL_ERROR, "proxy sent data after accepting CONNECT")


class _BodySink:
    """Counts (and keeps, when asked) the body after decoding; enforces body_size_limit."""

    def __init__(self, options: BodyOptions) -> None:
        self._decoder = _Decoder(options.compression) if options.compression in ("gzip", "deflate") else None
        self._limit = options.size_limit if options.size_limit > 0 else 1 << 62
        self._keep = options.keep
        self.parts: list[bytes] = []
        self.total = 0

    def feed(self, data: bytes) -> None:
        while True:
            piece = self._decoder.decode(data, self._limit - self.total + 1) if self._decoder else data
            self.total += len(piece)
            if self.total > self._limit:
                problem = f"body is larger than body_size_limit ({self._limit} bytes)"
                raise RequestFailed(FailureReason.BODY_TOO_LARGE, problem)
            if self._keep:
                self.parts.append(piece)
            if self._decoder is None or not self._decoder.has_more:
                return
            data = b""

    def finish(self) -> None:
        if self._decoder is not None:
            self._decoder.finish()

    @property
    def counted(self) -> int:
        return min(self.total, self._limit)


async def _read_body(reader: _Reader, response: HttpResponse, method: str, options: BodyOptions) -> None:
    """RFC 9112 section 6.3: which framing the body has, then read it whole."""
    sink = _BodySink(options)
    try:
        await _read_framed(reader, response, method, sink)
        sink.finish()
    finally:  # also a body cut short counts what was read (up to the limit), as blackbox does
        response.body_length = sink.counted
    if options.keep:
        response.body = b"".join(sink.parts)


async def _read_framed(reader: _Reader, response: HttpResponse, method: str, sink: _BodySink) -> None:
    codings = [c.strip().lower() for v in response.header_values("transfer-encoding") for c in v.split(",")]
    if method == "HEAD" or response.status in (204, 304):
        return
    if codings and codings[-1] == "chunked":
        await _read_chunked(reader, sink)
    elif codings:
        await _read_until_close(reader, sink)
    elif lengths := response.header_values("content-length"):
        values = {value.strip() for value in ",".join(lengths).split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"invalid Content-Length {', '.join(lengths)!r}")
        await _read_exactly(reader, int(values.pop()), sink)
    else:
        await _read_until_close(reader, sink)


async def _read_exactly(reader: _Reader, length: int, sink: _BodySink) -> None:
    remaining = length
    while remaining:
        data = await reader.read_some(remaining)
        if not data:
            problem = f"connection closed after {length - remaining} of {length} body bytes"
            raise RequestFailed(FailureReason.CONNECTION_ERROR, problem)
        remaining -= len(data)
        sink.feed(data)


async def _read_until_close(reader: _Reader, sink: _BodySink) -> None:
    while data := await reader.read_some(READ_CHUNK_LIMIT):
        sink.feed(data)


async def _read_chunked(reader: _Reader, sink: _BodySink) -> None:
    while True:
        line = await reader.read_line(LINE_LIMIT, "chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, f"invalid chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        await _read_exactly(reader, size, sink)
        if (await reader.read_line(LINE_LIMIT, "chunk end")).strip():
            raise RequestFailed(FailureReason.PROTOCOL_ERROR, "chunk data longer than its size")
    while (await reader.read_line(HEAD_LIMIT, "trailer line")).strip():  # trailers, ignored
        pass
