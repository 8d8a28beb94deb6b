"""Paging, swapping, page faults and OOM kills from /proc/vmstat, as node_exporter's vmstat collector.

The same fields node_exporter exports by default (node-mixin's major page fault alert needs
`node_vmstat_pgmajfault`), with its type: untyped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from prometheus_client.core import UnknownMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import SteadyFamilies, read_text

FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault).*")
MAX_FIELDS = 1024
MISSING = ("", "")  # not decided yet (None means: decided, not exported)


class VmstatCollector(BlockingCollector):
    def __init__(self, config: Toggle, vmstat_path: str = "/proc/vmstat") -> None:
        super().__init__("host.vmstat", config)
        self.vmstat_path = vmstat_path
        self._families = SteadyFamilies(UnknownMetricFamily)  # OOM kills, swap-ins: mostly unchanged
        # field -> (name, help), or None for a field not exported; the kernel's ~180 fields, decided once.
        self._wanted: dict[str, tuple[str, str] | None] = {}

    def collect_blocking(self) -> Sequence[Metric]:
        families: list[Metric] = []
        for line in read_text(self.vmstat_path).splitlines():
            field, _, value = line.partition(" ")
            wanted = self._wanted.get(field, MISSING)
            if wanted is MISSING:
                wanted = self._decide(field)
            if wanted is not None:
                families.append(self._families.get(*wanted, int(value)))
        return families

    def _decide(self, field: str) -> tuple[str, str] | None:
        wanted = (f"node_vmstat_{field}", f"/proc/vmstat information field {field}.") if FIELDS.match(field) else None
        if len(self._wanted) < MAX_FIELDS:
            self._wanted[field] = wanted
        return wanted


COLLECTOR = HostCollectorKind(name="vmstat", config=Toggle, default=Toggle(), build=VmstatCollector)
