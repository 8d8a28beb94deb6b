"""Settings values written into PromQL: durations as numbers of seconds, text as quoted strings.

`time() - x > 26h` is not PromQL (Prometheus 2 has no duration arithmetic), so a duration from the settings
becomes its number of seconds; a user's regex or name becomes a string literal that cannot end early.
"""

from __future__ import annotations

import json

import pydantic

from exporter.config.types import Duration

_DURATION = pydantic.TypeAdapter(Duration)


def seconds(duration: str) -> str:
    """A Prometheus duration ("26h", "1h30m") as a PromQL number of seconds ("93600", "5400")."""
    value = _DURATION.validate_python(duration)
    return str(int(value)) if value.is_integer() else repr(value)


def number(value: float) -> str:
    """A threshold as PromQL reads it: 0.05 stays 0.05, 2.0 becomes 2."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def percent(ratio: float) -> str:
    """A ratio as people read it in a description: 0.05 is "5%"."""
    return f"{ratio * 100:g}%"


def string(text: str) -> str:
    """A PromQL string literal: double-quoted, with backslashes and quotes escaped (Go's escapes, as JSON's)."""
    return json.dumps(text, ensure_ascii=False)
