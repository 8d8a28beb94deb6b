"""Block-device I/O counters from /proc/diskstats, as node_exporter's diskstats collector.

Read directly: psutil leaves out the I/Os in progress and the weighted I/O time that node-mixin's
saturation panels and alerts use. Sectors are always 512 bytes in this file, whatever the device.
Discard counters (kernel 4.18+) and flush counters (5.5+) appear where the kernel writes their columns.

`node_disk_info` (and, where udev knows them, `node_disk_filesystem_info`, `node_disk_device_mapper_info`
and the ATA figures) take their labels from udev's database, /run/udev/data/b<major>:<minor>, as
node_exporter does; without udev (in a container) the labels other than device, major and minor are "".
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pydantic
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import DeviceFilter, Verdicts
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, UnchangedFamilies
from exporter.config.types import Regex

SECTOR_BYTES = 512
MAX_UDEV_RECORD = 64 * 1024  # udev records are a few KiB; the bound keeps a corrupt one from costing more
MAX_LABEL_VALUE = 256
MAX_DEVICES = 4096  # bound for the per-device filter verdicts
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
    (11, "discards_completed_total", "The total number of discards completed successfully.", 1),
    (12, "discards_merged_total", "The total number of discards merged.", 1),
    (13, "discarded_sectors_total", "The total number of sectors discarded successfully.", 1),
    (14, "discard_time_seconds_total", "This is the total number of seconds spent by all discards.", 0.001),
    (15, "flush_requests_total", "The total number of flush requests completed successfully", 1),
    (
        16,
        "flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        0.001,
    ),
)
INFO_LABELS = ["device", "major", "minor", "path", "wwn", "model", "serial", "revision"]
# udev properties for node_disk_info's labels after device, major and minor.
INFO_PROPERTIES = ("ID_PATH", "ID_WWN", "ID_MODEL", "ID_SERIAL_SHORT", "ID_REVISION")
FILESYSTEM_PROPERTIES = ("ID_FS_TYPE", "ID_FS_USAGE", "ID_FS_UUID", "ID_FS_VERSION")
DEVICE_MAPPER_PROPERTIES = ("DM_NAME", "DM_UUID", "DM_VG_NAME", "DM_LV_NAME", "DM_LV_LAYER")
# (udev property, metric name, help) of the figures udev reports for ATA disks.
ATA_GAUGES = (
    ("ID_ATA_WRITE_CACHE", "node_disk_ata_write_cache", "ATA disk has a write cache."),
    ("ID_ATA_WRITE_CACHE_ENABLED", "node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled."),
    ("ID_ATA_ROTATION_RATE_RPM", "node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."),
)


class DiskConfig(DeviceFilter):
    exclude_devices: Regex | None = pydantic.Field(default=DEFAULT_DISKS_EXCLUDE, validate_default=True)


class DiskCollector(BlockingCollector):
    def __init__(
        self, config: DiskConfig, diskstats_path: str = "/proc/diskstats", udev_data_path: str = "/run/udev/data"
    ) -> None:
        super().__init__("host.disk", config)
        self._unchanged = UnchangedFamilies()
        self.settings = config
        self.diskstats_path = diskstats_path
        self.udev_data_path = udev_data_path
        self._allows = Verdicts(config.allows, MAX_DEVICES)

    def collect_blocking(self) -> Sequence[Metric]:
        counters = [
            (column, CounterMetricFamily(f"node_disk_{name}", help_text, labels=["device"]), scale)
            for column, name, help_text, scale in COUNTERS
        ]
        in_progress = GaugeMetricFamily(
            "node_disk_io_now", "The number of I/Os currently in progress.", labels=["device"]
        )
        udev = UdevFamilies()
        have_udev = os.path.isdir(self.udev_data_path)  # one check, not a failed open per device
        with open(self.diskstats_path, encoding="ascii") as diskstats:
            for number, line in enumerate(diskstats, 1):
                major, minor, device, *columns = line.split() or ["", "", ""]
                if len(columns) < 11 or not self._allows(device):
                    continue
                try:
                    values = [int(column) for column in columns]
                except ValueError:
                    raise MalformedFileError(
                        self.diskstats_path, number, f"{device}: a column is not a number"
                    ) from None
                for column, family, scale in counters:
                    if column < len(values):
                        family.add_metric([device], values[column] * scale)
                in_progress.add_metric([device], values[8])
                properties = _udev_properties(f"{self.udev_data_path}/b{major}:{minor}") if have_udev else {}
                udev.add(device, major, minor, properties)
        return self._unchanged.reuse([family for _, family, _ in counters] + [in_progress, *udev.families()])


class UdevFamilies:
    """The families labelled from udev's database, filled device by device."""

    def __init__(self) -> None:
        self.info = GaugeMetricFamily("node_disk_info", "Info of /sys/block/<block_device>.", labels=INFO_LABELS)
        self.filesystem = GaugeMetricFamily(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            labels=["device", "type", "usage", "uuid", "version"],
        )
        self.device_mapper = GaugeMetricFamily(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            labels=["device", "name", "uuid", "vg_name", "lv_name", "lv_layer"],
        )
        self.ata = [(key, GaugeMetricFamily(name, help_text, labels=["device"])) for key, name, help_text in ATA_GAUGES]

    def add(self, device: str, major: str, minor: str, properties: dict[str, str]) -> None:
        self.info.add_metric([device, major, minor, *(properties.get(p, "") for p in INFO_PROPERTIES)], 1)
        if properties.get("ID_FS_TYPE"):
            self.filesystem.add_metric([device, *(properties.get(p, "") for p in FILESYSTEM_PROPERTIES)], 1)
        if properties.get("DM_NAME"):
            self.device_mapper.add_metric([device, *(properties.get(p, "") for p in DEVICE_MAPPER_PROPERTIES)], 1)
        if properties.get("ID_ATA"):
            for key, family in self.ata:
                value = _number(properties.get(key))
                if value is not None:
                    family.add_metric([device], value)

    def families(self) -> list[Metric]:
        families: list[Metric] = [self.info, self.filesystem, self.device_mapper, *(f for _, f in self.ata)]
        return [family for family in families if family.samples]


def _udev_properties(path: str) -> dict[str, str]:
    """The `E:KEY=value` lines of one device's udev record; {} when udev has none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as record:
            lines = record.read(MAX_UDEV_RECORD).splitlines()
    except OSError:
        return {}
    properties = {}
    for line in lines:
        if line.startswith("E:"):
            key, found, value = line[2:].partition("=")
            if found:
                properties[key] = value[:MAX_LABEL_VALUE]
    return properties


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


COLLECTOR = HostCollectorKind(name="disk", config=DiskConfig, default=DiskConfig(), build=DiskCollector)
