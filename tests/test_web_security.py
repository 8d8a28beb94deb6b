"""`--web.config.file` as an operator meets it: TLS, client certificates, basic auth, response headers,
config errors and reloads, all against the real `pulse-exporter` process.

Certificates come from a throw-away CA made with `cryptography` in each test's tmp_path; password hashes
are real bcrypt hashes at cost 4, so checks stay fast but go through the same code as cost 10 hashes.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exporter.config.web import bcrypt_cost, load_web_config
from exporter.web.auth import BasicAuthenticator
from tests.helpers import RunningExporter, StartExporter, exporter_command, free_port, parse_samples

pytestmark = pytest.mark.integration

METRIC = "pulse_exporter_build_info"  # always exposed, whatever collectors run
RELOAD_OK = "pulse_exporter_config_last_reload_successful"
ENDPOINTS = [("GET", "/"), ("GET", "/metrics"), ("GET", "/-/healthy"), ("GET", "/-/ready"), ("POST", "/-/reload")]


# --- certificates ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    cert_path: Path
    key_path: Path


class CertificateAuthority:
    """A CA for one test; issues server certificates for 127.0.0.1/localhost and client certificates."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        self.cert = (
            _builder(subject, subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = directory / f"{name}.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        common_name: str,
        *,
        client: bool = False,
        cert_path: Path | None = None,
        key_path: Path | None = None,
    ) -> Issued:
        """A leaf certificate and key, written to `cert_path`/`key_path` (default: named after the CN)."""
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            _builder(_name(common_name), self.cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if not client:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = cert_path or self.directory / f"{common_name}.crt"
        key_path = key_path or self.directory / f"{common_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Issued(cert, cert_path, key_path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def client_context(
    ca: CertificateAuthority,
    client_cert: Issued | None = None,
    *,
    maximum_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """What a scraper uses: trusts `ca`, optionally presents `client_cert`, optionally capped in version."""
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    if client_cert is not None:
        context.load_cert_chain(client_cert.cert_path, client_cert.key_path)
    if maximum_version is not None:
        context.maximum_version = maximum_version
    return context


def peer_certificate(port: int, context: ssl.SSLContext) -> x509.Certificate:
    """The certificate the exporter presents on a NEW connection."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def negotiated_version(port: int, context: ssl.SSLContext) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


# --- web config and requests ----------------------------------------------------------------------------------


def bcrypt_hash(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def write_web_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tls_section(server: Issued, **extra: str) -> dict[str, str]:
    return {"cert_file": str(server.cert_path), "key_file": str(server.key_path), **extra}


def assert_no_metrics(response: httpx.Response) -> None:
    assert METRIC not in response.text, f"metrics leaked with status {response.status_code}"
    assert "# TYPE" not in response.text
    assert "# HELP" not in response.text


def request_or_none(running: RunningExporter, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
    """The response, or None when the connection or handshake failed (what a refused client sees)."""
    try:
        with httpx.Client(**running.client_kwargs) as client:  # type: ignore[arg-type]
            return client.request(method, running.url + path, timeout=10, **kwargs)
    except httpx.TransportError:
        return None


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "pulse-test-ca")


@pytest.fixture
def server_cert(ca: CertificateAuthority) -> Issued:
    return ca.issue("pulse-server")


StartWithWebConfig = Callable[..., RunningExporter]


@pytest.fixture
def start_with_web_config(start_exporter: StartExporter) -> StartWithWebConfig:
    """Start the exporter with the embedded default config and `--web.config.file=path`."""

    def start(path: Path, *, scheme: str = "http", **client_kwargs: object) -> RunningExporter:
        return start_exporter(None, f"--web.config.file={path}", scheme=scheme, **client_kwargs)

    return start


# --- TLS ------------------------------------------------------------------------------------------------------


def test_metrics_are_served_over_https_to_a_client_trusting_the_test_ca(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": tls_section(server_cert)})
    running = start_with_web_config(web, scheme="https", verify=client_context(ca))

    response = running.get("/metrics")

    assert response.status_code == 200
    assert METRIC in response.text
    assert peer_certificate(running.port, client_context(ca)) == server_cert.cert


def test_plain_http_request_to_the_tls_port_gets_no_metrics(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": tls_section(server_cert)})
    running = start_with_web_config(web, scheme="https", verify=client_context(ca))
    plain = RunningExporter(running.process, running.port, scheme="http")

    response = request_or_none(plain, "GET", "/metrics")

    if response is not None:
        assert response.status_code != 200
        assert_no_metrics(response)
    assert running.get("/metrics").status_code == 200, "the TLS listener must survive a plain-http request"


def test_certificate_paths_are_relative_to_the_web_config_file(
    tmp_path: Path, ca: CertificateAuthority, start_with_web_config: StartWithWebConfig
) -> None:
    config_dir = tmp_path / "etc" / "pulse"  # the exporter runs in tmp_path, so only this directory works
    config_dir.mkdir(parents=True)
    ca.issue("pulse-server", cert_path=config_dir / "server.crt", key_path=config_dir / "server.key")
    web = write_web_config(
        config_dir / "web.yml", {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}}
    )

    running = start_with_web_config(web, scheme="https", verify=client_context(ca))

    assert METRIC in running.metrics_text()


def test_min_version_tls13_refuses_a_client_limited_to_tls12(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": tls_section(server_cert, min_version="TLS13")})
    running = start_with_web_config(web, scheme="https", verify=client_context(ca))
    tls12_only = client_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2)

    with pytest.raises(ssl.SSLError):
        peer_certificate(running.port, tls12_only)
    with httpx.Client(verify=tls12_only) as client, pytest.raises(httpx.ConnectError):
        client.get(running.url + "/metrics", timeout=10)
    assert negotiated_version(running.port, client_context(ca)) == "TLSv1.3"


def test_default_min_version_accepts_a_client_limited_to_tls12(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": tls_section(server_cert)})
    tls12_only = client_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2)

    running = start_with_web_config(web, scheme="https", verify=tls12_only)

    assert negotiated_version(running.port, tls12_only) == "TLSv1.2"
    assert METRIC in running.metrics_text()


def test_max_version_tls12_caps_the_negotiated_version(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": tls_section(server_cert, max_version="TLS12")})

    running = start_with_web_config(web, scheme="https", verify=client_context(ca))

    assert negotiated_version(running.port, client_context(ca)) == "TLSv1.2"


# --- client certificates --------------------------------------------------------------------------------------


@pytest.fixture
def client_ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "pulse-client-ca")


def _require_client_certs(path: Path, server: Issued, client_ca: CertificateAuthority) -> Path:
    return write_web_config(
        path,
        {
            "tls_server_config": tls_section(
                server, client_auth_type="RequireAndVerifyClientCert", client_ca_file=str(client_ca.cert_path)
            )
        },
    )


def test_required_client_cert_refuses_a_client_without_certificate(
    tmp_path: Path,
    ca: CertificateAuthority,
    server_cert: Issued,
    client_ca: CertificateAuthority,
    start_with_web_config: StartWithWebConfig,
) -> None:
    web = _require_client_certs(tmp_path / "web.yml", server_cert, client_ca)
    scraper = client_ca.issue("scraper", client=True)
    running = start_with_web_config(web, scheme="https", verify=client_context(ca, scraper))
    anonymous = RunningExporter(running.process, running.port, "https", client_kwargs={"verify": client_context(ca)})

    assert request_or_none(anonymous, "GET", "/metrics") is None


def test_required_client_cert_accepts_a_certificate_signed_by_the_client_ca(
    tmp_path: Path,
    ca: CertificateAuthority,
    server_cert: Issued,
    client_ca: CertificateAuthority,
    start_with_web_config: StartWithWebConfig,
) -> None:
    web = _require_client_certs(tmp_path / "web.yml", server_cert, client_ca)
    scraper = client_ca.issue("scraper", client=True)

    running = start_with_web_config(web, scheme="https", verify=client_context(ca, scraper))

    assert METRIC in running.metrics_text()


def test_required_client_cert_refuses_a_certificate_from_another_ca(
    tmp_path: Path,
    ca: CertificateAuthority,
    server_cert: Issued,
    client_ca: CertificateAuthority,
    start_with_web_config: StartWithWebConfig,
) -> None:
    web = _require_client_certs(tmp_path / "web.yml", server_cert, client_ca)
    running = start_with_web_config(
        web, scheme="https", verify=client_context(ca, client_ca.issue("scraper", client=True))
    )
    stranger = CertificateAuthority(tmp_path, "stranger-ca").issue("intruder", client=True)
    intruder = RunningExporter(
        running.process, running.port, "https", client_kwargs={"verify": client_context(ca, stranger)}
    )

    assert request_or_none(intruder, "GET", "/metrics") is None


def test_reload_with_a_new_client_ca_stops_trusting_the_old_one(
    tmp_path: Path,
    ca: CertificateAuthority,
    server_cert: Issued,
    client_ca: CertificateAuthority,
    start_with_web_config: StartWithWebConfig,
) -> None:
    web = _require_client_certs(tmp_path / "web.yml", server_cert, client_ca)
    old_scraper = client_ca.issue("old-scraper", client=True)
    running = start_with_web_config(web, scheme="https", verify=client_context(ca, old_scraper))
    new_ca = CertificateAuthority(tmp_path, "rotated-client-ca")
    new_scraper = new_ca.issue("new-scraper", client=True)
    _require_client_certs(web, server_cert, new_ca)

    assert running.post("/-/reload").status_code == 200
    with_new = RunningExporter(
        running.process, running.port, "https", client_kwargs={"verify": client_context(ca, new_scraper)}
    )
    assert METRIC in with_new.metrics_text()
    assert request_or_none(running, "GET", "/metrics") is None, "a certificate of the removed CA still gets in"


# --- basic auth -----------------------------------------------------------------------------------------------


@pytest.fixture
def with_users(tmp_path: Path, start_with_web_config: StartWithWebConfig) -> RunningExporter:
    """Plain http with two users: alice/wonderland and bob/builder."""
    web = write_web_config(
        tmp_path / "web.yml",
        {"basic_auth_users": {"alice": bcrypt_hash("wonderland"), "bob": bcrypt_hash("builder")}},
    )
    return start_with_web_config(web)


def test_no_credentials_gets_401_with_www_authenticate_and_no_metrics(with_users: RunningExporter) -> None:
    response = with_users.get("/metrics")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("basic")
    assert_no_metrics(response)


def test_wrong_password_gets_401_and_no_metrics(with_users: RunningExporter) -> None:
    response = with_users.get("/metrics", auth=("alice", "builder"))  # bob's password, not alice's

    assert response.status_code == 401
    assert_no_metrics(response)


def test_unknown_user_gets_401_and_no_metrics(with_users: RunningExporter) -> None:
    response = with_users.get("/metrics", auth=("mallory", "wonderland"))

    assert response.status_code == 401
    assert_no_metrics(response)


def test_right_credentials_get_200_with_metrics(with_users: RunningExporter) -> None:
    for user, password in [("alice", "wonderland"), ("bob", "builder")]:
        response = with_users.get("/metrics", auth=(user, password))

        assert response.status_code == 200, user
        assert METRIC in response.text


def test_every_endpoint_requires_credentials(with_users: RunningExporter) -> None:
    outcomes = {}
    for method, path in ENDPOINTS:
        anonymous = request_or_none(with_users, method, path)
        authorised = request_or_none(with_users, method, path, auth=("alice", "wonderland"))
        outcomes[f"{method} {path}"] = (
            anonymous.status_code if anonymous else None,
            authorised.status_code if authorised else None,
        )

    assert outcomes == dict.fromkeys(outcomes, (401, 200))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer wonderland", id="other-scheme"),
        pytest.param("Basic !!!not-base64!!!", id="not-base64"),
        pytest.param("Basic YWxpY2U=", id="no-colon"),  # "alice"
        pytest.param("Basic", id="no-credentials"),
        pytest.param("Basic //79", id="not-utf8"),  # 0xff 0xfe 0xfd
    ],
)
def test_malformed_authorization_header_gets_401(with_users: RunningExporter, authorization: str) -> None:
    response = with_users.get("/metrics", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert_no_metrics(response)


def test_long_password_gets_401_whether_or_not_the_user_exists(with_users: RunningExporter) -> None:
    long_password = "x" * 100

    known = with_users.get("/metrics", auth=("alice", long_password))
    unknown = with_users.get("/metrics", auth=("mallory", long_password))

    assert (known.status_code, unknown.status_code) == (401, 401)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_an_unknown_user_costs_the_bcrypt_work_of_the_costliest_configured_hash(tmp_path: Path) -> None:
    # Not timed: the work of a bcrypt check is set by the cost field of the hash checked.
    htpasswd_style = "$2y$" + bcrypt_hash("wonderland", cost=12)[4:]  # `htpasswd -nBC 12` writes $2y$
    web = write_web_config(
        tmp_path / "web.yml", {"basic_auth_users": {"alice": htpasswd_style, "bob": bcrypt_hash("builder")}}
    )
    auth = BasicAuthenticator(load_web_config(web)[0].basic_auth_users)

    checked_for_unknown = auth.hash_to_check("mallory")

    assert bcrypt_cost(checked_for_unknown) == 12 == bcrypt_cost(auth.hash_to_check("alice"))
    assert checked_for_unknown[:4] == b"$2y$", "the same variant as the costliest hash"
    assert bcrypt.checkpw(b"wonderland", checked_for_unknown) is False, "well-formed: bcrypt does the full work"
    assert asyncio.run(auth.allows(basic("mallory", "wonderland"))) is False
    assert asyncio.run(auth.allows(basic("alice", "wonderland"))) is True


def test_password_checks_do_not_wait_for_the_threads_collectors_run_on() -> None:
    auth = BasicAuthenticator({"alice": bcrypt_hash("wonderland")})
    release = threading.Event()

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
        busy = loop.run_in_executor(None, release.wait)  # as a collector stuck in a blocking call
        try:
            return await asyncio.wait_for(auth.allows(basic("alice", "wonderland")), 10)
        finally:
            release.set()
            await busy

    assert asyncio.run(scenario()) is True


# --- response headers -----------------------------------------------------------------------------------------


def test_configured_headers_appear_on_every_response(tmp_path: Path, start_with_web_config: StartWithWebConfig) -> None:
    headers = {"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff"}
    web = write_web_config(
        tmp_path / "web.yml",
        {"http_server_config": {"headers": headers}, "basic_auth_users": {"alice": bcrypt_hash("wonderland")}},
    )
    running = start_with_web_config(web)
    alice = ("alice", "wonderland")

    responses = {
        "metrics": running.get("/metrics", auth=alice),
        "landing page": running.get("/", auth=alice),
        "not found": running.get("/no-such-page", auth=alice),
        "unauthorised": running.get("/metrics"),
    }

    assert [r.status_code for r in responses.values()] == [200, 200, 404, 401]
    for what, response in responses.items():
        for name, value in headers.items():
            assert response.headers.get(name) == value, f"{name} missing on the {what} response"


# --- invalid web configs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadConfig:
    config: dict[str, Any]
    field: str  # the dotted field the message must name
    hint: str  # another piece of text the message must contain


def _bad_configs(tmp_path: Path, server: Issued) -> dict[str, BadConfig]:
    return {
        "typo": BadConfig(
            {"basic_auth_user": {"alice": bcrypt_hash("wonderland")}}, "basic_auth_user", "basic_auth_users"
        ),
        "nested-typo": BadConfig(
            {"tls_server_config": {**tls_section(server), "min_verison": "TLS13"}},
            "tls_server_config.min_verison",
            "unknown field",
        ),
        "plaintext-password": BadConfig({"basic_auth_users": {"alice": "wonderland"}}, "basic_auth_users", "bcrypt"),
        "missing-cert-file": BadConfig(
            {"tls_server_config": {"cert_file": str(tmp_path / "absent.crt"), "key_file": str(server.key_path)}},
            "tls_server_config.cert_file",
            "No such file",
        ),
        "cipher-suites": BadConfig(
            {"tls_server_config": {**tls_section(server), "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
            "tls_server_config.cipher_suites",
            "cipher_suites",
        ),
        "client-ca-missing": BadConfig(
            {"tls_server_config": tls_section(server, client_auth_type="RequireAndVerifyClientCert")},
            "tls_server_config",
            "client_ca_file",
        ),
        "bcrypt-cost-out-of-range": BadConfig(
            {"basic_auth_users": {"alice": "$2b$99$" + bcrypt_hash("wonderland")[7:]}}, "basic_auth_users", "cost"
        ),
        "header-not-allowed": BadConfig(
            {"http_server_config": {"headers": {"Set-Cookie": "a=b"}}},
            "http_server_config.headers",
            "Set-Cookie",
        ),
    }


BAD_CONFIG_NAMES = [
    "typo",
    "nested-typo",
    "plaintext-password",
    "missing-cert-file",
    "cipher-suites",
    "client-ca-missing",
    "bcrypt-cost-out-of-range",
    "header-not-allowed",
]


def run_exporter(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `pulse-exporter` to completion; a process that keeps serving fails the test by timing out."""
    return subprocess.run(
        [*exporter_command(), *args], capture_output=True, text=True, timeout=30, cwd=cwd, check=False
    )


@pytest.mark.parametrize("how", ["config-check", "start"])
@pytest.mark.parametrize("case", BAD_CONFIG_NAMES)
def test_invalid_web_config_exits_1_naming_file_and_field_without_traceback(
    tmp_path: Path, server_cert: Issued, case: str, how: str
) -> None:
    bad = _bad_configs(tmp_path, server_cert)[case]
    web = write_web_config(tmp_path / "web.yml", bad.config)
    mode = "--config.check" if how == "config-check" else f"--web.listen-address=127.0.0.1:{free_port()}"

    result = run_exporter(mode, f"--web.config.file={web}", cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert str(web) in output
    assert bad.field in output
    assert bad.hint in output
    assert "wonderland" not in output, "the config error must not echo a password"


def test_bad_configs_cover_every_case(tmp_path: Path, server_cert: Issued) -> None:
    assert sorted(_bad_configs(tmp_path, server_cert)) == sorted(BAD_CONFIG_NAMES)


def test_valid_web_config_passes_config_check(tmp_path: Path, server_cert: Issued) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {"tls_server_config": tls_section(server_cert), "basic_auth_users": {"alice": bcrypt_hash("wonderland")}},
    )

    result = run_exporter("--config.check", f"--web.config.file={web}", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert str(web) in result.stdout


@pytest.mark.parametrize("option", ["cipher_suites", "curve_preferences", "client_allowed_sans"])
def test_unsupported_toolkit_tls_option_is_an_error_that_suggests_no_other_option(
    tmp_path: Path, server_cert: Issued, option: str
) -> None:
    # "did you mean 'prefer_server_cipher_suites'?" would lead an operator to drop a cipher restriction.
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": {**tls_section(server_cert), option: ["x"]}})

    result = run_exporter("--config.check", f"--web.config.file={web}", cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"tls_server_config.{option}" in output
    assert "did you mean" not in output


def test_typo_inside_tls_server_config_suggests_the_right_field(tmp_path: Path, server_cert: Issued) -> None:
    web = write_web_config(
        tmp_path / "web.yml", {"tls_server_config": {**tls_section(server_cert), "min_verison": "TLS13"}}
    )

    result = run_exporter("--config.check", f"--web.config.file={web}", cwd=tmp_path)

    assert result.returncode == 1
    assert "did you mean 'min_version'?" in result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["cert_file", "key_file"])
def test_missing_certificate_or_key_error_names_the_missing_path(
    tmp_path: Path, server_cert: Issued, missing: str
) -> None:
    absent = tmp_path / "absent.pem"
    web = write_web_config(
        tmp_path / "web.yml", {"tls_server_config": {**tls_section(server_cert), missing: str(absent)}}
    )

    result = run_exporter("--config.check", f"--web.config.file={web}", cwd=tmp_path)

    assert result.returncode == 1
    assert str(absent) in result.stdout + result.stderr


@pytest.mark.parametrize("field", ["cert_file", "key_file", "client_ca_file"])
def test_a_tls_file_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path, server_cert: Issued, field: str) -> None:
    """ssl would block opening a FIFO until a writer comes; the config check must refuse it instead."""
    fifo = tmp_path / "not-a-file.pem"
    os.mkfifo(fifo)
    tls = {**tls_section(server_cert), "client_auth_type": "RequireAndVerifyClientCert"}
    tls.setdefault("client_ca_file", str(server_cert.cert_path))
    tls[field] = str(fifo)
    web = write_web_config(tmp_path / "web.yml", {"tls_server_config": tls})

    result = run_exporter("--config.check", f"--web.config.file={web}", cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"tls_server_config.{field}: cannot read {fifo}: it is a FIFO, not a regular file" in output


def test_header_value_with_a_line_break_is_a_config_error(tmp_path: Path) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {"http_server_config": {"headers": {"X-Frame-Options": "DENY\r\nSet-Cookie: session=stolen"}}},
    )

    result = run_exporter("--config.check", f"--web.config.file={web}", cwd=tmp_path)

    assert result.returncode == 1
    assert "http_server_config.headers" in result.stdout + result.stderr


# --- reload ---------------------------------------------------------------------------------------------------


def test_reload_serves_the_new_certificate_to_new_connections(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {"tls_server_config": tls_section(server_cert), "basic_auth_users": {"alice": bcrypt_hash("wonderland")}},
    )
    running = start_with_web_config(web, scheme="https", verify=client_context(ca))
    assert peer_certificate(running.port, client_context(ca)) == server_cert.cert
    renewed = ca.issue("pulse-server-renewed", cert_path=server_cert.cert_path, key_path=server_cert.key_path)
    assert renewed.cert.serial_number != server_cert.cert.serial_number

    assert running.post("/-/reload").status_code == 401, "reload must need credentials too"
    response = running.post("/-/reload", auth=("alice", "wonderland"))

    assert response.status_code == 200, response.text
    presented = peer_certificate(running.port, client_context(ca))
    assert (common_name(presented), presented.serial_number) == ("pulse-server-renewed", renewed.cert.serial_number)
    assert METRIC in running.get("/metrics", auth=("alice", "wonderland")).text


def test_invalid_web_config_on_reload_returns_500_and_keeps_the_old_settings(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    good = {"tls_server_config": tls_section(server_cert), "basic_auth_users": {"alice": bcrypt_hash("wonderland")}}
    web = write_web_config(tmp_path / "web.yml", good)
    running = start_with_web_config(web, scheme="https", verify=client_context(ca))
    alice = ("alice", "wonderland")
    write_web_config(web, {**good, "basic_auth_users": {"alice": "plaintext-new-password"}})

    response = running.post("/-/reload", auth=alice)

    assert response.status_code == 500
    assert "basic_auth_users" in response.text
    metrics = running.get("/metrics", auth=alice)
    assert metrics.status_code == 200, "the old password must keep working"
    assert parse_samples(metrics.text)[RELOAD_OK] == 0
    assert running.get("/metrics", auth=("alice", "plaintext-new-password")).status_code == 401
    assert peer_certificate(running.port, client_context(ca)) == server_cert.cert

    write_web_config(web, good)
    assert running.post("/-/reload", auth=alice).status_code == 200
    assert parse_samples(running.get("/metrics", auth=alice).text)[RELOAD_OK] == 1


def test_changed_password_applies_after_reload(tmp_path: Path, start_with_web_config: StartWithWebConfig) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {"basic_auth_users": {"alice": bcrypt_hash("old-secret"), "bob": bcrypt_hash("builder")}},
    )
    running = start_with_web_config(web)
    assert running.get("/metrics", auth=("alice", "old-secret")).status_code == 200  # and now cached
    write_web_config(web, {"basic_auth_users": {"alice": bcrypt_hash("new-secret")}})

    assert running.post("/-/reload", auth=("alice", "old-secret")).status_code == 200

    assert running.get("/metrics", auth=("alice", "new-secret")).status_code == 200
    assert running.get("/metrics", auth=("alice", "old-secret")).status_code == 401
    assert running.get("/metrics", auth=("bob", "builder")).status_code == 401, "a removed user must be locked out"


def test_turning_tls_on_by_reload_is_refused_and_http_keeps_serving(
    tmp_path: Path, server_cert: Issued, start_with_web_config: StartWithWebConfig
) -> None:
    web = write_web_config(tmp_path / "web.yml", {})
    running = start_with_web_config(web)
    write_web_config(web, {"tls_server_config": tls_section(server_cert)})

    response = running.post("/-/reload")

    assert response.status_code == 500
    assert "restart" in response.text
    assert parse_samples(running.metrics_text())[RELOAD_OK] == 0
