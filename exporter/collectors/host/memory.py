"""Every field of /proc/meminfo, named as node_exporter's meminfo collector names them.

Read directly rather than through psutil, which reports `Cached` plus `SReclaimable` as "cached":
dashboards built for node_exporter expect the kernel's own figure.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import SteadyFamilies


class MemoryCollector(BlockingCollector):
    def __init__(self, config: Toggle, meminfo_path: str = "/proc/meminfo") -> None:
        super().__init__("host.memory", config)
        self.meminfo_path = meminfo_path
        self._families = SteadyFamilies(GaugeMetricFamily)  # totals and idle pools hold between scrapes

    def collect_blocking(self) -> Sequence[Metric]:
        families = []
        with open(self.meminfo_path, encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if not parts:
                    continue
                # "Active(anon)" becomes "Active_anon", as node_exporter spells it.
                field = key.replace("(", "_").replace(")", "")
                if len(parts) > 1 and parts[1] == "kB":
                    name, value = f"node_memory_{field}_bytes", int(parts[0]) * 1024
                else:
                    name, value = f"node_memory_{field}", int(parts[0])
                # HELP as node_exporter writes it: the field with its unit suffix.
                help_text = f"Memory information field {name.removeprefix('node_memory_')}."
                families.append(self._families.get(name, help_text, value))
        return families


COLLECTOR = HostCollectorKind(name="memory", config=Toggle, default=Toggle(), build=MemoryCollector)
