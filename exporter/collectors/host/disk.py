"""Block-device I/O counters from /proc/diskstats, as node_exporter's diskstats collector.

Read directly: psutil leaves out the I/Os in progress and the weighted I/O time that node-mixin's
saturation panels and alerts use. Sectors are always 512 bytes in this file, whatever the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import DeviceFilter
from exporter.collectors.host.kind import HostCollectorKind
from exporter.config.types import Regex

SECTOR_BYTES = 512
# node_exporter's default: partitions, RAM disks, loop and floppy devices.
DEFAULT_DISKS_EXCLUDE = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"

# (column after the device name, metric name, help, scale); columns as in the kernel's iostats.rst.
COUNTERS = (
    (0, "reads_completed_total", "The total number of reads completed successfully.", 1),
    (1, "reads_merged_total", "The total number of reads merged.", 1),
    (2, "read_bytes_total", "The total number of bytes read successfully.", SECTOR_BYTES),
    (3, "read_time_seconds_total", "The total number of seconds spent by all reads.", 0.001),
    (4, "writes_completed_total", "The total number of writes completed successfully.", 1),
    (5, "writes_merged_total", "The number of writes merged.", 1),
    (6, "written_bytes_total", "The total number of bytes written successfully.", SECTOR_BYTES),
    (7, "write_time_seconds_total", "This is the total number of seconds spent by all writes.", 0.001),
    (9, "io_time_seconds_total", "Total seconds spent doing I/Os.", 0.001),
    (10, "io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", 0.001),
)


class DiskConfig(DeviceFilter):
    exclude_devices: Regex | None = pydantic.Field(default=DEFAULT_DISKS_EXCLUDE, validate_default=True)


class DiskCollector(BlockingCollector):
    def __init__(self, config: DiskConfig, diskstats_path: str = "/proc/diskstats") -> None:
        super().__init__("host.disk", config)
        self.settings = config
        self.diskstats_path = diskstats_path

    def collect_blocking(self) -> Sequence[Metric]:
        counters = [
            (column, CounterMetricFamily(f"node_disk_{name}", help_text, labels=["device"]), scale)
            for column, name, help_text, scale in COUNTERS
        ]
        in_progress = GaugeMetricFamily(
            "node_disk_io_now", "The number of I/Os currently in progress.", labels=["device"]
        )
        with open(self.diskstats_path, encoding="ascii") as diskstats:
            for line in diskstats:
                _major, _minor, device, *columns = line.split()
                if len(columns) < 11 or not self.settings.allows(device):
                    continue
                for column, family, scale in counters:
                    family.add_metric([device], int(columns[column]) * scale)
                in_progress.add_metric([device], int(columns[8]))
        return [family for _, family, _ in counters] + [in_progress]


COLLECTOR = HostCollectorKind(name="disk", config=DiskConfig, default=DiskConfig(), build=DiskCollector)
