"""What each URL does. Every endpoint sits behind basic auth when the web config defines users.

/            landing page: version, collectors and their last result, links
/metrics     Prometheus text format, OpenMetrics when asked for, gzip when accepted;
             `collect[]=host.cpu` (or a kind, `collect[]=host`) limits the collectors run
/-/healthy   200 while the process serves
/-/ready     200 once the config is loaded and collectors are running, else 503
/-/reload    POST: reload both config files; 500 with the errors if the new config is bad
/probe       `target=..&module=..`: run one probe now and return its metrics (blackbox_exporter's
             multi-target pattern); only for targets listed in `probes.targets` with that module or
             matching `probes.allow` (403 otherwise, and nothing leaves the host); `debug=true` for a trace
/sd/probes   the configured probe targets for Prometheus' http_sd_configs (JSON)
"""

from __future__ import annotations

import gzip
import html
import json
import re
from typing import Any
from urllib.parse import urlencode

import pydantic
import yaml

from exporter import __version__
from exporter.app import Exporter
from exporter.exposition import encode, encode_text
from exporter.probes.config import ProbeModule
from exporter.probes.runner import InvalidTimeoutHeader, run_probe
from exporter.probes.section import COLLECTOR_NAME as PROBES_COLLECTOR
from exporter.probes.section import ProbesCollector
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
        if path == "/probe" and reads:
            return await self._probe(request)
        if path == "/sd/probes" and reads:
            return self._sd_probes()
        if path == "/" and reads:
            return Response(200, self._landing_page().encode(), content_type="text/html; charset=utf-8")
        if path in ("/", "/metrics", "/-/healthy", "/-/ready", "/probe", "/sd/probes"):
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

    async def _probe(self, request: Request) -> Response:
        probes = self.exporter.config.probes
        collector = next((c for c in self.exporter.collectors if c.name == PROBES_COLLECTOR), None)
        stats = collector if isinstance(collector, ProbesCollector) else None
        module_name = _single(request.query, "module")
        target = _single(request.query, "target")
        module = probes.modules.get(module_name)
        problem = ""
        if not module_name:
            problem = "module parameter is missing"
        elif module is None:
            problem = f"unknown module {module_name!r}"
        elif not target:
            problem = "target parameter is missing"
        elif "hostname" in request.query:
            # blackbox lets the URL set the http Host header; Pulse lets nothing in the URL change a module.
            problem = "hostname parameter is not supported: set the Host header in the module"
        if problem or module is None:
            if stats is not None:
                stats.reject("bad_request")
            return Response(400, f"{problem}\n".encode())
        if not probes.allows(target, module_name):
            if stats is not None:
                stats.reject("forbidden")
            return Response(
                403,
                f"target {target!r} is not allowed with module {module_name!r}: "
                "list it in probes.targets with that module, or match it with probes.allow\n".encode(),
            )
        try:
            families, sink = await run_probe(
                module_name,
                module,
                target,
                request.headers.get("x-prometheus-scrape-timeout-seconds"),
                record=stats.record if stats is not None else None,
                timeout_offset=probes.timeout_offset,
                listed=lambda url: probes.allows(url, module_name),
            )
        except InvalidTimeoutHeader as err:
            if stats is not None:
                stats.reject("bad_request")
            return Response(400, f"{err}\n".encode())
        if _single(request.query, "debug") == "true":
            module_yaml = yaml.safe_dump(_resolved_module(module), sort_keys=False, default_flow_style=False)
            text = (
                "Logs for the probe:\n"
                + "".join(f"{line}\n" for line in sink.trace)
                + "\n\nMetrics that would have been returned:\n"
                + encode_text(families).decode()
                + "\n\nModule configuration:\n"
                + module_yaml
            )
            return Response(200, text.encode())
        body, content_type = encode(families, request.headers.get("accept", ""))
        return Response(200, body, content_type=content_type)

    def _sd_probes(self) -> Response:
        groups = [
            {
                "targets": [target.target],
                # `module` keeps two modules probing one target apart as series; `__param_module` becomes
                # the scrape's module= parameter without any relabelling.
                "labels": {**target.labels, "module": target.module, "__param_module": target.module},
            }
            for target in self.exporter.config.probes.targets
        ]
        return Response(200, json.dumps(groups).encode(), content_type="application/json")

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
<li><a href="-/ready">Readiness</a></li><li><a href="sd/probes">Probe targets (http_sd)</a></li></ul>
{self._probe_table()}
<h2>Collectors</h2><table><tr><th>Collector</th><th>Last scrape</th></tr>
{"".join(rows)}</table></body></html>
"""

    def _probe_table(self) -> str:
        targets = self.exporter.config.probes.targets
        if not targets:
            return ""
        rows = []
        for target in targets:
            query = urlencode({"target": target.target, "module": target.module})
            rows.append(
                f"<tr><td>{html.escape(target.target)}</td><td>{html.escape(target.module)}</td>"
                f'<td><a href="probe?{html.escape(query)}">probe</a> '
                f'<a href="probe?{html.escape(query)}&amp;debug=true">debug</a></td></tr>'
            )
        return "<h2>Probes</h2><table><tr><th>Target</th><th>Module</th><th></th></tr>" + "".join(rows) + "</table>"


def _single(query: dict[str, list[str]], name: str) -> str:
    """A query parameter's first value ("" when absent), as Go's url.Values.Get."""
    values = query.get(name)
    return values[0] if values else ""


def _resolved_module(module: ProbeModule) -> dict[str, Any]:
    """The module as the probe used it: its prober's options with every default filled in, secrets hidden."""
    data = {"prober": module.prober, "timeout": module.model_dump(mode="json")["timeout"]}
    data[module.prober] = _redacted(module.settings())
    return data


def _redacted(model: pydantic.BaseModel) -> Any:
    """The model as plain data for the debug page, with secret fields shown as <secret>."""
    data = model.model_dump(mode="json", by_alias=True)  # the keys as written in the config
    _redact(model, data)
    return data


# Credentials inside mappings, whatever option holds them: http/journey `headers` (Authorization, Cookie,
# X-Api-Key), a journey step's `form` (password).
_SECRET_KEY = re.compile(r"(?i)authorization|cookie|token|secret|password|passwd|api[-_]?key")


def _redact(model: pydantic.BaseModel, data: Any) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name  # the key in the by-alias dump
        if field.json_schema_extra == {"secret": True} and value is not None:
            data[key] = "<secret>"
        elif isinstance(value, pydantic.BaseModel):
            _redact(value, data[key])
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, pydantic.BaseModel):
                    _redact(item, data[key][index])
        elif isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, str) and _SECRET_KEY.search(str(item_key)):
                    data[key][item_key] = "<secret>"
                elif isinstance(item, pydantic.BaseModel):
                    _redact(item, data[key][item_key])
