"""The shared TLS module: tls_config, handshake metrics, and why a handshake failed (with real TLS servers)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from cryptography.hazmat.primitives import serialization

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.tls import report_tls, report_tls_failure
from tests.helpers import samples_of
from tests.probe_servers import (
    Certificates,
    KeyPair,
    LoopThread,
    fixed,
    make_certificates,
    server_ssl_context,
    start_http,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def servers() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def serve(servers: LoopThread, pair: KeyPair, client_ca: Path | None = None, **kwargs: object) -> int:
    context = server_ssl_context(pair, client_ca)
    for name, value in kwargs.items():
        setattr(context, name, value)
    return start_http(servers, {"/": fixed(200, b"ok")}, tls=context).port


async def handshake(port: int, config: TLSClientConfig, server_name: str = "localhost") -> tuple[ProbeSink, bool]:
    """What a prober does: handshake, then report the TLS metrics or why it failed."""
    sink = ProbeSink()
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl_context(config), server_hostname=config.server_name or server_name
        )
    except (ssl.SSLError, ConnectionError) as err:  # a server may just reset a handshake it refuses
        ok = await report_tls_failure(
            sink, err, address="127.0.0.1", port=port, server_hostname=server_name, config=config
        )
        return sink, ok
    report_tls(sink, writer.get_extra_info("ssl_object"))
    writer.close()
    return sink, True


def timestamp(pair: KeyPair) -> float:
    return pair.certificate.not_valid_after_utc.timestamp()


def test_a_verified_handshake_reports_the_chain_version_cipher_and_leaf(
    certs: Certificates, servers: LoopThread
) -> None:
    port = serve(servers, certs.ca_signed)
    sink, ok = asyncio.run(handshake(port, TLSClientConfig(ca_file=certs.ca_file)))
    assert ok
    assert sink.failure is None
    samples = samples_of(sink.families())
    leaf = certs.ca_signed.certificate
    # The leaf expires before the CA, so it is the earliest in both the sent and the verified chain.
    assert samples["probe_ssl_earliest_cert_expiry"] == timestamp(certs.ca_signed)
    assert samples["probe_ssl_last_chain_expiry_timestamp_seconds"] == timestamp(certs.ca_signed)
    assert samples["probe_ssl_leaf_not_after_timestamp_seconds"] == timestamp(certs.ca_signed)
    assert samples["probe_ssl_leaf_not_before_timestamp_seconds"] == leaf.not_valid_before_utc.timestamp()
    assert samples['probe_tls_version_info{version="TLS 1.3"}'] == 1
    assert samples['probe_tls_cipher_info{cipher="TLS_AES_256_GCM_SHA384"}'] == 1
    fingerprint = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    info = (
        f'probe_ssl_last_chain_info{{fingerprint_sha256="{fingerprint}",subject="CN=server.test,O=Pulse tests",'
        f'issuer="CN=Pulse test CA,O=Pulse tests",subjectalternative="localhost,server.test",'
        f'serialnumber="{leaf.serial_number:x}"}}'
    )
    assert samples[info] == 1


def test_min_and_max_version_are_applied(certs: Certificates, servers: LoopThread) -> None:
    port = serve(servers, certs.ca_signed)
    config = TLSClientConfig(ca_file=certs.ca_file, max_version="TLS12")
    sink, ok = asyncio.run(handshake(port, config))
    assert ok
    assert 'probe_tls_version_info{version="TLS 1.2"}' in samples_of(sink.families())

    old_server = serve(servers, certs.ca_signed, maximum_version=ssl.TLSVersion.TLSv1_2)
    sink, ok = asyncio.run(handshake(old_server, TLSClientConfig(ca_file=certs.ca_file, min_version="TLS13")))
    assert not ok
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.TLS_ERROR
    assert "probe_ssl_leaf_not_after_timestamp_seconds" not in samples_of(sink.families())


def test_an_expired_certificate_fails_as_expired_and_still_reports_the_leaf(
    certs: Certificates, servers: LoopThread
) -> None:
    port = serve(servers, certs.expired)
    sink, ok = asyncio.run(handshake(port, TLSClientConfig(ca_file=certs.ca_file)))
    assert not ok
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.CERTIFICATE_EXPIRED
    assert "expired" in sink.failure[1]
    samples = samples_of(sink.families())
    assert samples["probe_ssl_leaf_not_after_timestamp_seconds"] == timestamp(certs.expired)
    assert "probe_ssl_earliest_cert_expiry" not in samples  # blackbox reports chain metrics only on success


def test_an_untrusted_certificate_fails_as_invalid_and_still_reports_the_leaf(
    certs: Certificates, servers: LoopThread
) -> None:
    port = serve(servers, certs.self_signed)
    sink, ok = asyncio.run(handshake(port, TLSClientConfig(ca_file=certs.ca_file)))
    assert not ok
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.CERTIFICATE_INVALID
    assert samples_of(sink.families())["probe_ssl_leaf_not_after_timestamp_seconds"] == timestamp(certs.self_signed)


def test_a_wrong_server_name_fails_as_invalid(certs: Certificates, servers: LoopThread) -> None:
    port = serve(servers, certs.ca_signed)
    sink, ok = asyncio.run(handshake(port, TLSClientConfig(ca_file=certs.ca_file, server_name="other.example")))
    assert not ok
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.CERTIFICATE_INVALID
    assert "other.example" in sink.failure[1]


def test_insecure_skip_verify_accepts_any_certificate_and_reports_no_verified_chain(
    certs: Certificates, servers: LoopThread
) -> None:
    port = serve(servers, certs.self_signed)
    sink, ok = asyncio.run(handshake(port, TLSClientConfig(insecure_skip_verify=True)))
    assert ok
    samples = samples_of(sink.families())
    assert samples["probe_ssl_earliest_cert_expiry"] == timestamp(certs.self_signed)
    assert "probe_ssl_last_chain_expiry_timestamp_seconds" not in samples


def test_a_client_certificate_is_presented_when_configured(certs: Certificates, servers: LoopThread) -> None:
    port = serve(servers, certs.ca_signed, client_ca=certs.ca_file)

    async def get(config: TLSClientConfig) -> bytes:
        # TLS 1.3 reports a rejected client certificate after the handshake, so make a request.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl_context(config), server_hostname="localhost"
        )
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return await reader.read()
        except (ssl.SSLError, ConnectionError):
            return b""
        finally:
            writer.close()

    with_cert = TLSClientConfig(ca_file=certs.ca_file, cert_file=certs.client.cert_file, key_file=certs.client.key_file)
    assert asyncio.run(get(with_cert)).startswith(b"HTTP/1.1 200")
    assert asyncio.run(get(TLSClientConfig(ca_file=certs.ca_file))) == b""


def test_tls_config_checks_files_and_versions_when_loaded(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"cannot read .*missing\.pem"):
        TLSClientConfig(ca_file=tmp_path / "missing.pem")
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(pydantic.ValidationError, match="cert_file and key_file must be given together"):
        TLSClientConfig(cert_file=tmp_path / "c.pem")
    with pytest.raises(pydantic.ValidationError, match="min_version TLS13 is above max_version TLS12"):
        TLSClientConfig(min_version="TLS13", max_version="TLS12")
    with pytest.raises(pydantic.ValidationError, match="min_version"):
        TLSClientConfig(min_version="TLS14")
    relative = TLSClientConfig.model_validate({"ca_file": "c.pem"}, context={"base_dir": tmp_path})
    assert relative.ca_file == tmp_path / "c.pem"
