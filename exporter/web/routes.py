"""What each URL does. Every endpoint sits behind basic auth when the web config defines users.

/            landing page: version, links, each probe target's last result, each KPI source and query,
             each collector's last result
/metrics     Prometheus text format, OpenMetrics when asked for, gzip when accepted;
             `collect[]=host.cpu` (or a kind, `collect[]=host`) limits the collectors run
/-/healthy   200 while the process serves
/-/ready     200 once the config is loaded and collectors are running, else 503
/-/reload    POST: reload both config files; 500 with the errors if the new config is bad
/probe       `target=..&module=..`: run one probe now and return its metrics (blackbox_exporter's
             multi-target pattern; module http_2xx when none is given, as blackbox); only for targets
             listed in `probes.targets` with that module or matching `probes.allow` (403 otherwise, and
             nothing leaves the host); `debug=true` for a trace (not counted in pulse_probe* metrics)
/sd/probes   the configured probe targets for Prometheus' http_sd_configs (JSON)
"""

from __future__ import annotations

import functools
import gzip
import html
import json
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

import pydantic
import yaml

from exporter import __version__
from exporter.app import Exporter
from exporter.exposition import encode, encode_text
from exporter.kpis.engine import KpiCollector, QueryStatus, SourceStatus, kpi_status
from exporter.probes.config import ProbeModule
from exporter.probes.runner import InvalidTimeoutHeader, Recorder, run_probe
from exporter.probes.section import ProbesCollector
from exporter.web.server import Request, Response

DEFAULT_SCRAPE_TIMEOUT = 10.0  # when Prometheus does not send X-Prometheus-Scrape-Timeout-Seconds
TIMEOUT_OFFSET = 0.5  # leave this much of Prometheus' timeout to encode and send the answer
GZIP_LEVEL = 1  # scrape bodies are small: the fastest level already shrinks them about 10 times
DEFAULT_MODULE = "http_2xx"  # blackbox_exporter's module when a /probe request names none


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
        stats = self._probes_collector()
        module_name = _single(request.query, "module") or DEFAULT_MODULE
        target = _single(request.query, "target")
        module = probes.modules.get(module_name)
        problem = ""
        if module is None:
            problem = f"unknown module {module_name!r}"
            if not _single(request.query, "module"):
                problem += " (the module used when the request names none, as in blackbox_exporter)"
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
        debug = _single(request.query, "debug") == "true"
        record: Recorder | None = None
        if stats is not None and not debug:  # a person's debug look must not move the SLO counters
            record = functools.partial(stats.record, listed=probes.lists(target, module_name))
        try:
            families, sink = await run_probe(
                module_name,
                module,
                target,
                request.headers.get("x-prometheus-scrape-timeout-seconds"),
                record=record,
                timeout_offset=probes.timeout_offset,
                listed=lambda url: probes.allows(url, module_name),
            )
        except InvalidTimeoutHeader as err:
            if stats is not None:
                stats.reject("bad_request")
            return Response(400, f"{err}\n".encode())
        if debug:
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

    def _probes_collector(self) -> ProbesCollector | None:
        return next((c for c in self.exporter.collectors if isinstance(c, ProbesCollector)), None)

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
        """Plain HTML, one table per section. Every value is escaped: error messages quote what remote
        servers and databases said."""
        now = time.time()
        reload_state = "successful" if self.exporter.reload_successful else "FAILED (running config kept)"
        kpis = next((c for c in self.exporter.collectors if isinstance(c, KpiCollector)), None)
        sources, queries = kpi_status(kpis) if kpis is not None else ([], [])
        sections = [self._probe_table(now), _kpi_source_table(sources), _kpi_query_table(queries, now)]
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Pulse exporter</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#1f2328}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{padding:.3em .8em;text-align:left;vertical-align:top;border-bottom:1px solid #d0d7de}}
th{{background:#f6f8fa}}
td{{max-width:46em}} .error{{font-family:monospace;font-size:90%;overflow-wrap:anywhere;word-break:break-word}}
.ok{{color:#1a7f37;font-weight:bold}} .bad{{color:#cf222e;font-weight:bold}} .none{{color:#6e7781}}
.ok,.bad,.none,.when,.links{{white-space:nowrap}}
</style></head>
<body><h1>Pulse exporter</h1>
<p>Version {html.escape(__version__)} &middot; config {html.escape(self.exporter.config_name)}
&middot; last reload <span class="{"ok" if self.exporter.reload_successful else "bad"}">{reload_state}</span></p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li><li><a href="sd/probes">Probe targets (http_sd)</a></li></ul>
{"".join(sections)}
{self._collector_table(queries)}</body></html>
"""

    def _probe_table(self, now: float) -> str:
        targets = self.exporter.config.probes.targets
        if not targets:
            return ""
        stats = self._probes_collector()
        rows = []
        for target in targets:
            query = urlencode({"target": target.target, "module": target.module})
            last = stats.last_probe(target.module, target.target) if stats is not None else None
            if last is None:
                cells = [_state("none", "not probed yet"), "", ""]
            elif last.success:
                cells = [_state("ok", f"success in {_ms(last.seconds)}"), "", _time(last.at, now)]
            else:
                reason = _error(f"{last.reason}: {last.detail}")
                cells = [_state("bad", f"FAILED after {_ms(last.seconds)}"), reason, _time(last.at, now)]
            links = (
                f'<span class="links"><a href="probe?{html.escape(query)}">probe</a> '
                f'<a href="probe?{html.escape(query)}&amp;debug=true">debug</a></span>'
            )
            rows.append([html.escape(target.target), html.escape(target.module), *cells, links])
        return _table(
            "Probe targets",
            ["Target", "Module", "Last result", "Failure reason", "When", ""],
            rows,
            "Results of the probes Prometheus runs through /probe; debug probes are not recorded.",
        )

    def _collector_table(self, queries: Sequence[QueryStatus]) -> str:
        rows = []
        for collector in self.exporter.collectors:
            outcome = self.exporter.last_outcomes.get(collector.name)
            if outcome is None:
                state = _state("none", "not scraped yet")
            elif outcome.success:
                state = _state("ok", f"ok in {_ms(outcome.seconds)}")
            else:
                state = _state("bad", "FAILED") + " " + _error(outcome.error)
            if isinstance(collector, KpiCollector):
                # It serves cached results: "ok" says the scrape worked, not that the queries did.
                failing = sum(1 for q in queries if q.ran and not q.success)
                note = f"{failing} of {len(queries)} queries failing" if failing else "served from the last runs"
                state += f" ({_state('bad' if failing else 'none', note)})"
            rows.append([html.escape(collector.name), state])
        return _table("Collectors", ["Collector", "Last scrape"], rows)


def _kpi_source_table(sources: Sequence[SourceStatus]) -> str:
    if not sources:
        return ""
    rows = []
    for source in sources:
        if source.up is None:
            state = _state("none", "not queried yet")
        else:
            state = _state("ok", "up") if source.up else _state("bad", "DOWN")
        rows.append(
            [html.escape(source.name), html.escape(source.kind), html.escape(source.where), state, _error(source.error)]
        )
    return _table("KPI sources", ["Source", "Kind", "Where", "State", "Last error"], rows)


def _kpi_query_table(queries: Sequence[QueryStatus], now: float) -> str:
    if not queries:
        return ""
    rows = []
    for query in queries:
        if not query.ran:
            state = _state("none", "not run yet")
        else:
            state = _state("ok", "ok") if query.success else _state("bad", "FAILING")
        last_success = _time(query.last_success_time, now) if query.last_success_time else "never"
        runs = ", ".join(f"{count} {status}" for status, count in query.runs.items())
        rows.append(
            [
                html.escape(query.name),
                html.escape(query.source),
                state,
                last_success,
                _error(query.error),
                html.escape(runs),
            ]
        )
    return _table("KPI queries", ["Query", "Source", "State", "Last success", "Last error", "Runs"], rows)


def _table(title: str, headings: Iterable[str], rows: Iterable[Sequence[str]], note: str = "") -> str:
    """A titled table; `rows` hold HTML already escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    caption = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<h2>{html.escape(title)}</h2>{caption}<table><tr>{head}</tr>\n{body}</table>\n"


def _state(kind: str, text: str) -> str:
    return f'<span class="{kind}">{html.escape(text)}</span>'


def _error(message: str) -> str:
    """An error message, escaped, in a cell class that wraps it (it may be long and unbroken)."""
    return f'<span class="error">{html.escape(message)}</span>' if message else ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _time(timestamp: float, now: float) -> str:
    return f'<span class="when">{html.escape(_when(timestamp, now))}</span>'


def _when(timestamp: float, now: float) -> str:
    """`2025-06-01 12:00:03 UTC (5 s ago)`."""
    moment = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    age = max(0.0, now - timestamp)
    if age < 120:
        ago = f"{age:.0f} s"
    elif age < 7200:
        ago = f"{age / 60:.0f} min"
    else:
        ago = f"{age / 3600:.1f} h"
    return f"{moment} ({ago} ago)"


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
