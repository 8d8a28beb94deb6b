"""What /probe and /sd/probes answer; the web layer (web/routes.py) only hands over the request.

/probe `target=..&module=..` runs one probe now and returns its metrics (blackbox_exporter's
multi-target pattern; module http_2xx when none is given, as blackbox), only for targets listed in
`probes.targets` with that module or matching `probes.allow` (403 otherwise, and nothing leaves the
host). `debug=true` returns a trace, the metrics and the module as the probe used it, and is not
counted in the pulse_probe* metrics. Requests refused before probing are counted by reason.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import yaml

from exporter.collectors.base import Collector
from exporter.config.types import redacted
from exporter.exposition import encode_as_accepted, encode_text
from exporter.probes.collector import ProbesCollector
from exporter.probes.config import ProbeModule, ProbesConfig
from exporter.probes.runner import Recorder, run_probe
from exporter.scrape_timeout import HEADER as SCRAPE_TIMEOUT_HEADER
from exporter.scrape_timeout import InvalidTimeoutHeader

DEFAULT_MODULE = "http_2xx"  # blackbox_exporter's module when a /probe request names none
TEXT = "text/plain; charset=utf-8"


class Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str = TEXT


async def answer_probe(
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    probes: ProbesConfig,
    collectors: Sequence[Collector],
) -> Answer:
    """The answer to a /probe request with these query parameters and (lower-case) headers, under the
    running `probes:` config; the probe is recorded in the running ProbesCollector among `collectors`."""
    stats = next((c for c in collectors if isinstance(c, ProbesCollector)), None)
    module_name = _single(query, "module") or DEFAULT_MODULE
    target = _single(query, "target")
    module = probes.modules.get(module_name)
    problem = ""
    if module is None:
        problem = f"unknown module {module_name!r}"
        if not _single(query, "module"):
            problem += " (the module used when the request names none, as in blackbox_exporter)"
    elif not target:
        problem = "target parameter is missing"
    elif "hostname" in query:
        # blackbox lets the URL set the http Host header; Pulse lets nothing in the URL change a module.
        problem = "hostname parameter is not supported: set the Host header in the module"
    if problem or module is None:
        if stats is not None:
            stats.reject("bad_request")
        return Answer(400, f"{problem}\n".encode())
    if not probes.allows(target, module_name):
        if stats is not None:
            stats.reject("forbidden")
        return Answer(
            403,
            f"target {target!r} is not allowed with module {module_name!r}: "
            "list it in probes.targets with that module, or match it with probes.allow\n".encode(),
        )
    debug = _single(query, "debug") == "true"
    record: Recorder | None = None
    if stats is not None and not debug:  # a person's debug look must not move the SLO counters
        record = functools.partial(stats.record, listed=probes.lists(target, module_name))
    try:
        families, sink = await run_probe(
            module_name,
            module,
            target,
            headers.get(SCRAPE_TIMEOUT_HEADER),
            record=record,
            timeout_offset=probes.timeout_offset,
            listed=lambda url: probes.allows(url, module_name),
        )
    except InvalidTimeoutHeader as err:
        if stats is not None:
            stats.reject("bad_request")
        return Answer(400, f"{err}\n".encode())
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
        return Answer(200, text.encode())
    body, content_type = encode_as_accepted(families, headers.get("accept", ""))
    return Answer(200, body, content_type)


def service_discovery(probes: ProbesConfig) -> Answer:
    """The configured targets as Prometheus' http_sd_configs wants them (JSON)."""
    groups = [
        {
            "targets": [target.target],
            # `module` keeps two modules probing one target apart as series; `__param_module` becomes
            # the scrape's module= parameter without any relabelling.
            "labels": {**target.labels, "module": target.module, "__param_module": target.module},
        }
        for target in probes.targets
    ]
    return Answer(200, json.dumps(groups).encode(), "application/json")


def _single(query: Mapping[str, list[str]], name: str) -> str:
    """A query parameter's first value ("" when absent), as Go's url.Values.Get."""
    values = query.get(name)
    return values[0] if values else ""


def _resolved_module(module: ProbeModule) -> dict[str, Any]:
    """The module as the probe used it: its prober's options with every default filled in, secrets hidden."""
    data = {"prober": module.prober, "timeout": module.model_dump(mode="json")["timeout"]}
    data[module.prober] = redacted(module.settings())
    return data
