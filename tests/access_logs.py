"""Shared by the access-log tests: lines in nginx's combined format with $request_time, a log driven
poll by poll, and its counts read back as the exposition would show them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.access_logs.collector import AccessLog, AccessLogsCollector
from exporter.access_logs.config import LogsConfig
from tests.helpers import ByName, by_name

PATHS = ("/", "/products/12", "/products/7", "/cart", "/checkout", "/api/orders/55", "/static/app.js", "/missing")
METHODS = ("GET", "GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD")
CODES = (200, 200, 200, 200, 201, 301, 304, 404, 404, 500, 502)


def nginx_line(
    method: str = "GET",
    path: str = "/",
    code: int = 200,
    size: int = 512,
    *,
    request_time: str | None = "0.004",
    upstream_time: str | None = None,
) -> str:
    line = f'10.0.0.1 - - [07/Dec/2026:02:50:00 +0000] "{method} {path} HTTP/1.1" {code} {size} "-" "Mozilla/5.0"'
    if request_time is not None:
        line += f" {request_time}"
        if upstream_time is not None:
            line += f" {upstream_time}"
    return line + "\n"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    code: int
    size: int
    request_time: str


def random_requests(count: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    return [
        Request(
            rng.choice(METHODS),
            rng.choice(PATHS) + (f"?q={rng.randint(0, 9)}" if rng.random() < 0.3 else ""),
            rng.choice(CODES),
            rng.randint(0, 50_000),
            f"{rng.randint(0, 3000) / 1000:.3f}",
        )
        for _ in range(count)
    ]


def write_lines(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


def log_collector(files: dict[str, dict[str, Any]], **section: Any) -> AccessLogsCollector:
    """The collector of a `logs:` section, not started: tests call poll() themselves."""
    return AccessLogsCollector(LogsConfig.model_validate({"files": files, **section}))


def one_log(path: Path | str, **options: Any) -> AccessLog:
    """A single log following `path` (or a glob), polled by the test."""
    return log_collector({"web": {"paths": [str(path)], **options}}).logs[0]


def counts(log: AccessLog | AccessLogsCollector) -> ByName:
    collector = log if isinstance(log, AccessLogsCollector) else _wrap(log)
    return by_name(collector.families())


def _wrap(log: AccessLog) -> AccessLogsCollector:
    collector = AccessLogsCollector(LogsConfig())
    collector.logs = [log]
    return collector


def requests_total(log: AccessLog | AccessLogsCollector) -> float:
    return sum(counts(log).get("http_requests_total", {}).values())
