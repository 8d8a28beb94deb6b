"""HTTP JSON sources against a real HTTP server on loopback (a payments provider's stats API)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.kpi_harness import kpi_harness
from tests.probe_servers import Certificates, make_certificates, server_ssl_context

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

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.server.requests.append({"path": self.path, "body": body})  # type: ignore[attr-defined]
        answer = {"report": {"window": body["window"], "rows": [{"day": d, "orders": 10 * d} for d in (1, 2)]}}
        self._send(200, json.dumps(answer).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(context: ssl.SSLContext | None = None) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StatsApi)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.requests = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api() -> Iterator[ThreadingHTTPServer]:
    yield from serve()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def mtls_api(certificates: Certificates) -> Iterator[ThreadingHTTPServer]:
    """HTTPS with a certificate from a private CA, requiring a client certificate from the same CA."""
    yield from serve(server_ssl_context(certificates.ca_signed, client_ca=certificates.ca_file))


def client_tls(certificates: Certificates) -> dict[str, str]:
    """tls_config trusting the private CA, with the client certificate the mTLS API requires."""
    return {
        "ca_file": str(certificates.ca_file),
        "cert_file": str(certificates.client.cert_file),
        "key_file": str(certificates.client.key_file),
    }


def attempts_query(source: str) -> dict[str, Any]:
    """A query named after its source, exposing pay_<source>_attempts{method}."""
    return payments_query(
        name=source,
        source=source,
        metrics=[{"name": f"pay_{source}_attempts", "value": "attempts", "labels": ["method"]}],
    )


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
    from tests.helpers import free_port  # noqa: PLC0415 - a port nobody listens on

    sources = {"pay": {"url": f"http://127.0.0.1:{free_port()}", "bearer_token": TOKEN}}
    with kpi_harness({"sources": sources, "queries": [payments_query()]}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pulse_kpi_source_up{source="pay"}'] == 0
    assert samples['pulse_kpi_queries_total{query="payments",status="error"}'] == 1
    assert "pay_attempts_total" not in "".join(samples)


def test_post_with_a_json_body(api: ThreadingHTTPServer) -> None:
    report = {
        "name": "report",
        "source": "pay",
        "interval": "1m",
        "request": {"path": "/reports", "body": {"window": "7d"}},
        "rows": "report.rows",
        "metrics": [{"name": "pay_orders_by_day", "value": "orders", "labels": ["day"]}],
    }
    sources = {"pay": {"url": base_url(api), "method": "POST", "bearer_token": TOKEN}}
    with kpi_harness({"sources": sources, "queries": [report]}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pay_orders_by_day{day="2"}'] == 20
    assert api.requests == [{"path": "/reports", "body": {"window": "7d"}}]  # type: ignore[attr-defined]


def test_https_with_a_private_ca_and_a_client_certificate(
    mtls_api: ThreadingHTTPServer, certificates: Certificates
) -> None:
    url = f"https://127.0.0.1:{mtls_api.server_address[1]}"
    tls = client_tls(certificates)
    sources = {
        "trusted": {"url": url, "bearer_token": TOKEN, "tls_config": tls},
        "untrusted": {"url": url, "bearer_token": TOKEN},  # the system CAs do not know the private CA
    }
    queries = [attempts_query(name) for name in sources]
    with kpi_harness({"sources": sources, "queries": queries}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pay_trusted_attempts{method="card"}'] == 120
    assert samples['pulse_kpi_source_up{source="trusted"}'] == 1
    assert samples['pulse_kpi_source_up{source="untrusted"}'] == 0


def test_tls_server_name_is_the_name_checked_in_the_certificate(
    mtls_api: ThreadingHTTPServer, certificates: Certificates
) -> None:
    """tls_config is the probes' (prometheus/common's): server_name is sent in SNI and verified."""
    url = f"https://127.0.0.1:{mtls_api.server_address[1]}"
    tls = client_tls(certificates)
    sources = {
        "named": {"url": url, "bearer_token": TOKEN, "tls_config": {**tls, "server_name": "localhost"}},
        "misnamed": {"url": url, "bearer_token": TOKEN, "tls_config": {**tls, "server_name": "other.example"}},
    }
    queries = [attempts_query(name) for name in sources]
    with kpi_harness({"sources": sources, "queries": queries}) as kpis:
        kpis.run()
        samples = kpis.samples()
    assert samples['pay_named_attempts{method="card"}'] == 120
    assert samples['pulse_kpi_source_up{source="named"}'] == 1
    assert samples['pulse_kpi_source_up{source="misnamed"}'] == 0
