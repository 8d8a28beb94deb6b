"""What each URL does. Every endpoint sits behind basic auth when the web config defines users.

/            landing page: version, collectors and their last result, links
/metrics     Prometheus text format, OpenMetrics when asked for, gzip when accepted;
             `collect[]=host.cpu` (or a kind, `collect[]=host`) limits the collectors run
/-/healthy   200 while the process serves
/-/ready     200 once the config is loaded and collectors are running, else 503
/-/reload    POST: reload both config files; 500 with the errors if the new config is bad
"""

from __future__ import annotations

import gzip
import html

from exporter import __version__
from exporter.app import Exporter
from exporter.web.server import Request, Response

DEFAULT_SCRAPE_TIMEOUT = 10.0  # when Prometheus does not send X-Prometheus-Scrape-Timeout-Seconds
TIMEOUT_OFFSET = 0.5  # leave this much of Prometheus' timeout to encode and send the answer
GZIP_LEVEL = 1  # scrape bodies are small: the fastest level already shrinks them about 10 times


class Routes:
    def __init__(self, exporter: Exporter, max_requests: int = 40) -> None:
        self.exporter = exporter
        self.max_requests = max_requests
        self._in_flight = 0

    async def __call__(self, request: Request) -> Response:
        if not await self.exporter.auth.allows(request.headers.get("authorization")):
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
        if path == "/" and reads:
            return Response(200, self._landing_page().encode(), content_type="text/html; charset=utf-8")
        if path in ("/", "/metrics", "/-/healthy", "/-/ready"):
            return Response(405, b"Method not allowed\n", headers=[("Allow", "GET, HEAD")])
        return Response(404, b"Not found\n")

    async def _metrics(self, request: Request) -> Response:
        if self.max_requests > 0 and self._in_flight >= self.max_requests:
            return Response(503, f"Limit of {self.max_requests} concurrent scrapes reached\n".encode())
        try:
            collectors = self.exporter.select(request.query.get("collect[]", []))
        except KeyError as err:
            return Response(400, f"unknown collector: {err.args[0]}\n".encode())
        timeout = DEFAULT_SCRAPE_TIMEOUT
        header = request.headers.get("x-prometheus-scrape-timeout-seconds")
        if header:
            try:
                timeout = max(0.1, float(header) - TIMEOUT_OFFSET)
            except ValueError:
                return Response(400, b"X-Prometheus-Scrape-Timeout-Seconds is not a number\n")
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

    def _landing_page(self) -> str:
        rows = []
        for collector in self.exporter.collectors:
            outcome = self.exporter.last_outcomes.get(collector.name)
            if outcome is None:
                state = "not scraped yet"
            else:
                state = f"ok in {outcome.seconds * 1000:.1f} ms" if outcome.success else f"FAILED: {outcome.error}"
            rows.append(f"<tr><td>{html.escape(collector.name)}</td><td>{html.escape(state)}</td></tr>")
        reload_state = "successful" if self.exporter.reload_successful else "FAILED (running config kept)"
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Pulse exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style></head>
<body><h1>Pulse exporter</h1>
<p>Version {html.escape(__version__)} &middot; config {html.escape(self.exporter.config_name)}
&middot; last reload {reload_state}</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li></ul>
<h2>Collectors</h2><table><tr><th>Collector</th><th>Last scrape</th></tr>
{"".join(rows)}</table></body></html>
"""
