"""The `http` prober, blackbox_exporter's prober/http.go with its options and metric names.

The target is a URL (`http://` is assumed when the scheme is missing). The probe resolves the host
(preferred IP protocol with fallback), sends the request on a new connection, follows redirects (up to
10, on new connections, re-resolving each host; within the rules of redirects.py: credentials stay with
the target's origin, no redirect to a more internal address), then checks the last response: status
code, headers, body, HTTP version, TLS or not. Metrics are written as the probe goes (those of a response
when its head arrives), so a probe the runner cancels at the deadline still shows how far it got (as in
blackbox).

Differences from blackbox_exporter: only HTTP/1.x is spoken (no HTTP/2 over ALPN), compression
supports gzip and deflate (not br), and the redirect rules above (blackbox has no address check).
"""

from __future__ import annotations

import base64
import email.utils
import re
import urllib.parse
from typing import Literal

import pydantic

from exporter.config.tls import TLSClientConfig, client_ssl_context
from exporter.config.types import Regex, StrictModel, secret_field
from exporter.probes.base import (
    FailureReason,
    PhaseDurations,
    Prober,
    ProbeSink,
    broken_regex,
    report_regex_failure,
)
from exporter.probes.http_common import REDIRECT_LIMIT, USER_AGENT, HttpMethod
from exporter.probes.httpclient import (
    BodyOptions,
    HttpRequest,
    HttpResponse,
    RequestFailed,
    TLSHandshakeFailed,
    TLSSettings,
    exchange,
)
from exporter.probes.redirects import AddressClass, RedirectBlocked, RedirectRules, address_class, origin
from exporter.probes.resolver import IPProtocol, ResolveError, report_resolution, resolve_target
from exporter.probes.tls import TLS_METRICS, report_tls, report_tls_failure, tls_failure

_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_LAST_MODIFIED = "probe_http_last_modified_timestamp_seconds"
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Characters sent as they are in a request target; others (spaces, non-ASCII) are percent-encoded.
_TARGET_SAFE = "/%:@!$&'()*+,;=-._~?"
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGTPE]?i?B?)\s*$", re.IGNORECASE)


def _parse_size(value: object) -> int:
    """body_size_limit as blackbox reads it (Go's units.Base2Bytes): 1024, "512KB", "10MiB", "1GB"."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        unit = match.group(2).upper().replace("I", "").rstrip("B")
        size = int(match.group(1)) * 1024 ** ("KMGTPE".index(unit) + 1 if unit else 0)
    else:
        raise ValueError(f"not a size: {value!r} (write it like 1048576, 512KB or 10MB; units are powers of 1024)")
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


class HeaderMatch(StrictModel):
    header: str
    regexp: Regex
    allow_missing: bool = False


class BasicAuthCredentials(StrictModel):
    """The `basic_auth` option: sent as `Authorization: Basic ...`."""

    username: str
    password: str = secret_field(default="")


class Authorization(StrictModel):
    """prometheus/common's `authorization`: the header is `<type> <credentials>`."""

    type: str = "Bearer"
    credentials: str = secret_field(default="")

    @pydantic.field_validator("type")
    @classmethod
    def _a_word(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError(f"not an authorization scheme: {value!r}")
        if value.lower() == "basic":
            raise ValueError("use basic_auth for Basic authorization")
        return value


class HttpProbe(StrictModel):
    """blackbox_exporter's `http:` module options (0.23 names; `follow_redirects` from later releases too)."""

    valid_status_codes: list[int] = []  # empty = any 2xx
    valid_http_versions: list[str] = []  # e.g. ["HTTP/1.1"]
    method: HttpMethod = "GET"
    headers: dict[str, str] = {}
    body: str | None = secret_field(default=None)  # or body_file; hidden on the debug page, may hold a login
    follow_redirects: bool = True
    no_follow_redirects: bool | None = None  # blackbox <= 0.23 spelling; wins when set
    # Pulse: follow a redirect only within the target's origin (or to a listed URL).
    same_origin_redirects_only: bool = False
    # Pulse: send basic_auth / bearer_token / authorization and `headers` also after a redirect to another
    # origin (curl's --location-trusted). Off: they go to the target's origin only.
    cross_origin_redirect_credentials: bool = False
    fail_if_ssl: bool = False
    fail_if_not_ssl: bool = False
    fail_if_body_matches_regexp: list[Regex] = []
    fail_if_body_not_matches_regexp: list[Regex] = []
    fail_if_header_matches: list[HeaderMatch] = []
    fail_if_header_not_matches: list[HeaderMatch] = []
    basic_auth: BasicAuthCredentials | None = None
    bearer_token: str | None = secret_field(default=None)
    authorization: Authorization | None = None
    tls_config: TLSClientConfig = TLSClientConfig()
    preferred_ip_protocol: IPProtocol = "ip6"
    ip_protocol_fallback: bool = True
    body_size_limit: int = 0  # bytes after decoding; 0 = no limit
    compression: Literal["", "identity", "gzip", "deflate"] = ""
    proxy_url: str | None = None
    enable_http2: bool = False  # accepted so configs written for newer blackbox load; only false works

    @pydantic.field_validator("enable_http2")
    @classmethod
    def _http1_only(cls, value: bool) -> bool:
        if value:
            raise ValueError("Pulse's http prober speaks HTTP/1.1 only; remove enable_http2 or set it to false")
        return value

    @pydantic.field_validator("body_size_limit", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        return _parse_size(value)

    @pydantic.field_validator("compression", mode="before")
    @classmethod
    def _supported_compression(cls, value: object) -> object:
        if value == "br":
            raise ValueError("br (Brotli) is not supported: Python's standard library cannot decode it; use gzip")
        return value

    @pydantic.field_validator("valid_status_codes")
    @classmethod
    def _status_codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if not 100 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP status code (100-599)")
        return value

    @pydantic.field_validator("headers")
    @classmethod
    def _header_lines(cls, value: dict[str, str]) -> dict[str, str]:
        for name, content in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"not a valid header name: {name!r}")
            if any(c in content for c in "\r\n\0"):
                raise ValueError(f"header {name}: a value cannot contain line breaks or NUL")
        return value

    @pydantic.field_validator("valid_http_versions")
    @classmethod
    def _versions(cls, value: list[str]) -> list[str]:
        for version in value:
            if not re.fullmatch(r"HTTP/\d(\.\d)?", version):
                raise ValueError(f"not an HTTP version: {version!r} (write it like HTTP/1.1)")
        return value

    @pydantic.field_validator("proxy_url")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"proxy_url must be http://host:port (an HTTP proxy), not {value!r}")
        return value

    @pydantic.field_serializer("proxy_url")
    def _hide_proxy_password(self, value: str | None) -> str | None:
        """The debug page shows the module: a password in proxy_url must not appear there."""
        parts = urllib.parse.urlsplit(value or "")
        if parts.password is None:
            return value
        netloc = f"{parts.username}:<secret>@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> HttpProbe:
        given = [name for name in ("basic_auth", "bearer_token", "authorization") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of basic_auth, bearer_token and authorization (got {', '.join(given)})")
        return self

    @property
    def follows_redirects(self) -> bool:
        return not self.no_follow_redirects if self.no_follow_redirects is not None else self.follow_redirects

    @property
    def checks_body(self) -> bool:
        return bool(self.fail_if_body_matches_regexp or self.fail_if_body_not_matches_regexp)


async def probe(target: str, config: HttpProbe, sink: ProbeSink) -> bool:
    # blackbox's gauges, all set from the start: a probe cut at its deadline reports how far it got.
    phases = sink.phases(
        "probe_http_duration_seconds",
        "Duration of http request by phase, summed over all redirects",
        ("resolve", "connect", "tls", "processing", "transfer"),
    )
    _report_response(sink, None)
    _report_redirects(sink, 0)
    report_regex_failure(sink, False)
    url = target if re.match(r"^https?://", target, re.IGNORECASE) else "http://" + target
    try:
        parts = _split_url(url)
    except ValueError as err:
        return sink.fail(FailureReason.PROTOCOL_ERROR, f"cannot parse target: {err}")
    return await _probe(parts, config, sink, phases)


def _split_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return parts


async def _probe(parts: urllib.parse.SplitResult, config: HttpProbe, sink: ProbeSink, phases: PhaseDurations) -> bool:
    first_host = parts.hostname
    proxy = _proxy_address(config.proxy_url)
    proxy_headers = _proxy_authorization(config.proxy_url)
    method, body = config.method, (config.body or "").encode()
    cookies: dict[str, dict[str, str]] = {}
    start = urllib.parse.urlunsplit(parts)
    rules = RedirectRules(sink.listed, config.same_origin_redirects_only)
    sender: AddressClass | None = None  # class of the address the last response came from
    listed = False  # the URL being requested is accepted by probes.targets / probes.allow
    redirects = 0

    while True:
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        url = urllib.parse.urlunsplit(parts)
        address = await _resolve(host, config, sink, phases, first=sender is None)
        if address is None:
            return False
        if sender is None or listed:
            sender = address_class(address)
        else:  # checked on the address connected to below (no second lookup: DNS rebinding cannot swap it)
            try:
                sender = rules.check_address(url, address, sender)
            except RedirectBlocked as err:
                return sink.fail(FailureReason.REDIRECT_BLOCKED, str(err))
        credentials = config.cross_origin_redirect_credentials or origin(url) == origin(start)
        if not credentials and (config.headers or _credential_headers(config)):
            sink.log("credentials and configured headers not sent: another origin than the target's")
        request = _build_request(
            parts,
            config,
            method,
            body,
            via_proxy=proxy is not None,
            cookies=cookies.get(host, {}),
            credentials=credentials,
        )
        if proxy is not None and parts.scheme == "http":  # the proxy reads the request itself
            request = HttpRequest(request.method, request.target, [*request.headers, *proxy_headers], request.body)
        tls = None
        if parts.scheme == "https":
            name = config.tls_config.server_name if host == first_host and config.tls_config.server_name else host
            tls = TLSSettings(client_ssl_context(config.tls_config), name)
        route = f"through proxy {proxy[0]}:{proxy[1]}" if proxy else f"connecting to {address}:{port}"
        sink.log(f"{request.method} {urllib.parse.urlunsplit(parts)} ({route})")
        try:
            response = await exchange(
                address,
                port,
                request,
                tls=tls,
                phases=phases,
                proxy=proxy,
                proxy_headers=proxy_headers,
                connect_authority=f"{host}:{port}" if ":" not in host else f"[{host}]:{port}",
                body=BodyOptions(config.body_size_limit, config.compression, keep=config.checks_body),
                on_head=lambda response: _report_response(sink, response),
                on_body_read=lambda response: _report_body_length(sink, response.body_length),
            )
        except TLSHandshakeFailed as err:
            if proxy is not None or tls is None:
                return sink.fail(*tls_failure(err.error))
            return await report_tls_failure(
                sink,
                err.error,
                address=address,
                port=port,
                server_hostname=tls.server_hostname,
                config=config.tls_config,
            )
        except RequestFailed as err:
            return sink.fail(err.reason, str(err))
        if response.ssl_object is not None:
            cipher = response.ssl_object.cipher()
            sink.log(f"TLS: {response.ssl_object.version()}, cipher {cipher[0] if cipher else '?'}")
        sink.log(f"response: HTTP/{response.http_version} {response.status}, {response.body_length} body bytes")
        _remember_cookies(response, host, cookies)

        location = response.header_values("location")
        if response.status not in _REDIRECT_STATUSES or not location:
            break
        redirects += 1
        _report_redirects(sink, redirects)  # blackbox (0.23) also counts a redirect it did not follow or refused
        if not config.follows_redirects:
            break
        if redirects > REDIRECT_LIMIT:
            return sink.fail(
                FailureReason.REDIRECT_LIMIT, f"more than {REDIRECT_LIMIT} redirects (last to {location[0]})"
            )
        try:
            parts = _split_url(urllib.parse.urljoin(urllib.parse.urlunsplit(parts), location[0]))
        except ValueError as err:
            return sink.fail(FailureReason.PROTOCOL_ERROR, f"cannot follow redirect: {err}")
        if response.status in (301, 302, 303) and method != "HEAD":
            method, body = "GET", b""  # what browsers and Go do; 307/308 repeat the request as it was
        sink.log(f"redirect {redirects} to {urllib.parse.urlunsplit(parts)}")
        try:
            listed = rules.check_url(urllib.parse.urlunsplit(parts), start)
        except RedirectBlocked as err:
            return sink.fail(FailureReason.REDIRECT_BLOCKED, str(err))

    return _check_response(response, config, sink)


async def _resolve(host: str, config: HttpProbe, sink: ProbeSink, phases: PhaseDurations, *, first: bool) -> str | None:
    """Resolve a hop's host; the first lookup gives probe_dns_lookup_time_seconds and the IP metrics."""
    name = host[1:-1] if host.startswith("[") else host
    try:
        address, family, seconds = await resolve_target(name, config.preferred_ip_protocol, config.ip_protocol_fallback)
    except ResolveError as err:
        phases.add("resolve", err.seconds)
        if first:
            report_resolution(sink, err.seconds)
        sink.fail(FailureReason.DNS_ERROR, str(err))
        return None
    phases.add("resolve", seconds)
    if first:
        report_resolution(sink, seconds, address, family)
        sink.log(f"resolved {name} to {address} in {seconds:.6f}s")
    return address


def _proxy_address(proxy_url: str | None) -> tuple[str, int] | None:
    if proxy_url is None:
        return None
    parts = urllib.parse.urlsplit(proxy_url)
    return parts.hostname or "", parts.port or 80


def _proxy_authorization(proxy_url: str | None) -> tuple[tuple[str, str], ...]:
    """Proxy-Authorization (Basic) from the user and password in proxy_url, if any."""
    parts = urllib.parse.urlsplit(proxy_url or "")
    if parts.username is None:
        return ()
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return (("Proxy-Authorization", _basic(user, password)),)


def _build_request(
    parts: urllib.parse.SplitResult,
    config: HttpProbe,
    method: str,
    body: bytes,
    *,
    via_proxy: bool,
    cookies: dict[str, str],
    credentials: bool = True,
) -> HttpRequest:
    """The request for one hop; without `credentials` (another origin than the target's) no Authorization
    from basic_auth / bearer_token / authorization and none of the configured `headers`."""
    default_port = 443 if parts.scheme == "https" else 80
    authority = _idna(parts.hostname or "")
    if ":" in authority:
        authority = f"[{authority}]"
    if parts.port and parts.port != default_port:
        authority += f":{parts.port}"
    path = urllib.parse.quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_TARGET_SAFE)
    target = f"http://{authority}{path}" if via_proxy and parts.scheme == "http" else path

    headers: dict[str, tuple[str, str]] = {}  # lower-case name -> (name as written, value)

    def put(name: str, value: str) -> None:
        headers[name.lower()] = (name, value)

    put("Host", authority)
    put("User-Agent", USER_AGENT)
    if config.compression not in ("", "identity"):
        put("Accept-Encoding", config.compression)
    if credentials:
        for name, value in _credential_headers(config):
            put(name, value)
    if cookies:
        put("Cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()))
    if credentials:
        for name, value in config.headers.items():
            put(name, value)
    # One request per connection: the server closes it, so its TIME_WAIT stays on its side.
    if "connection" not in headers:
        put("Connection", "close")
    return HttpRequest(method, target, list(headers.values()), body)


def _credential_headers(config: HttpProbe) -> list[tuple[str, str]]:
    if config.basic_auth is not None:
        return [("Authorization", _basic(config.basic_auth.username, config.basic_auth.password))]
    if config.bearer_token is not None:
        return [("Authorization", f"Bearer {config.bearer_token}")]
    if config.authorization is not None:
        return [("Authorization", f"{config.authorization.type} {config.authorization.credentials}")]
    return []


def _basic(user: str, password: str) -> str:
    """The value of a Basic (proxy) authorization header."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _idna(host: str) -> str:
    """A host name as it goes into the Host header: internationalised names in their ASCII form."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _remember_cookies(response: HttpResponse, host: str, cookies: dict[str, dict[str, str]]) -> None:
    """A minimal cookie jar for redirects (blackbox has one): name=value per host, attributes ignored."""
    for value in response.header_values("set-cookie"):
        pair = value.split(";", 1)[0]
        name, sep, content = pair.partition("=")
        if sep and name.strip():
            cookies.setdefault(host, {})[name.strip()] = content.strip()


def _check_response(response: HttpResponse, config: HttpProbe, sink: ProbeSink) -> bool:
    """blackbox's order: status, headers, body, HTTP version, then TLS or not."""
    ok = True
    valid = response.status in config.valid_status_codes if config.valid_status_codes else 200 <= response.status < 300
    if not valid:
        wanted = ", ".join(map(str, config.valid_status_codes)) or "2xx"
        ok = sink.fail(FailureReason.HTTP_STATUS, f"status code {response.status}, wanted {wanted}")
    if ok and (config.fail_if_header_matches or config.fail_if_header_not_matches):
        problem = _header_problem(response, config)
        report_regex_failure(sink, problem is not None)
        if problem is not None:
            ok = sink.fail(FailureReason.HEADER_REGEX, problem)
    if ok and config.checks_body:
        problem = _body_problem(response.body or b"", config)
        report_regex_failure(sink, problem is not None)
        if problem is not None:
            ok = sink.fail(FailureReason.BODY_REGEX, problem)
    version = f"HTTP/{response.http_version}"
    if config.valid_http_versions and version not in config.valid_http_versions:
        ok = sink.fail(FailureReason.HTTP_VERSION, f"{version} is not one of {', '.join(config.valid_http_versions)}")
    if response.ssl_object is not None and config.fail_if_ssl:
        ok = sink.fail(FailureReason.SSL_POLICY, "the final response came over TLS (fail_if_ssl)")
    if response.ssl_object is None and config.fail_if_not_ssl:
        ok = sink.fail(FailureReason.SSL_POLICY, "the final response did not come over TLS (fail_if_not_ssl)")
    return ok


def _header_problem(response: HttpResponse, config: HttpProbe) -> str | None:
    for check in config.fail_if_header_matches:
        values = response.header_values(check.header)
        if not values and not check.allow_missing:
            return f"header {check.header} is missing"
        if any(check.regexp.search(value) for value in values):
            return f"header {check.header} matched {check.regexp.pattern!r}"
    for check in config.fail_if_header_not_matches:
        values = response.header_values(check.header)
        if not values:
            if check.allow_missing:
                continue
            return f"header {check.header} is missing"
        if not any(check.regexp.search(value) for value in values):
            return f"header {check.header} did not match {check.regexp.pattern!r}"
    return None


def _body_problem(body: bytes, config: HttpProbe) -> str | None:
    text = body.decode("utf-8", "replace")
    broken = broken_regex(text, config.fail_if_body_matches_regexp, config.fail_if_body_not_matches_regexp)
    if broken is None:
        return None
    pattern, matched = broken
    return f"body matched {pattern.pattern!r}" if matched else f"body did not match {pattern.pattern!r}"


def _last_modified(response: HttpResponse) -> float | None:
    values = response.header_values("last-modified")
    if not values:
        return None
    try:
        return email.utils.parsedate_to_datetime(values[0]).timestamp()
    except (TypeError, ValueError):
        return None


def _report_response(sink: ProbeSink, response: HttpResponse | None) -> None:
    """The metrics of the last response whose head arrived (0 before any did): a redirect's response is
    replaced by the next one, so the probe reports the final response, or the last it got to."""
    sink.gauge(
        "probe_http_content_length", "Length of http content response", response.content_length if response else 0
    )
    _report_body_length(sink, response.body_length if response else 0)
    sink.gauge(
        "probe_http_ssl",
        "Indicates if SSL was used for the final redirect",
        1 if response is not None and response.ssl_object is not None else 0,
    )
    sink.gauge("probe_http_status_code", "Response HTTP status code", response.status if response else 0)
    sink.gauge(
        "probe_http_version",
        "Returns the version of HTTP of the probe response",
        float(response.http_version) if response else 0,
    )
    sink.remove(_LAST_MODIFIED, *TLS_METRICS)
    if response is None:
        return
    modified = _last_modified(response)
    if modified is not None:
        sink.gauge(_LAST_MODIFIED, "Returns the Last-Modified HTTP response header in unixtime", modified)
    if response.ssl_object is not None:
        report_tls(sink, response.ssl_object)


def _report_body_length(sink: ProbeSink, length: int) -> None:
    sink.gauge("probe_http_uncompressed_body_length", "Length of uncompressed response body", length)


def _report_redirects(sink: ProbeSink, redirects: int) -> None:
    sink.gauge("probe_http_redirects", "The number of redirects", redirects)


PROBER = Prober("http", HttpProbe, probe)
