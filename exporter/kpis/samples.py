"""Sample extraction: from a query's rows to each metric's samples ({label values: value}).

A source kind finds a row's value and labels its own way (SQL: by column; HTTP: by JMESPath
expression) and hands `samples_from_rows` how; the conversions are the same for every kind:

- Values: numbers, booleans (1/0), dates (Unix seconds), durations (seconds), numeric strings, or
  any string listed in the metric's `value_map`. NULL means "no value": that series is not exposed.
- Label values: strings as they are, NULL as "", booleans as true/false, whole floats and decimals
  without a fractional part, dates in ISO 8601.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from exporter.kpis.errors import QueryError
from exporter.kpis.resolved import ResolvedMetric

LabelValues = tuple[str, ...]
Samples = dict[LabelValues, float]


def to_number(raw: Any, value_map: Mapping[str, float]) -> float | None:
    """A cell's value as a float, None for NULL. Raises ValueError for anything else."""
    if raw is None:
        return None
    if value_map:
        key = raw if isinstance(raw, str) else label_value(raw)
        if key in value_map:
            return value_map[key]
        if isinstance(raw, str):
            raise ValueError(f"{raw!r} is not in value_map ({', '.join(sorted(value_map))})")
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float | decimal.Decimal):
        return float(raw)
    if isinstance(raw, datetime.datetime):
        moment = raw if raw.tzinfo else raw.replace(tzinfo=datetime.UTC)  # naive timestamps are UTC
        return moment.timestamp()
    if isinstance(raw, datetime.date):
        return datetime.datetime(raw.year, raw.month, raw.day, tzinfo=datetime.UTC).timestamp()
    if isinstance(raw, datetime.timedelta):
        return raw.total_seconds()
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number (map strings to numbers with value_map)") from None
    raise ValueError(f"a {type(raw).__name__} is not a number")


def label_value(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, decimal.Decimal):
        return format(raw.normalize(), "f") if raw == raw.to_integral_value() else str(raw)
    if isinstance(raw, datetime.datetime | datetime.date):
        return raw.isoformat()
    if isinstance(raw, str):
        return raw
    return str(raw)


def samples_from_rows(
    metric: ResolvedMetric,
    query: str,
    rows: Iterable[Any],
    value_of: Callable[[Any], Any],
    labels_of: Callable[[Any], list[Any]],
) -> Samples:
    spec = metric.config
    static = tuple(spec.static_labels[name] for name in sorted(spec.static_labels))
    samples: Samples = {}
    for row in rows:
        try:
            value = to_number(value_of(row), spec.value_map)
        except ValueError as err:
            raise QueryError(f"query {query}: metric {spec.name}: value {spec.value!r}: {err}") from None
        if value is None:
            continue
        labels = (*(label_value(v) for v in labels_of(row)), *static)
        if spec.type == "counter" and labels in samples:
            samples[labels] += value  # rows for one label set add up (e.g. one row per day)
        else:
            samples[labels] = value
    return samples
