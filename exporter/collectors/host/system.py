"""Kernel-wide counters from /proc/stat, the clock, and uname.

node_exporter splits these over its stat, time and uname collectors; here they share one read of
/proc/stat. psutil has no running/blocked process counts, so /proc/stat is read directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle


def _domainname() -> str:
    try:
        with open("/proc/sys/kernel/domainname", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "(none)"


class SystemCollector(BlockingCollector):
    def __init__(self, config: Toggle, stat_path: str = "/proc/stat") -> None:
        super().__init__("host.system", config)
        self.stat_path = stat_path

    def collect_blocking(self) -> Sequence[Metric]:
        values: dict[str, int] = {}
        with open(self.stat_path, encoding="ascii") as stat:
            for line in stat:
                key, _, rest = line.partition(" ")
                if key in ("btime", "procs_running", "procs_blocked", "ctxt", "processes", "intr"):
                    values[key] = int(rest.split(maxsplit=1)[0])
        uname = os.uname()
        uname_info = GaugeMetricFamily(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            labels=["sysname", "release", "version", "machine", "nodename", "domainname"],
        )
        uname_info.add_metric(
            [uname.sysname, uname.release, uname.version, uname.machine, uname.nodename, _domainname()], 1
        )
        families: list[Metric] = [
            GaugeMetricFamily("node_time_seconds", "System time in seconds since epoch (1970).", value=time.time()),
            uname_info,
        ]
        gauges = {
            "btime": ("node_boot_time_seconds", "Node boot time, in unixtime."),
            "procs_running": ("node_procs_running", "Number of processes in runnable state."),
            "procs_blocked": ("node_procs_blocked", "Number of processes blocked waiting for I/O to complete."),
        }
        counters = {
            "ctxt": ("node_context_switches_total", "Total number of context switches."),
            "processes": ("node_forks_total", "Total number of forks."),
            "intr": ("node_intr_total", "Total number of interrupts serviced."),
        }
        for key, (name, help_text) in gauges.items():
            if key in values:
                families.append(GaugeMetricFamily(name, help_text, value=values[key]))
        for key, (name, help_text) in counters.items():
            if key in values:
                families.append(CounterMetricFamily(name, help_text, value=values[key]))
        return families
