"""TLS client settings: prometheus/common's `tls_config`, as blackbox_exporter reads it.

One model and one context builder for every outgoing TLS connection Pulse makes: the probers
(http, tcp, dns, journey) and the KPI HTTP-JSON sources.
"""

from __future__ import annotations

import functools
import ssl
from enum import StrEnum
from pathlib import Path

import pydantic

from exporter.config.types import StrictModel


class TLSVersionName(StrEnum):
    """blackbox's spelling of TLS versions in tls_config (min_version, max_version)."""

    TLS10 = "TLS10"
    TLS11 = "TLS11"
    TLS12 = "TLS12"
    TLS13 = "TLS13"


SSL_VERSIONS = {
    TLSVersionName.TLS10: ssl.TLSVersion.TLSv1,
    TLSVersionName.TLS11: ssl.TLSVersion.TLSv1_1,
    TLSVersionName.TLS12: ssl.TLSVersion.TLSv1_2,
    TLSVersionName.TLS13: ssl.TLSVersion.TLSv1_3,
}


class TLSClientConfig(StrictModel):
    """`tls_config`: which CAs to trust, a client certificate, the server name to ask for and check."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: TLSVersionName | None = None
    max_version: TLSVersionName | None = None

    @pydantic.field_validator("ca_file", "cert_file", "key_file", mode="after")
    @classmethod
    def _readable_file(cls, value: Path | None, info: pydantic.ValidationInfo) -> Path | None:
        # Relative paths are relative to the config file that names them, as in blackbox.
        if value is None:
            return None
        base_dir = (info.context or {}).get("base_dir")
        path = value if value.is_absolute() or base_dir is None else Path(base_dir) / value
        if not path.is_file():
            raise ValueError(f"cannot read {path}: no such file")
        return path

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> TLSClientConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        if self.min_version and self.max_version and SSL_VERSIONS[self.min_version] > SSL_VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is above max_version {self.max_version}")
        return self


@functools.lru_cache(maxsize=64)
def client_ssl_context(config: TLSClientConfig, verify: bool = True) -> ssl.SSLContext:
    """The client context for `config`, built once: loading the system's CA store costs milliseconds.

    `verify=False` is the context used to read a certificate that failed verification. A changed
    ca_file/cert_file is read again after a config reload (a new TLSClientConfig object compares equal
    though, so replacing a certificate file in place needs a restart or a changed config).
    """
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if config.insecure_skip_verify or not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert_file and config.key_file:
        context.load_cert_chain(str(config.cert_file), str(config.key_file))
    if config.min_version:
        context.minimum_version = SSL_VERSIONS[config.min_version]
    if config.max_version:
        context.maximum_version = SSL_VERSIONS[config.max_version]
    return context
