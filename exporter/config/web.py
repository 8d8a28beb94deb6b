"""`--web.config.file`: TLS and basic auth in the Prometheus exporter-toolkit format.

    tls_server_config:
      cert_file: server.crt          # paths are relative to this file, as in exporter-toolkit
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      min_version: TLS12
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      alice: $2y$10$...              # bcrypt hash, e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`

Options of exporter-toolkit that Pulse does not implement (cipher_suites, curve_preferences,
client_allowed_sans, inline cert/key) are config errors, never silently ignored.

This module reads and checks the file and builds the server's TLS context; checking passwords against
`basic_auth_users` is the web layer's job (exporter/web/auth.py).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

import pydantic

from exporter.config.loader import ConfigError, UnreadableFile, load_model, read_text_file
from exporter.config.types import StrictModel

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
ClientAuthType = Literal[
    "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
]
ALLOWED_HEADERS = {
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
}


BCRYPT_MIN_COST, BCRYPT_MAX_COST = 4, 31  # what bcrypt implementations accept

UNSUPPORTED_TLS_OPTIONS = ("cipher_suites", "curve_preferences", "client_allowed_sans", "cert", "key")


class TLSServerConfig(StrictModel):
    cert_file: str
    key_file: str
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: str | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS13"
    prefer_server_cipher_suites: bool = True

    @pydantic.model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        for option in UNSUPPORTED_TLS_OPTIONS:
            if isinstance(data, dict) and option in data:
                raise ValueError(f"{option}: exporter-toolkit's option is not supported by Pulse; remove it")
        return data

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        verifies = self.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
        if verifies and not self.client_ca_file:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if TLS_VERSIONS[self.min_version] > TLS_VERSIONS[self.max_version]:
            raise ValueError("min_version is above max_version")
        return self


class HttpServerConfig(StrictModel):
    http2: bool = True  # accepted for compatibility; Pulse serves HTTP/1.1
    headers: dict[str, str] = {}

    @pydantic.field_validator("headers")
    @classmethod
    def _known_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(headers) - ALLOWED_HEADERS)
        for name, value in headers.items():
            if not value.isprintable() or not value.isascii():
                raise ValueError(f"header {name}: the value must be printable ASCII on one line")
        if unknown:
            raise ValueError(f"header {unknown[0]} cannot be set; allowed: {', '.join(sorted(ALLOWED_HEADERS))}")
        return headers


def _is_bcrypt_hash(value: str) -> str:
    if not (len(value) == 60 and value[:4] in ("$2a$", "$2b$", "$2y$") and value[6] == "$"):
        raise ValueError("not a bcrypt hash (60 characters starting $2a$, $2b$ or $2y$, then the cost)")
    if not (value[4:6].isdigit() and BCRYPT_MIN_COST <= int(value[4:6]) <= BCRYPT_MAX_COST):
        raise ValueError(f"bcrypt cost {value[4:6]!r} is not a number from {BCRYPT_MIN_COST:02} to {BCRYPT_MAX_COST}")
    return value


def bcrypt_cost(hashed: bytes) -> int:
    """The cost (log2 of the rounds) of a checked bcrypt hash: `$2b$12$...` -> 12."""
    return int(hashed[4:6])


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[str, str] = {}

    @pydantic.field_validator("basic_auth_users")
    @classmethod
    def _hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            try:
                _is_bcrypt_hash(hashed)
            except ValueError as err:
                raise ValueError(f"user {user}: {err}") from None
        return users


def load_web_config(path: Path) -> tuple[WebConfig, ssl.SSLContext | None]:
    """Load and check the web config; certificate files are read now, so errors show at start-up.

    Every load builds a new SSLContext: a reload must be able to drop a client CA, and a live
    context can only ever gain trusted CAs.
    """
    config = load_model(WebConfig, path)
    if config.tls_server_config is None:
        return config, None
    return config, _tls_context(config.tls_server_config, path)


def _tls_context(tls: TLSServerConfig, web_config_path: Path) -> ssl.SSLContext:
    def fail(field: str, problem: str) -> ConfigError:
        return ConfigError(str(web_config_path), [f"{web_config_path}: tls_server_config.{field}: {problem}"])

    def readable(field: str, name: str) -> str:
        # The same checks as every config file (a regular file, bounded size), so a FIFO or a device
        # named here is refused instead of blocking the reload; ssl then reads the checked path.
        path = Path(name) if Path(name).is_absolute() else web_config_path.parent / name
        try:
            read_text_file(path)
        except UnreadableFile as err:
            raise fail(field, f"cannot read {path}: {err}") from None
        return str(path)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert_file, key_file = readable("cert_file", tls.cert_file), readable("key_file", tls.key_file)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as err:
        raise fail("cert_file", f"cannot use {cert_file} with key_file {key_file}: {err}") from None
    if tls.client_ca_file:
        ca_file = readable("client_ca_file", tls.client_ca_file)
        try:
            context.load_verify_locations(ca_file)
        except (OSError, ssl.SSLError) as err:
            raise fail("client_ca_file", f"cannot use {ca_file}: {err}") from None
    context.verify_mode = {
        "NoClientCert": ssl.CERT_NONE,
        # Python cannot ask for a certificate without checking it against a CA, so these two
        # request one and verify it when client_ca_file is given.
        "RequestClientCert": ssl.CERT_OPTIONAL if tls.client_ca_file else ssl.CERT_NONE,
        "RequireAnyClientCert": ssl.CERT_REQUIRED if tls.client_ca_file else ssl.CERT_NONE,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }[tls.client_auth_type]
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return context
