"""HTTP JSON sources against a real HTTP server on loopback (a payments provider's stats API)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.kpi_harness import kpi_harness

TOKEN = "pay-t0ken"

STATS = {
    "provider": "acme",
    "health": "degraded",
    "methods": [
        {"method": "card", "attempts": 120, "failures": {"count": 7}, "currency": "EUR", "ok": True},
        {"method": "paypal", "attempts": 30, "failures": {"count": 1}, "currency": "EUR", "ok": False},
        {"method": "sepa", "attempts": "12", "failures": {"count": None}, "currency": "EUR", "ok": True},
    ],
}


class StatsApi(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.requests.append(  # type: ignore[attr-defined]
            {"path": url.path, "params": parse_qs(url.query), "authorization": self.headers.get("Authorization")}
        )
        if url.path == "/slow":
            time.sleep(2)
        if url.path == "/down":
            return self._send(503, b"maintenance")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, b'{"error": "unauthorized"}')
        if url.path == "/notjson":
            return self._send(200, b"<html>hello</html>")
        return self._send(200, json.dumps(STATS).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StatsApi)
    server.requests = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def base_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def payments_query(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "payments",
        "source": "pay",
        "interval": "1m",
        "request": {"path": "/v1/stats", "params": {"window": "1h"}},
        "rows": "methods",
        "metrics": [
            {"name": "pay_attempts", "type": "counter", "value": "attempts", "labels": ["method", "currency"]},
            {"name": "pay_failures", "type": "counter", "value": "failures.count", "labels": {"method": "method"}},
            {"name": "pay_method_ok", "value": "ok", "labels": ["method"]},
        ],
        **overrides,
    }


def test_rows_values_and_labels_by_jmespath_with_a_bearer_token_from_a_file(
    api: ThreadingHTTPServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    source = {"url": base_url(api), "bearer_token_file": str(token_file), "params": {"account": "main"}}
    with kpi_harness({"sources": {"pay": source}, "queries": [payments_query()]}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pay_attempts_total{method="card",currency="EUR"}'] == 120
    assert samples['pay_attempts_total{method="sepa",currency="EUR"}'] == 12  # a numeric string
    assert samples['pay_failures_total{method="paypal"}'] == 1
    assert 'pay_failures_total{method="sepa"}' not in samples  # null: no value
    assert samples['pay_method_ok{method="paypal"}'] == 0
    assert samples['pulse_kpi_source_up{source="pay"}'] == 1
    assert samples['pulse_kpi_query_success{query="payments"}'] == 1
    request = api.requests[0]  # type: ignore[attr-defined]
    assert request["path"] == "/v1/stats"
    assert request["params"] == {"account": ["main"], "window": ["1h"]}
    assert request["authorization"] == f"Bearer {TOKEN}"


def test_a_single_object_is_one_row_and_value_map_turns_strings_into_numbers(
    api: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = {
        "name": "health",
        "source": "pay",
        "interval": "1m",
        "metrics": [
            {
                "name": "pay_provider_health",
                "value": "health",
                "labels": {"provider": "provider"},
                "value_map": {"ok": 1, "degraded": 0.5, "down": 0},
            },
            {"name": "pay_methods", "value": "length(methods)"},
        ],
    }
    source = {"url": base_url(api), "headers": {"Authorization": f"Bearer {TOKEN}"}}
    with kpi_harness({"sources": {"pay": source}, "queries": [health]}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pay_provider_health{provider="acme"}'] == 0.5
    assert samples["pay_methods"] == 3


def test_failures_are_classified(api: ThreadingHTTPServer) -> None:
    url = base_url(api)
    paths = {"down": "/down", "unauthorized": "/v1/stats", "not_json": "/notjson", "slow": "/slow"}
    queries = [
        payments_query(name=name, request={"path": path}, metrics=[{"name": f"pay_{name}", "value": "attempts"}])
        for name, path in paths.items()
    ]
    queries[-1]["timeout"] = "300ms"
    sources = {"pay": {"url": url}}  # no token: the stats endpoint answers 401
    with kpi_harness({"sources": sources, "queries": queries}) as kpis:
        kpis.run("down")
        assert kpis.value('pulse_kpi_source_up{source="pay"}') == 0  # 5xx: the service is down
        kpis.run("unauthorized", "not_json", "slow")
        samples = kpis.samples()
    assert samples['pulse_kpi_queries_total{query="down",status="error"}'] == 1
    assert samples['pulse_kpi_queries_total{query="unauthorized",status="error"}'] == 1
    assert samples['pulse_kpi_queries_total{query="not_json",status="error"}'] == 1
    assert samples['pulse_kpi_queries_total{query="slow",status="timeout"}'] == 1
    assert samples['pulse_kpi_source_up{source="pay"}'] == 1  # it answered the 401


def test_an_unreachable_api_is_a_down_source(api: ThreadingHTTPServer) -> None:
    from tests.conftest import free_port  # noqa: PLC0415 - a port nobody listens on

    sources = {"pay": {"url": f"http://127.0.0.1:{free_port()}", "bearer_token": TOKEN}}
    with kpi_harness({"sources": sources, "queries": [payments_query()]}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pulse_kpi_source_up{source="pay"}'] == 0
    assert samples['pulse_kpi_queries_total{query="payments",status="error"}'] == 1
    assert "pay_attempts_total" not in "".join(samples)
