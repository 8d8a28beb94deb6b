"""What a format makes of a run of lines: counts by raw (method, path, code), before labels are bounded.

A format's parser is the hot loop: it only matches and counts, keyed by the raw values it found (bytes
for the built-in formats, str for json and regex). Turning raw values into bounded labels (a route, a
standard method) happens once per distinct key when the batch is folded into the series (series.py),
not once per line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


# A format's parser: count `lines` (without their newlines) into the batch.
Parser = Callable[[Sequence[bytes], Batch], None]
