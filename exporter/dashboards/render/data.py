"""A panel's data from Prometheus, as Grafana would fetch it: range queries for a time series panel (a
step that fits the panel's width, `$__rate_interval` by Grafana's rule), an instant query at the range's
end for stats, gauges and tables; series named by the query's legend template (`{{label}}`).

No drawing here (charts.py draws): the reports use the same data and the same names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from exporter.dashboards.model import Panel, Query, resolved

# Prometheus' default scrape interval, and Pulse's: the shortest step worth asking for, and Grafana's
# `$__rate_interval` is max(4 x scrape interval, step + scrape interval).
SCRAPE_INTERVAL = 15
# Steps a range query uses: the first at least as long as the range divided by the points wanted.
NICE_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PrometheusUnreachable(Exception):
    """Prometheus did not answer, or what answered is not Prometheus' API: nothing can be drawn."""


class QueryError(Exception):
    """Prometheus refused one query (its error message): that panel shows it, the others are drawn."""


@dataclass(frozen=True)
class Window:
    """The time range drawn: `start` to `end` (Unix seconds), and the step of its range queries."""

    start: int
    end: int
    step: int
    now: int | None = None  # the instant stats and tables show (the requested end, not rounded): as Grafana

    @property
    def instant(self) -> int:
        return self.end if self.now is None else self.now

    @property
    def seconds(self) -> int:
        return self.end - self.start

    def times(self) -> list[int]:
        return list(range(self.start, self.end + 1, self.step))


@dataclass(frozen=True)
class Series:
    name: str  # its legend: the query's template filled with its labels
    labels: Mapping[str, str]
    times: tuple[int, ...]  # every step of the window (timeseries), or the one instant (instant queries)
    values: tuple[float, ...]  # NaN where Prometheus had no sample: a gap in the line

    @property
    def last(self) -> float:
        """The last value that is a number (Grafana's lastNotNull), NaN if none."""
        return next((value for value in reversed(self.values) if not math.isnan(value)), math.nan)

    @property
    def peak(self) -> float:
        numbers = [value for value in self.values if not math.isnan(value)]
        return max(numbers) if numbers else -math.inf


@dataclass(frozen=True)
class QueryResult:
    query: Query
    promql: str  # as Prometheus ran it: the board's variables and Grafana's replaced
    series: tuple[Series, ...] = ()
    error: str = ""  # Prometheus' error for this query (bad PromQL, a timeout): drawn, not raised


@dataclass(frozen=True)
class PanelData:
    panel: Panel
    window: Window
    results: tuple[QueryResult, ...] = field(default=())

    @property
    def series(self) -> list[Series]:
        return [series for result in self.results for series in result.series]

    @property
    def errors(self) -> list[str]:
        return [result.error for result in self.results if result.error]

    @property
    def has_data(self) -> bool:
        return any(not math.isnan(value) for series in self.series for value in series.values)


def parse_duration(text: str) -> int:
    """Prometheus' duration syntax, in seconds: "6h", "90m", "1d12h", "2w"."""
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 6h, 7d, 1d12h)")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def step_for(range_seconds: int, points: int) -> int:
    """A step that gives about `points` points over the range (no more), rounded up to a usual step."""
    wanted = range_seconds / max(points, 1)
    return next((step for step in NICE_STEPS if step >= wanted), math.ceil(wanted / 86400) * 86400)


def window(end: float, range_seconds: int, points: int) -> Window:
    """The range ending at `end`, its ends on multiples of the step: a re-render draws the same points."""
    step = step_for(range_seconds, points)
    last = int(end) - int(end) % step
    return Window(last - range_seconds, last, step, int(end))


def rate_interval(step: int) -> str:
    return f"{max(4 * SCRAPE_INTERVAL, step + SCRAPE_INTERVAL)}s"


def promql(query: Query, span: Window, values: Mapping[str, str] | None = None) -> str:
    """The query as Prometheus runs it for this window: Grafana's built-in variables, then the board's."""
    builtins = {
        "__rate_interval": rate_interval(span.step),
        "__interval": f"{span.step}s",
        "__range": f"{span.seconds}s",
    }
    expr = _BUILTIN.sub(lambda match: builtins[match.group(1) or match.group(2)], query.expr)
    return resolved(expr, values)


_BUILTIN = re.compile(r"\$\{(__rate_interval|__interval|__range)\}|\$(__rate_interval|__interval|__range)(?!\w)")
_TEMPLATE = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")


def legend_name(template: str, labels: Mapping[str, str], fallback: str) -> str:
    """Grafana's legendFormat: `{{label}}` replaced by the label's value (empty if absent). Without a
    template (or `__auto`): the series' labels, `metric{a="b"}`, or `fallback` when it has none."""
    if template and template != "__auto":
        return _TEMPLATE.sub(lambda match: labels.get(match.group(1), ""), template).strip() or fallback
    shown = {key: value for key, value in labels.items() if key != "__name__"}
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(shown.items()))
    name = labels.get("__name__", "")
    if not inner:
        return name or fallback
    return f"{name}{{{inner}}}"


class PrometheusClient:
    """Prometheus' HTTP API, the part the pictures need."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> str:
        """Prometheus' version; PrometheusUnreachable if it does not answer as Prometheus does."""
        data = self._call("GET", "status/buildinfo", {})
        if not isinstance(data, dict) or "version" not in data:
            raise PrometheusUnreachable(f"{self.url} answered, but not as Prometheus' API does")
        return str(data["version"])

    def query_range(self, expr: str, span: Window) -> list[dict[str, Any]]:
        params = {"query": expr, "start": str(span.start), "end": str(span.end), "step": str(span.step)}
        return self._result(self._call("POST", "query_range", params), "matrix")

    def query(self, expr: str, at: int) -> list[dict[str, Any]]:
        return self._result(self._call("POST", "query", {"query": expr, "time": str(at)}), "vector")

    def _call(self, method: str, path: str, params: dict[str, str]) -> Any:
        try:
            if method == "GET":
                response = self._http.get(f"/api/v1/{path}", params=params)
            else:
                response = self._http.post(f"/api/v1/{path}", data=params)
        except httpx.HTTPError as error:
            raise PrometheusUnreachable(
                f"cannot reach Prometheus at {self.url}: {error or type(error).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusUnreachable(
                f"{self.url}/api/v1/{path} answered HTTP {response.status_code}, not Prometheus' API "
                "(is the URL Prometheus' own, without a path?)"
            )
        if body["status"] != "success":
            raise QueryError(str(body.get("error", f"HTTP {response.status_code}")))
        return body.get("data")

    @staticmethod
    def _result(data: Any, expected: str) -> list[dict[str, Any]]:
        kind = data.get("resultType") if isinstance(data, dict) else None
        if kind == "scalar":  # e.g. `vector(1)` is a vector, but `1` is a scalar: one unnamed series
            return [{"metric": {}, "value": data["result"]}]
        if kind != expected:
            raise QueryError(f"expected a {expected}, Prometheus answered a {kind}")
        result: list[dict[str, Any]] = data["result"]
        return result


def _number(text: str) -> float:
    value = float(text)
    return math.nan if math.isinf(value) else value  # an infinite sample cannot be drawn: a gap


def fetch_panel(
    client: PrometheusClient, panel: Panel, span: Window, values: Mapping[str, str] | None = None
) -> PanelData:
    """Every query of the panel: over the window for a time series, at its end for the other kinds."""
    results = []
    for query in panel.queries:
        expr = promql(query, span, values)
        try:
            if panel.kind == "timeseries":
                found = [_range_points(item, span) for item in client.query_range(expr, span)]
            else:
                found = [_instant_point(item) for item in client.query(expr, span.instant)]
        except QueryError as error:
            results.append(QueryResult(query, expr, error=str(error)))
            continue
        series = named(found, query.legend, panel.title)
        if panel.kind == "timeseries":  # a stable legend; instant results keep Prometheus' order (sort_desc)
            series.sort(key=lambda item: (item.name, sorted(item.labels.items())))
        results.append(QueryResult(query, expr, tuple(series)))
    return PanelData(panel, span, tuple(results))


Points = tuple[dict[str, str], tuple[int, ...], tuple[float, ...]]


def named(found: list[Points], template: str, fallback: str) -> list[Series]:
    """Series named by the legend template. Without one, the labels every series shares (the job, the
    instance...) are left out of the names: they tell the series apart no more than Grafana's would."""
    shared: set[tuple[str, str]] = set()
    if not (template and template != "__auto") and len(found) > 1:
        shared = set.intersection(*({(k, v) for k, v in labels.items() if k != "__name__"} for labels, _, _ in found))
    return [
        Series(legend_name(template, {k: v for k, v in labels.items() if (k, v) not in shared}, fallback), labels,
               times, values)
        for labels, times, values in found
    ]  # fmt: skip


def _range_points(item: dict[str, Any], span: Window) -> Points:
    by_time = {int(float(at)): _number(value) for at, value in item["values"]}
    times = span.times()
    return dict(item["metric"]), tuple(times), tuple(by_time.get(at, math.nan) for at in times)


def _instant_point(item: dict[str, Any]) -> Points:
    at, value = item["value"]
    return dict(item["metric"]), (int(float(at)),), (float(value),)
