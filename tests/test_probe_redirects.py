"""Where redirects may take the http and journey probers (exporter/probes/redirects.py).

Credentials and configured headers stay with the origin they were configured for; a redirect cannot move
a probe to a more internal address class (public > private > loopback | link-local) unless probes.targets
or probes.allow accept its URL; `same_origin_redirects_only` keeps a probe on its origin.

Every test server is on loopback. A redirect to 169.254.169.254 must be refused before anything is sent:
while a probe runs under `connections_recorded()`, an audit hook records every socket.connect() of this
process and refuses (before the system call) any that is not to loopback, so even a regression sends
nothing there, and the test sees the attempt. Public and private addresses are tested inside a network
namespace of the test's own (only a loopback device, nothing can leave it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.http import PROBER as HTTP
from exporter.probes.http_common import USER_AGENT
from exporter.probes.journey import PROBER as JOURNEY
from exporter.probes.redirects import AddressClass, RedirectBlocked, RedirectRules, address_class, may_redirect
from tests.helpers import StartExporter, parse_samples, require_binary, samples_of, unavailable
from tests.probe_servers import HttpServer, LoopThread, Responder, fixed, redirect, run_prober, start_http

SECRET_BASIC = "Basic c3ZjOlRvcFNlY3JldFB3"  # svc:TopSecretPw
CREDENTIALS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "basic_auth": ({"basic_auth": {"username": "svc", "password": "TopSecretPw"}}, {"authorization": SECRET_BASIC}),
    "bearer_token": ({"bearer_token": "t0ken"}, {"authorization": "Bearer t0ken"}),
    "authorization": (
        {"authorization": {"type": "Token", "credentials": "cr3d"}},
        {"authorization": "Token cr3d"},
    ),
    "headers": (
        {"headers": {"Cookie": "session=s3cret", "X-Api-Key": "k3y", "Authorization": "Bearer h3ader"}},
        {"cookie": "session=s3cret", "x-api-key": "k3y", "authorization": "Bearer h3ader"},
    ),
}

# ------------------------------------------------------------------------------------ connection recording

_recording: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or _recording is None or not isinstance(args[1], tuple):
        return
    host = str(args[1][0])
    _recording.append(host)
    if not ipaddress.ip_address(host.partition("%")[0]).is_loopback:
        raise PermissionError(f"the test refuses a connection to {host}: only loopback is allowed")


sys.addaudithook(_audit)  # cannot be removed; inert outside connections_recorded()


@contextlib.contextmanager
def connections_recorded() -> Iterator[list[str]]:
    """The addresses this process connects to inside the block; non-loopback ones are refused."""
    global _recording  # noqa: PLW0603 - the audit hook is process-wide
    _recording = []
    try:
        yield _recording
    finally:
        _recording = None


# ------------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def servers() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def serve(servers: LoopThread, routes: dict[str, Responder]) -> HttpServer:
    return start_http(servers, routes)


def reason(sink: ProbeSink) -> FailureReason | None:
    return sink.failure[0] if sink.failure else None


def trace(sink: ProbeSink) -> str:
    return "\n".join(sink.trace)


def leaked(headers: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in secrets if name in headers}


# ----------------------------------------------------------------------------------- credentials, http


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_credentials_are_not_sent_to_another_origin_on_redirect(servers: LoopThread, kind: str) -> None:
    options, secrets = CREDENTIALS[kind]
    other = serve(servers, {"/landing": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/landing"))})
    ok, _, sink = run_prober(HTTP, target.url("/"), options)
    assert ok, trace(sink)
    assert leaked(target.requests[0].headers, secrets) == secrets  # the target itself gets them
    assert len(other.requests) == 1
    assert leaked(other.requests[0].headers, secrets) == {}
    assert "credentials and configured headers not sent" in trace(sink)


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_credentials_follow_a_redirect_within_the_target_origin(servers: LoopThread, kind: str) -> None:
    options, secrets = CREDENTIALS[kind]
    target = serve(servers, {"/": redirect("/next"), "/next": fixed(200)})
    ok, _, sink = run_prober(HTTP, target.url("/"), options)
    assert ok, trace(sink)
    assert [r.target for r in target.requests] == ["/", "/next"]
    assert leaked(target.requests[1].headers, secrets) == secrets


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_cross_origin_redirect_credentials_sends_them_to_another_origin(servers: LoopThread, kind: str) -> None:
    options, secrets = CREDENTIALS[kind]
    other = serve(servers, {"/landing": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/landing"))})
    ok, _, sink = run_prober(HTTP, target.url("/"), {**options, "cross_origin_redirect_credentials": True})
    assert ok, trace(sink)
    assert leaked(other.requests[0].headers, secrets) == secrets


def test_another_port_or_scheme_is_another_origin(servers: LoopThread) -> None:
    other = serve(servers, {"/": fixed(200)})
    target = serve(servers, {"/": redirect(f"http://127.0.0.1:{other.port}/")})
    run_prober(HTTP, target.url("/"), {"bearer_token": "t0ken"})
    assert "authorization" not in other.requests[0].headers
    assert other.requests[0].headers["host"] == f"127.0.0.1:{other.port}"


# -------------------------------------------------------------------------------- credentials, journey


def journey(**options: Any) -> dict[str, Any]:
    return {"steps": [{"name": "home", "url": "/"}], **options}


JOURNEY_SECRETS = {"cookie": "session=s3cret", "x-api-key": "k3y", "authorization": "Bearer h3ader", "x-step": "st3p"}
JOURNEY_HEADERS = {"headers": {"Cookie": "session=s3cret", "X-Api-Key": "k3y", "Authorization": "Bearer h3ader"}}


def journey_with_headers(**options: Any) -> dict[str, Any]:
    config = journey(**JOURNEY_HEADERS, **options)
    config["steps"][0]["headers"] = {"X-Step": "st3p"}
    return config


def test_journey_headers_are_not_sent_to_another_origin_on_redirect(servers: LoopThread) -> None:
    other = serve(servers, {"/landing": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/landing"))})
    ok, _, sink = run_prober(JOURNEY, target.url("/"), journey_with_headers())
    assert ok, trace(sink)
    assert leaked(target.requests[0].headers, JOURNEY_SECRETS) == JOURNEY_SECRETS
    assert leaked(other.requests[0].headers, JOURNEY_SECRETS) == {}
    assert other.requests[0].headers["host"] == f"127.0.0.1:{other.port}"
    # The http prober's User-Agent, on the step's own request and after the redirect alike.
    assert target.requests[0].headers["user-agent"] == other.requests[0].headers["user-agent"] == USER_AGENT


def test_journey_headers_follow_a_redirect_within_the_step_origin(servers: LoopThread) -> None:
    target = serve(servers, {"/": redirect("/next"), "/next": fixed(200)})
    ok, _, sink = run_prober(JOURNEY, target.url("/"), journey_with_headers())
    assert ok, trace(sink)
    assert [r.target for r in target.requests] == ["/", "/next"]
    # Cookie too, which httpx drops on every redirect of its own.
    assert leaked(target.requests[1].headers, JOURNEY_SECRETS) == JOURNEY_SECRETS


def test_journey_cross_origin_redirect_credentials_sends_them_to_another_origin(servers: LoopThread) -> None:
    other = serve(servers, {"/landing": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/landing"))})
    ok, _, sink = run_prober(JOURNEY, target.url("/"), journey_with_headers(cross_origin_redirect_credentials=True))
    assert ok, trace(sink)
    assert leaked(other.requests[0].headers, JOURNEY_SECRETS) == JOURNEY_SECRETS


# ------------------------------------------------------------------------------------- address classes

METADATA = "http://169.254.169.254/latest/meta-data/"


@pytest.mark.parametrize(
    "location",
    [METADATA, "http://[::ffff:169.254.169.254]/latest/meta-data/", "http://[64:ff9b::a9fe:a9fe]/"],
    ids=["ipv4", "ipv4-mapped-ipv6", "nat64"],
)
def test_a_redirect_from_loopback_to_link_local_is_refused_before_connecting(
    servers: LoopThread, location: str
) -> None:
    target = serve(servers, {"/": redirect(location)})
    with connections_recorded() as connected:
        ok, _, sink = run_prober(HTTP, target.url("/"), {})
    assert not ok
    assert reason(sink) == FailureReason.REDIRECT_BLOCKED
    assert connected == ["127.0.0.1"]  # the target only
    log = trace(sink)
    assert f"redirect 1 to {location}" in log
    assert "link_local address) refused: it came from a loopback address" in log
    assert log.count("(connecting to ") == 1  # the target's request only
    assert f"GET {location}" not in log
    samples = samples_of(sink.families())
    assert samples["probe_http_redirects"] == 1
    assert samples["probe_http_status_code"] == 302  # the last response the probe got


def test_journey_redirect_from_loopback_to_link_local_is_refused_before_connecting(servers: LoopThread) -> None:
    target = serve(servers, {"/": redirect(METADATA)})
    with connections_recorded() as connected:
        ok, _, sink = run_prober(JOURNEY, target.url("/"), journey())
    assert not ok
    assert reason(sink) == FailureReason.REDIRECT_BLOCKED
    assert connected == ["127.0.0.1"]
    log = trace(sink)
    assert f"step home: 302 redirect to {METADATA}" in log
    assert "connecting to 169.254.169.254" not in log
    assert f"connecting to 127.0.0.1 port {target.port}" in log
    assert sink.failure is not None
    assert sink.failure[1].startswith("step home: redirect to")


def test_a_redirect_within_loopback_is_followed(servers: LoopThread) -> None:
    other = serve(servers, {"/": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/"))})
    with connections_recorded() as connected:
        ok, _, sink = run_prober(HTTP, target.url("/"), {})
        journey_ok, _, journey_sink = run_prober(JOURNEY, target.url("/"), journey())
    assert ok, trace(sink)
    assert journey_ok, trace(journey_sink)
    assert connected == ["127.0.0.1"] * 4


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.8.9.10", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("0.0.0.0", AddressClass.LOOPBACK),  # Linux connects it to this host
        ("::", AddressClass.LOOPBACK),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("169.254.169.254", AddressClass.LINK_LOCAL),
        ("fe80::1%eth0", AddressClass.LINK_LOCAL),
        ("::ffff:169.254.169.254", AddressClass.LINK_LOCAL),
        ("64:ff9b::a9fe:a9fe", AddressClass.LINK_LOCAL),
        ("::a9fe:a9fe", AddressClass.LINK_LOCAL),
        ("10.0.0.5", AddressClass.PRIVATE),
        ("172.16.3.4", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),
        ("fd00::1", AddressClass.PRIVATE),
        ("::ffff:10.1.2.3", AddressClass.PRIVATE),
        ("224.0.0.1", AddressClass.PRIVATE),
        ("8.8.8.8", AddressClass.PUBLIC),
        ("2001:4860:4860::8888", AddressClass.PUBLIC),
        ("::ffff:8.8.8.8", AddressClass.PUBLIC),
        ("64:ff9b::808:808", AddressClass.PUBLIC),
    ],
)
def test_address_classes(ip: str, expected: AddressClass) -> None:
    assert address_class(ip) == expected


PUBLIC, PRIVATE, LOOPBACK, LINK_LOCAL = (
    AddressClass.PUBLIC,
    AddressClass.PRIVATE,
    AddressClass.LOOPBACK,
    AddressClass.LINK_LOCAL,
)


@pytest.mark.parametrize(
    ("sender", "destination", "allowed"),
    [
        (PUBLIC, PUBLIC, True),
        (PUBLIC, PRIVATE, False),
        (PUBLIC, LOOPBACK, False),
        (PUBLIC, LINK_LOCAL, False),
        (PRIVATE, PUBLIC, True),
        (PRIVATE, PRIVATE, True),
        (PRIVATE, LOOPBACK, False),
        (PRIVATE, LINK_LOCAL, False),
        (LOOPBACK, PUBLIC, True),
        (LOOPBACK, PRIVATE, True),
        (LOOPBACK, LOOPBACK, True),
        (LOOPBACK, LINK_LOCAL, False),
        (LINK_LOCAL, PUBLIC, True),
        (LINK_LOCAL, PRIVATE, True),
        (LINK_LOCAL, LOOPBACK, False),
        (LINK_LOCAL, LINK_LOCAL, True),
    ],
)
def test_a_redirect_never_moves_a_probe_to_a_more_internal_address_class(
    sender: AddressClass, destination: AddressClass, allowed: bool
) -> None:
    assert may_redirect(sender, destination) is allowed


def test_the_rules_check_the_resolved_address_not_the_name() -> None:
    rules = RedirectRules(listed=lambda url: False)
    # A public-looking name that resolved to the metadata address (DNS rebinding) is refused by address.
    with pytest.raises(RedirectBlocked, match=r"169\.254\.169\.254, link_local address\) refused"):
        rules.check_address("http://status.example.com/", "169.254.169.254", PUBLIC)
    assert rules.check_address("http://status.example.com/", "93.184.215.14", PUBLIC) == PUBLIC


def test_a_listed_url_needs_no_address_check_and_passes_same_origin_only() -> None:
    listed = "http://10.0.0.5/health"
    rules = RedirectRules(listed=lambda url: url == listed, same_origin_only=True)
    assert rules.check_url(listed, "https://shop.example.com/") is True
    assert rules.check_url("https://shop.example.com:443/next", "https://shop.example.com/") is False
    with pytest.raises(RedirectBlocked, match=r"leaves the origin https://shop\.example\.com:443"):
        rules.check_url("http://shop.example.com/", "https://shop.example.com/")


# ------------------------------------------------------------------------------------ same origin only


def test_same_origin_redirects_only_refuses_a_redirect_to_another_origin(servers: LoopThread) -> None:
    other = serve(servers, {"/": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/")), "/same": redirect("/ok"), "/ok": fixed(200)})
    ok, _, sink = run_prober(HTTP, target.url("/"), {"same_origin_redirects_only": True})
    assert not ok
    assert reason(sink) == FailureReason.REDIRECT_BLOCKED
    assert "(same_origin_redirects_only)" in trace(sink)
    assert other.connections == 0
    ok, _, sink = run_prober(HTTP, target.url("/same"), {"same_origin_redirects_only": True})
    assert ok, trace(sink)


def test_journey_same_origin_redirects_only_refuses_a_redirect_to_another_origin(servers: LoopThread) -> None:
    other = serve(servers, {"/": fixed(200)})
    target = serve(servers, {"/": redirect(other.url("/"))})
    ok, _, sink = run_prober(JOURNEY, target.url("/"), journey(same_origin_redirects_only=True))
    assert not ok
    assert reason(sink) == FailureReason.REDIRECT_BLOCKED
    assert other.connections == 0


# ------------------------------------------------------------------------- listed URLs, through /probe


def test_a_redirect_to_a_listed_or_allowed_url_is_followed_through_probe(
    servers: LoopThread, start_exporter: StartExporter
) -> None:
    listed = serve(servers, {"/landing": fixed(200)})
    allowed = serve(servers, {"/landing": fixed(200)})
    unlisted = serve(servers, {"/landing": fixed(200)})
    target = serve(
        servers,
        {
            "/listed": redirect(listed.url("/landing")),
            "/allowed": redirect(allowed.url("/landing")),
            "/unlisted": redirect(unlisted.url("/landing")),
        },
    )
    pulse = start_exporter(f"""
collectors: {{host: {{enabled: false}}}}
probes:
  modules:
    web: {{prober: http, http: {{preferred_ip_protocol: ip4, same_origin_redirects_only: true}}}}
    shop: {{prober: journey, journey: {{same_origin_redirects_only: true, steps: [{{name: home, url: /listed}}]}}}}
  targets:
    - {{target: "{target.url("/listed")}", module: web}}
    - {{target: "{target.url("/allowed")}", module: web}}
    - {{target: "{target.url("/unlisted")}", module: web}}
    - {{target: "{listed.url("/landing")}", module: web}}
    - {{target: "{target.url("/")}", module: shop}}
    - {{target: "{listed.url("/landing")}", module: shop}}
  allow: ['http://127\\.0\\.0\\.1:{allowed.port}/.*']
""")

    def probe(url: str, module: str = "web") -> tuple[dict[str, float], str]:
        params = {"target": url, "module": module}
        samples = parse_samples(pulse.get("/probe", params=params).text)
        return samples, pulse.get("/probe", params={**params, "debug": "true"}).text

    samples, log = probe(target.url("/listed"))
    assert samples["probe_success"] == 1, log
    samples, log = probe(target.url("/allowed"))
    assert samples["probe_success"] == 1, log
    samples, log = probe(target.url("/unlisted"))
    assert samples["probe_success"] == 0
    assert samples['probe_failure_info{reason="redirect_blocked"}'] == 1
    assert "(same_origin_redirects_only)" in log
    assert unlisted.connections == 0
    samples, log = probe(target.url("/"), "shop")
    assert samples["probe_success"] == 1, log


# ------------------------------------------------------------- public and private addresses, in a netns

# Inside a network namespace of the test's own, with only its loopback device: PUBLIC_IP looks public,
# PRIVATE_IP private, and internal.test resolves to PRIVATE_IP through an /etc/hosts bind-mounted in a
# mount namespace of its own. Nothing can leave: the namespace has no other interface.
PUBLIC_IP, OTHER_PUBLIC_IP, PRIVATE_IP = "11.0.0.1", "11.0.0.2", "10.0.0.1"


def _netns_scenario() -> None:
    """Run in the namespace (see the test below): set it up, probe, print the results as JSON."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for ip in (PUBLIC_IP, OTHER_PUBLIC_IP, PRIVATE_IP):
        subprocess.run(["ip", "address", "add", f"{ip}/32", "dev", "lo"], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False) as hosts:
        hosts.write(f"127.0.0.1 localhost\n{PRIVATE_IP} internal.test\n{OTHER_PUBLIC_IP} public.test\n")
    subprocess.run(["mount", "--bind", hosts.name, "/etc/hosts"], check=True)
    os.unlink(hosts.name)  # the bind mount keeps the file for this namespace's lifetime

    thread = LoopThread()
    loopback = start_http(thread, {"/admin": fixed(200)})
    private = start_http(thread, {"/admin": fixed(200), "/listed": fixed(200)}, host=PRIVATE_IP)
    private.routes["/to-loopback"] = redirect(loopback.url("/admin"))
    other = start_http(thread, {"/ok": fixed(200)}, host=OTHER_PUBLIC_IP)
    listed_url = private.url("/listed")
    public = start_http(
        thread,
        {
            "/to-private": redirect(private.url("/admin")),
            "/to-private-name": redirect(f"http://internal.test:{private.port}/admin"),
            "/to-loopback": redirect(loopback.url("/admin")),
            "/to-public-name": redirect(f"http://public.test:{other.port}/ok"),
            "/to-listed": redirect(listed_url),
        },
        host=PUBLIC_IP,
    )
    results: dict[str, Any] = {}
    for case in ("to-private", "to-private-name", "to-loopback", "to-public-name", "to-listed"):
        ok, _, sink = run_prober(HTTP, public.url(f"/{case}"), {}, listed=lambda url: url == listed_url)
        results[f"http {case}"] = [ok, sink.failure[0].value if sink.failure else None]
        steps = {"steps": [{"name": "home", "url": f"/{case}"}]}
        ok, _, sink = run_prober(JOURNEY, public.url("/"), steps, listed=lambda url: url == listed_url)
        results[f"journey {case}"] = [ok, sink.failure[0].value if sink.failure else None]
    ok, _, sink = run_prober(HTTP, private.url("/to-loopback"), {})
    results["http private to-loopback"] = [ok, sink.failure[0].value if sink.failure else None]
    results["internal requests"] = sorted(r.target for r in private.requests + loopback.requests)
    print(json.dumps(results))


def test_redirects_from_a_public_address_to_private_or_loopback_are_refused_in_a_netns() -> None:
    require_binary("ip")
    unshare = require_binary("unshare")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    command = [unshare, *user, "--net", "--mount", sys.executable, "-c"]
    code = "from tests.test_probe_redirects import _netns_scenario; _netns_scenario()"
    done = subprocess.run(
        [*command, code], check=False, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 and "unshare failed" in done.stderr:
        unavailable(f"cannot create a network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    blocked = [False, "redirect_blocked"]
    for prober in ("http", "journey"):
        assert results[f"{prober} to-private"] == blocked
        assert results[f"{prober} to-private-name"] == blocked  # checked on the address the name resolved to
        assert results[f"{prober} to-loopback"] == blocked
        assert results[f"{prober} to-public-name"] == [True, None]
        assert results[f"{prober} to-listed"] == [True, None]
    assert results["http private to-loopback"] == blocked
    # Only the listed URL was reached, once per prober; the refused ones were never connected to.
    assert results["internal requests"] == ["/listed", "/listed", "/to-loopback"]
