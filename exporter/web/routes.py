"""What each URL does. Every endpoint sits behind basic auth when the web config defines users.

/            landing page (landing.py): version, links, each collector's status tables and last result
/metrics     Prometheus text format, OpenMetrics when asked for, gzip when accepted;
             `collect[]=host.cpu` (or a kind, `collect[]=host`) limits the collectors run
/-/healthy   200 while the process serves
/-/ready     200 once the config is loaded and collectors are running, else 503
/-/reload    POST: reload both config files; 500 with the errors if the new config is bad
/probe       `target=..&module=..`: run one probe now and return its metrics (probes/endpoint.py)
/sd/probes   the configured probe targets for Prometheus' http_sd_configs (JSON)
/alertmanager/webhook  POST: Alertmanager's webhook into the incident journal (incidents/webhook.py);
             404 unless `incidents.enabled`; bodies up to 1 MiB (64 KiB elsewhere)
/status      the platform's status page for its users (exporter/status/), and /status.json; 404 unless
             `status.enabled`, and the only paths served without auth, when `status.public` is true
"""

from __future__ import annotations

import asyncio
import gzip

from exporter.app import Exporter
from exporter.incidents import webhook
from exporter.incidents.collector import incidents_journal
from exporter.probes.endpoint import Answer, answer_probe, service_discovery
from exporter.scrape_timeout import HEADER as SCRAPE_TIMEOUT_HEADER
from exporter.scrape_timeout import InvalidTimeoutHeader, time_budget
from exporter.status.page import Answers, StatusAnswers, answers_for, build_status
from exporter.status.render import render_html
from exporter.web.auth import BasicAuthenticator
from exporter.web.landing import landing_page
from exporter.web.server import MAX_BODY_BYTES, Request, Response

GZIP_LEVEL = 1  # scrape bodies are small: the fastest level already shrinks them about 10 times
STATUS_PATHS = ("/status", "/status.json")
# The status page loads nothing from anywhere: a browser may refuse everything but its inline style.
STATUS_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


class Routes:
    def __init__(self, exporter: Exporter, max_requests: int = 40) -> None:
        self.exporter = exporter
        self.max_requests = max_requests
        self._in_flight = 0
        self._web = exporter.web
        self._auth = BasicAuthenticator(self._web.basic_auth_users)
        self._status = StatusAnswers()

    def _authenticator(self) -> BasicAuthenticator:
        """The authenticator for the exporter's web config, rebuilt when a reload brings a new one: users
        and passwords change without a restart."""
        if self.exporter.web is not self._web:
            self._web = self.exporter.web
            self._auth = BasicAuthenticator(self._web.basic_auth_users)
        return self._auth

    @staticmethod
    def body_limit(path: str) -> int:
        """The largest request body each path takes (the HTTP server enforces it)."""
        return webhook.MAX_BODY_BYTES if path == webhook.PATH else MAX_BODY_BYTES

    async def __call__(self, request: Request) -> Response:
        if not self._public(request) and not await self._authenticator().allows(request.headers.get("authorization")):
            response = Response(401, b"Unauthorized\n", headers=[("WWW-Authenticate", 'Basic realm="pulse"')])
        else:
            response = await self._route(request)
        response.headers.extend(self.exporter.web.http_server_config.headers.items())
        return response

    async def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        reads = method in ("GET", "HEAD")
        if path == "/metrics" and reads:
            return await self._metrics(request)
        if path == "/-/healthy" and reads:
            return Response(200, b"Healthy\n")
        if path == "/-/ready" and reads:
            return Response(200, b"Ready\n") if self.exporter.ready else Response(503, b"Not ready\n")
        if path == "/-/reload":
            if method not in ("POST", "PUT"):
                return Response(405, b"Only POST or PUT requests allowed\n", headers=[("Allow", "POST, PUT")])
            ok, message = await self.exporter.reload()
            return Response(200 if ok else 500, message.encode() + b"\n")
        if path == "/probe" and reads:
            config, collectors = self.exporter.config.probes, self.exporter.collectors
            return _response(await answer_probe(request.query, request.headers, config, collectors))
        if path == "/sd/probes" and reads:
            return _response(service_discovery(self.exporter.config.probes))
        if path == webhook.PATH:
            return await self._webhook(request)
        if path in STATUS_PATHS and reads:
            return await self._status_page(path)
        if path == "/" and reads:
            return Response(200, landing_page(self.exporter).encode(), content_type="text/html; charset=utf-8")
        if path in ("/", "/metrics", "/-/healthy", "/-/ready", "/probe", "/sd/probes", *STATUS_PATHS):
            return Response(405, b"Method not allowed\n", headers=[("Allow", "GET, HEAD")])
        return Response(404, b"Not found\n")

    async def _webhook(self, request: Request) -> Response:
        if not self.exporter.config.incidents.enabled:
            return Response(404, b"The incident journal is off: set incidents.enabled: true in pulse.yml\n")
        if request.method != "POST":
            return Response(405, b"Only POST requests allowed\n", headers=[("Allow", "POST")])
        answer = await webhook.receive(request.body, incidents_journal(self.exporter.collectors))
        return Response(answer.status, answer.message.encode() + b"\n")

    def _public(self, request: Request) -> bool:
        """Only the status page's two paths, read, and only when the config says so explicitly."""
        status = self.exporter.config.status
        return status.enabled and status.public and request.path in STATUS_PATHS and request.method in ("GET", "HEAD")

    async def _status_page(self, path: str) -> Response:
        config = self.exporter.config
        if not config.status.enabled:
            return Response(404, b"Not found\n")

        journal = incidents_journal(self.exporter.collectors)

        async def build() -> Answers:
            return answers_for(await asyncio.to_thread(build_status, config, journal), render_html)

        answers = await self._status.get((config, journal), config.status.cache_for, build)
        max_age = int(config.status.cache_for)
        headers = [("Cache-Control", f"{'public' if config.status.public else 'private'}, max-age={max_age}")]
        headers.append(("Content-Security-Policy", STATUS_POLICY))
        if path == "/status.json":
            return Response(200, answers.json, content_type="application/json", headers=headers)
        return Response(200, answers.html, content_type="text/html; charset=utf-8", headers=headers)

    async def _metrics(self, request: Request) -> Response:
        if self.max_requests > 0 and self._in_flight >= self.max_requests:
            return Response(503, f"Limit of {self.max_requests} concurrent scrapes reached\n".encode())
        try:
            collectors = self.exporter.select(request.query.get("collect[]", []))
        except KeyError as err:
            return Response(400, f"unknown collector: {err.args[0]}\n".encode())
        try:
            timeout = time_budget(request.headers.get(SCRAPE_TIMEOUT_HEADER))
        except InvalidTimeoutHeader as err:
            return Response(400, f"{err}\n".encode())
        self._in_flight += 1
        try:
            body, content_type = await self.exporter.scrape(collectors, timeout, request.headers.get("accept", ""))
        finally:
            self._in_flight -= 1
        headers = [("Vary", "Accept-Encoding")]
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, body, content_type=content_type, headers=headers)


def _response(answer: Answer) -> Response:
    return Response(answer.status, answer.body, content_type=answer.content_type)
