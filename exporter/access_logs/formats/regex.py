"""A user's regular expression (RE2) with named groups, for any other log (ERP and CRM applications):
`code` (required), and any of `method`, `path`, `bytes`, `duration` (in `duration_unit`). The pattern is
searched in each line; a line it does not match is unparsed."""

from __future__ import annotations

import math
from collections.abc import Sequence

from exporter.access_logs.batch import Batch, Parser
from exporter.access_logs.config import DURATION_UNITS, LogConfig


def build(config: LogConfig) -> Parser:
    pattern = config.regex
    assert pattern is not None  # the config requires it for this format
    unit = DURATION_UNITS[config.duration_unit]
    search = pattern.search

    def parse(lines: Sequence[bytes], batch: Batch) -> None:
        for line in lines:
            found = search(line.decode("utf-8", "replace"))
            if found is None or not found.groupdict().get("code"):
                batch.unparsed += 1
                if batch.sample is None:
                    batch.sample = line
                continue
            groups = found.groupdict()
            path = groups.get("path")
            key = (groups.get("method"), path.partition("?")[0] if path else None, groups["code"])
            batch.requests[key] = batch.requests.get(key, 0) + 1
            size = groups.get("bytes")
            if size and size.isdigit():
                batch.sizes[key] = batch.sizes.get(key, 0) + int(size)
            duration = groups.get("duration")
            if duration:
                try:
                    seconds = float(duration) * unit
                except ValueError:
                    continue
                if math.isfinite(seconds) and seconds >= 0:
                    batch.durations.setdefault(key, []).append(seconds)

    return parse
