"""Network interface counters, through psutil (which reads /proc/net/dev on Linux), and whether each
interface is up (its operstate in /sys/class/net, as node_exporter's netclass collector reports it)."""

from __future__ import annotations

from collections.abc import Sequence

import psutil
import pydantic
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import DeviceFilter, Verdicts
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import read_text
from exporter.config.types import Regex

DEFAULT_NETWORK_EXCLUDE = r"^lo$"

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


class NetworkConfig(DeviceFilter):
    exclude_devices: Regex | None = pydantic.Field(default=DEFAULT_NETWORK_EXCLUDE, validate_default=True)


class NetworkCollector(BlockingCollector):
    def __init__(self, config: NetworkConfig, sysfs_net: str = "/sys/class/net") -> None:
        super().__init__("host.network", config)
        self.settings = config
        self.sysfs_net = sysfs_net
        self._allows = Verdicts(config.allows)

    def collect_blocking(self) -> Sequence[Metric]:
        families = [
            (field, CounterMetricFamily(f"node_network_{name}", help_text, labels=["device"]))
            for field, name, help_text in COUNTERS
        ]
        up = GaugeMetricFamily("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", labels=["device"])
        # nowrap=False: report the kernel's numbers as they are; rate() handles a counter reset.
        for device, stats in sorted(psutil.net_io_counters(pernic=True, nowrap=False).items()):
            if self._allows(device):
                for field, family in families:
                    family.add_metric([device], getattr(stats, field))
                operstate = _operstate(self.sysfs_net, device)
                if operstate is not None:
                    up.add_metric([device], 1 if operstate == "up" else 0)
        return [family for _, family in families] + [up]


def _operstate(sysfs_net: str, device: str) -> str | None:
    try:
        return read_text(f"{sysfs_net}/{device}/operstate").strip()
    except OSError:
        return None


COLLECTOR = HostCollectorKind(name="network", config=NetworkConfig, default=NetworkConfig(), build=NetworkCollector)
