"""The tcp prober against real servers on loopback: connect, query_response dialogues, TLS, STARTTLS,
and each way it can fail; and a differential run against blackbox_exporter."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from exporter.config.types import compile_regex
from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.config import BlackboxFile
from exporter.probes.runner import run_probe
from exporter.probes.tcp import PROBER as TCP
from exporter.probes.tcp import TCPProbe, expand
from tests.blackbox import probe_through, running_blackbox
from tests.helpers import Samples, StartExporter, samples_of, wait_until
from tests.probe_servers import (
    Certificates,
    ProbeResult,
    make_certificates,
    refused_port,
    run_prober,
    run_prober_async,
    server_ssl_context,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def probe_server(handler: Handler, config: dict[str, object]) -> ProbeResult:
    """Start a TCP server running `handler` on loopback and probe it with a tcp module `config`."""

    async def scenario() -> ProbeResult:
        handlers: list[asyncio.Task[object]] = []

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.append(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(guarded, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await run_prober_async(TCP, f"127.0.0.1:{port}", {"preferred_ip_protocol": "ip4", **config})
        finally:
            server.close()
            # The probe has closed its connection: let the handlers read what it sent before the loop ends.
            if handlers:
                await asyncio.wait(handlers, timeout=10)

    return asyncio.run(scenario())


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


def reason(sink: ProbeSink) -> FailureReason | None:
    return sink.failure[0] if sink.failure else None


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


# ------------------------------------------------------------------------------------------------ connect


def test_a_listening_port_is_a_success_with_blackbox_address_metrics() -> None:
    success, _, sink = probe_server(silent, {})
    samples = samples_of(sink.families())
    assert success, sink.trace
    assert samples["probe_ip_protocol"] == 4
    # blackbox 0.23 reports this value for 127.0.0.1 (FNV-1a of the 4 address bytes).
    assert samples["probe_ip_addr_hash"] == 3668918509
    assert samples["probe_failed_due_to_regex"] == 0
    assert samples["probe_dns_lookup_time_seconds"] >= 0


def test_a_refused_port_fails_with_connection_refused() -> None:
    result = run_prober(TCP, f"127.0.0.1:{refused_port()}", {"preferred_ip_protocol": "ip4"})
    assert not result.success
    assert result.reason is FailureReason.CONNECTION_REFUSED


@pytest.mark.parametrize("target", ["127.0.0.1", "127.0.0.1:http", "::1:80", "127.0.0.1:70000", ":80"])
def test_a_target_that_is_not_host_port_fails_without_connecting(target: str) -> None:
    result = run_prober(TCP, target)
    assert not result.success
    assert result.reason is FailureReason.CONNECTION_ERROR
    assert "probe_ip_protocol" not in result.samples


def test_a_name_that_does_not_resolve_is_a_dns_error_with_zeroed_address_metrics() -> None:
    result = run_prober(TCP, "no-such-host.invalid:80")
    assert not result.success
    assert result.reason is FailureReason.DNS_ERROR
    assert result.samples["probe_ip_protocol"] == 0
    assert result.samples["probe_ip_addr_hash"] == 0


def test_the_deadline_cancels_a_dialogue_that_waits_forever_and_reports_timeout() -> None:
    """A server that accepts and never says anything: the runner's deadline ends the probe."""

    async def scenario() -> tuple[Samples, ProbeSink]:
        accepted = asyncio.Event()

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set()
            await reader.read()

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        module = BlackboxFile.model_validate(
            {"modules": {"m": {"prober": "tcp", "timeout": "300ms", "tcp": {"query_response": [{"expect": "^hi"}]}}}}
        ).modules["m"]
        families, sink = await run_probe("m", module, f"127.0.0.1:{port}", None)
        server.close()
        assert accepted.is_set()
        return samples_of(families), sink

    samples, sink = asyncio.run(scenario())
    assert reason(sink) is FailureReason.TIMEOUT
    assert samples["probe_success"] == 0
    assert samples['probe_failure_info{reason="timeout"}'] == 1
    assert samples["probe_failed_due_to_regex"] == 0  # still written when the probe was cancelled


def test_an_ipv6_target_in_brackets_is_probed_over_ipv6() -> None:
    async def scenario() -> ProbeResult:
        try:
            server = await asyncio.start_server(silent, "::1", 0)
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        port = server.sockets[0].getsockname()[1]
        try:
            return await run_prober_async(TCP, f"[::1]:{port}")
        finally:
            server.close()

    success, _, sink = asyncio.run(scenario())
    assert success, sink.trace
    samples = samples_of(sink.families())
    assert samples["probe_ip_protocol"] == 6
    assert samples["probe_ip_addr_hash"] == 1751717746  # blackbox 0.23's value for ::1


def test_source_ip_address_is_the_local_end_of_the_connection() -> None:
    peers: list[str] = []

    async def note_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        await reader.read()

    success, _, sink = probe_server(note_peer, {"source_ip_address": "127.0.0.2"})
    assert success, sink.trace
    wait_until(lambda: peers, what="the server saw the connection")
    assert peers == ["127.0.0.2"]
    # An address this host does not have cannot be bound: a connection error, not a crash.
    success, _, sink = probe_server(silent, {"source_ip_address": "192.0.2.1"})
    assert not success
    assert reason(sink) is FailureReason.CONNECTION_ERROR


def test_source_ip_address_must_be_an_ip_address() -> None:
    with pytest.raises(ValueError, match="'eth0' is not an IP address"):
        TCPProbe.model_validate({"source_ip_address": "eth0"})


# ----------------------------------------------------------------------------------------- query_response


def test_query_response_sends_what_it_extracted_with_regex_groups() -> None:
    received: list[str] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* noise before the greeting\r\nSESSION abc123 ready\r\n")
        await writer.drain()
        received.append((await reader.readline()).decode())
        writer.write(b"OK authenticated\r\n")
        await writer.drain()
        received.append((await reader.readline()).decode())

    success, _, sink = probe_server(
        session,
        {
            "query_response": [
                {"expect": r"^SESSION (?P<id>\w+) ready$", "send": "AUTH ${1} $id $$5 ${nope}"},
                {"expect": "^OK", "send": "QUIT"},
            ]
        },
    )
    assert success, sink.trace
    assert received == ["AUTH abc123 abc123 $5 \n", "QUIT\n"]
    assert samples_of(sink.families())["probe_failed_due_to_regex"] == 0


def test_an_expect_no_line_matched_before_close_fails_due_to_regex() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"500 go away\r\n")
        await writer.drain()

    success, _, sink = probe_server(refuse, {"query_response": [{"expect": "^220 "}]})
    assert not success
    assert reason(sink) is FailureReason.QUERY_RESPONSE
    assert samples_of(sink.families())["probe_failed_due_to_regex"] == 1


def test_a_line_longer_than_64_kib_is_a_protocol_error() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * (70 * 1024) + b"\n")
        await writer.drain()
        await reader.read()

    success, _, sink = probe_server(flood, {"query_response": [{"expect": "^220 "}]})
    assert not success
    assert reason(sink) is FailureReason.PROTOCOL_ERROR


def test_send_without_expect_writes_at_once() -> None:
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readline())

    success, _, _ = probe_server(record, {"query_response": [{"send": "PING"}]})
    assert success
    # the server task may still be reading when the probe returns
    wait_until(lambda: received, what="the server read the line")
    assert received == [b"PING\n"]


def test_expand_follows_go_template_rules() -> None:
    match = compile_regex(r"(?P<word>\w+)-(\d+)").search("abc-42")
    assert match is not None
    assert expand("$1x ${1}x $2 ${word} $$ $ $9", match) == " abcx 42 abc $ $ "


# ------------------------------------------------------------------------------------------------- TLS


def probe_tls_server(certificates: Certificates, pair_name: str, tcp_options: dict[str, object]) -> ProbeResult:
    pair = getattr(certificates, pair_name)

    async def scenario() -> ProbeResult:
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(b"hello over tls\n")
                await writer.drain()
                await reader.read()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_ssl_context(pair))
        port = server.sockets[0].getsockname()[1]
        try:
            options = {"preferred_ip_protocol": "ip4", "tls": True, **tcp_options}
            return await run_prober_async(TCP, f"127.0.0.1:{port}", options)
        finally:
            server.close()

    return asyncio.run(scenario())


def test_tls_connect_reports_certificate_and_version(certificates: Certificates) -> None:
    success, _, sink = probe_tls_server(
        certificates,
        "ca_signed",
        {"tls_config": {"ca_file": str(certificates.ca_file)}, "query_response": [{"expect": "^hello over tls$"}]},
    )
    assert success, sink.trace
    samples = samples_of(sink.families())
    not_after = certificates.ca_signed.certificate.not_valid_after_utc.timestamp()
    assert samples["probe_ssl_earliest_cert_expiry"] == not_after
    assert samples["probe_ssl_leaf_not_after_timestamp_seconds"] == not_after
    assert any(key.startswith("probe_tls_version_info{") for key in samples)
    assert any(key.startswith("probe_ssl_last_chain_info{") for key in samples)


def test_tls_to_an_expired_certificate_fails_as_expired_and_still_reports_the_leaf(
    certificates: Certificates,
) -> None:
    success, _, sink = probe_tls_server(certificates, "expired", {"tls_config": {"ca_file": str(certificates.ca_file)}})
    assert not success
    assert reason(sink) is FailureReason.CERTIFICATE_EXPIRED
    expected = certificates.expired.certificate.not_valid_after_utc.timestamp()
    assert samples_of(sink.families())["probe_ssl_leaf_not_after_timestamp_seconds"] == expected


def test_tls_to_an_untrusted_certificate_is_certificate_invalid(certificates: Certificates) -> None:
    success, _, sink = probe_tls_server(certificates, "self_signed", {})
    assert not success
    assert reason(sink) is FailureReason.CERTIFICATE_INVALID


def test_tls_to_a_plain_tcp_server_is_a_tls_error() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-not-tls\r\n" * 10)
        await writer.drain()

    success, _, sink = probe_server(plain, {"tls": True, "tls_config": {"insecure_skip_verify": True}})
    assert not success
    assert reason(sink) is FailureReason.TLS_ERROR


def test_starttls_upgrades_the_connection_and_reports_the_certificate(certificates: Certificates) -> None:
    server_context = server_ssl_context(certificates.ca_signed)
    after_tls: list[str] = []

    async def smtp_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.test ESMTP\r\n")
        await writer.drain()
        assert (await reader.readline()) == b"STARTTLS\n"
        writer.write(b"220 2.0.0 Ready to start TLS\r\n")
        await writer.drain()
        await writer.start_tls(server_context)
        writer.write(b"250 secure now\r\n")
        await writer.drain()
        after_tls.append((await reader.readline()).decode())

    success, _, sink = probe_server(
        smtp_like,
        {
            "tls_config": {"ca_file": str(certificates.ca_file), "server_name": "localhost"},
            "query_response": [
                {"expect": "^220 ", "send": "STARTTLS"},
                {"expect": "^220 ", "starttls": True},
                {"expect": "^250 secure", "send": "QUIT"},
            ],
        },
    )
    assert success, sink.trace
    samples = samples_of(sink.families())
    assert (
        samples["probe_ssl_earliest_cert_expiry"] == certificates.ca_signed.certificate.not_valid_after_utc.timestamp()
    )
    wait_until(lambda: after_tls, what="the server read the line after TLS")
    assert after_tls == ["QUIT\n"]


# ------------------------------------------------------------------------------------------ differential


def test_same_module_through_blackbox_exporter_gives_the_same_answer(
    tmp_path: Path, start_exporter: StartExporter
) -> None:
    """The same blackbox.yml through both exporters: same probe_success and the same metric names."""
    modules = (
        "modules:\n"
        "  tcp_v4:\n    prober: tcp\n    timeout: 2s\n    tcp:\n      preferred_ip_protocol: ip4\n"
        "  banner:\n    prober: tcp\n    timeout: 2s\n    tcp:\n      preferred_ip_protocol: ip4\n"
        "      query_response:\n        - expect: '^220 '\n"
    )
    open_port = _listening_port()
    try:
        with running_blackbox(modules, tmp_path) as blackbox:
            targets = [(f"127.0.0.1:{open_port.port}", "tcp_v4"), (f"127.0.0.1:{refused_port()}", "tcp_v4")]
            targets.append((f"127.0.0.1:{open_port.port}", "banner"))  # never sends a banner: regex fails at close
            config = "collectors: {host: {enabled: false}}\nprobes:\n  modules_file: blackbox.yml\n  targets:\n"
            config += "".join(f"    - {{target: '{t}', module: {m}}}\n" for t, m in targets)
            pulse = start_exporter(config)
            for target, module in targets:
                theirs = probe_through(blackbox, target, module)
                ours = probe_through(pulse.url, target, module)
                assert ours["probe_success"] == theirs["probe_success"], (target, module)
                assert ours["probe_ip_addr_hash"] == theirs["probe_ip_addr_hash"]
                assert ours["probe_failed_due_to_regex"] == theirs["probe_failed_due_to_regex"]
                names = {key.partition("{")[0] for key in ours} - {"probe_failure_info"}
                assert names == {key.partition("{")[0] for key in theirs}, (target, module)
    finally:
        open_port.close()


class _ClosingListener:
    """A listener in a thread that accepts connections and closes them after a moment, saying nothing."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            time.sleep(0.05)
            connection.close()

    def close(self) -> None:
        self._socket.close()


def _listening_port() -> _ClosingListener:
    return _ClosingListener()
