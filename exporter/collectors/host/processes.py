"""Named process groups: "is the ERP app server running, and what does it use?"

node_exporter will not do this; process-exporter does, and this follows its two good ideas:
a process belongs to the first group that matches it (nothing is counted twice), and a group's CPU
counter only ever grows: CPU time of processes that exit stays in the total, so `rate()` never sees
a false reset when a worker is recycled.

Read from /proc directly: psutil's process scan took 5.4 ms for 85 processes on our test machine
against 1.4 ms here, because a process's command line and group are cached by (pid, start time)
and only /proc/<pid>/stat is read on later scrapes. A process that exec()s (a start script becoming
`java ... erp.jar`) changes its name in that file and is classified again. Exec into the same
program with other arguments keeps its first classification.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import pydantic
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.kind import HostCollectorKind
from exporter.config.types import Regex, StrictModel

USER_HZ = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

ProcessKey = tuple[int, int]  # (pid, start time in ticks): unique even when pids are reused


class ProcessMatch(StrictModel):
    """Which processes belong to a group; every matcher given must match."""

    name: Regex | None = None  # the kernel's process name (comm, at most 15 characters)
    cmdline: Regex | None = None  # the command line, arguments joined by spaces
    exe: Regex | None = None  # the path of the executable

    @pydantic.model_validator(mode="after")
    def _needs_one(self) -> ProcessMatch:
        if self.name is None and self.cmdline is None and self.exe is None:
            raise ValueError("give at least one of name, cmdline, exe")
        return self


class ProcessGroup(StrictModel):
    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    match: ProcessMatch


def _unique_names(groups: list[ProcessGroup]) -> list[ProcessGroup]:
    names = [group.name for group in groups]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"process group names must be unique; repeated: {', '.join(duplicates)}")
    return groups


# `collectors.host.processes`: a list of groups, no `enabled` key; the collector runs when there is one.
ProcessGroups = Annotated[list[ProcessGroup], pydantic.AfterValidator(_unique_names)]


@dataclass
class _Stat:
    comm: str
    state: str
    utime: int
    stime: int
    threads: int
    start_ticks: int
    rss_pages: int


def _read_stat(proc: str, pid: int) -> _Stat:
    with open(f"{proc}/{pid}/stat", "rb") as f:
        raw = f.read()
    # comm may contain spaces and parentheses: it runs from the first "(" to the last ")".
    comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode("utf-8", "replace")
    rest = raw[raw.rindex(b")") + 2 :].split()
    # Field numbers as in proc(5), minus 3 for pid, comm and the split point.
    return _Stat(comm, rest[0].decode(), int(rest[11]), int(rest[12]), int(rest[17]), int(rest[19]), int(rest[21]))


def _read_boot_time(proc: str) -> float:
    with open(f"{proc}/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise RuntimeError(f"no btime line in {proc}/stat")


class ProcessGroupsCollector(BlockingCollector):
    def __init__(self, groups: list[ProcessGroup], proc: str = "/proc") -> None:
        super().__init__("host.processes", tuple(groups))
        self.groups = groups
        self.proc = proc
        self._boot_time = _read_boot_time(proc)
        self._reads_exe = any(group.match.exe is not None for group in groups)
        # Which group (index, or None) a process belongs to, and the name it had when decided.
        self._membership: dict[ProcessKey, tuple[str, int | None]] = {}
        # Last seen CPU ticks per process, and each group's monotonic totals (user, system).
        self._last_ticks: dict[ProcessKey, tuple[int, int]] = {}
        self._group_ticks = [[0, 0] for _ in groups]

    def _classify(self, pid: int, comm: str) -> int | None:
        cmdline = ""
        try:
            with open(f"{self.proc}/{pid}/cmdline", "rb") as f:
                cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            pass
        exe = ""
        if self._reads_exe:
            with contextlib.suppress(OSError):  # kernel threads and other users' processes have none
                exe = os.readlink(f"{self.proc}/{pid}/exe")
        for index, group in enumerate(self.groups):
            if _matches(group.match, comm, cmdline, exe):
                return index
        return None

    def collect_blocking(self) -> Sequence[Metric]:
        count = [0] * len(self.groups)
        rss = [0] * len(self.groups)
        threads = [0] * len(self.groups)
        fds: list[int | None] = [0] * len(self.groups)
        oldest: list[int | None] = [None] * len(self.groups)
        seen: set[ProcessKey] = set()

        for entry in os.listdir(self.proc):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                stat = _read_stat(self.proc, pid)
            except (OSError, ValueError, IndexError):
                continue  # the process exited while we looked
            key = (pid, stat.start_ticks)
            seen.add(key)
            known = self._membership.get(key)
            if known is None or known[0] != stat.comm:
                known = self._membership[key] = (stat.comm, self._classify(pid, stat.comm))
            group = known[1]
            if group is None:
                continue

            last_user, last_system = self._last_ticks.get(key, (0, 0))
            self._group_ticks[group][0] += stat.utime - last_user
            self._group_ticks[group][1] += stat.stime - last_system
            self._last_ticks[key] = (stat.utime, stat.stime)
            if stat.state in ("Z", "X"):
                continue  # exited, not yet reaped: its CPU time is counted above, the process is not

            count[group] += 1
            rss[group] += stat.rss_pages * PAGE_BYTES
            threads[group] += stat.threads
            start = oldest[group]
            oldest[group] = stat.start_ticks if start is None else min(start, stat.start_ticks)
            open_fds = fds[group]
            if open_fds is not None:
                try:
                    fds[group] = open_fds + len(os.listdir(f"{self.proc}/{pid}/fd"))
                except PermissionError:
                    fds[group] = None  # a partial sum would look like a real, smaller number
                except OSError:
                    pass

        for gone in self._membership.keys() - seen:
            del self._membership[gone]
            self._last_ticks.pop(gone, None)
        return self._families(count, rss, threads, fds, oldest)

    def _families(
        self,
        count: list[int],
        rss: list[int],
        threads: list[int],
        fds: list[int | None],
        oldest: list[int | None],
    ) -> list[Metric]:
        labels = ["name"]
        processes = GaugeMetricFamily("pulse_process_count", "Number of running processes in the group.", labels=labels)
        cpu = CounterMetricFamily(
            "pulse_process_cpu_seconds_total",
            "CPU time used by the group's processes, including processes that have exited.",
            labels=["name", "mode"],
        )
        memory = GaugeMetricFamily(
            "pulse_process_resident_memory_bytes", "Resident memory of the group's processes.", labels=labels
        )
        open_fds = GaugeMetricFamily(
            "pulse_process_open_fds", "Open file descriptors of the group's processes.", labels=labels
        )
        thread_count = GaugeMetricFamily("pulse_process_threads", "Threads of the group's processes.", labels=labels)
        started = GaugeMetricFamily(
            "pulse_process_oldest_start_time_seconds",
            "Start time of the group's oldest process, in seconds since the epoch.",
            labels=labels,
        )
        for index, group in enumerate(self.groups):
            name = [group.name]
            processes.add_metric(name, count[index])
            cpu.add_metric([group.name, "user"], self._group_ticks[index][0] / USER_HZ)
            cpu.add_metric([group.name, "system"], self._group_ticks[index][1] / USER_HZ)
            memory.add_metric(name, rss[index])
            thread_count.add_metric(name, threads[index])
            group_fds = fds[index]
            if group_fds is not None:
                open_fds.add_metric(name, group_fds)
            start = oldest[index]
            if start is not None:
                started.add_metric(name, self._boot_time + start / USER_HZ)
        return [processes, cpu, memory, open_fds, thread_count, started]


def _matches(match: ProcessMatch, comm: str, cmdline: str, exe: str) -> bool:
    return (
        (match.name is None or match.name.search(comm) is not None)
        and (match.cmdline is None or match.cmdline.search(cmdline) is not None)
        and (match.exe is None or match.exe.search(exe) is not None)
    )


COLLECTOR = HostCollectorKind[list[ProcessGroup]](
    name="processes", config=ProcessGroups, default=[], build=ProcessGroupsCollector, wanted=bool
)
