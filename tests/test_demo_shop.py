"""The demo shop's extra faces, which the demo's TLS and DNS probes (and the probes board's certificate and
DNS panels) rely on: HTTPS on the same port as HTTP, with a certificate for localhost that has 90 days
left, and DNS answers for demo.test over UDP on the same port number."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import httpx
import pytest
from cryptography import x509

from exporter.demo.shop import CERTIFICATE_DAYS, ShopServer, make_server


@pytest.fixture
def shop() -> Iterator[ShopServer]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_http_and_https_on_one_port(shop: ShopServer) -> None:
    port = shop.server_address[1]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).text == "ok\n"
    assert httpx.get(f"https://localhost:{port}/healthz", verify=False, timeout=10).text == "ok\n"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    certificate = x509.load_der_x509_certificate(der)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    days_left = (certificate.not_valid_after_utc.timestamp() - time.time()) / 86400
    assert CERTIFICATE_DAYS - 1 < days_left <= CERTIFICATE_DAYS


@pytest.mark.parametrize(
    ("name", "rcode", "answers"),
    [
        ("shop.demo.test", dns.rcode.NOERROR, ["127.0.0.1"]),
        ("missing.demo.test", dns.rcode.NXDOMAIN, []),
        ("example.com", dns.rcode.REFUSED, []),
    ],
)
def test_dns_for_demo_test_on_the_same_port_number(shop: ShopServer, name: str, rcode: int, answers: list[str]) -> None:
    query = dns.message.make_query(name, "A")
    response = dns.query.udp(query, "127.0.0.1", port=shop.server_address[1], timeout=10)
    assert response.rcode() == rcode
    assert [item.to_text() for rrset in response.answer for item in rrset] == answers
