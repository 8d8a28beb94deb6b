"""Real servers on loopback for the probe tests: HTTP(S) with scripted routes, a silent listener, a proxy;
and `run_prober`, the one way the prober tests run a prober.

Everything runs on an asyncio loop in a background thread, so the prober under test (on the test's own
loop) talks to them over real sockets exactly as it would to a remote host. Certificates are generated
here with `cryptography`: a CA, a CA-signed leaf, a self-signed leaf and an expired CA-signed leaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.config.types import StrictModel
from exporter.probes.base import FailureReason, Prober, ProbeSink
from tests.helpers import samples_of, wait_until

T = TypeVar("T")
ConfigT = TypeVar("ConfigT", bound=StrictModel)

# --------------------------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class KeyPair:
    cert_file: Path
    key_file: Path
    certificate: x509.Certificate


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    ca_signed: KeyPair  # valid for localhost and 127.0.0.1, signed by the CA
    self_signed: KeyPair
    expired: KeyPair  # signed by the CA, expired yesterday
    client: KeyPair  # a client certificate signed by the CA (mutual TLS)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pulse tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    directory: Path,
    stem: str,
    common_name: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    is_ca: bool = False,
) -> tuple[KeyPair, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (_name(common_name), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(common_name),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    certificate = builder.sign(signing_key, hashes.SHA256())
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return KeyPair(cert_file, key_file, certificate), key


def make_certificates(directory: Path) -> Certificates:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    ca, ca_key = _issue(
        directory, "ca", "Pulse test CA", issuer=None, not_before=now - day, not_after=now + 3650 * day, is_ca=True
    )
    issuer = (ca.certificate, ca_key)
    ca_signed, _ = _issue(
        directory, "server", "server.test", issuer=issuer, not_before=now - day, not_after=now + 90 * day
    )
    self_signed, _ = _issue(directory, "self", "self.test", issuer=None, not_before=now - day, not_after=now + 30 * day)
    expired, _ = _issue(
        directory, "expired", "expired.test", issuer=issuer, not_before=now - 60 * day, not_after=now - day
    )
    client, _ = _issue(
        directory, "client", "client.test", issuer=issuer, not_before=now - day, not_after=now + 90 * day
    )
    return Certificates(ca.cert_file, ca_signed, self_signed, expired, client)


def server_ssl_context(pair: KeyPair, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pair.cert_file, pair.key_file)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# ------------------------------------------------------------------------------------------------- the loop


class LoopThread:
    """An asyncio loop in a daemon thread, hosting the servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="probe-servers", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@contextlib.contextmanager
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


def refused_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------- HTTP server


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names
    body: bytes


Responder = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, target, version, headers, body)


def response_bytes(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, version: str = "HTTP/1.1"
) -> bytes:
    all_headers = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    head = f"{version} {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def fixed(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, version: str = "HTTP/1.1"
) -> Responder:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response_bytes(status, body, headers, version))

    return respond


def redirect(location: str, status: int = 302) -> Responder:
    return fixed(status, b"", {"Location": location})


def compressed(body: bytes, encoding: str) -> Responder:
    data = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    return fixed(200, data, {"Content-Encoding": encoding})


def chunked(chunks: list[bytes]) -> Responder:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for chunk in chunks:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        writer.write(b"0\r\n\r\n")

    return respond


def trickle(body: bytes, interval: float) -> Responder:
    """Headers at once, then the body one byte every `interval` seconds."""

    async def respond(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for i in range(len(body)):
            await writer.drain()
            await asyncio.sleep(interval)
            writer.write(body[i : i + 1])

    return respond


def never_answer() -> Responder:
    async def respond(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    return respond


def raw(data: bytes) -> Responder:
    """Bytes that need not be HTTP at all."""

    async def respond(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(data)

    return respond


@dataclass
class HttpServer:
    """A scripted HTTP/1.1 server (optionally TLS): routes map a path to a responder; unknown paths 404."""

    port: int = 0
    tls: ssl.SSLContext | None = None
    routes: dict[str, Responder] = field(default_factory=dict)
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    greeting: bytes = b""  # written as soon as a client connects, before reading anything
    _server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    async def start(self) -> HttpServer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.greeting:
                writer.write(self.greeting)
            request = await _read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            target = request.target
            if "://" in target:  # absolute-form, as a proxy forwards it
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            path = target.split("?", 1)[0]
            responder = self.routes.get(path, fixed(404, b"not found"))
            await responder(request, writer)
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def start_http(
    thread: LoopThread,
    routes: dict[str, Responder],
    tls: ssl.SSLContext | None = None,
    greeting: bytes = b"",
    host: str = "127.0.0.1",
) -> HttpServer:
    return thread.run(HttpServer(tls=tls, routes=routes, greeting=greeting, host=host).start())


# ---------------------------------------------------------------------------------------- silent listener


@dataclass
class SilentListener:
    """Accepts connections and never sends a byte; counts the connections it still holds open.

    The counts change on the servers' thread, after the kernel has already completed the client's
    connect(): a test reads them through `wait_for` (a condition with a deadline), never directly
    after its probe returns."""

    port: int = 0
    accepted: int = 0
    open_connections: int = 0
    peer_ports: list[int] = field(default_factory=list)  # client ports, in the order accepted
    _server: asyncio.Server | None = None

    async def start(self) -> SilentListener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def wait_for(self, condition: Callable[[SilentListener], bool], timeout: float = 10.0) -> None:
        """Block until `condition(self)` holds; AssertionError (with the counts) at the deadline."""
        wait_until(
            lambda: condition(self),
            timeout,
            lambda: (
                f"listener on port {self.port} (accepted={self.accepted}, open_connections={self.open_connections})"
            ),
        )

    def wait_accepted(self, at_least: int, timeout: float = 10.0) -> int:
        """The number of accepted connections, once it has reached `at_least`."""
        self.wait_for(lambda listener: listener.accepted >= at_least, timeout)
        return self.accepted

    def accepted_before_now(self) -> int:
        """Connections accepted before one opened by this call: asyncio accepts in arrival order, so once
        this one is counted, every connection any client made earlier is counted too. The way to show
        that no connection was made, which waiting for a count to stay 0 cannot."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as own:
            own_port = own.getsockname()[1]
            self.wait_for(lambda listener: own_port in listener.peer_ports)
            return self.peer_ports.index(own_port)

    def _update(self, accepted: int, open_connections: int, peer_port: int | None = None) -> None:
        # Only the servers' thread writes: a test polling from its own thread reads whole values.
        if peer_port is not None:
            self.peer_ports.append(peer_port)
        self.accepted += accepted
        self.open_connections += open_connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._update(1, 1, writer.get_extra_info("peername")[1])
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            self._update(0, -1)
            writer.close()


# -------------------------------------------------------------------------------------------------- proxy


@dataclass
class HttpProxy:
    """A forward proxy: absolute-form requests are relayed, CONNECT opens a tunnel. Records request lines."""

    port: int = 0
    seen: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)  # the whole request heads the proxy received
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HttpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode()
            self.seen.append(request_line)
            self.heads.append(head.decode("latin-1"))
            method, target, _ = request_line.split(" ", 2)
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                authority = target.split("://", 1)[1].split("/", 1)[0]
                host, port = authority.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                up_writer.write(head)  # origin servers accept absolute-form (RFC 9112 3.2.2)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


# ---------------------------------------------------------------------------------------------- run a prober


class ProbeResult(NamedTuple):
    """What one probe gave: success, its samples (as samples_of writes them) and the sink (failure, trace)."""

    success: bool
    samples: dict[str, float]
    sink: ProbeSink

    @property
    def reason(self) -> FailureReason | None:
        return self.sink.failure[0] if self.sink.failure else None


async def run_prober_async(
    prober: Prober[ConfigT],
    target: str,
    config: ConfigT | Mapping[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    listed: Callable[[str], bool] | None = None,
) -> ProbeResult:
    """Probe `target` as the runner does, under a deadline, on the running loop. `config` is the prober's
    options (a dict is validated). A probe cut at the deadline is no success and, as the runner records
    the `timeout` itself, has no failure recorded; what the prober measured until then is in the sink."""
    options = config if isinstance(config, prober.config_model) else prober.config_model.model_validate(config or {})
    sink = ProbeSink(listed)
    try:
        async with asyncio.timeout(timeout):
            success = await prober.probe(target, options, sink)
    except TimeoutError:
        sink.log("cancelled at the deadline")
        success = False
    return ProbeResult(success, samples_of(sink.families()), sink)


def run_prober(
    prober: Prober[ConfigT],
    target: str,
    config: ConfigT | Mapping[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    listed: Callable[[str], bool] | None = None,
) -> ProbeResult:
    """run_prober_async on a loop of its own."""
    return asyncio.run(run_prober_async(prober, target, config, timeout=timeout, listed=listed))
