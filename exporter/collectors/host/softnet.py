"""Per-CPU packet processing from /proc/net/softnet_stat, as node_exporter's softnet collector: packets
processed, packets dropped because the backlog queue was full, and times the NET_RX softirq ran out of
budget with work left (`times_squeezed`, a sign that net.core.netdev_budget is too small).

The file has one line of hexadecimal columns per CPU; like node_exporter 1.5, the `cpu` label is the
line's position (0, 1, ...), and the first three columns are read as 32-bit counters.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, UnchangedFamilies, read_text

MIN_COLUMNS = 9  # what node_exporter's parser insists on; every kernel since 2.6 writes at least that
UINT32_HEX_DIGITS = 8


class SoftnetCollector(BlockingCollector):
    def __init__(self, config: Toggle, proc_path: str = "/proc") -> None:
        super().__init__("host.softnet", config)
        self._unchanged = UnchangedFamilies()
        self.softnet_path = f"{proc_path}/net/softnet_stat"

    def collect_blocking(self) -> Sequence[Metric]:
        processed = CounterMetricFamily("node_softnet_processed_total", "Number of processed packets", labels=["cpu"])
        dropped = CounterMetricFamily("node_softnet_dropped_total", "Number of dropped packets", labels=["cpu"])
        squeezed = CounterMetricFamily(
            "node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota", labels=["cpu"]
        )
        for cpu, line in enumerate(read_text(self.softnet_path).splitlines()):
            columns = line.split()
            if len(columns) < MIN_COLUMNS:
                raise MalformedFileError(
                    self.softnet_path, cpu + 1, f"{len(columns)} columns, at least {MIN_COLUMNS} expected"
                )
            try:
                if any(len(column) > UINT32_HEX_DIGITS for column in columns[:3]):
                    raise ValueError
                counts = [int(column, 16) for column in columns[:3]]
            except ValueError:
                raise MalformedFileError(
                    self.softnet_path, cpu + 1, f"not 32-bit hexadecimal counters: {line[:80]!r}"
                ) from None
            label = [str(cpu)]
            processed.add_metric(label, counts[0])
            dropped.add_metric(label, counts[1])
            squeezed.add_metric(label, counts[2])
        return self._unchanged.reuse([processed, dropped, squeezed])


COLLECTOR = HostCollectorKind(name="softnet", config=Toggle, default=Toggle(), build=SoftnetCollector)
