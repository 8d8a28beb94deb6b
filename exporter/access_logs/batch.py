"""What a format makes of a run of lines: counts by raw (method, path, code), before labels are bounded.

A format's parser is the hot loop: it only matches and counts, keyed by the raw values it found (bytes
for the built-in formats, str for json and regex). Turning raw values into bounded labels (a route, a
standard method) happens once per distinct key when the batch is folded into the series (series.py),
not once per line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

RawValue = bytes | str | None
RawKey = tuple[RawValue, RawValue, RawValue]  # (method, path without query, code)
Duration = bytes | float  # seconds: as the log wrote them (combined), or already converted (json, regex)


class Batch:
    """Counts of one run of lines."""

    __slots__ = ("durations", "requests", "sample", "sizes", "unparsed", "upstream")

    def __init__(self) -> None:
        self.requests: dict[RawKey, int] = {}
        self.sizes: dict[RawKey, int] = {}  # response bytes, summed
        # key -> durations as written (seconds): converted, sorted and cut into buckets per label set
        # when the batch is folded, in C (map, sorted, bisect) rather than a Python step per line.
        self.durations: dict[RawKey, list[Duration]] = {}
        self.upstream: dict[RawKey, list[Duration]] = {}
        self.unparsed = 0
        self.sample: bytes | None = None  # the first line that did not parse, for the log

    # The built-in combined format counts inline, in its hot loop; json and regex go through these.
    def miss(self, line: bytes) -> None:
        """A line that did not parse."""
        self.unparsed += 1
        if self.sample is None:
            self.sample = line

    def add(self, key: RawKey, size: int | None, seconds: float | None) -> None:
        """One request, with its response bytes and duration when the line had valid ones."""
        self.requests[key] = self.requests.get(key, 0) + 1
        if size is not None:
            self.sizes[key] = self.sizes.get(key, 0) + size
        if seconds is not None:
            self.durations.setdefault(key, []).append(seconds)


def size_of(value: Any) -> int | None:
    """Response bytes from a field or group: a whole number of digits, or nothing."""
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).isdigit():
        return int(value)
    return None


def seconds_of(value: Any, unit: float) -> float | None:
    """A duration in seconds from a number or numeric text in `unit`; nothing unless finite and >= 0."""
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        return None
    try:
        seconds = float(value) * unit
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# A format's parser: count `lines` (without their newlines) into the batch.
Parser = Callable[[Sequence[bytes], Batch], None]
