"""Size, free space and inodes of mounted filesystems, as node_exporter's filesystem collector.

The mount table is read from /proc/self/mounts, with the mount source exactly as written there
(psutil rewrites `none` to "" and `/dev/root` to a guessed device; node_exporter does not).
Sizes come from statvfs; block counts are multiplied by f_bsize, as node_exporter does.
A mount point whose statvfs fails is reported with `node_filesystem_device_error 1` instead of sizes.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import pydantic
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Verdicts, allowed, drop_default_excludes
from exporter.collectors.host.kind import HostCollectorKind
from exporter.config.types import Regex, StrictModel

log = logging.getLogger(__name__)
DEFAULT_MOUNTPOINTS_EXCLUDE = r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
DEFAULT_FSTYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue"
    r"|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$"
)
LABELS = ["device", "fstype", "mountpoint"]
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")  # the kernel writes space, tab, newline, backslash as \040 ...


def _unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


class FilesystemConfig(StrictModel):
    """Which mounts are reported: node_exporter's defaults leave out pseudo and container filesystems."""

    enabled: bool = True
    include_mountpoints: Regex | None = None
    exclude_mountpoints: Regex | None = pydantic.Field(default=DEFAULT_MOUNTPOINTS_EXCLUDE, validate_default=True)
    include_fstypes: Regex | None = None
    exclude_fstypes: Regex | None = pydantic.Field(default=DEFAULT_FSTYPES_EXCLUDE, validate_default=True)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _include_replaces_default(cls, data: Any) -> Any:
        return drop_default_excludes(
            data, ("include_mountpoints", "exclude_mountpoints"), ("include_fstypes", "exclude_fstypes")
        )


class FilesystemCollector(BlockingCollector):
    def __init__(self, config: FilesystemConfig, mounts_path: str = "/proc/self/mounts") -> None:
        super().__init__("host.filesystem", config)
        self.settings = config
        self.mounts_path = mounts_path
        self._selects = Verdicts(self._wanted)

    def _wanted(self, mount: tuple[str, str]) -> bool:
        mountpoint, fstype = mount
        cfg = self.settings
        return allowed(mountpoint, cfg.include_mountpoints, cfg.exclude_mountpoints) and allowed(
            fstype, cfg.include_fstypes, cfg.exclude_fstypes
        )

    def mounts(self) -> list[tuple[str, str, str, bool]]:
        """(device, fstype, mountpoint, readonly) of each selected mount, first occurrence only."""
        seen: set[tuple[str, str, str]] = set()
        selected = []
        with open(self.mounts_path, encoding="utf-8", errors="surrogateescape") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 4:
                    continue
                device, mountpoint, fstype = _unescape(fields[0]), _unescape(fields[1]), fields[2]
                key = (device, fstype, mountpoint)
                if key in seen:
                    continue
                seen.add(key)
                if self._selects((mountpoint, fstype)):
                    selected.append((*key, "ro" in fields[3].split(",")))
        return selected

    def collect_blocking(self) -> Sequence[Metric]:
        def gauge(name: str, help_text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"node_filesystem_{name}", help_text, labels=LABELS)

        size = gauge("size_bytes", "Filesystem size in bytes.")
        free = gauge("free_bytes", "Filesystem free space in bytes.")
        avail = gauge("avail_bytes", "Filesystem space available to non-root users in bytes.")
        files = gauge("files", "Filesystem total file nodes.")
        files_free = gauge("files_free", "Filesystem total free file nodes.")
        readonly = gauge("readonly", "Filesystem read-only status.")
        device_error = gauge("device_error", "Whether an error occurred while getting statistics for the given device.")
        for device, fstype, mountpoint, is_readonly in self.mounts():
            labels = [device, fstype, mountpoint]
            try:
                st = os.statvfs(mountpoint)
            except OSError as err:
                log.debug("statvfs failed", extra={"mountpoint": mountpoint, "err": str(err)})
                device_error.add_metric(labels, 1)
                continue
            device_error.add_metric(labels, 0)
            size.add_metric(labels, st.f_blocks * st.f_bsize)
            free.add_metric(labels, st.f_bfree * st.f_bsize)
            avail.add_metric(labels, st.f_bavail * st.f_bsize)
            files.add_metric(labels, st.f_files)
            files_free.add_metric(labels, st.f_ffree)
            readonly.add_metric(labels, 1 if is_readonly else 0)
        return [size, free, avail, files, files_free, readonly, device_error]


COLLECTOR = HostCollectorKind(
    name="filesystem", config=FilesystemConfig, default=FilesystemConfig(), build=FilesystemCollector
)
