"""Building blocks shared by every config model.

- `StrictModel`: unknown keys are errors (a typo must never pass silently); models are immutable,
  so an unchanged section compares equal after a reload and its collector (and its state) is kept.
- `Regex`: a regular expression checked when the config loads, stored compiled.
- `Duration`: "30s", "1m30s", "250ms" (Prometheus' syntax), stored as float seconds.
- `secret_field()`: a string that may come from a file instead, as `<name>_file: /path`, so secrets
  never need to sit in the config (`${ENV}` interpolation is the other way, see loader.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import ConfigDict, PlainSerializer


def _compile(value: Any) -> re.Pattern[str]:
    if isinstance(value, re.Pattern):
        return value
    if not isinstance(value, str):
        raise ValueError("a regular expression must be a string")
    try:
        return re.compile(value)
    except re.error as err:
        raise ValueError(f"not a valid regular expression ({err})") from None


Regex = Annotated[
    re.Pattern[str],
    pydantic.BeforeValidator(_compile),
    PlainSerializer(lambda pattern: pattern.pattern, return_type=str),
]


_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def _parse_duration(value: Any) -> float:
    """Prometheus' duration syntax ("30s", "1m30s", "250ms", "2h"); a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like 30s, 5m or 250ms")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())) and value.strip():
        seconds = sum(int(part) * unit for part, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if part)
    else:
        raise ValueError(f"not a duration: {value!r} (write it like 30s, 5m, 1h30m or 250ms)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _format_duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds % 1 else f"{int(seconds)}s"


# A duration in seconds (float), written in the config the Prometheus way.
Duration = Annotated[
    float,
    pydantic.BeforeValidator(_parse_duration),
    PlainSerializer(_format_duration, return_type=str),
]


def secret_field(**kwargs: Any) -> Any:
    """A field whose value may be given directly, or read from `<name>_file`."""
    return pydantic.Field(json_schema_extra={"secret": True}, **kwargs)


class StrictModel(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any, info: pydantic.ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            file_key = f"{name}_file"
            if field.json_schema_extra != {"secret": True} or file_key not in data:
                continue
            if name in data:
                raise ValueError(f"set either {name} or {file_key}, not both")
            data = dict(data)
            path = Path(str(data.pop(file_key)))
            base_dir = (info.context or {}).get("base_dir")
            if not path.is_absolute() and base_dir is not None:
                path = Path(base_dir) / path
            try:
                # One trailing newline is what editors and `echo` add; it is never part of a secret.
                data[name] = path.read_text(encoding="utf-8").removesuffix("\n")
            except OSError as err:
                raise ValueError(f"{file_key}: cannot read {path}: {err.strerror or err}") from None
        return data
