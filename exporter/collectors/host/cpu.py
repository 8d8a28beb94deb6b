"""CPU time per CPU and mode, from /proc/stat, as node_exporter's cpu collector reports it.

Read directly rather than through psutil: psutil numbers CPUs by their position in the list, which
mislabels them when a CPU is offline; the kernel's own `cpuN` names are kept here.

The kernel's counters can step back (iowait does, see proc(5)); like node_exporter, a mode never
decreases here, and a CPU whose idle time jumps back by JUMP_BACK_SECONDS or more (it was unplugged
and plugged again) starts afresh. Otherwise rate() would read every small step back as a reset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind

# /proc/stat columns after the cpu name; user and nice include guest time, as in the kernel.
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
USER_HZ = os.sysconf("SC_CLK_TCK")
JUMP_BACK_SECONDS = 3.0
IDLE = MODES.index("idle")


class CpuCollector(BlockingCollector):
    def __init__(self, config: Toggle, stat_path: str = "/proc/stat") -> None:
        super().__init__("host.cpu", config)
        self.stat_path = stat_path
        self._last: dict[str, list[float]] = {}  # per CPU: the 8 modes, then the 2 guest modes

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
                values = self._monotonic(cpu, [int(t) / USER_HZ for t in ticks[:10]])
                for mode, value in zip(MODES, values, strict=False):
                    seconds.add_metric([cpu, mode], value)
                for mode, value in zip(GUEST_MODES, values[8:], strict=False):
                    guest.add_metric([cpu, mode], value)
        return [seconds, guest]

    def _monotonic(self, cpu: str, values: list[float]) -> list[float]:
        last = self._last.get(cpu)
        if last is None or len(last) != len(values) or last[IDLE] - values[IDLE] >= JUMP_BACK_SECONDS:
            self._last[cpu] = values
        else:
            self._last[cpu] = [max(new, old) for new, old in zip(values, last, strict=True)]
        return self._last[cpu]


COLLECTOR = HostCollectorKind(name="cpu", config=Toggle, default=Toggle(), build=CpuCollector)
