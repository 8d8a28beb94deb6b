"""Differential test: Debian's blackbox_exporter and pulse-exporter, the same blackbox.yml, the same targets.

Both are real processes probing real loopback servers through their /probe endpoints. They must agree
on probe_success, the status code and every other deterministic value, and expose the same metric
names, except the extras Pulse adds on purpose (listed below with their reason). Pulse's answers must
also pass `promtool check metrics`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.blackbox import running_blackbox
from tests.helpers import StartExporter, parse_samples, require_binary
from tests.probe_servers import (
    Certificates,
    LoopThread,
    compressed,
    fixed,
    make_certificates,
    redirect,
    refused_port,
    server_ssl_context,
    start_http,
)

pytestmark = pytest.mark.integration

BLACKBOX_YML = """\
modules:
  http_ca:
    prober: http
    http:
      tls_config:
        ca_file: {ca_file}
  http_gzip:
    prober: http
    http:
      compression: gzip
      fail_if_body_not_matches_regexp: ["store is open"]
  http_small:
    prober: http
    http:
      body_size_limit: 16B
  http_header_missing:
    prober: http
    http:
      fail_if_header_not_matches:
        - {{header: Strict-Transport-Security, regexp: "max-age", allow_missing: true}}
        - {{header: X-Missing, regexp: "x"}}
  http_2xx:
    prober: http
    timeout: 5s
  http_ip4:
    prober: http
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200, 204]
  http_insecure:
    prober: http
    http:
      tls_config:
        insecure_skip_verify: true
  http_body:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ["store is open"]
  http_header:
    prober: http
    http:
      fail_if_header_matches:
        - {{header: Server, regexp: "^test-server"}}
  http_nofollow:
    prober: http
    http:
      no_follow_redirects: true
  http_post:
    prober: http
    http:
      method: POST
      body: "ping"
      headers: {{Content-Type: text/plain}}
"""

# Metric names Pulse adds to blackbox's, on purpose.
PULSE_EXTRAS = {
    "probe_failure_info",  # why a probe failed
    "probe_ssl_leaf_not_after_timestamp_seconds",  # leaf validity, also when verification fails
    "probe_ssl_leaf_not_before_timestamp_seconds",
    "probe_tls_cipher_info",  # blackbox added it after 0.23
}
# Values compared besides the names; the durations and timings differ by nature.
COMPARED = (
    "probe_success",
    "probe_http_status_code",
    "probe_http_redirects",
    "probe_http_ssl",
    "probe_http_version",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
    "probe_failed_due_to_regex",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_ssl_earliest_cert_expiry",
)
# Besides, for a verified chain: the expiry of the chain, and the leaf's description.
COMPARED_VERIFIED = ("probe_ssl_last_chain_expiry_timestamp_seconds",)


@dataclass
class Targets:
    http: str
    https_self_signed: str
    https_ca_signed: str
    https_expired: str
    refused: str
    modules: str  # the blackbox.yml both exporters read


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    certs: Certificates = make_certificates(tmp_path_factory.mktemp("certs"))
    thread = LoopThread()
    page = fixed(200, b"<p>the store is open</p>", {"Server": "test-server/1.0"})
    routes = {
        "/": page,
        "/closed": fixed(200, b"<p>closed for inventory</p>"),
        "/redirect": redirect("/"),
        "/loop": redirect("/loop"),
        "/empty": fixed(204),
        "/api": fixed(201, b"created"),
    }
    routes["/gzip"] = compressed(b"<p>the store is open</p>" * 100, "gzip")
    http = start_http(thread, routes)
    self_signed = start_http(thread, {"/": page}, tls=server_ssl_context(certs.self_signed))
    ca_signed = start_http(thread, {"/": page}, tls=server_ssl_context(certs.ca_signed))
    expired = start_http(thread, {"/": page}, tls=server_ssl_context(certs.expired))
    yield Targets(
        http.base_url,
        self_signed.base_url,
        ca_signed.base_url,
        expired.base_url,
        f"http://127.0.0.1:{refused_port()}",
        BLACKBOX_YML.format(ca_file=certs.ca_file),
    )
    thread.close()


def cases(t: Targets) -> list[tuple[str, str]]:
    return [
        (f"{t.http}/", "http_2xx"),
        (f"{t.http}/missing", "http_2xx"),
        (f"{t.http}/redirect", "http_2xx"),
        (f"{t.http}/loop", "http_2xx"),
        (f"{t.http}/redirect", "http_nofollow"),
        (f"{t.http}/empty", "http_ip4"),
        (t.http.removeprefix("http://") + "/", "http_2xx"),  # no scheme: http is assumed
        (f"{t.https_self_signed}/", "http_insecure"),
        (f"{t.https_self_signed}/", "http_2xx"),  # verification fails
        (f"{t.https_ca_signed}/", "http_ca"),
        (f"{t.https_ca_signed}/", "http_2xx"),  # the test CA is not in the system store
        (f"{t.https_expired}/", "http_ca"),
        (f"{t.http}/gzip", "http_gzip"),
        (f"{t.http}/", "http_small"),
        (f"{t.http}/", "http_header_missing"),
        (f"{t.http}/", "http_body"),
        (f"{t.http}/closed", "http_body"),
        (f"{t.http}/", "http_header"),
        (f"{t.http}/api", "http_post"),
        (f"{t.refused}/", "http_2xx"),
        ("http://does-not-exist.invalid/", "http_2xx"),  # RFC 2606: never resolves
    ]


@pytest.fixture(scope="module")
def blackbox(tmp_path_factory: pytest.TempPathFactory, targets: Targets) -> Iterator[str]:
    with running_blackbox(targets.modules, tmp_path_factory.mktemp("blackbox")) as url:
        yield url


def probe_text(base_url: str, target: str, module: str) -> str:
    response = httpx.get(
        f"{base_url}/probe", params={"target": target, "module": module}, headers={"Accept": "text/plain"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text


def names(samples: dict[str, float]) -> set[str]:
    return {key.split("{", 1)[0] for key in samples}


def value(samples: dict[str, float], name: str) -> float | None:
    return samples.get(name)


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def chain_info(samples: dict[str, float]) -> set[tuple[str, str]]:
    """probe_ssl_last_chain_info's labels, without serialnumber (which blackbox added after 0.23)."""
    for key in samples:
        if key.startswith("probe_ssl_last_chain_info{"):
            return {pair for pair in LABEL.findall(key) if pair[0] != "serialnumber"}
    return set()


def test_blackbox_and_pulse_agree_on_the_same_modules_and_targets(
    blackbox: str, targets: Targets, start_exporter: StartExporter, tmp_path: Path
) -> None:
    modules_file = tmp_path / "blackbox.yml"
    modules_file.write_text(targets.modules)
    listed = "\n".join(f"    - {{target: '{target}', module: {module}}}" for target, module in cases(targets))
    pulse = start_exporter(f"probes:\n  modules_file: {modules_file}\n  targets:\n{listed}\n")

    promtool = require_binary("promtool")
    differences = []
    for target, module in cases(targets):
        text = probe_text(pulse.url, target, module)
        theirs, ours = parse_samples(probe_text(blackbox, target, module)), parse_samples(text)
        case = f"{module} {target}"
        lint = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False)
        if lint.returncode != 0:
            differences.append(f"{case}: promtool check metrics: {lint.stdout.decode()}{lint.stderr.decode()}")
        assert value(theirs, "probe_success") is not None, case
        for name in COMPARED:
            if value(theirs, name) != value(ours, name):
                differences.append(f"{case}: {name} blackbox={value(theirs, name)} pulse={value(ours, name)}")
        if module == "http_ca":
            for name in COMPARED_VERIFIED:
                if value(theirs, name) != value(ours, name):
                    differences.append(f"{case}: {name} blackbox={value(theirs, name)} pulse={value(ours, name)}")
            if chain_info(theirs) != chain_info(ours):
                differences.append(f"{case}: probe_ssl_last_chain_info {chain_info(theirs)} != {chain_info(ours)}")
        missing = names(theirs) - names(ours)
        if module == "http_insecure":
            # blackbox 0.23 reports Go's zero time (-62135596800) when nothing was verified; Pulse omits it.
            assert theirs["probe_ssl_last_chain_expiry_timestamp_seconds"] < 0
            missing.discard("probe_ssl_last_chain_expiry_timestamp_seconds")
        if missing:
            differences.append(f"{case}: only blackbox has {sorted(missing)}")
        extra = names(ours) - names(theirs) - PULSE_EXTRAS
        if extra:
            differences.append(f"{case}: only Pulse has {sorted(extra)}")
        if ("probe_failure_info" in names(ours)) == (value(ours, "probe_success") == 1):
            differences.append(f"{case}: probe_failure_info must be there exactly when the probe failed")
    assert not differences, "\n".join(differences)
