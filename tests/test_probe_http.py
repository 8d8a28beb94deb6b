"""The http prober against real servers on loopback: each blackbox option, each failure reason, each metric.

The prober is called directly through tests.probe_servers.run_prober, under a deadline as the runner calls it.
"""

from __future__ import annotations

import base64
import email.utils
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.http import PROBER as HTTP
from exporter.probes.http import HttpProbe
from tests.helpers import samples_of
from tests.probe_servers import (
    Certificates,
    HttpProxy,
    HttpServer,
    LoopThread,
    Responder,
    SilentListener,
    chunked,
    compressed,
    fixed,
    make_certificates,
    never_answer,
    raw,
    redirect,
    refused_port,
    run_prober,
    server_ssl_context,
    start_http,
    trickle,
)

BLACKBOX_HTTP_METRICS = {
    "probe_dns_lookup_time_seconds",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_http_duration_seconds",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
    "probe_http_redirects",
    "probe_http_ssl",
    "probe_http_status_code",
    "probe_http_version",
    "probe_failed_due_to_regex",
}
PHASES = ("resolve", "connect", "tls", "processing", "transfer")


@pytest.fixture(scope="module")
def servers() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def serve(servers: LoopThread, routes: dict[str, Responder], **kwargs: Any) -> HttpServer:
    return start_http(servers, routes, **kwargs)


def reason(sink: ProbeSink) -> FailureReason | None:
    return sink.failure[0] if sink.failure else None


def metric_names(sink: ProbeSink) -> set[str]:
    return {family.name for family in sink.families()}


# ------------------------------------------------------------------------------------------------ success


def test_an_ok_page_reports_every_blackbox_metric(servers: LoopThread) -> None:
    modified = email.utils.formatdate(1_700_000_000, usegmt=True)
    server = serve(servers, {"/": fixed(200, b"hello world", {"Last-Modified": modified})})
    ok, _, sink = run_prober(HTTP, server.url("/"))
    assert ok, sink.trace
    assert sink.failure is None
    samples = samples_of(sink.families())
    assert metric_names(sink) == BLACKBOX_HTTP_METRICS | {"probe_http_last_modified_timestamp_seconds"}
    assert samples["probe_http_status_code"] == 200
    assert samples["probe_http_content_length"] == 11
    assert samples["probe_http_uncompressed_body_length"] == 11
    assert samples["probe_http_version"] == 1.1
    assert samples["probe_http_ssl"] == 0
    assert samples["probe_http_redirects"] == 0
    assert samples["probe_failed_due_to_regex"] == 0
    assert samples["probe_ip_protocol"] == 4  # an IPv4 literal, accepted through the ip6 -> ip4 fallback
    assert samples["probe_http_last_modified_timestamp_seconds"] == 1_700_000_000
    assert all(samples[f'probe_http_duration_seconds{{phase="{p}"}}'] >= 0 for p in PHASES)
    assert samples['probe_http_duration_seconds{phase="tls"}'] == 0
    seen = server.requests[-1]
    assert (seen.method, seen.target) == ("GET", "/")
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["user-agent"].startswith("Pulse-Exporter/")


def test_a_target_without_scheme_is_http_and_the_query_is_sent(servers: LoopThread) -> None:
    server = serve(servers, {"/search": fixed(200, b"ok")})
    ok, _, _ = run_prober(HTTP, f"127.0.0.1:{server.port}/search?q=1&x=y")
    assert ok
    assert server.requests[-1].target == "/search?q=1&x=y"


def test_a_chunked_body_is_read_to_its_end(servers: LoopThread) -> None:
    server = serve(servers, {"/": chunked([b"abc", b"defgh", b"ij"])})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"fail_if_body_not_matches_regexp": ["abcdefghij"]})
    assert ok, sink.trace
    samples = samples_of(sink.families())
    assert samples["probe_http_content_length"] == -1  # unknown length, as Go reports it
    assert samples["probe_http_uncompressed_body_length"] == 10


def test_method_headers_and_body_are_sent_as_configured(servers: LoopThread) -> None:
    server = serve(servers, {"/api": fixed(201, b"")})
    options = {
        "method": "post",
        "headers": {"Content-Type": "application/json", "X-Probe": "pulse", "Host": "shop.example"},
        "body": '{"ping": true}',
        "valid_status_codes": [201],
    }
    ok, _, _ = run_prober(HTTP, server.url("/api"), options)
    assert ok
    seen = server.requests[-1]
    assert seen.method == "POST"
    assert seen.body == b'{"ping": true}'
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-probe"] == "pulse"
    assert seen.headers["host"] == "shop.example"


def test_the_body_may_come_from_a_file(servers: LoopThread, tmp_path: Path) -> None:
    server = serve(servers, {"/": fixed(200)})
    (tmp_path / "query.json").write_text('{"query": "{ health }"}')
    ok, _, _ = run_prober(HTTP, server.url("/"), {"method": "POST", "body_file": str(tmp_path / "query.json")})
    assert ok
    assert server.requests[-1].body == b'{"query": "{ health }"}'


def test_basic_auth_and_bearer_token_reach_the_server(servers: LoopThread, tmp_path: Path) -> None:
    server = serve(servers, {"/": fixed(200, b"ok")})
    run_prober(HTTP, server.url("/"), {"basic_auth": {"username": "probe", "password": "s3cret"}})
    expected = base64.b64encode(b"probe:s3cret").decode()
    assert server.requests[-1].headers["authorization"] == f"Basic {expected}"

    token_file = tmp_path / "token"
    token_file.write_text("tok-123\n")
    run_prober(HTTP, server.url("/"), {"bearer_token_file": str(token_file)})
    assert server.requests[-1].headers["authorization"] == "Bearer tok-123"

    credentials_file = tmp_path / "credentials"
    credentials_file.write_text("abc.def")
    run_prober(HTTP, server.url("/"), {"authorization": {"type": "Token", "credentials_file": str(credentials_file)}})
    assert server.requests[-1].headers["authorization"] == "Token abc.def"

    password_file = tmp_path / "password"
    password_file.write_text("from-file")
    run_prober(HTTP, server.url("/"), {"basic_auth": {"username": "u", "password_file": str(password_file)}})
    assert server.requests[-1].headers["authorization"] == "Basic " + base64.b64encode(b"u:from-file").decode()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_body_is_decoded_before_the_regex_and_counted_uncompressed(
    servers: LoopThread, encoding: str
) -> None:
    page = b"<html>" + b"shop is open " * 500 + b"</html>"
    server = serve(servers, {"/": compressed(page, encoding)})
    ok, _, sink = run_prober(
        HTTP, server.url("/"), {"compression": encoding, "fail_if_body_not_matches_regexp": ["shop is open"]}
    )
    assert ok, sink.trace
    samples = samples_of(sink.families())
    assert samples["probe_http_uncompressed_body_length"] == len(page)
    assert samples["probe_http_content_length"] < len(page)
    assert server.requests[-1].headers["accept-encoding"] == encoding


def test_a_body_that_does_not_decode_is_a_protocol_error(servers: LoopThread) -> None:
    server = serve(servers, {"/": fixed(200, b"plain text, not gzip")})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"compression": "gzip"})
    assert not ok
    assert reason(sink) is FailureReason.PROTOCOL_ERROR


# ----------------------------------------------------------------------------------------------- redirects


def test_redirects_are_followed_summed_and_keep_cookies(servers: LoopThread) -> None:
    routes: dict[str, Responder] = {}
    server = serve(servers, routes)
    routes["/a"] = fixed(302, b"", {"Location": "/b", "Set-Cookie": "session=abc; Path=/"})
    routes["/b"] = redirect(server.url("/ok"), 301)
    routes["/ok"] = fixed(200, b"landed")
    ok, _, sink = run_prober(HTTP, server.url("/a"))
    assert ok, sink.trace
    samples = samples_of(sink.families())
    assert samples["probe_http_redirects"] == 2
    assert samples["probe_http_status_code"] == 200
    assert [r.target for r in server.requests[-3:]] == ["/a", "/b", "/ok"]
    assert server.requests[-1].headers["cookie"] == "session=abc"


def test_a_303_after_post_becomes_a_get_and_a_307_repeats_the_post(servers: LoopThread) -> None:
    server = serve(servers, {"/form": redirect("/done", 303), "/keep": redirect("/done", 307), "/done": fixed(200)})
    run_prober(HTTP, server.url("/form"), {"method": "POST", "body": "x=1"})
    assert (server.requests[-1].method, server.requests[-1].body) == ("GET", b"")
    run_prober(HTTP, server.url("/keep"), {"method": "POST", "body": "x=1"})
    assert (server.requests[-1].method, server.requests[-1].body) == ("POST", b"x=1")


@pytest.mark.parametrize("option", [{"no_follow_redirects": True}, {"follow_redirects": False}])
def test_redirects_are_not_followed_when_disabled(servers: LoopThread, option: dict[str, bool]) -> None:
    server = serve(servers, {"/a": redirect("/b"), "/b": fixed(200)})
    ok, _, sink = run_prober(HTTP, server.url("/a"), option)
    assert not ok
    assert reason(sink) is FailureReason.HTTP_STATUS
    assert samples_of(sink.families())["probe_http_status_code"] == 302
    assert samples_of(sink.families())["probe_http_redirects"] == 1  # as blackbox 0.23 counts it
    assert [r.target for r in server.requests] == ["/a"]

    ok, _, sink = run_prober(HTTP, server.url("/a"), {**option, "valid_status_codes": [302]})
    assert ok


def test_a_redirect_loop_ends_at_the_limit_with_the_last_302(servers: LoopThread) -> None:
    server = serve(servers, {"/loop": redirect("/loop")})
    ok, _, sink = run_prober(HTTP, server.url("/loop"))
    assert not ok
    assert reason(sink) is FailureReason.REDIRECT_LIMIT
    samples = samples_of(sink.families())
    assert samples["probe_http_status_code"] == 302
    assert samples["probe_http_redirects"] == 11
    assert len(server.requests) == 11  # the first request and 10 redirects followed


# ---------------------------------------------------------------------------------------- checks that fail


def test_a_status_outside_2xx_fails_unless_listed(servers: LoopThread) -> None:
    server = serve(servers, {})
    ok, _, sink = run_prober(HTTP, server.url("/missing"))
    assert not ok
    assert reason(sink) is FailureReason.HTTP_STATUS
    assert samples_of(sink.families())["probe_http_status_code"] == 404
    ok, _, _ = run_prober(HTTP, server.url("/missing"), {"valid_status_codes": [404]})
    assert ok


def test_body_regexes(servers: LoopThread) -> None:
    server = serve(servers, {"/": fixed(200, b"<h1>Shop</h1> status: maintenance")})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"fail_if_body_matches_regexp": ["maint[a-z]+"]})
    assert not ok
    assert reason(sink) is FailureReason.BODY_REGEX
    assert samples_of(sink.families())["probe_failed_due_to_regex"] == 1

    ok, _, sink = run_prober(HTTP, server.url("/"), {"fail_if_body_not_matches_regexp": ["status: open"]})
    assert not ok
    assert reason(sink) is FailureReason.BODY_REGEX

    ok, _, sink = run_prober(HTTP, server.url("/"), {"fail_if_body_not_matches_regexp": ["<h1>Shop</h1>"]})
    assert ok
    assert samples_of(sink.families())["probe_failed_due_to_regex"] == 0


def test_header_regexes_and_allow_missing(servers: LoopThread) -> None:
    server = serve(servers, {"/": fixed(200, b"", {"Server": "nginx/1.22", "X-Cache": "HIT"})})
    ok, _, sink = run_prober(
        HTTP, server.url("/"), {"fail_if_header_matches": [{"header": "server", "regexp": "nginx/1\\.2"}]}
    )
    assert not ok
    assert reason(sink) is FailureReason.HEADER_REGEX
    assert samples_of(sink.families())["probe_failed_due_to_regex"] == 1

    ok, _, sink = run_prober(
        HTTP, server.url("/"), {"fail_if_header_not_matches": [{"header": "X-Cache", "regexp": "^HIT$"}]}
    )
    assert ok

    missing = {"header": "Strict-Transport-Security", "regexp": "max-age"}
    ok, _, sink = run_prober(HTTP, server.url("/"), {"fail_if_header_not_matches": [missing]})
    assert not ok
    assert reason(sink) is FailureReason.HEADER_REGEX
    assert sink.failure is not None
    assert "missing" in sink.failure[1]
    ok, _, _ = run_prober(HTTP, server.url("/"), {"fail_if_header_not_matches": [{**missing, "allow_missing": True}]})
    assert ok


def test_valid_http_versions(servers: LoopThread) -> None:
    server = serve(servers, {"/": fixed(200, b"old", version="HTTP/1.0")})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"valid_http_versions": ["HTTP/1.1", "HTTP/2.0"]})
    assert not ok
    assert reason(sink) is FailureReason.HTTP_VERSION
    assert samples_of(sink.families())["probe_http_version"] == 1.0
    ok, _, _ = run_prober(HTTP, server.url("/"), {"valid_http_versions": ["HTTP/1.0"]})
    assert ok


def test_a_body_over_the_size_limit_fails_and_without_a_limit_is_read_whole(servers: LoopThread) -> None:
    size = 8 * 1024 * 1024
    server = serve(servers, {"/big": fixed(200, b"x" * size)})
    ok, _, sink = run_prober(HTTP, server.url("/big"), {"body_size_limit": "1MB"})
    assert not ok
    assert reason(sink) is FailureReason.BODY_TOO_LARGE
    assert samples_of(sink.families())["probe_http_status_code"] == 200
    assert samples_of(sink.families())["probe_http_uncompressed_body_length"] == 1024 * 1024  # read up to the limit

    ok, _, sink = run_prober(HTTP, server.url("/big"))
    assert ok
    assert samples_of(sink.families())["probe_http_uncompressed_body_length"] == size


def test_something_else_than_http_is_a_protocol_error(servers: LoopThread) -> None:
    server = serve(servers, {"/": raw(b"SSH-2.0-OpenSSH_9.2\r\n")})
    ok, _, sink = run_prober(HTTP, server.url("/"))
    assert not ok
    assert reason(sink) is FailureReason.PROTOCOL_ERROR


def test_a_connection_closed_before_the_answer_is_a_connection_error(servers: LoopThread) -> None:
    server = serve(servers, {"/": raw(b""), "/half": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")})
    ok, _, sink = run_prober(HTTP, server.url("/"))
    assert not ok
    assert reason(sink) is FailureReason.CONNECTION_ERROR
    ok, _, sink = run_prober(HTTP, server.url("/half"))
    assert not ok
    assert reason(sink) is FailureReason.CONNECTION_ERROR


def test_a_refused_port(servers: LoopThread) -> None:
    ok, _, sink = run_prober(HTTP, f"http://127.0.0.1:{refused_port()}/")
    assert not ok
    assert reason(sink) is FailureReason.CONNECTION_REFUSED
    samples = samples_of(sink.families())
    assert metric_names(sink) == BLACKBOX_HTTP_METRICS
    assert samples["probe_http_status_code"] == 0


def test_name_resolution_follows_the_ip_protocol_options(servers: LoopThread) -> None:
    server = serve(servers, {"/": fixed(200)})
    ok, _, sink = run_prober(HTTP, f"http://127.0.0.1:{server.port}/", {"ip_protocol_fallback": False})
    assert not ok  # an IPv4 address, but only ip6 allowed
    assert reason(sink) is FailureReason.DNS_ERROR
    assert samples_of(sink.families())["probe_ip_protocol"] == 0

    ok, _, sink = run_prober(HTTP, f"http://localhost:{server.port}/", {"preferred_ip_protocol": "ip4"})
    assert ok, sink.trace
    assert samples_of(sink.families())["probe_ip_protocol"] == 4
    assert server.requests[-1].headers["host"] == f"localhost:{server.port}"


# ------------------------------------------------------------------------------------------- HTTP/1.x framing


@pytest.mark.parametrize(
    ("answer", "length"),
    [
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2),  # interim skipped
        (b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the connection closes", 27),  # no length: read to EOF
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 0),
        (b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", 3),  # bare LF line ends, as some servers send
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: y\r\n\r\n", 3),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", 3),  # repeated identical lengths are one
    ],
)
def test_response_framing(servers: LoopThread, answer: bytes, length: int) -> None:
    server = serve(servers, {"/": raw(answer)})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"valid_status_codes": [200, 204]})
    assert ok, sink.trace
    assert samples_of(sink.families())["probe_http_uncompressed_body_length"] == length


def test_head_reads_no_body_even_with_a_content_length(servers: LoopThread) -> None:
    # The server keeps the connection open: reading a body that never comes would hang until the deadline.
    server = serve(servers, {"/": fixed(200, b"", {"Content-Length": "1000", "Connection": "keep-alive"})})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"method": "HEAD"}, timeout=2)
    assert ok, sink.trace
    assert samples_of(sink.families())["probe_http_content_length"] == 1000


def test_folded_headers_are_unfolded(servers: LoopThread) -> None:
    server = serve(servers, {"/": raw(b"HTTP/1.1 200 OK\r\nX-Long: first\r\n  second\r\nContent-Length: 0\r\n\r\n")})
    ok, _, _ = run_prober(
        HTTP, server.url("/"), {"fail_if_header_not_matches": [{"header": "X-Long", "regexp": "^first second$"}]}
    )
    assert ok


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",  # bad chunk size
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",  # conflicting lengths
        b"HTTP/1.1 200 OK\r\nBad Header Name: x\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"x" * 70_000 + b"\r\n\r\n",  # head over 64 KiB
    ],
)
def test_malformed_responses_are_protocol_errors(servers: LoopThread, answer: bytes) -> None:
    server = serve(servers, {"/": raw(answer)})
    ok, _, sink = run_prober(HTTP, server.url("/"))
    assert not ok
    assert reason(sink) is FailureReason.PROTOCOL_ERROR, sink.trace


def test_a_banner_of_another_protocol_fails_at_once_not_at_the_deadline(servers: LoopThread) -> None:
    # Like an SSH server: it speaks first and then waits for the client, forever.
    server = serve(servers, {"/": never_answer()}, greeting=b"SSH-2.0-OpenSSH_9.2\r\n")
    ok, _, sink = run_prober(HTTP, server.url("/"), timeout=30)
    assert not ok
    assert reason(sink) is FailureReason.PROTOCOL_ERROR


def test_an_ipv6_target(servers: LoopThread) -> None:
    if not socket.has_ipv6 or not _can_bind("::1"):
        pytest.skip("no IPv6 loopback (::1) on this machine")
    server = serve(servers, {"/": fixed(200)}, host="::1")
    ok, _, sink = run_prober(HTTP, server.url("/"))
    assert ok, sink.trace
    assert samples_of(sink.families())["probe_ip_protocol"] == 6
    assert server.requests[-1].headers["host"] == f"[::1]:{server.port}"
    ok, _, sink = run_prober(HTTP, server.url("/"), {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": False})
    assert reason(sink) is FailureReason.DNS_ERROR


def _can_bind(address: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind((address, 0))
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ deadlines


def test_a_listener_that_never_answers_is_cut_at_the_deadline_and_its_connection_closed(
    servers: LoopThread,
) -> None:
    listener = servers.run(SilentListener().start())
    ok, _, sink = run_prober(HTTP, f"http://127.0.0.1:{listener.port}/", timeout=0.5)
    assert not ok
    assert sink.failure is None  # the runner, not the prober, records `timeout`
    samples = samples_of(sink.families())
    assert samples["probe_http_status_code"] == 0  # the metrics are written also when cancelled
    assert samples['probe_http_duration_seconds{phase="connect"}'] > 0
    listener.wait_for(lambda listener: listener.accepted == 1 and listener.open_connections == 0)


def test_a_tls_handshake_that_never_completes_is_cut_at_the_deadline(servers: LoopThread) -> None:
    listener = servers.run(SilentListener().start())
    # 2 s: time enough to connect on a loaded machine; the handshake itself never completes.
    ok, _, sink = run_prober(HTTP, f"https://127.0.0.1:{listener.port}/", timeout=2.0)
    assert not ok
    assert sink.failure is None
    assert samples_of(sink.families())['probe_http_duration_seconds{phase="tls"}'] == 0  # never completed
    listener.wait_for(lambda listener: listener.accepted == 1 and listener.open_connections == 0)


def test_a_trickling_body_is_timed_as_transfer_and_cut_at_the_deadline(servers: LoopThread) -> None:
    server = serve(servers, {"/slow": trickle(b"abcd", 0.1), "/slower": trickle(b"x" * 100, 0.1)})
    ok, _, sink = run_prober(HTTP, server.url("/slow"))
    assert ok
    # 4 bytes 0.1 s apart: at least 0.3 s between the first byte and the last.
    assert samples_of(sink.families())['probe_http_duration_seconds{phase="transfer"}'] >= 0.3

    ok, _, sink = run_prober(HTTP, server.url("/slower"), timeout=0.5)
    assert not ok
    assert samples_of(sink.families())["probe_http_status_code"] == 200  # the head came, the body never completed


# ------------------------------------------------------------------------------------------------------ TLS


def test_https_with_a_trusted_certificate(servers: LoopThread, certs: Certificates) -> None:
    server = serve(servers, {"/": fixed(200, b"secure")}, tls=server_ssl_context(certs.ca_signed))
    ok, _, sink = run_prober(HTTP, server.url("/"), {"tls_config": {"ca_file": str(certs.ca_file)}})
    assert ok, sink.trace
    samples = samples_of(sink.families())
    assert samples["probe_http_ssl"] == 1
    assert samples['probe_http_duration_seconds{phase="tls"}'] > 0
    assert samples["probe_ssl_earliest_cert_expiry"] == certs.ca_signed.certificate.not_valid_after_utc.timestamp()
    assert {
        "probe_ssl_earliest_cert_expiry",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_ssl_last_chain_info",
        "probe_tls_version_info",
        "probe_tls_cipher_info",
        "probe_ssl_leaf_not_after_timestamp_seconds",
        "probe_ssl_leaf_not_before_timestamp_seconds",
    } <= metric_names(sink)

    ok, _, sink = run_prober(
        HTTP, server.url("/"), {"tls_config": {"ca_file": str(certs.ca_file)}, "fail_if_ssl": True}
    )
    assert not ok
    assert reason(sink) is FailureReason.SSL_POLICY


def test_the_final_response_replaces_the_tls_and_last_modified_metrics_of_a_redirect(
    servers: LoopThread, certs: Certificates
) -> None:
    plain = serve(servers, {"/done": fixed(200, b"plain")})
    modified = email.utils.formatdate(1_700_000_000, usegmt=True)
    moved = fixed(302, b"", {"Location": plain.url("/done"), "Last-Modified": modified})
    secure = serve(servers, {"/": moved}, tls=server_ssl_context(certs.ca_signed))
    ok, samples, sink = run_prober(HTTP, secure.url("/"), {"tls_config": {"ca_file": str(certs.ca_file)}})
    assert ok, sink.trace
    assert samples["probe_http_redirects"] == 1
    assert samples["probe_http_ssl"] == 0
    assert samples["probe_http_status_code"] == 200
    assert not {"probe_http_last_modified_timestamp_seconds", "probe_tls_version_info"} & metric_names(sink)


def test_https_with_a_self_signed_certificate(servers: LoopThread, certs: Certificates) -> None:
    server = serve(servers, {"/": fixed(200)}, tls=server_ssl_context(certs.self_signed))
    ok, _, sink = run_prober(HTTP, server.url("/"))
    assert not ok
    assert reason(sink) is FailureReason.CERTIFICATE_INVALID
    samples = samples_of(sink.families())
    leaf = certs.self_signed.certificate
    assert samples["probe_ssl_leaf_not_after_timestamp_seconds"] == leaf.not_valid_after_utc.timestamp()
    assert samples["probe_http_ssl"] == 0

    ok, _, sink = run_prober(HTTP, server.url("/"), {"tls_config": {"insecure_skip_verify": True}})
    assert ok
    assert samples_of(sink.families())["probe_http_ssl"] == 1


def test_https_with_an_expired_certificate(servers: LoopThread, certs: Certificates) -> None:
    server = serve(servers, {"/": fixed(200)}, tls=server_ssl_context(certs.expired))
    ok, _, sink = run_prober(HTTP, server.url("/"), {"tls_config": {"ca_file": str(certs.ca_file)}})
    assert not ok
    assert reason(sink) is FailureReason.CERTIFICATE_EXPIRED
    leaf = certs.expired.certificate
    assert (
        samples_of(sink.families())["probe_ssl_leaf_not_after_timestamp_seconds"]
        == leaf.not_valid_after_utc.timestamp()
    )


def test_server_name_is_used_for_verification(servers: LoopThread, certs: Certificates) -> None:
    server = serve(servers, {"/": fixed(200)}, tls=server_ssl_context(certs.ca_signed))
    config = {"tls_config": {"ca_file": str(certs.ca_file), "server_name": "server.test"}}
    ok, _, _ = run_prober(HTTP, server.url("/"), config)
    assert ok
    config = {"tls_config": {"ca_file": str(certs.ca_file), "server_name": "elsewhere.test"}}
    ok, _, sink = run_prober(HTTP, server.url("/"), config)
    assert reason(sink) is FailureReason.CERTIFICATE_INVALID


def test_tls_talking_to_plain_http_is_a_tls_error(servers: LoopThread) -> None:
    # A plain HTTP server answering the TLS ClientHello with an HTTP error, as nginx does.
    server = serve(servers, {}, greeting=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    ok, _, sink = run_prober(HTTP, f"https://127.0.0.1:{server.port}/")
    assert not ok
    assert reason(sink) is FailureReason.TLS_ERROR


def test_fail_if_not_ssl(servers: LoopThread) -> None:
    server = serve(servers, {"/": fixed(200)})
    ok, _, sink = run_prober(HTTP, server.url("/"), {"fail_if_not_ssl": True})
    assert not ok
    assert reason(sink) is FailureReason.SSL_POLICY


# ---------------------------------------------------------------------------------------------------- proxy


def test_http_through_a_proxy_uses_the_absolute_form(servers: LoopThread) -> None:
    server = serve(servers, {"/page": fixed(200, b"via proxy")})
    proxy = servers.run(HttpProxy().start())
    ok, _, sink = run_prober(HTTP, server.url("/page"), {"proxy_url": proxy.url})
    assert ok, sink.trace
    assert proxy.seen == [f"GET http://127.0.0.1:{server.port}/page HTTP/1.1"]
    assert server.requests[-1].headers["host"] == f"127.0.0.1:{server.port}"


def test_https_through_a_proxy_tunnels_with_connect(servers: LoopThread, certs: Certificates) -> None:
    server = serve(servers, {"/": fixed(200, b"tunnelled")}, tls=server_ssl_context(certs.ca_signed))
    proxy = servers.run(HttpProxy().start())
    ok, _, sink = run_prober(
        HTTP, server.url("/"), {"proxy_url": proxy.url, "tls_config": {"ca_file": str(certs.ca_file)}}
    )
    assert ok, sink.trace
    assert proxy.seen == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1"]
    assert samples_of(sink.families())["probe_http_ssl"] == 1


def test_proxy_credentials_go_to_the_proxy_only(servers: LoopThread, certs: Certificates) -> None:
    server = serve(servers, {"/": fixed(200)}, tls=server_ssl_context(certs.ca_signed))
    proxy = servers.run(HttpProxy().start())
    proxy_url = f"http://probe:p%40ss@127.0.0.1:{proxy.port}"
    ok, _, _ = run_prober(
        HTTP, server.url("/"), {"proxy_url": proxy_url, "tls_config": {"ca_file": str(certs.ca_file)}}
    )
    assert ok
    expected = "Proxy-Authorization: Basic " + base64.b64encode(b"probe:p@ss").decode()
    assert expected in proxy.heads[-1]
    assert "proxy-authorization" not in server.requests[-1].headers

    shown = HttpProbe.model_validate({"proxy_url": proxy_url}).model_dump(mode="json")["proxy_url"]
    assert shown == f"http://probe:<secret>@127.0.0.1:{proxy.port}"  # as the debug page shows the module

    plain = serve(servers, {"/": fixed(200)})
    ok, _, _ = run_prober(HTTP, plain.url("/"), {"proxy_url": proxy_url})
    assert ok
    assert expected in proxy.heads[-1]


# --------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"compression": "br"}, r"br \(Brotli\) is not supported"),
        ({"enable_http2": True}, "HTTP/1.1 only"),
        ({"oauth2": {"client_id": "x"}}, "oauth2"),
        ({"body_size_limit": "lots"}, "not a size"),
        ({"basic_auth": {"username": "u", "password": "p"}, "bearer_token": "t"}, "only one of"),
        ({"authorization": {"type": "Basic", "credentials": "x"}}, "use basic_auth"),
        ({"proxy_url": "socks5://127.0.0.1:1080"}, "HTTP proxy"),
        ({"fail_if_body_matches_regexp": ["("]}, "not a valid regular expression"),
        ({"valid_http_versions": ["1.1"]}, "write it like HTTP/1.1"),
        ({"valid_status_codes": [2000]}, "not an HTTP status code"),
        ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, "line breaks"),
        ({"headers": {"Bad Name": "x"}}, "not a valid header name"),
        ({"preferred_ip_protocol": "ip5"}, "preferred_ip_protocol"),
    ],
)
def test_config_errors_name_the_problem(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        HttpProbe.model_validate(options)


def test_body_size_limit_units_are_powers_of_1024() -> None:
    assert HttpProbe.model_validate({"body_size_limit": "10MB"}).body_size_limit == 10 * 1024 * 1024
    assert HttpProbe.model_validate({"body_size_limit": "512KiB"}).body_size_limit == 512 * 1024
    assert HttpProbe.model_validate({"body_size_limit": 2048}).body_size_limit == 2048


def test_debug_trace_tells_each_step(servers: LoopThread) -> None:
    server = serve(servers, {"/a": redirect("/b"), "/b": fixed(200)})
    _, _, sink = run_prober(HTTP, server.url("/a"))
    trace = "\n".join(sink.trace)
    assert f"GET {server.url('/a')}" in trace
    assert "redirect 1 to" in trace
    assert "HTTP/1.1 200" in trace
