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

MAX_FIELDS = 512  # /proc/meminfo has about 55


class MemoryCollector(BlockingCollector):
    def __init__(self, config: Toggle, meminfo_path: str = "/proc/meminfo") -> None:
        super().__init__("host.memory", config)
        self.meminfo_path = meminfo_path
        self._families = SteadyFamilies(GaugeMetricFamily)  # totals and idle pools hold between scrapes
        self._names: dict[str, tuple[str, str, int]] = {}

    def collect_blocking(self) -> Sequence[Metric]:
        families = []
        with open(self.meminfo_path, encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if not parts:
                    continue
                naming = self._names.get(key)
                if naming is None:
                    naming = self._name(key, parts)
                name, help_text, factor = naming
                families.append(self._families.get(name, help_text, int(parts[0]) * factor))
        return families

    def _name(self, key: str, parts: list[str]) -> tuple[str, str, int]:
        """The metric name, HELP and factor for a field; the same for the kernel's life, so kept."""
        # "Active(anon)" becomes "Active_anon", as node_exporter spells it.
        field = key.replace("(", "_").replace(")", "")
        kilobytes = len(parts) > 1 and parts[1] == "kB"
        name = f"node_memory_{field}_bytes" if kilobytes else f"node_memory_{field}"
        # HELP as node_exporter writes it: the field with its unit suffix.
        naming = (name, f"Memory information field {name.removeprefix('node_memory_')}.", 1024 if kilobytes else 1)
        if len(self._names) < MAX_FIELDS:
            self._names[key] = naming
        return naming


COLLECTOR = HostCollectorKind(name="memory", config=Toggle, default=Toggle(), build=MemoryCollector)
