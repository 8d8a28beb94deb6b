"""CPU time per CPU and mode, from /proc/stat, as node_exporter's cpu collector reports it.

Read directly rather than through psutil: psutil numbers CPUs by their position in the list, which
mislabels them when a CPU is offline; the kernel's own `cpuN` names are kept here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle

# /proc/stat columns after the cpu name; user and nice include guest time, as in the kernel.
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
USER_HZ = os.sysconf("SC_CLK_TCK")


class CpuCollector(BlockingCollector):
    def __init__(self, config: Toggle, stat_path: str = "/proc/stat") -> None:
        super().__init__("host.cpu", config)
        self.stat_path = stat_path

    def collect_blocking(self) -> Sequence[Metric]:
        seconds = CounterMetricFamily(
            "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", labels=["cpu", "mode"]
        )
        guest = CounterMetricFamily(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            labels=["cpu", "mode"],
        )
        with open(self.stat_path, encoding="ascii") as stat:
            for line in stat:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *ticks = line.split()
                cpu = name[3:]
                for mode, value in zip(MODES, ticks, strict=False):
                    seconds.add_metric([cpu, mode], int(value) / USER_HZ)
                for mode, value in zip(GUEST_MODES, ticks[8:10], strict=False):
                    guest.add_metric([cpu, mode], int(value) / USER_HZ)
        return [seconds, guest]
