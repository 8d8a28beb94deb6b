"""Load averages over 1, 5 and 15 minutes."""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle


class LoadavgCollector(BlockingCollector):
    def __init__(self, config: Toggle) -> None:
        super().__init__("host.loadavg", config)

    def collect_blocking(self) -> Sequence[Metric]:
        load1, load5, load15 = os.getloadavg()
        return [
            GaugeMetricFamily("node_load1", "1m load average.", value=load1),
            GaugeMetricFamily("node_load5", "5m load average.", value=load5),
            GaugeMetricFamily("node_load15", "15m load average.", value=load15),
        ]
