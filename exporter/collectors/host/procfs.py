"""What the /proc readers of several host collectors share: one read of a small file, and the error for
a file that does not look as the kernel writes it.

The error names the file and line, so `pulse_exporter_collector_success 0` on the landing page and in
the log says what to look at; the scrape and the other collectors go on as usual.
"""

from __future__ import annotations

import re

# What node_exporter puts into a metric name from a file's contents (netstat fields, sockstat protocols).
NAME_PART = re.compile(r"^[A-Za-z0-9_]+$")


class MalformedFileError(ValueError):
    def __init__(self, path: str, line_number: int, reason: str) -> None:
        where = f"{path}:{line_number}" if line_number else path
        super().__init__(f"{where}: {reason}")


def read_text(path: str) -> str:
    """A whole /proc or /sys file, in one read: these files are small and built at open time."""
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def name_part(value: str, path: str, line_number: int) -> str:
    """A piece of a metric name taken from the file, refused unless it is letters, digits and '_'."""
    if not NAME_PART.match(value):
        raise MalformedFileError(path, line_number, f"{value[:40]!r} cannot be part of a metric name")
    return value
