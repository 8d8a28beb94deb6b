"""What the /proc readers of several host collectors share: one read of a small file, the error for a
file that does not look as the kernel writes it, and families handed out again while their value holds.

The error names the file and line, so `pulse_exporter_collector_success 0` on the landing page and in
the log says what to look at; the scrape and the other collectors go on as usual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from prometheus_client.metrics_core import Metric

# What node_exporter puts into a metric name from a file's contents (netstat fields, sockstat protocols).
NAME_PART = re.compile(r"^[A-Za-z0-9_]+$")
READ_SIZE = 64 * 1024


class MalformedFileError(ValueError):
    def __init__(self, path: str, line_number: int, reason: str) -> None:
        where = f"{path}:{line_number}" if line_number else path
        super().__init__(f"{where}: {reason}")


def read_text(path: str) -> str:
    """A whole /proc or /sys file. os.read rather than open(): these files are small and a scrape reads
    a dozen of them, so the io stack's buffered text wrapper was a measurable share of the scrape."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, READ_SIZE)]
        # procfs and sysfs fill the buffer as far as the file goes: a short read is the end.
        while len(chunks[-1]) == READ_SIZE:
            chunks.append(os.read(fd, READ_SIZE))
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", errors="replace")


def name_part(value: str, path: str, line_number: int) -> str:
    """A piece of a metric name taken from the file, refused unless it is letters, digits and '_'."""
    if not NAME_PART.match(value):
        raise MalformedFileError(path, line_number, f"{value[:40]!r} cannot be part of a metric name")
    return value


class SteadyFamilies:
    """Single-value families, handed out again while their value holds.

    Most of what netstat and sockstat report (error counters, SYN cookies, listen drops, idle protocols)
    stays the same from one scrape to the next. A family once returned is never changed (client_python's
    custom-collector contract), so returning the same object is safe, and the exporter's encoder then
    reuses its text too (exposition.Encoder): together about half of these collectors' CPU.
    """

    MAX_FAMILIES = 4096  # names come from kernel files; a bound all the same

    def __init__(self, family_type: Callable[..., Metric]) -> None:
        self.family_type = family_type
        self._last: dict[str, Metric] = {}

    def get(self, name: str, help_text: str, value: float) -> Metric:
        last = self._last.get(name)
        if last is not None and last.samples[0].value == value:
            return last
        family: Metric = self.family_type(name, help_text, value=value)
        if last is not None or len(self._last) < self.MAX_FAMILIES:
            self._last[name] = family
        return family


class UnchangedFamilies:
    """Labelled families: the previous scrape's object stands in for a fresh one with the same samples,
    so the encoder reuses its text (disk counters of idle devices, node_disk_info, md arrays at rest)."""

    def __init__(self) -> None:
        self._last: dict[str, Metric] = {}

    def reuse(self, families: list[Metric]) -> list[Metric]:
        kept: dict[str, Metric] = {}
        for index, family in enumerate(families):
            previous = self._last.get(family.name)
            if previous is not None and previous.samples == family.samples:
                families[index] = previous
            kept[family.name] = families[index]
        self._last = kept
        return families
