"""A user's regular expression (RE2) with named groups, for any other log (ERP and CRM applications):
`code` (required), and any of `method`, `path`, `bytes`, `duration` (in `duration_unit`). The pattern is
searched in each line; a line it does not match is unparsed."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.access_logs.batch import Batch, Parser, seconds_of, size_of
from exporter.access_logs.config import DURATION_UNITS, LogConfig


def build(config: LogConfig) -> Parser:
    pattern = config.regex
    assert pattern is not None  # the config requires it for this format
    unit = DURATION_UNITS[config.duration_unit]
    search = pattern.search

    def parse(lines: Sequence[bytes], batch: Batch) -> None:
        for line in lines:
            found = search(line.decode("utf-8", "replace"))
            groups = found.groupdict() if found is not None else {}
            if not groups.get("code"):
                batch.miss(line)
                continue
            path = groups.get("path")
            key = (groups.get("method"), path.partition("?")[0] if path else None, groups["code"])
            batch.add(key, size_of(groups.get("bytes")), seconds_of(groups.get("duration"), unit))

    return parse
