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

FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault).*")


class VmstatCollector(BlockingCollector):
    def __init__(self, config: Toggle, vmstat_path: str = "/proc/vmstat") -> None:
        super().__init__("host.vmstat", config)
        self.vmstat_path = vmstat_path

    def collect_blocking(self) -> Sequence[Metric]:
        families: list[Metric] = []
        with open(self.vmstat_path, encoding="ascii") as vmstat:
            for line in vmstat:
                field, _, value = line.partition(" ")
                if FIELDS.match(field):
                    families.append(
                        UnknownMetricFamily(
                            f"node_vmstat_{field}", f"/proc/vmstat information field {field}.", value=int(value)
                        )
                    )
        return families


COLLECTOR = HostCollectorKind(name="vmstat", config=Toggle, default=Toggle(), build=VmstatCollector)
