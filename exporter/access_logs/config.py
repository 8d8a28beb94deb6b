"""The `logs:` section of pulse.yml: access logs to follow, their format, and how their lines become
labels (docs/access-logs.md).

    logs:
      poll_interval: 1s
      files:
        shop:                                   # the log's name: the `log` label of the self-metrics
          paths: [/var/log/nginx/access.log]    # globs
          format: combined
          service: shop
          routes:
            - {name: product, path: '/products/[^/]+'}

Everything a label can take is bounded here: `route` is one of the named routes or `other`, `method`
one of the standard methods or `OTHER`, `code` three digits, `service` from the config.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Literal

import pydantic

from exporter.config.types import PositiveDuration, Regex, StrictModel

# The client_golang default buckets: what an instrumented app's `http_request_duration_seconds` has, so
# dashboards and SLOs written for those work unchanged.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULT_SERIES_LIMIT = 2000
DEFAULT_MAX_LINE_LENGTH = 64 * 1024
OTHER_ROUTE = "other"
DURATION_UNITS = {"s": 1.0, "ms": 0.001, "us": 0.000001}
# Named groups the `regex` format reads; `code` is the only one required.
REGEX_GROUPS = ("method", "path", "code", "bytes", "duration")
_LOG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class Route(StrictModel):
    """A named path pattern: `path` (RE2) must match the whole path, query string excluded."""

    name: str = pydantic.Field(min_length=1, max_length=100)
    path: Regex


class JsonFields(StrictModel):
    """Where the `json` format finds each value in a line's object; `a.b` reaches into nested objects."""

    method: str | None = "method"
    path: str | None = "path"
    code: str = "status"
    bytes: str | None = "bytes"
    duration: str | None = None
    duration_unit: Literal["s", "ms", "us"] = "s"


class LogConfig(StrictModel):
    paths: list[str] = pydantic.Field(min_length=1)
    format: Literal["combined", "json", "regex"] = "combined"
    service: str | None = pydantic.Field(None, min_length=1, max_length=100)  # default: the log's name
    routes: list[Route] = []
    from_start: bool = False  # read the files present at start-up from the beginning, not from their end
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    series_limit: int = pydantic.Field(DEFAULT_SERIES_LIMIT, ge=1)
    max_line_length: int = pydantic.Field(DEFAULT_MAX_LINE_LENGTH, ge=256, le=16 * 1024 * 1024)
    json_fields: JsonFields | None = pydantic.Field(None, alias="json")
    regex: Regex | None = None
    duration_unit: Literal["s", "ms", "us"] = "s"  # of the `regex` format's `duration` group

    model_config = pydantic.ConfigDict(populate_by_name=True)

    @pydantic.field_validator("paths")
    @classmethod
    def _absolute_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.strip():
                raise ValueError("a path cannot be empty")
            if "\0" in path:
                raise ValueError(f"{path!r}: a path cannot contain a NUL byte")
        return paths

    @pydantic.field_validator("buckets")
    @classmethod
    def _increasing(cls, buckets: tuple[float, ...]) -> tuple[float, ...]:
        if not buckets:
            raise ValueError("at least one bucket")
        if not all(math.isfinite(b) for b in buckets):
            raise ValueError("buckets must be finite numbers (+Inf is always added)")
        if any(a >= b for a, b in itertools.pairwise(buckets)):
            raise ValueError("buckets must be strictly increasing")
        return buckets

    @pydantic.field_validator("routes")
    @classmethod
    def _unique_routes(cls, routes: list[Route]) -> list[Route]:
        seen: set[str] = set()
        for route in routes:
            if route.name == OTHER_ROUTE:
                raise ValueError(f"route name {OTHER_ROUTE!r} is reserved for paths no route matches")
            if route.name in seen:
                raise ValueError(f"two routes are named {route.name!r}")
            seen.add(route.name)
        return routes

    @pydantic.model_validator(mode="after")
    def _format_options(self) -> LogConfig:
        if self.format == "regex":
            if self.regex is None:
                raise ValueError("format regex needs `regex:`, a pattern with named groups (at least `code`)")
            names = set(_group_names(self.regex.pattern))
            if "code" not in names:
                raise ValueError("regex: the pattern needs a named group `code` (the status code)")
            unknown = names - set(REGEX_GROUPS)
            if unknown:
                raise ValueError(
                    f"regex: unknown named groups {sorted(unknown)}; Pulse reads {', '.join(REGEX_GROUPS)}"
                )
        elif self.regex is not None:
            raise ValueError(f"`regex:` is for format regex, not {self.format}")
        if self.json_fields is not None and self.format != "json":
            raise ValueError(f"`json:` is for format json, not {self.format}")
        return self

    def fields(self) -> JsonFields:
        return self.json_fields or JsonFields()


def _group_names(pattern: str) -> list[str]:
    return re.findall(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", pattern)


class LogsConfig(StrictModel):
    poll_interval: PositiveDuration = 1.0
    files: dict[str, LogConfig] = {}

    @pydantic.field_validator("files")
    @classmethod
    def _names(cls, files: dict[str, LogConfig]) -> dict[str, LogConfig]:
        for name in files:
            if not _LOG_NAME.match(name) or len(name) > 100:
                raise ValueError(f"log name {name!r}: use letters, digits, _ . and -, starting with a letter or _")
        return files

    @pydantic.model_validator(mode="after")
    def _shared_services_agree(self) -> LogsConfig:
        # Logs of one service (two nginx servers) add up into the same series: their buckets must agree.
        buckets: dict[str, tuple[str, tuple[float, ...]]] = {}
        for name, log in self.files.items():
            service = self.service_of(name)
            other = buckets.setdefault(service, (name, log.buckets))
            if other[1] != log.buckets:
                raise ValueError(
                    f"files: logs {other[0]} and {name} are both service {service!r} but have different buckets; "
                    "their series add up, so their buckets must be the same"
                )
        return self

    def service_of(self, name: str) -> str:
        return self.files[name].service or name
