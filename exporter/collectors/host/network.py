"""Network interface counters, through psutil (which reads /proc/net/dev on Linux)."""

from __future__ import annotations

from collections.abc import Sequence

import psutil
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import NetworkConfig, allowed

# (psutil field, metric name, help)
COUNTERS = (
    ("bytes_recv", "receive_bytes_total", "Network device statistic receive_bytes."),
    ("packets_recv", "receive_packets_total", "Network device statistic receive_packets."),
    ("errin", "receive_errs_total", "Network device statistic receive_errs."),
    ("dropin", "receive_drop_total", "Network device statistic receive_drop."),
    ("bytes_sent", "transmit_bytes_total", "Network device statistic transmit_bytes."),
    ("packets_sent", "transmit_packets_total", "Network device statistic transmit_packets."),
    ("errout", "transmit_errs_total", "Network device statistic transmit_errs."),
    ("dropout", "transmit_drop_total", "Network device statistic transmit_drop."),
)


class NetworkCollector(BlockingCollector):
    def __init__(self, config: NetworkConfig) -> None:
        super().__init__("host.network", config)
        self.settings = config

    def collect_blocking(self) -> Sequence[Metric]:
        families = [
            (field, CounterMetricFamily(f"node_network_{name}", help_text, labels=["device"]))
            for field, name, help_text in COUNTERS
        ]
        # nowrap=False: report the kernel's numbers as they are; rate() handles a counter reset.
        for device, stats in sorted(psutil.net_io_counters(pernic=True, nowrap=False).items()):
            if allowed(device, self.settings.include_devices, self.settings.exclude_devices):
                for field, family in families:
                    family.add_metric([device], getattr(stats, field))
        return [family for _, family in families]
