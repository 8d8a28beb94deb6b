"""Log formats: one module each, with one signature, `build(config) -> Parser` (batch.py). A new format
is one module here and one line in FORMATS (and its name in `LogConfig.format`)."""

from __future__ import annotations

from collections.abc import Callable

from exporter.access_logs.batch import Parser
from exporter.access_logs.config import LogConfig
from exporter.access_logs.formats import combined, json_lines, regex

FORMATS: dict[str, Callable[[LogConfig], Parser]] = {
    "combined": combined.build,
    "json": json_lines.build,
    "regex": regex.build,
}
