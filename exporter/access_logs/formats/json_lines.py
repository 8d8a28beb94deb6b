"""JSON lines: one object per line, with the fields named in `json:` (a field mapping; `a.b` reaches
into nested objects). Codes may be numbers or strings; a duration is a number (or numeric string) in
`duration_unit`. A line that is not an object, or lacks the code, is unparsed."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from exporter.access_logs.batch import Batch, Parser, RawValue
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
                batch.unparsed += 1
                if batch.sample is None:
                    batch.sample = line
                continue
            method = _raw(_lookup(document, method_at)) if method_at else None
            path = _raw(_lookup(document, path_at)) if path_at else None
            key = (method, path.partition("?")[0] if isinstance(path, str) else None, code)
            batch.requests[key] = batch.requests.get(key, 0) + 1
            if bytes_at:
                size = _lookup(document, bytes_at)
                if isinstance(size, int | str) and not isinstance(size, bool) and str(size).isdigit():
                    batch.sizes[key] = batch.sizes.get(key, 0) + int(size)
            if duration_at:
                duration = _lookup(document, duration_at)
                if isinstance(duration, int | float | str) and not isinstance(duration, bool):
                    try:
                        seconds = float(duration) * unit
                    except ValueError:
                        continue
                    if math.isfinite(seconds) and seconds >= 0:
                        batch.durations.setdefault(key, []).append(seconds)

    return parse
