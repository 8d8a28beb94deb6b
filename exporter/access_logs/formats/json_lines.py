"""JSON lines: one object per line, with the fields named in `json:` (a field mapping; `a.b` reaches
into nested objects). Codes may be numbers or strings; a duration is a number (or numeric string) in
`duration_unit`. A line that is not an object, or lacks the code, is unparsed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from exporter.access_logs.batch import Batch, Parser, RawValue, seconds_of, size_of
from exporter.access_logs.config import DURATION_UNITS, LogConfig

_MISSING = object()


def _getter(field: str | None) -> tuple[str, ...]:
    return tuple(field.split(".")) if field else ()


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, dict):
            return _MISSING
        document = document.get(part, _MISSING)
    return document


def _raw(value: Any) -> RawValue:
    if value is _MISSING or value is None or isinstance(value, dict | list):
        return None
    return str(value) if not isinstance(value, str) else value


def build(config: LogConfig) -> Parser:
    fields = config.fields()
    method_at, path_at, code_at = _getter(fields.method), _getter(fields.path), _getter(fields.code)
    bytes_at, duration_at = _getter(fields.bytes), _getter(fields.duration)
    unit = DURATION_UNITS[fields.duration_unit]

    def parse(lines: Sequence[bytes], batch: Batch) -> None:
        for line in lines:
            try:
                document = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: a hostile line of nested brackets
                document = None
            code = _raw(_lookup(document, code_at)) if isinstance(document, dict) else None
            if code is None:
                batch.miss(line)
                continue
            method = _raw(_lookup(document, method_at)) if method_at else None
            path = _raw(_lookup(document, path_at)) if path_at else None
            key = (method, path.partition("?")[0] if isinstance(path, str) else None, code)
            size = size_of(_lookup(document, bytes_at)) if bytes_at else None
            seconds = seconds_of(_lookup(document, duration_at), unit) if duration_at else None
            batch.add(key, size, seconds)

    return parse
