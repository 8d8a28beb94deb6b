"""The journey prober against the demo shop (exporter/demo/shop.py) running on loopback.

The shipped example, examples/journey-shop.yml, is loaded through the real config loader and probed
through the real runner; then the shop is broken for real (a wrong password, the shop down).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from exporter.config.loader import ConfigError
from exporter.demo.shop import DEFAULT_PORT, make_server
from exporter.probes.base import FailureReason
from exporter.probes.config import ProbeModule
from exporter.probes.journey import PROBER as JOURNEY
from exporter.probes.journey import JourneyProbe
from exporter.probes.runner import run_probe
from exporter.registry import load_config
from tests.helpers import StartExporter, free_port, parse_samples, require_binary, samples_of
from tests.probe_servers import Certificates, KeyPair, make_certificates, run_prober, server_ssl_context

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "journey-shop.yml"
STEPS = ["home", "login_form", "login", "add_to_cart", "checkout"]


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def example_config(tmp_path: Path, replace: tuple[str, str] | None = None) -> Any:
    text = EXAMPLE.read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "pulse.yml"
    path.write_text(text)
    return load_config(path).probes


def run_example(tmp_path: Path, target: str, replace: tuple[str, str] | None = None) -> tuple[dict[str, float], Any]:
    probes = example_config(tmp_path, replace)
    families, sink = asyncio.run(run_probe("shop_checkout", probes.modules["shop_checkout"], target, None))
    return samples_of(families), sink


def test_the_shipped_example_walks_the_shop_from_home_to_checkout(tmp_path: Path, shop: str) -> None:
    found, sink = run_example(tmp_path, shop)
    assert found["probe_success"] == 1, sink.failure
    assert found["probe_journey_steps"] == len(STEPS)
    for step in STEPS:
        assert found[f'probe_journey_step_success{{step="{step}"}}'] == 1
        assert found[f'probe_journey_step_duration_seconds{{step="{step}"}}'] > 0
    assert found["probe_http_status_code"] == 200
    assert 'probe_failure_info{reason="assertion"}' not in found


def test_the_example_lists_the_shop_as_a_target(tmp_path: Path) -> None:
    probes = example_config(tmp_path)
    assert probes.lists(f"http://127.0.0.1:{DEFAULT_PORT}/", "shop_checkout")


def test_a_wrong_password_fails_the_login_step_and_skips_the_rest(tmp_path: Path, shop: str) -> None:
    found, sink = run_example(tmp_path, shop, ("password: demo-password", "password: not-the-password"))
    assert found["probe_success"] == 0
    assert found['probe_failure_info{reason="assertion"}'] == 1
    assert sink.failure[1] == "step login: status 401, expected one of [200]"
    assert found['probe_journey_step_success{step="login_form"}'] == 1
    assert found['probe_journey_step_success{step="login"}'] == 0
    assert found['probe_journey_step_duration_seconds{step="login"}'] > 0
    for later in ("add_to_cart", "checkout"):
        assert found[f'probe_journey_step_success{{step="{later}"}}'] == 0
        assert found[f'probe_journey_step_duration_seconds{{step="{later}"}}'] == 0
    assert found["probe_http_status_code"] == 401  # the failed step's response


def test_the_shop_down_is_connection_refused_at_the_first_step(tmp_path: Path) -> None:
    found, sink = run_example(tmp_path, f"http://127.0.0.1:{free_port()}/")
    assert found["probe_success"] == 0
    assert found['probe_failure_info{reason="connection_refused"}'] == 1
    assert sink.failure[1].startswith("step home: ")
    assert all(found[f'probe_journey_step_success{{step="{step}"}}'] == 0 for step in STEPS)


def test_a_missing_csrf_token_makes_the_shop_refuse_the_login(shop: str) -> None:
    # Without the cookie jar and the extracted token the login is a 403: the shop really checks them.
    success, _, sink = run_prober(
        JOURNEY,
        shop,
        {
            "steps": [
                {"name": "login", "method": "POST", "url": "/login", "form": {"username": "demo", "password": "x"}}
            ]
        },
    )
    assert not success
    assert sink.failure == (FailureReason.ASSERTION, "step login: status 403, expected 2xx")


def test_json_expectation_names_the_expression_and_both_values(shop: str) -> None:
    steps = [
        {"name": "form", "url": "/login", "extract": {"csrf": {"regexp": 'name="csrf_token" value="([^"]+)"'}}},
        {
            "name": "login",
            "method": "POST",
            "url": "/login",
            "form": {"username": "demo", "password": "demo-password", "csrf_token": "{{csrf}}"},
        },
        {
            "name": "add",
            "method": "POST",
            "url": "/api/cart/items",
            "headers": {"X-CSRF-Token": "{{ csrf }}"},
            "json": {"sku": "mug-001", "quantity": 3},
            "expect": {"status": [201], "json": {"total_cents": 999}},
        },
    ]
    success, _, sink = run_prober(JOURNEY, shop, {"steps": steps})
    assert not success
    assert sink.failure == (FailureReason.ASSERTION, "step add: JSON total_cents is 4470, expected 999")


def test_values_come_from_headers_too_and_redirects_can_be_left_alone(shop: str) -> None:
    steps = [
        {"name": "form", "url": "/login", "extract": {"csrf": {"regexp": 'name="csrf_token" value="([^"]+)"'}}},
        {
            "name": "login",
            "method": "POST",
            "url": "/login",
            "form": {"username": "demo", "password": "demo-password", "csrf_token": "{{csrf}}"},
            "expect": {"status": [303]},
            "extract": {"next": {"header": "Location"}},
        },
        {"name": "account", "url": "{{next}}", "expect": {"body_regexp": "Signed in as demo"}},
    ]
    success, _, sink = run_prober(JOURNEY, shop, {"steps": steps, "follow_redirects": False})
    assert success, sink.failure


def test_an_extraction_that_finds_nothing_fails_the_step(shop: str) -> None:
    success, _, sink = run_prober(
        JOURNEY, shop, {"steps": [{"name": "home", "url": "/", "extract": {"token": {"regexp": "csrf=(\\w+)"}}}]}
    )
    assert not success
    assert sink.failure is not None
    assert sink.failure[0] is FailureReason.ASSERTION
    assert sink.failure[1].startswith("step home: token: regexp ")


def test_a_body_that_is_not_json_fails_a_json_expectation(shop: str) -> None:
    success, _, sink = run_prober(
        JOURNEY, shop, {"steps": [{"name": "home", "url": "/", "expect": {"json": {"ok": True}}}]}
    )
    assert not success
    assert sink.failure == (FailureReason.ASSERTION, "step home: the body is not JSON (text/html; charset=utf-8)")


def test_a_target_that_is_not_a_url_is_refused() -> None:
    success, _, sink = run_prober(JOURNEY, "127.0.0.1:8081", {"steps": [{"name": "home", "url": "/"}]})
    assert not success
    assert sink.failure is not None
    assert "http(s) URL" in sink.failure[1]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "at least 1 item"),
        ([{"name": "Home", "url": "/"}], "must be lower case letters"),
        ([{"name": "a", "url": "/"}, {"name": "a", "url": "/x"}], "two steps are named 'a'"),
        ([{"name": "a", "url": "/?id={{order}}"}], "step a uses {{order}}, which no earlier step extracts"),
        ([{"name": "a", "url": "/", "form": {"x": "1"}, "json": {}}], "at most one of body, form and json"),
        ([{"name": "a", "url": "/", "extract": {"x": {}}}], "exactly one of regexp, json or header"),
        ([{"name": "a", "url": "/", "expect": {"json": {"a[": 1}}}], "not a valid JMESPath expression"),
        ([{"name": "a", "url": "/", "expect": {"body_regexp": "("}}], "not a valid regular expression"),
        ([{"name": "a", "url": "/", "method": "GE T"}], "not an HTTP method"),
    ],
)
def test_config_errors(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        JourneyProbe(steps=steps)
    assert message in str(raised.value)


def test_config_errors_point_at_the_file_and_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("cart={{cart_id}}", "cart={{cart}}")
    path = tmp_path / "pulse.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "step checkout uses {{cart}}, which no earlier step extracts" in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_step_that_hangs_times_out_and_its_duration_shows_where_the_time_went(shop: str) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        module = ProbeModule.model_validate(
            {
                "prober": "journey",
                "timeout": "500ms",
                "journey": {
                    "steps": [
                        {"name": "home", "url": "/"},
                        {"name": "stuck", "url": f"http://127.0.0.1:{silent.getsockname()[1]}/"},
                        {"name": "after", "url": "/"},
                    ]
                },
            }
        )
        families, _ = asyncio.run(run_probe("journey_stuck", module, shop, None))
    found = samples_of(families)
    assert found['probe_failure_info{reason="timeout"}'] == 1
    assert found['probe_journey_step_success{step="home"}'] == 1
    assert found['probe_journey_step_success{step="stuck"}'] == 0
    assert (
        found['probe_journey_step_duration_seconds{step="stuck"}']
        > found['probe_journey_step_duration_seconds{step="home"}']
    )
    assert found['probe_journey_step_duration_seconds{step="after"}'] == 0


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("journey-certs"))


@contextmanager
def https_shop(pair: KeyPair) -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    server.socket = server_ssl_context(pair).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("pair", "tls_config", "reason"),
    [
        ("ca_signed", "ca", None),
        ("ca_signed", None, FailureReason.CERTIFICATE_INVALID),  # the test CA is not in the system store
        ("self_signed", "ca", FailureReason.CERTIFICATE_INVALID),
        ("expired", "ca", FailureReason.CERTIFICATE_EXPIRED),
        ("self_signed", "insecure", None),
    ],
)
def test_https_steps_use_tls_config(
    certificates: Certificates, pair: str, tls_config: str | None, reason: FailureReason | None
) -> None:
    options = {
        "ca": {"ca_file": str(certificates.ca_file)},
        "insecure": {"insecure_skip_verify": True},
        None: {},
    }[tls_config]
    with https_shop(getattr(certificates, pair)) as url:
        success, _, sink = run_prober(
            JOURNEY,
            url,
            {"steps": [{"name": "home", "url": "/", "expect": {"body_regexp": "Demo Shop"}}], "tls_config": options},
        )
    if reason is None:
        assert success, sink.failure
    else:
        assert not success
        assert sink.failure is not None
        assert sink.failure[0] is reason
        assert sink.failure[1].startswith("step home: certificate verification failed")
        leaf = getattr(certificates, pair).certificate
        found = samples_of(sink.families())
        assert found["probe_ssl_leaf_not_after_timestamp_seconds"] == leaf.not_valid_after_utc.timestamp()


@pytest.mark.integration
def test_the_example_through_a_running_exporter_with_a_debug_trace(
    tmp_path: Path, shop: str, start_exporter: StartExporter
) -> None:
    text = EXAMPLE.read_text().replace(f"http://127.0.0.1:{DEFAULT_PORT}/", shop)
    exporter = start_exporter(text)
    response = exporter.get("/probe", params={"module": "shop_checkout", "target": shop})
    assert response.status_code == 200
    found = parse_samples(response.text)
    assert found["probe_success"] == 1
    assert found['probe_journey_step_success{step="checkout"}'] == 1
    promtool = require_binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=response.text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    trace = exporter.get("/probe", params={"module": "shop_checkout", "target": shop, "debug": "true"}).text
    for line in (
        "step login: 303 redirect to /account",
        "step add_to_cart: extracted cart_id",
        "step checkout: status 200",
    ):
        assert line in trace

    # Not listed and not allowed: refused before any request leaves the host.
    assert exporter.get("/probe", params={"module": "shop_checkout", "target": "http://10.1.2.3/"}).status_code == 403


def test_the_shop_runs_as_a_module(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.demo.shop", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert f"http://127.0.0.1:{port}/" in process.stdout.readline()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"
    finally:
        process.terminate()
        process.wait(10)
