"""Kernel-wide figures: /proc/stat counters, the clock, uname, file handles, connection tracking.

node_exporter splits these over its stat, time, uname, filefd and conntrack collectors; here they are
one collector, each a file read or two. psutil has no running/blocked process counts, so /proc/stat
is read directly. Connection-tracking figures appear only where the netfilter module is loaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import read_text


def _read_ints(path: str) -> list[int] | None:
    try:
        return [int(field) for field in read_text(path).split()]
    except FileNotFoundError:
        return None


def _domainname() -> str:
    try:
        return read_text("/proc/sys/kernel/domainname").strip()
    except OSError:
        return "(none)"


class SystemCollector(BlockingCollector):
    def __init__(self, config: Toggle, stat_path: str = "/proc/stat") -> None:
        super().__init__("host.system", config)
        self.stat_path = stat_path

    def collect_blocking(self) -> Sequence[Metric]:
        values: dict[str, int] = {}
        for line in read_text(self.stat_path).splitlines():
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
        file_nr = _read_ints("/proc/sys/fs/file-nr")  # allocated, unused (always 0), maximum
        if file_nr is not None:
            families.append(
                GaugeMetricFamily("node_filefd_allocated", "File descriptor statistics: allocated.", value=file_nr[0])
            )
            families.append(
                GaugeMetricFamily("node_filefd_maximum", "File descriptor statistics: maximum.", value=file_nr[2])
            )
        entries = _read_ints("/proc/sys/net/netfilter/nf_conntrack_count")
        limit = _read_ints("/proc/sys/net/netfilter/nf_conntrack_max")
        if entries is not None and limit is not None:
            families.append(
                GaugeMetricFamily(
                    "node_nf_conntrack_entries",
                    "Number of currently allocated flow entries for connection tracking.",
                    value=entries[0],
                )
            )
            families.append(
                GaugeMetricFamily(
                    "node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.", value=limit[0]
                )
            )
        return families


COLLECTOR = HostCollectorKind(name="system", config=Toggle, default=Toggle(), build=SystemCollector)
