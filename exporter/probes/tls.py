"""TLS for the probers (http, tcp, dns over TLS, journey): the handshake's metrics, and why it failed.

Certificate chains. Python 3.11's ssl module has no public API for the chains (3.13 adds
`SSLObject.get_verified_chain()` / `get_unverified_chain()`); the C object behind it (`SSLObject._sslobj`)
has both methods since 3.10, so we use them when present and fall back to the leaf alone
(`getpeercert(binary_form=True)`). As in blackbox_exporter:
- probe_ssl_earliest_cert_expiry is the earliest notAfter among the certificates the server sent;
- probe_ssl_last_chain_expiry_timestamp_seconds is the earliest notAfter of the verified chain (there is
  one chain in OpenSSL, several possible in Go: blackbox takes the last), absent without verification;
- probe_ssl_last_chain_info describes the leaf.

Beyond blackbox: probe_ssl_leaf_not_after/not_before_timestamp_seconds are reported even when the
handshake failed verification (expired, untrusted, wrong name). OpenSSL aborts such a handshake before
Python can see the certificate, so `report_tls_failure` makes a second handshake to the same address
without verification, only to read the leaf; it costs one more connection on failing probes only.
"""

from __future__ import annotations

import _ssl
import asyncio
import functools
import hashlib
import ssl
from dataclasses import dataclass
from typing import Any

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.probes.base import FailureReason, ProbeSink

# probe_tls_version_info{version} uses Go's names, so dashboards built on blackbox keep matching.
_VERSION_LABELS = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}

# The families report_tls writes: a prober that reports another response's handshake drops them first.
TLS_METRICS = (
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_tls_version_info",
    "probe_tls_cipher_info",
    "probe_ssl_last_chain_info",
    "probe_ssl_leaf_not_after_timestamp_seconds",
    "probe_ssl_leaf_not_before_timestamp_seconds",
)

# OpenSSL's X509_V_ERR_* codes that mean "the certificate's validity period is over".
_X509_V_ERR_CERT_HAS_EXPIRED = 10


@dataclass(frozen=True)
class CertificateFacts:
    """What the metrics need from one certificate, parsed once per distinct certificate."""

    not_before: float
    not_after: float
    subject: str
    issuer: str
    dns_names: str
    serial_number: str
    fingerprint_sha256: str


@functools.lru_cache(maxsize=256)
def certificate_facts(der: bytes) -> CertificateFacts:
    # Imported here: cryptography's X.509 bindings add ~8 MiB RSS, paid only once a TLS probe runs.
    from cryptography import x509  # noqa: PLC0415

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = ",".join(san.get_values_for_type(x509.DNSName))
    except (x509.ExtensionNotFound, ValueError):
        dns_names = ""
    return CertificateFacts(
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        dns_names=dns_names,
        serial_number=format(cert.serial_number, "x"),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
    )


def _chain_der(ssl_object: ssl.SSLObject, verified: bool) -> list[bytes]:
    """DER certificates of the peer's chain (leaf first); [] where the interpreter cannot tell."""
    inner: Any = getattr(ssl_object, "_sslobj", ssl_object)
    method = getattr(ssl_object, "get_verified_chain" if verified else "get_unverified_chain", None) or getattr(
        inner, "get_verified_chain" if verified else "get_unverified_chain", None
    )
    if method is None:
        return []
    certificates = method() or []
    return [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in certificates]


def report_tls(sink: ProbeSink, ssl_object: ssl.SSLObject) -> None:
    """Write the TLS metrics of a completed handshake (the final one, for http after redirects)."""
    leaf = ssl_object.getpeercert(binary_form=True)
    sent = _chain_der(ssl_object, verified=False) or ([leaf] if leaf else [])
    verified = _chain_der(ssl_object, verified=True) if ssl_object.context.verify_mode != ssl.CERT_NONE else []
    if sent:
        sink.gauge(
            "probe_ssl_earliest_cert_expiry",
            "Returns earliest SSL cert expiry in unixtime",
            min(certificate_facts(der).not_after for der in sent),
        )
    if verified:
        sink.gauge(
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "Returns last SSL chain expiry in timestamp seconds",
            min(certificate_facts(der).not_after for der in verified),
        )
    version = ssl_object.version()
    if version:
        sink.gauge(
            "probe_tls_version_info",
            "Contains the TLS version used",
            1,
            {"version": _VERSION_LABELS.get(version, version)},
        )
    cipher = ssl_object.cipher()
    if cipher:
        sink.gauge(
            "probe_tls_cipher_info", "Contains the TLS cipher negotiated during handshake", 1, {"cipher": cipher[0]}
        )
    if leaf:
        facts = certificate_facts(leaf)
        sink.gauge(
            "probe_ssl_last_chain_info",
            "Contains SSL leaf certificate information",
            1,
            {
                "fingerprint_sha256": facts.fingerprint_sha256,
                "subject": facts.subject,
                "issuer": facts.issuer,
                "subjectalternative": facts.dns_names,
                "serialnumber": facts.serial_number,
            },
        )
        report_leaf(sink, leaf)


def report_leaf(sink: ProbeSink, der: bytes) -> None:
    """Pulse's leaf-certificate metrics, also written when verification failed."""
    facts = certificate_facts(der)
    sink.gauge(
        "probe_ssl_leaf_not_after_timestamp_seconds",
        "notAfter of the server's leaf certificate, also when it failed verification",
        facts.not_after,
    )
    sink.gauge(
        "probe_ssl_leaf_not_before_timestamp_seconds",
        "notBefore of the server's leaf certificate, also when it failed verification",
        facts.not_before,
    )


def tls_failure(err: BaseException) -> tuple[FailureReason, str]:
    """Why a handshake failed, as the probe's failure: certificate_expired / certificate_invalid for
    verification failures, tls_error for the rest; and the detail."""
    if isinstance(err, ssl.SSLCertVerificationError):
        if err.verify_code == _X509_V_ERR_CERT_HAS_EXPIRED:
            reason = FailureReason.CERTIFICATE_EXPIRED
        else:
            reason = FailureReason.CERTIFICATE_INVALID
        return reason, f"certificate verification failed: {err.verify_message}"
    return FailureReason.TLS_ERROR, f"TLS handshake failed: {getattr(err, 'reason', None) or err}"


async def fetch_leaf_certificate(
    address: str, port: int, server_hostname: str | None, config: TLSClientConfig
) -> bytes | None:
    """A second handshake without verification, only to read the certificate the server presents."""
    writer: asyncio.StreamWriter | None = None
    try:
        _, writer = await asyncio.open_connection(
            address, port, ssl=client_ssl_context(config, verify=False), server_hostname=server_hostname or ""
        )
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    except (OSError, ssl.SSLError):
        return None
    finally:
        if writer is not None:
            writer.transport.abort()


async def report_tls_failure(
    sink: ProbeSink,
    err: BaseException,
    *,
    address: str,
    port: int,
    server_hostname: str | None,
    config: TLSClientConfig,
) -> bool:
    """Record a failed handshake as the probe's failure; for a certificate failure, the leaf's metrics too.

    Returns False, so a prober can `return await report_tls_failure(...)`.
    """
    reason, detail = tls_failure(err)
    if reason is not FailureReason.TLS_ERROR:
        leaf = await fetch_leaf_certificate(address, port, server_hostname, config)
        if leaf is not None:
            report_leaf(sink, leaf)
            facts = certificate_facts(leaf)
            sink.log(f"certificate: subject={facts.subject} issuer={facts.issuer} not_after={facts.not_after:.0f}")
    return sink.fail(reason, detail)
