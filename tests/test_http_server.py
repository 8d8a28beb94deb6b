"""The HTTP server under slow work and misbehaving clients (in-process, real sockets on loopback)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.app import Exporter, load_files
from exporter.collectors.base import BlockingCollector, Collector
from exporter.web.routes import Routes
from exporter.web.server import HttpServer


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
