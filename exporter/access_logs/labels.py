"""Bounded labels from raw values: `route` from the configured path patterns (else `other`), `method`
from the standard set (else `OTHER`), `code` three digits from 100 to 599 (else the line is unparsed)."""

from __future__ import annotations

from exporter.access_logs.batch import RawValue
from exporter.access_logs.config import OTHER_ROUTE, Route

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER_METHOD = "OTHER"
# Raw path -> route, so each distinct path is matched against the patterns once; cleared when full, so
# a scan of random URLs costs matching time, never memory.
ROUTE_CACHE_SIZE = 10_000


def text(value: RawValue) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class Labeler:
    def __init__(self, routes: list[Route]) -> None:
        self._routes = [(route.name, route.path) for route in routes]
        self._route_cache: dict[RawValue, str] = {}
        self._methods: dict[RawValue, str] = {}
        self._codes: dict[RawValue, str | None] = {}

    def route(self, path: RawValue) -> str:
        route = self._route_cache.get(path)
        if route is None:
            route = self._match(text(path).partition("?")[0])
            if len(self._route_cache) >= ROUTE_CACHE_SIZE:
                self._route_cache.clear()
            self._route_cache[path] = route
        return route

    def _match(self, path: str) -> str:
        if path:
            for name, pattern in self._routes:
                if pattern.fullmatch(path):
                    return name
        return OTHER_ROUTE

    def method(self, method: RawValue) -> str:
        label = self._methods.get(method)
        if label is None:
            upper = text(method).upper()
            label = upper if upper in STANDARD_METHODS else OTHER_METHOD
            if len(self._methods) < 100:  # a log full of junk methods must not grow this
                self._methods[method] = label
        return label

    def code(self, code: RawValue) -> str | None:
        """The code as a label, or None when it is not an HTTP status (the line then counts as unparsed)."""
        try:
            return self._codes[code]
        except KeyError:
            label = status_code(code)
            if len(self._codes) < 1000:  # a log full of junk codes must not grow this
                self._codes[code] = label
            return label


def status_code(code: RawValue) -> str | None:
    """The code as a label, or None when it is not an HTTP status (the line then counts as unparsed)."""
    value = text(code).strip()
    if len(value) == 3 and value.isdigit() and "1" <= value[0] <= "5":
        return value
    return None
