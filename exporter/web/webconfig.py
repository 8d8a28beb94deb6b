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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import pydantic

from exporter.config.loader import ConfigError, load_model
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


UNSUPPORTED_TLS_OPTIONS = ("cipher_suites", "curve_preferences", "client_allowed_sans", "cert", "key")


class TlsServerConfig(StrictModel):
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
    def _consistent(self) -> TlsServerConfig:
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
    if not (len(value) == 60 and value[:4] in ("$2a$", "$2b$", "$2y$")):
        raise ValueError("not a bcrypt hash (60 characters starting $2a$, $2b$ or $2y$)")
    return value


class WebConfig(StrictModel):
    tls_server_config: TlsServerConfig | None = None
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


def _tls_context(tls: TlsServerConfig, web_config_path: Path) -> ssl.SSLContext:
    def fail(field: str, problem: str) -> ConfigError:
        return ConfigError(str(web_config_path), [f"{web_config_path}: tls_server_config.{field}: {problem}"])

    def readable(field: str, name: str) -> str:
        path = Path(name) if Path(name).is_absolute() else web_config_path.parent / name
        try:
            path.open("rb").close()
        except OSError as err:
            raise fail(field, f"cannot read {path}: {err.strerror or err}") from None
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


class BasicAuth:
    """Checks `Authorization: Basic` headers against bcrypt hashes.

    bcrypt is slow on purpose (tens of milliseconds at cost 10), so results are cached by a SHA-256
    of user, hash and password, as exporter-toolkit does, and checks run off the event loop.
    Unknown users still cost one bcrypt round, so response time does not reveal which users exist.
    """

    # A well-formed cost-10 hash that no known password matches: checked for unknown users, so they
    # cost the same time as known ones.
    _DUMMY_HASH = b"$2b$10$CwTycUXWue0Thq9StjUM0uJ8DnM6mXcmIL0r1Wb8fWQ1G3pDZPG1m"
    _CACHE_SIZE = 256

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {user: hashed.encode() for user, hashed in users.items()}
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    async def allows(self, authorization: str | None) -> bool:
        if not self.users:
            return True
        credentials = _parse_basic(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self.users.get(user)
        key = hashlib.sha256(b"\0".join([user.encode(), hashed or b"", password.encode()])).digest()
        cached = self._cache.get(key)
        if cached is None:
            cached = await asyncio.to_thread(self._check, hashed, password.encode())
            self._cache[key] = cached
            if len(self._cache) > self._CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return cached

    def _check(self, hashed: bytes | None, password: bytes) -> bool:
        import bcrypt  # noqa: PLC0415 - on first use: a server without basic auth saves its memory

        try:
            return bcrypt.checkpw(password, hashed or self._DUMMY_HASH) and hashed is not None
        except ValueError:  # e.g. bcrypt 5 refuses passwords over 72 bytes: wrong, whoever the user
            return False


def _parse_basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
