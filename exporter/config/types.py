"""Building blocks shared by every config model.

- `StrictModel`: unknown keys are errors (a typo must never pass silently); models are immutable,
  so an unchanged section compares equal after a reload and its collector (and its state) is kept.
- `Regex`: a user's regular expression, checked when the config loads and stored compiled by RE2,
  whose matching time is linear in the input: a hostile pattern such as `(a+)+!` cannot stall the
  event loop (Python's `re` backtracks exponentially on it). RE2 is the engine blackbox_exporter and
  node_exporter use, so their users' patterns mean the same here; lookarounds and backreferences,
  which RE2 does not have, are refused when the config loads.
- `Duration`: "30s", "1m30s", "250ms" (Prometheus' syntax), stored as float seconds; finite, at most
  10 years. `PositiveDuration` also refuses 0, for intervals and timeouts where 0 makes no sense.
- `secret_field()`: a string that may come from a file instead, as `<name>_file: /path`, so secrets
  never need to sit in the config (`${ENV}` interpolation is the other way, see loader.py).
  `redacted(model)` is a model as plain data with those fields, and credentials in mappings, hidden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import re2
from pydantic import ConfigDict, PlainSerializer
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

from exporter.config.loader import UnreadableFile, read_text_file

# RE2's own logging of a bad pattern would go to stderr; the config error says it instead.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

if TYPE_CHECKING:
    RegexMatch = re2._Match[str]  # generic only in RE2's type stubs
else:
    RegexMatch = re2._Match


class CompiledRegex:
    """A user's pattern compiled by RE2, used like `re.Pattern`. Equal when the patterns are equal, so a
    reloaded config that did not change compares equal (RE2's own objects compare by identity)."""

    __slots__ = ("_regexp", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regexp = re2.compile(pattern, _RE2_OPTIONS)

    @property
    def groups(self) -> int:
        return self._regexp.groups

    def search(self, text: str) -> RegexMatch | None:
        return self._regexp.search(text)

    def match(self, text: str) -> RegexMatch | None:
        return self._regexp.match(text)

    def fullmatch(self, text: str) -> RegexMatch | None:
        return self._regexp.fullmatch(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledRegex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"CompiledRegex({self.pattern!r})"


def compile_regex(value: Any) -> CompiledRegex:
    """A user's pattern compiled by RE2; ValueError with RE2's reason when it is not one."""
    if isinstance(value, CompiledRegex):
        return value
    if not isinstance(value, str):
        raise ValueError("a regular expression must be a string")
    try:
        return CompiledRegex(value)
    except re2.error as err:
        reason = err.args[0].decode(errors="replace") if err.args and isinstance(err.args[0], bytes) else str(err)
        raise ValueError(f"not a valid regular expression ({reason}; patterns use RE2 syntax)") from None


Regex = Annotated[
    CompiledRegex,
    pydantic.PlainValidator(compile_regex),
    PlainSerializer(lambda pattern: pattern.pattern, return_type=str),
]


_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
# No timeout, interval or retention in a config makes sense beyond years, and Python's timers overflow
# a little above 292 years (threading.TIMEOUT_MAX): anything longer is a typo, refused at load.
MAX_DURATION_SECONDS = 10 * 365 * 86400


def _parse_duration(value: Any) -> float:
    """Prometheus' duration syntax ("30s", "1m30s", "250ms", "2h"); a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like 30s, 5m or 250ms")
    if isinstance(value, int | float):
        seconds: float = value
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())) and value.strip():
        # Each part is compared before it is multiplied: int() of a 5000-digit part would raise.
        parts = [(part, unit) for part, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if part]
        if any(len(part) > 15 for part, _ in parts):
            raise ValueError("too long; a duration is at most 10y")
        seconds = sum(int(part) * unit for part, unit in parts)
    else:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"not a duration: {shown} (write it like 30s, 5m, 1h30m or 250ms)")
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"not a duration: {value!r} (a number of seconds must be finite)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError("too long; a duration is at most 10y")
    return float(seconds)


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def _format_duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds % 1 else f"{int(seconds)}s"


# A duration in seconds (float), written in the config the Prometheus way: 0 or more, at most 10 years.
Duration = Annotated[
    float,
    pydantic.BeforeValidator(_parse_duration),
    PlainSerializer(_format_duration, return_type=str),
]

# A duration that must be longer than 0: intervals, timeouts, retention (0 would mean "spin" or "never").
PositiveDuration = Annotated[Duration, pydantic.AfterValidator(_positive)]


def registered(value: str, names: Iterable[str], what: str) -> str:
    """`value` if it names an entry of a registry (probers, packs, ...), else the error listing them."""
    known = sorted(names)
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}; Pulse supports: {', '.join(known) or 'none'}")
    return value


def secret_field(**kwargs: Any) -> Any:
    """A field whose value may be given directly, or read from `<name>_file`."""
    return pydantic.Field(json_schema_extra=_SECRET, **kwargs)


_SECRET: JsonDict = {"secret": True}  # how secret_field() marks its fields


def _is_secret(field: FieldInfo) -> bool:
    return field.json_schema_extra == _SECRET


# Credentials inside mappings, whatever option holds them: http/journey `headers` (Authorization, Cookie,
# X-Api-Key), a journey step's `form` (password).
_SECRET_KEY = re.compile(r"(?i)authorization|cookie|token|secret|password|passwd|api[-_]?key")


def redacted(model: pydantic.BaseModel) -> Any:
    """The model as plain data (e.g. for a debug page), with secret fields shown as <secret>."""
    data = model.model_dump(mode="json", by_alias=True)  # the keys as written in the config
    _redact(model, data)
    return data


def _redact(model: pydantic.BaseModel, data: Any) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name  # the key in the by-alias dump
        if _is_secret(field) and value is not None:
            data[key] = "<secret>"
        elif isinstance(value, pydantic.BaseModel):
            _redact(value, data[key])
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, pydantic.BaseModel):
                    _redact(item, data[key][index])
        elif isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, str) and _SECRET_KEY.search(str(item_key)):
                    data[key][item_key] = "<secret>"
                elif isinstance(item, pydantic.BaseModel):
                    _redact(item, data[key][item_key])


class StrictModel(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any, info: pydantic.ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            file_key = f"{name}_file"
            if not _is_secret(field) or file_key not in data:
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
                data[name] = read_text_file(path).removesuffix("\n")
            except UnreadableFile as err:
                raise ValueError(f"{file_key}: cannot read {path}: {err}") from None
        return data
