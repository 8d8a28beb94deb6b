"""Load averages over 1, 5 and 15 minutes, from /proc/loadavg as node_exporter reads them
(getloadavg() has more digits than the kernel prints there, so the two would differ slightly)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind


class LoadavgCollector(BlockingCollector):
    def __init__(self, config: Toggle, loadavg_path: str = "/proc/loadavg") -> None:
        super().__init__("host.loadavg", config)
        self.loadavg_path = loadavg_path

    def collect_blocking(self) -> Sequence[Metric]:
        with open(self.loadavg_path, encoding="ascii") as loadavg:
            load1, load5, load15 = (float(field) for field in loadavg.read().split()[:3])
        return [
            GaugeMetricFamily("node_load1", "1m load average.", value=load1),
            GaugeMetricFamily("node_load5", "5m load average.", value=load5),
            GaugeMetricFamily("node_load15", "15m load average.", value=load15),
        ]


COLLECTOR = HostCollectorKind(name="loadavg", config=Toggle, default=Toggle(), build=LoadavgCollector)
