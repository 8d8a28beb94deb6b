"""The HTTP server under slow work and misbehaving clients (in-process, real sockets on loopback), and
its request framing and connection limit on a real `pulse-exporter` process (raw sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.app import Exporter, load_files
from exporter.collectors.base import BlockingCollector, Collector
from exporter.web.routes import Routes
from exporter.web.server import HttpServer
from tests.helpers import RunningExporter, StartExporter, parse_samples


class Slow(BlockingCollector):
    def __init__(self, seconds: float) -> None:
        super().__init__("slow")
        self.seconds = seconds
        self.release = threading.Event()

    def collect_blocking(self) -> Sequence[Metric]:
        self.release.wait(self.seconds)
        return [GaugeMetricFamily("test_slow", "Slow but sure.", value=1)]


@asynccontextmanager
async def serving(collectors: list[Collector], max_requests: int = 40) -> AsyncIterator[tuple[str, HttpServer]]:
    exporter = Exporter(None, None, load_files(None, None))
    exporter.collectors = collectors
    exporter.ready = True
    server = HttpServer(Routes(exporter, max_requests))
    [(host, port)] = await server.listen("127.0.0.1", 0)
    try:
        yield f"http://{host}:{port}", server
    finally:
        await server.close()


def test_health_answers_while_a_scrape_is_busy() -> None:
    slow = Slow(5)

    async def scenario() -> float:
        async with serving([slow]) as (url, _), httpx.AsyncClient() as client:
            scrape = asyncio.ensure_future(client.get(url + "/metrics", timeout=10))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            health = await client.get(url + "/-/healthy")
            took = time.monotonic() - started
            assert health.status_code == 200
            slow.release.set()
            assert (await scrape).status_code == 200
            return took

    assert asyncio.run(scenario()) < 2


def test_the_scrape_timeout_header_bounds_a_slow_collector() -> None:
    slow = Slow(30)

    async def scenario() -> tuple[httpx.Response, float]:
        async with serving([slow]) as (url, _), httpx.AsyncClient() as client:
            started = time.monotonic()
            response = await client.get(
                url + "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}, timeout=20
            )
            return response, time.monotonic() - started

    try:
        response, took = asyncio.run(scenario())
    finally:
        slow.release.set()
    assert response.status_code == 200
    assert 'pulse_exporter_collector_success{collector="slow"} 0.0' in response.text
    assert took < 5, "timeout minus the 0.5 s offset, not the collector's 30 s"


def test_a_scrape_timeout_header_that_is_not_a_number_is_400() -> None:
    async def scenario() -> httpx.Response:
        async with serving([]) as (url, _), httpx.AsyncClient() as client:
            return await client.get(url + "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"})

    response = asyncio.run(scenario())
    assert response.status_code == 400
    assert response.text == "X-Prometheus-Scrape-Timeout-Seconds is not a number: 'soon'\n"


def test_concurrent_scrapes_beyond_the_limit_get_503() -> None:
    slow = Slow(5)

    async def scenario() -> tuple[int, int]:
        async with serving([slow], max_requests=1) as (url, _), httpx.AsyncClient() as client:
            first = asyncio.ensure_future(client.get(url + "/metrics", timeout=10))
            await asyncio.sleep(0.2)
            second = await client.get(url + "/metrics")
            slow.release.set()
            return (await first).status_code, second.status_code

    assert asyncio.run(scenario()) == (200, 503)


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async def scenario() -> None:
        async with serving([]) as (url, _):
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            for _ in range(3):
                writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
                status = await reader.readline()
                assert status.startswith(b"HTTP/1.1 200")
                while await reader.readline() != b"\r\n":
                    pass  # skip the headers
                assert await reader.readexactly(8) == b"Healthy\n"
            writer.close()

    asyncio.run(scenario())


def test_a_client_that_never_finishes_its_headers_is_dropped() -> None:
    async def scenario() -> bytes:
        async with serving([]) as (url, server):
            server.header_timeout = 0.5
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and then nothing
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 5)

    assert asyncio.run(scenario()) == b"", "the server closed the connection without answering"


def test_a_malformed_request_gets_400() -> None:
    async def scenario() -> bytes:
        async with serving([]) as (url, _):
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"THIS IS NOT HTTP\r\n\r\n")
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 5)

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 400")


# --- request framing (RFC 9112 section 6.3), on the real process ------------------------------------------------

SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def parse_responses(data: bytes) -> list[tuple[int, bytes]]:
    """Every (status, body) in `data`, whole responses back to back (Pulse always sends Content-Length)."""
    responses = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"incomplete response: {data!r}"
        status_line, *header_lines = head.split(b"\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(b":") for h in header_lines)}
        length = int(headers[b"content-length"])
        responses.append((int(status_line.split()[1]), rest[:length]))
        data = rest[length:]
    return responses


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes; a socket timeout (the server kept the connection) fails the test."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def connect(running: RunningExporter) -> socket.socket:
    return socket.create_connection(("127.0.0.1", running.port), timeout=10)


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection and read its response (the connection stays open)."""
    sock.sendall(request)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


@pytest.mark.integration
@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", id="content-length-then-chunked"),
        pytest.param(b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n", id="chunked-then-content-length"),
        pytest.param(b"Content-Length: 0\r\nContent-Length: 5\r\n", id="conflicting-content-lengths"),
        pytest.param(b"Transfer-Encoding: gzip\r\n", id="coding-other-than-chunked"),
        pytest.param(b"Transfer-Encoding: gzip, chunked\r\n", id="chunked-after-another-coding"),
        pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", id="chunked-twice"),
    ],
)
def test_ambiguous_body_framing_gets_400_and_the_connection_closed_before_a_smuggled_request(
    start_exporter: StartExporter, head: bytes
) -> None:
    running = start_exporter()
    with connect(running) as sock:
        sock.sendall(b"POST /-/healthy HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n0\r\n\r\n" + SMUGGLED)
        received = read_until_closed(sock)

    [(status, body)] = parse_responses(received)  # one answer, none for the smuggled GET /metrics
    assert status == 400, body
    assert b"pulse_exporter_build_info" not in received


@pytest.mark.integration
def test_transfer_encoding_in_an_http_1_0_request_gets_400(start_exporter: StartExporter) -> None:
    running = start_exporter()
    with connect(running) as sock:
        sock.sendall(b"POST /-/healthy HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
        received = read_until_closed(sock)

    assert [status for status, _ in parse_responses(received)] == [400]


@pytest.mark.integration
def test_a_chunked_request_body_is_still_served_on_a_kept_alive_connection(start_exporter: StartExporter) -> None:
    running = start_exporter()
    with connect(running) as sock:
        chunked = b"POST /-/healthy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        assert exchange(sock, chunked)[0] == 405  # read-only endpoint: the body was framed and read
        assert exchange(sock, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n") == (200, b"Healthy\n")


# --- connection limit, on the real process --------------------------------------------------------------------

HEALTHY = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"


def busy_connection(running: RunningExporter) -> socket.socket:
    """A connection in the middle of a request: the server has read its headers (it answered
    100 Continue) and waits for the body."""
    sock = connect(running)
    sock.sendall(b"POST /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        assert chunk, "the server closed a connection below the limit"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100 ")
    return sock


def closed_unanswered(sock: socket.socket) -> bool:
    """Whether the server closed the connection without answering (EOF or reset, no bytes)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


@pytest.mark.integration
def test_above_the_connection_limit_the_longest_idle_connection_makes_room_for_a_new_one(
    start_exporter: StartExporter,
) -> None:
    running = start_exporter(None, "--web.max-connections=2")
    with connect(running) as oldest, connect(running) as newer:
        assert exchange(oldest, HEALTHY)[0] == 200  # both now idle between requests (keep-alive)
        assert exchange(newer, HEALTHY)[0] == 200

        with connect(running) as third:
            assert exchange(third, HEALTHY) == (200, b"Healthy\n"), "a new scraper gets in"

        assert closed_unanswered(oldest), "the longest-idle connection was closed to make room"
        status, body = exchange(newer, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    samples = parse_samples(body.decode())
    assert status == 200
    assert samples["pulse_exporter_http_connections_limit"] == 2
    assert samples["pulse_exporter_http_idle_connections_closed_total"] >= 1
    assert samples["pulse_exporter_http_connections_rejected_total"] == 0


@pytest.mark.integration
def test_above_the_connection_limit_with_every_connection_busy_a_new_one_is_closed_unanswered(
    start_exporter: StartExporter,
) -> None:
    running = start_exporter(None, "--web.max-connections=2")
    with busy_connection(running) as first, busy_connection(running) as second:
        with connect(running) as rejected:
            with contextlib.suppress(ConnectionError):
                rejected.sendall(HEALTHY)
            assert closed_unanswered(rejected)

        for sock in (first, second):  # the busy connections finish their requests undisturbed
            sock.sendall(b"body")
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert response.status == 405
            response.read()
        status, body = exchange(first, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    samples = parse_samples(body.decode())
    assert status == 200
    assert samples["pulse_exporter_http_connections_rejected_total"] == 1
    assert samples["pulse_exporter_http_connections"] == 2


@pytest.mark.integration
@pytest.mark.parametrize("flag", ["--web.max-connections", "--web.max-requests"])
@pytest.mark.parametrize("value", ["-1", "many"])
def test_limit_flags_must_be_whole_numbers(start_exporter: StartExporter, flag: str, value: str) -> None:
    running = start_exporter(None, f"{flag}={value}", wait=False)

    assert running.process.wait(30) == 2
    assert flag in running.logs()
    assert "Traceback" not in running.logs()


@pytest.mark.integration
def test_a_limit_from_the_environment_that_is_not_a_number_is_a_clear_error(start_exporter: StartExporter) -> None:
    running = start_exporter(None, wait=False, env={"PULSE_WEB_MAX_REQUESTS": "lots"})

    assert running.process.wait(30) == 2
    assert "--web.max-requests" in running.logs()
    assert "Traceback" not in running.logs()
