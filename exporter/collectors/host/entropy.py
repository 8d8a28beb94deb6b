"""The kernel's entropy pool from /proc/sys/kernel/random, as node_exporter's entropy collector.

Since Linux 5.18 the pool is a fixed 256 bits and always full once seeded; older kernels show how
much entropy is left, which mattered to programs that read /dev/random.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, read_text


class EntropyCollector(BlockingCollector):
    def __init__(self, config: Toggle, proc_path: str = "/proc") -> None:
        super().__init__("host.entropy", config)
        self.random_path = f"{proc_path}/sys/kernel/random"
        self._pool_size: int | None = None  # fixed for the kernel's life: read once

    def collect_blocking(self) -> Sequence[Metric]:
        return [
            GaugeMetricFamily(
                "node_entropy_available_bits", "Bits of available entropy.", value=self._read("entropy_avail")
            ),
            GaugeMetricFamily("node_entropy_pool_size_bits", "Bits of entropy pool.", value=self._pool_bits()),
        ]

    def _pool_bits(self) -> int:
        if self._pool_size is None:
            self._pool_size = self._read("poolsize")
        return self._pool_size

    def _read(self, name: str) -> int:
        path = f"{self.random_path}/{name}"
        text = read_text(path).strip()
        if not text.isdigit():
            raise MalformedFileError(path, 1, f"{text[:40]!r} is not a number of bits")
        return int(text)


COLLECTOR = HostCollectorKind(name="entropy", config=Toggle, default=Toggle(), build=EntropyCollector)
