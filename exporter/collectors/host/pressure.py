"""Pressure stall information (PSI) from /proc/pressure/{cpu,io,memory}, as node_exporter's pressure collector.

`some` is the time in which at least one task waited for the resource, `full` the time in which every
non-idle task was stalled on it at once. The kernel counts microseconds; these are seconds. Like
node_exporter 1.5, CPU has only `some` (newer kernels print a `full` line for CPU too: not exported).

Kernels without PSI (before 4.20, CONFIG_PSI off, or booted with psi=0: reading then fails with
EOPNOTSUPP) have nothing to report: the collector then exports nothing and still succeeds, as there
is nothing wrong to alert on.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, SteadyFamilies, read_text

# resource -> (line prefix, metric name, help), in node_exporter's words.
RESOURCES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "cpu": (
        (
            "some",
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
        ),
    ),
    "io": (
        (
            "some",
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
        ),
        (
            "full",
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
        ),
    ),
    "memory": (
        (
            "some",
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
        ),
        (
            "full",
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
        ),
    ),
}


class PressureCollector(BlockingCollector):
    def __init__(self, config: Toggle, proc_path: str = "/proc") -> None:
        super().__init__("host.pressure", config)
        self.pressure_path = f"{proc_path}/pressure"
        self._families = SteadyFamilies(CounterMetricFamily)  # stall times stay put on an unloaded host

    def collect_blocking(self) -> Sequence[Metric]:
        families: list[Metric] = []
        for resource, wanted in RESOURCES.items():
            path = f"{self.pressure_path}/{resource}"
            try:
                totals = parse_totals(read_text(path), path)
            except FileNotFoundError:
                continue  # no PSI in this kernel
            except OSError as err:
                if err.errno == errno.EOPNOTSUPP:
                    continue  # PSI compiled in but switched off (psi=0)
                raise
            for prefix, name, help_text in wanted:
                if prefix not in totals:
                    raise MalformedFileError(path, 0, f"no '{prefix}' line")
                families.append(self._families.get(name, help_text, totals[prefix] / 1000.0 / 1000.0))
        return families


def parse_totals(text: str, path: str) -> dict[str, int]:
    """'some'/'full' -> the `total=` microseconds of that line."""
    totals = {}
    for number, line in enumerate(text.splitlines(), 1):
        prefix, *fields = line.split() or [""]
        if prefix not in ("some", "full"):
            continue  # a kind of line a later kernel may add
        total = next((field[6:] for field in fields if field.startswith("total=")), None)
        if total is None or not total.isdigit():
            raise MalformedFileError(path, number, f"no total=<microseconds> in {line[:80]!r}")
        totals[prefix] = int(total)
    return totals


COLLECTOR = HostCollectorKind(name="pressure", config=Toggle, default=Toggle(), build=PressureCollector)
