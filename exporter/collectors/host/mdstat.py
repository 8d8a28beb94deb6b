"""Linux software RAID (md) arrays from /proc/mdstat, as node_exporter's mdadm collector, for node-mixin's
NodeRAIDDegraded (`node_md_disks_required - node_md_disks{state="active"} > 0`) and NodeRAIDDiskFailure
(`node_md_disks{state="failed"} > 0`) alerts.

An array takes a line `md0 : active raid1 sdb1[1] sda1[0](F)`, a status line `1046528 blocks ... [2/1] [U_]`,
perhaps a bitmap line, and while it rebuilds a progress line `[==>....]  recovery = 12.6% (37043392/292945152)
...`. Without the md driver there is no /proc/mdstat, and so no array: nothing to report, no failure.
A file this parser does not understand fails the collector with the line at fault, never silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, UnchangedFamilies, read_text

STATUS = re.compile(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[[U_]+\]")
SIZE = re.compile(r"\s*(\d+) ")
PROGRESS = re.compile(r"\((\d+)/\d+\)")
# node_md_state's `state` label -> the activity that sets it to 1 (node_exporter's spelling of each).
STATES = (
    ("active", "active"),
    ("inactive", "inactive"),
    ("recovering", "recovering"),
    ("resync", "resyncing"),
    ("check", "checking"),
)


@dataclass(frozen=True)
class Array:
    name: str
    activity: str  # active, inactive, recovering, resyncing, checking, or what the kernel printed
    disks_required: int
    disks_active: int
    disks_failed: int
    disks_spare: int
    blocks: int
    blocks_synced: int


class MdstatCollector(BlockingCollector):
    def __init__(self, config: Toggle, proc_path: str = "/proc") -> None:
        super().__init__("host.mdstat", config)
        self._unchanged = UnchangedFamilies()
        self.mdstat_path = f"{proc_path}/mdstat"

    def collect_blocking(self) -> Sequence[Metric]:
        try:
            text = read_text(self.mdstat_path)
        except FileNotFoundError:
            return []  # the md driver is not loaded: no arrays
        state = GaugeMetricFamily("node_md_state", "Indicates the state of md-device.", labels=["device", "state"])
        disks = GaugeMetricFamily(
            "node_md_disks", "Number of active/failed/spare disks of device.", labels=["device", "state"]
        )
        required = GaugeMetricFamily("node_md_disks_required", "Total number of disks of device.", labels=["device"])
        blocks = GaugeMetricFamily("node_md_blocks", "Total number of blocks on device.", labels=["device"])
        synced = GaugeMetricFamily("node_md_blocks_synced", "Number of blocks synced on device.", labels=["device"])
        for array in parse_mdstat(text, self.mdstat_path):
            device = array.name
            for label, activity in STATES:
                state.add_metric([device, label], 1 if array.activity == activity else 0)
            disks.add_metric([device, "active"], array.disks_active)
            disks.add_metric([device, "failed"], array.disks_failed)
            disks.add_metric([device, "spare"], array.disks_spare)
            required.add_metric([device], array.disks_required)
            blocks.add_metric([device], array.blocks)
            synced.add_metric([device], array.blocks_synced)
        return self._unchanged.reuse([state, disks, required, blocks, synced])


def parse_mdstat(text: str, path: str) -> list[Array]:
    lines = text.split("\n")
    arrays = []
    for index, line in enumerate(lines):
        if not line.strip() or line[0].isspace() or line.startswith(("Personalities", "unused")):
            continue
        arrays.append(_array(lines, index, path))
    return arrays


def _array(lines: list[str], index: int, path: str) -> Array:
    line = lines[index]
    fields = line.split()
    if len(fields) < 3 or fields[1] != ":":
        raise MalformedFileError(path, index + 1, f"expected 'mdN : <state> ...', got {line[:80]!r}")
    if len(lines) <= index + 3:
        raise MalformedFileError(path, index + 1, f"{fields[0]}: the file ends before its status lines")
    name, activity = fields[0], fields[2]
    status = lines[index + 1]
    size_match = SIZE.match(status)
    if size_match is None:
        raise MalformedFileError(path, index + 2, f"{name}: expected '<N> blocks ...', got {status[:80]!r}")
    size = int(size_match.group(1))
    if "raid0" in line or "linear" in line:  # no redundancy, so no [n/m] in the status line
        required = active = line.count("[")
    elif "inactive" in line:
        required = active = 0
    else:
        match = STATUS.search(status)
        if match is None:
            raise MalformedFileError(path, index + 2, f"{name}: no '[n/m] [UU]' in {status[:80]!r}")
        required, active = int(match.group(2)), int(match.group(3))

    progress_index = index + 3 if "bitmap" in lines[index + 2] else index + 2
    progress = lines[progress_index] if progress_index < len(lines) else ""
    synced = size
    for keyword, rebuilding in (("recovery", "recovering"), ("check", "checking"), ("resync", "resyncing")):
        if keyword in progress:
            activity = rebuilding
            if "PENDING" in progress or "DELAYED" in progress:
                synced = 0
            else:
                blocks_match = PROGRESS.search(progress)
                if blocks_match is None:
                    raise MalformedFileError(
                        path, progress_index + 1, f"{name}: no '(done/total)' blocks in {progress.strip()[:80]!r}"
                    )
                synced = int(blocks_match.group(1))
            break
    return Array(
        name=name,
        activity=activity,
        disks_required=required,
        disks_active=active,
        disks_failed=line.count("(F)"),
        disks_spare=line.count("(S)"),
        blocks=size,
        blocks_synced=synced,
    )


COLLECTOR = HostCollectorKind(name="mdstat", config=Toggle, default=Toggle(), build=MdstatCollector)
