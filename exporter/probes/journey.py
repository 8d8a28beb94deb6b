"""The `journey` prober (a Pulse extension): a business transaction as a sequence of HTTP steps.

The steps share one cookie jar, so a login holds for the steps after it. Each step may assert on its
response (status, a body regex, values in a JSON body) and extract values for later steps, which use them
as `{{name}}` in their url, headers and body. (`${...}` is taken by pulse.yml's environment variables,
which suits secrets such as a password.) The probe stops at the first step that fails; the steps after it
report success 0 and duration 0, and the failure detail names the step.

Redirects are followed hop by hop here, within the rules of redirects.py: each hop's address is checked
before connecting (pinned.py), and the module's and step's `headers` go only to the step's own origin.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import jmespath
import jmespath.exceptions
import jmespath.parser
import pydantic

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.config.types import Regex, StrictModel
from exporter.probes.base import FailureReason, Prober, ProbeSink
from exporter.probes.http_common import REDIRECT_LIMIT, USER_AGENT, HttpMethod
from exporter.probes.redirects import RedirectBlocked, RedirectRules, address_class, origin
from exporter.probes.resolver import ResolveError
from exporter.probes.tls import fetch_leaf_certificate, report_leaf, tls_failure

if TYPE_CHECKING:  # httpx is imported where a journey runs: ~1.5 MiB RSS a config without journeys never pays
    import httpx

    from exporter.probes.pinned import PinnedBackend

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
STEP_NAME = re.compile(r"[a-z0-9_]+")
BODY_LIMIT = 10 * 1024 * 1024  # a step's body is read whole for its assertions; beyond this it fails


def _jmespath(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as err:
        raise ValueError(f"not a valid JMESPath expression {expression!r}: {err}") from None
    return expression


class Expect(StrictModel):
    status: list[int] = []  # empty: any 2xx
    body_regexp: Regex | None = None
    json_values: dict[str, Any] = pydantic.Field({}, alias="json")  # JMESPath expression: expected value

    @pydantic.field_validator("json_values")
    @classmethod
    def _expressions(cls, values: dict[str, Any]) -> dict[str, Any]:
        for expression in values:
            _jmespath(expression)
        return values


class Extract(StrictModel):
    """Exactly one source: `regexp` (group 1, or the whole match), `json` (JMESPath) or `header`."""

    regexp: Regex | None = None
    json_path: str | None = pydantic.Field(None, alias="json")
    header: str | None = None

    @pydantic.field_validator("json_path")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        return _jmespath(value) if value is not None else None

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> Extract:
        if sum(x is not None for x in (self.regexp, self.json_path, self.header)) != 1:
            raise ValueError("give exactly one of regexp, json or header")
        return self


class Step(StrictModel):
    name: str
    method: HttpMethod = "GET"
    url: str
    headers: dict[str, str] = {}
    body: str | None = None
    form: dict[str, str] | None = None
    json_body: Any = pydantic.Field(None, alias="json")
    expect: Expect = Expect()
    extract: dict[str, Extract] = {}

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STEP_NAME.fullmatch(value):
            raise ValueError(f"step name {value!r} must be lower case letters, digits and _ (it is a label value)")
        return value

    @pydantic.field_validator("extract")
    @classmethod
    def _variable_names(cls, value: dict[str, Extract]) -> dict[str, Extract]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"variable name {name!r} must be letters, digits and _")
        return value

    @pydantic.model_validator(mode="after")
    def _one_body(self) -> Step:
        if sum(x is not None for x in (self.body, self.form, self.json_body)) > 1:
            raise ValueError(f"step {self.name}: give at most one of body, form and json")
        return self

    def references(self) -> set[str]:
        texts = [self.url, self.body or "", *self.headers.values(), *(self.form or {}).values()]
        texts.append(json.dumps(self.json_body))
        return {match for text in texts for match in VARIABLE.findall(text)}


class JourneyProbe(StrictModel):
    steps: list[Step] = pydantic.Field(min_length=1)
    follow_redirects: bool = True
    # Follow a redirect only within the step's origin (or to a URL probes.targets / probes.allow accept).
    same_origin_redirects_only: bool = False
    # Send `headers` (the module's and the step's) also after a redirect to another origin than the step's.
    cross_origin_redirect_credentials: bool = False
    headers: dict[str, str] = {}  # sent with every step (a step's own headers win)
    tls_config: TLSClientConfig = TLSClientConfig()

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> JourneyProbe:
        known: set[str] = set()
        names: set[str] = set()
        for step in self.steps:
            if step.name in names:
                raise ValueError(f"two steps are named {step.name!r}; step names must be unique")
            names.add(step.name)
            missing = step.references() - known
            if missing:
                raise ValueError(
                    f"step {step.name} uses {{{{{sorted(missing)[0]}}}}}, which no earlier step extracts"
                    f" (extracted so far: {', '.join(sorted(known)) or 'none'})"
                )
            known |= set(step.extract)
        return self


class StepFailed(Exception):
    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def substitute(value: Any, variables: dict[str, str]) -> Any:
    """`{{name}}` replaced in every string inside `value` (strings, lists, dicts)."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: variables[m.group(1)], value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def _transport_failure(err: httpx.HTTPError) -> tuple[FailureReason, str]:
    """The reason behind an httpx error: its chain of causes holds the socket or TLS error."""
    import httpx  # noqa: PLC0415

    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return tls_failure(cause)
        if isinstance(cause, socket.gaierror):
            return FailureReason.DNS_ERROR, f"cannot resolve the host: {cause.strerror}"
        if isinstance(cause, ResolveError):
            return FailureReason.DNS_ERROR, str(cause)
        if isinstance(cause, ConnectionRefusedError):
            return FailureReason.CONNECTION_REFUSED, "connection refused"
        cause = cause.__cause__ or cause.__context__
    if isinstance(err, httpx.TimeoutException):
        return FailureReason.TIMEOUT, "timed out"
    if isinstance(err, httpx.ConnectError) and "certificate" in str(err).lower():
        return FailureReason.CERTIFICATE_INVALID, str(err)
    if isinstance(err, httpx.ConnectError) and "refused" in str(err).lower():
        return FailureReason.CONNECTION_REFUSED, "connection refused"
    if isinstance(err, httpx.RemoteProtocolError | httpx.DecodingError):
        return FailureReason.PROTOCOL_ERROR, str(err) or type(err).__name__
    return FailureReason.CONNECTION_ERROR, str(err) or type(err).__name__


@dataclass(frozen=True)
class Reply:
    """A step's final response, its body read in full (within BODY_LIMIT)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    encoding: str

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")


def _json_body(response: Reply, step: Step) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        content_type = response.headers.get("content-type", "no content type")
        raise StepFailed(FailureReason.ASSERTION, f"step {step.name}: the body is not JSON ({content_type})") from None


def check(step: Step, response: Reply) -> None:
    """Raise StepFailed for the first expectation the response misses."""
    expect = step.expect
    status = response.status_code
    if (expect.status and status not in expect.status) or (not expect.status and not 200 <= status < 300):
        wanted = f"one of {expect.status}" if expect.status else "2xx"
        raise StepFailed(FailureReason.ASSERTION, f"step {step.name}: status {status}, expected {wanted}")
    if expect.body_regexp is not None and not expect.body_regexp.search(response.text):
        raise StepFailed(
            FailureReason.ASSERTION, f"step {step.name}: body does not match {expect.body_regexp.pattern!r}"
        )
    if expect.json_values:
        data = _json_body(response, step)
        for expression, wanted_value in expect.json_values.items():
            found = jmespath.search(expression, data)
            if found != wanted_value:
                raise StepFailed(
                    FailureReason.ASSERTION,
                    f"step {step.name}: JSON {expression} is {json.dumps(found)}, expected {json.dumps(wanted_value)}",
                )


def extract(step: Step, response: Reply) -> dict[str, str]:
    values: dict[str, str] = {}
    for variable, source in step.extract.items():
        found: Any = None
        if source.regexp is not None:
            match = source.regexp.search(response.text)
            found = (match.group(1) if source.regexp.groups else match.group(0)) if match else None
            what = f"regexp {source.regexp.pattern!r}"
        elif source.json_path is not None:
            found = jmespath.search(source.json_path, _json_body(response, step))
            what = f"JSON {source.json_path}"
        else:
            found = response.headers.get(str(source.header))
            what = f"header {source.header}"
        if found is None:
            raise StepFailed(FailureReason.ASSERTION, f"step {step.name}: {variable}: {what} found nothing")
        values[variable] = found if isinstance(found, str) else json.dumps(found)
    return values


def _report_step(sink: ProbeSink, name: str, success: bool, seconds: float) -> None:
    sink.gauge(
        "probe_journey_step_success",
        "Whether the journey step succeeded (0 for the steps after a failed one)",
        float(success),
        {"step": name},
    )
    sink.gauge(
        "probe_journey_step_duration_seconds",
        "Duration of the journey step, redirects included (0 for steps not run)",
        seconds,
        {"step": name},
    )


def _report_status_code(sink: ProbeSink, status_code: int) -> None:
    sink.gauge("probe_http_status_code", "Response HTTP status code of the last step that got a response", status_code)


async def probe(target: str, config: JourneyProbe, sink: ProbeSink) -> bool:
    # Every series from the start, so a probe cut at its deadline reports them all.
    sink.gauge("probe_journey_steps", "Number of steps in the journey", len(config.steps))
    for step in config.steps:
        _report_step(sink, step.name, False, 0.0)
    _report_status_code(sink, 0)

    if not re.match(r"https?://", target):
        return sink.fail(FailureReason.PROTOCOL_ERROR, f"a journey target is an http(s) URL, not {target!r}")
    import httpx  # noqa: PLC0415

    from exporter.probes.pinned import PinnedBackend, PinnedTransport  # noqa: PLC0415

    variables: dict[str, str] = {}
    backend = PinnedBackend(sink)
    # A client per probe: a fresh cookie jar every time. trust_env=False: no proxy or .netrc from the
    # exporter's environment changes what is probed. The runner owns the deadline, so no httpx timeout.
    # Redirects are followed by _follow, which checks each hop.
    async with httpx.AsyncClient(
        transport=PinnedTransport(backend, client_ssl_context(config.tls_config)),
        follow_redirects=False,
        trust_env=False,
        timeout=None,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        session = _Session(client, backend, config, sink)
        for step in config.steps:
            started = time.perf_counter()
            success = False
            try:
                reply = await _request(session, target, step, variables)
                _report_status_code(sink, reply.status_code)  # also when this step's checks fail below
                check(step, reply)
                found = extract(step, reply)
                for name, value in found.items():
                    sink.log(f"step {step.name}: extracted {name} ({len(value)} characters)")
                variables.update(found)
                success = True
            except StepFailed as failure:
                return sink.fail(failure.reason, failure.detail)
            finally:  # also when the deadline cancels the step: its duration shows where the time went
                _report_step(sink, step.name, success, time.perf_counter() - started)
    return True


async def _report_rejected_certificate(err: httpx.HTTPError, tls_config: TLSClientConfig, sink: ProbeSink) -> None:
    """The leaf's validity also when verification failed (as the http prober does): a second handshake
    without verification reads it."""
    try:
        url = err.request.url
    except RuntimeError:  # an error without its request
        return
    name = tls_config.server_name or url.host
    leaf = await fetch_leaf_certificate(url.host, url.port or 443, name, tls_config)
    if leaf is not None:
        report_leaf(sink, leaf)


@dataclass(frozen=True)
class _Session:
    """What every step of one probe uses."""

    client: httpx.AsyncClient
    backend: PinnedBackend
    config: JourneyProbe
    sink: ProbeSink


async def _request(session: _Session, target: str, step: Step, variables: dict[str, str]) -> Reply:
    """Send the step's request (variables substituted) and read the whole final response."""
    import httpx  # noqa: PLC0415

    sink = session.sink
    url = urljoin(target, substitute(step.url, variables))
    configured: dict[str, str] = {**session.config.headers, **substitute(step.headers, variables)}
    request = session.client.build_request(
        step.method,
        url,
        headers=configured,
        content=substitute(step.body, variables),
        data=substitute(step.form, variables),
        json=substitute(step.json_body, variables),
    )
    sink.log(f"step {step.name}: {step.method} {url}")
    try:
        response = await _follow(session, step, request, configured)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > BODY_LIMIT:
                    raise StepFailed(
                        FailureReason.BODY_TOO_LARGE, f"step {step.name}: body larger than {BODY_LIMIT} bytes"
                    )
        finally:
            await response.aclose()
    except httpx.HTTPError as err:
        reason, detail = _transport_failure(err)
        if reason in (FailureReason.CERTIFICATE_EXPIRED, FailureReason.CERTIFICATE_INVALID):
            await _report_rejected_certificate(err, session.config.tls_config, sink)
        raise StepFailed(reason, f"step {step.name}: {detail}") from None
    except RedirectBlocked as err:
        raise StepFailed(FailureReason.REDIRECT_BLOCKED, f"step {step.name}: {err}") from None
    sink.log(f"step {step.name}: status {response.status_code}, {len(body)} bytes")
    return Reply(response.status_code, response.headers, bytes(body), response.encoding or "utf-8")


async def _follow(session: _Session, step: Step, request: httpx.Request, configured: dict[str, str]) -> httpx.Response:
    """Send the step's request and follow its redirects (with follow_redirects), each hop checked by the
    rules of redirects.py before it connects. Returns the final response, its body not read yet."""
    config, backend, sink = session.config, session.backend, session.sink
    rules = RedirectRules(sink.listed, config.same_origin_redirects_only)
    start = str(request.url)
    backend.check = None  # the step's own URL is configured, not redirected to
    redirects = 0
    while True:
        backend.connected = None
        response = await session.client.send(request, stream=True)
        following = response.next_request
        if not config.follow_redirects or following is None:
            return response
        await response.aclose()
        location = response.headers.get("location")
        sink.log(f"step {step.name}: {response.status_code} redirect to {location}")
        if redirects == REDIRECT_LIMIT:
            raise StepFailed(
                FailureReason.REDIRECT_LIMIT,
                f"step {step.name}: more than {REDIRECT_LIMIT} redirects (last to {location})",
            )
        redirects += 1
        url = str(following.url)
        # No keep-alive (pinned.py): the response came over the connection just made, from this address.
        assert backend.connected is not None
        backend.check = None if rules.check_url(url, start) else _address_check(rules, url, backend.connected)
        credentials = config.cross_origin_redirect_credentials or origin(url) == origin(start)
        if not credentials and configured:
            sink.log(f"step {step.name}: configured headers not sent to {url} (another origin than the step's)")
        _carry_configured_headers(following, configured, send=credentials)
        request = following


def _address_check(rules: RedirectRules, url: str, sender_ip: str) -> Callable[[str], object]:
    sender = address_class(sender_ip)
    return lambda ip: rules.check_address(url, ip, sender)


def _carry_configured_headers(request: httpx.Request, configured: dict[str, str], *, send: bool) -> None:
    """The configured headers on a redirect: all of them within the step's origin (httpx itself drops
    Cookie on every redirect and Authorization on another origin), none of them elsewhere."""
    for name, value in configured.items():
        if send:
            request.headers[name] = value
        else:
            request.headers.pop(name, None)
    if not send:
        request.headers.setdefault("User-Agent", USER_AGENT)
        request.headers["Host"] = request.url.netloc.decode("ascii")


PROBER = Prober("journey", JourneyProbe, probe)
