"""The host collector as a specification: the kernel's numbers, under node_exporter's names and labels.

Part A compares a real `pulse-exporter` with what this test reads itself from /proc and statvfs.
Counters move between two reads, so the kernel is read before and after each scrape and the exported
value must lie in between.

Part B compares it with Debian's node_exporter 1.5 running next to it: node-mixin's dashboards and
alerts only work unchanged if every `node_*` name, type, label name and label value is the same.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from exporter.app import Exporter, load_files
from exporter.collectors.base import Collector
from exporter.collectors.host import disk, entropy, mdstat, netstat, pressure, sockstat, softnet
from exporter.collectors.host.config import Toggle
from exporter.config.types import CompiledRegex, compile_regex
from tests.helpers import (
    ByName,
    RunningExporter,
    StartExporter,
    StartNodeExporter,
    node_exporter_text,
    parse_by_name,
    require_binary,
    wait_until,
)
from tests.test_config import problems

pytestmark = pytest.mark.integration

_V = TypeVar("_V")

CLK_TCK = os.sysconf("SC_CLK_TCK")
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
MiB = 1024 * 1024

# Debian node_exporter 1.5 defaults, as `prometheus-node-exporter --help` prints them (checked in Part B).
NODE_EXPORTER_DEFAULTS = {
    "collector.filesystem.mount-points-exclude": (
        r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
    ),
    "collector.filesystem.fs-types-exclude": (
        r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue"
        r"|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$"
    ),
    "collector.diskstats.device-exclude": r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$",
    "collector.netdev.device-exclude": r"^lo$",
}
MOUNTPOINTS_EXCLUDE = compile_regex(NODE_EXPORTER_DEFAULTS["collector.filesystem.mount-points-exclude"])
FSTYPES_EXCLUDE = compile_regex(NODE_EXPORTER_DEFAULTS["collector.filesystem.fs-types-exclude"])
DISKS_EXCLUDE = re.compile(NODE_EXPORTER_DEFAULTS["collector.diskstats.device-exclude"])
NETWORK_EXCLUDE = re.compile(NODE_EXPORTER_DEFAULTS["collector.netdev.device-exclude"])

# /proc/diskstats columns after the device name (Documentation/admin-guide/iostats.rst) -> metric, scale.
DISK_COLUMNS = {
    0: ("node_disk_reads_completed_total", 1),
    1: ("node_disk_reads_merged_total", 1),
    2: ("node_disk_read_bytes_total", 512),  # sectors are always 512 bytes in this file
    3: ("node_disk_read_time_seconds_total", 1 / 1000),  # milliseconds
    4: ("node_disk_writes_completed_total", 1),
    5: ("node_disk_writes_merged_total", 1),
    6: ("node_disk_written_bytes_total", 512),
    7: ("node_disk_write_time_seconds_total", 1 / 1000),
    9: ("node_disk_io_time_seconds_total", 1 / 1000),
    10: ("node_disk_io_time_weighted_seconds_total", 1 / 1000),
}
# /proc/net/dev columns after "name:": 8 receive fields, then 8 transmit fields.
NET_COLUMNS = {
    0: "node_network_receive_bytes_total",
    1: "node_network_receive_packets_total",
    2: "node_network_receive_errs_total",
    3: "node_network_receive_drop_total",
    8: "node_network_transmit_bytes_total",
    9: "node_network_transmit_packets_total",
    10: "node_network_transmit_errs_total",
    11: "node_network_transmit_drop_total",
}

# ---------------------------------------------------------------------------------------------------
# The exposition, read with tests/helpers.py's parser (client_python's, not the exporter's own encoder).


def types(text: str) -> dict[str, str]:
    """Family name -> type, from the `# TYPE` lines as written: compared with node_exporter's line by line
    (the parser's families would name a counter without `_total` and call `untyped` `unknown`)."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def single(exposition: ByName, name: str) -> float:
    series = exposition.get(name, {})
    assert list(series) == [()], f"{name}: expected one unlabelled sample, got {series}"
    return series[()]


def by_label(exposition: ByName, name: str, label: str) -> dict[str, float]:
    """A family with one varying label (device, name) as {label value: sample value}."""
    result = {}
    for labels, value in exposition.get(name, {}).items():
        result[dict(labels)[label]] = value
    return result


def between(value: float, low: float, high: float, slack: float = 0.0) -> bool:
    return min(low, high) - slack <= value <= max(low, high) + slack


def scrape(exporter: RunningExporter) -> str:
    text = exporter.metrics_text()
    assert text.strip(), "empty /metrics body"
    return text


def config(host: dict[str, object]) -> str:
    return yaml.safe_dump({"collectors": {"host": host}})


# ---------------------------------------------------------------------------------------------------
# The kernel's side, read independently of the exporter.


def read_cpu_ticks() -> dict[str, list[int]]:
    """'0' -> ticks per mode, for every cpuN line of /proc/stat."""
    cpus = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if re.fullmatch(r"cpu\d+", name):
            cpus[name.removeprefix("cpu")] = [int(f) for f in fields]
    return cpus


def read_proc_stat_value(key: str) -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == key:
            return int(fields[1])
    raise AssertionError(f"no {key} line in /proc/stat")


def read_meminfo() -> dict[str, tuple[int, str | None]]:
    """Key -> (number, unit or None), e.g. 'Active(anon)' -> (123, 'kB')."""
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        number, *unit = rest.split()
        fields[key] = (int(number), unit[0] if unit else None)
    return fields


def meminfo_metric(key: str, unit: str | None) -> tuple[str, int]:
    """node_exporter's name for a /proc/meminfo key, and the factor from the file's number to its value."""
    name = "node_memory_" + re.sub(r"\((.*)\)", r"_\1", key)
    return (name + "_bytes", 1024) if unit == "kB" else (name, 1)


def read_loadavg() -> list[float]:
    return [float(f) for f in Path("/proc/loadavg").read_text().split()[:3]]


def read_diskstats() -> dict[str, list[int]]:
    disks = {}
    for line in Path("/proc/diskstats").read_text().splitlines():
        _major, _minor, device, *columns = line.split()
        disks[device] = [int(c) for c in columns]
    return disks


def read_net_dev() -> dict[str, list[int]]:
    devices = {}
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, _, columns = line.rpartition(":")
        devices[name.strip()] = [int(c) for c in columns.split()]
    return devices


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]


def read_mounts() -> list[Mount]:
    """/proc/self/mounts, with the kernel's octal escapes (\\040 for a space) decoded as fstab(5) says."""

    def decode(field: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, mountpoint, fstype, options, *_ = line.split()
        mounts.append(Mount(decode(device), decode(mountpoint), fstype, tuple(options.split(","))))
    return mounts


def selected_mountpoints(mountpoints_exclude: CompiledRegex, fstypes_exclude: CompiledRegex) -> set[str]:
    return {
        m.mountpoint
        for m in read_mounts()
        if not mountpoints_exclude.search(m.mountpoint) and not fstypes_exclude.search(m.fstype)
    }


def series_by_mountpoint(exposition: ByName, name: str) -> dict[str, tuple[dict[str, str], float]]:
    result = {}
    for labels, value in exposition.get(name, {}).items():
        label_map = dict(labels)
        assert label_map["mountpoint"] not in result, f"{name}: mount point reported twice: {labels}"
        result[label_map["mountpoint"]] = (label_map, value)
    return result


@dataclass(frozen=True)
class ProcessState:
    utime: int
    stime: int
    start_ticks: int
    threads: int
    rss_bytes: int
    open_fds: int


def read_process(pid: int) -> ProcessState:
    """One process from /proc/<pid>/stat (proc(5) fields 14, 15, 22), status and fd."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rindex(b")") + 2 :].split()  # fields[0] is field 3, the state
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return ProcessState(
        utime=int(fields[14 - 3]),
        stime=int(fields[15 - 3]),
        start_ticks=int(fields[22 - 3]),
        threads=int(status["Threads"]),
        rss_bytes=int(status["VmRSS"].split()[0]) * 1024,
        open_fds=len(os.listdir(f"/proc/{pid}/fd")),
    )


# ---------------------------------------------------------------------------------------------------
# Fixtures: tmpfs mounts, marked child processes (node_exporter's is in conftest.py).

MountTmpfs = Callable[..., Path]


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[MountTmpfs]:
    """Mount a small tmpfs under tmp_path (source name chosen by the test); skip where mounting is not allowed."""
    mount, umount = require_binary("mount"), require_binary("umount")
    mounted: list[Path] = []

    def do_mount(source: str, directory: str, options: str = "size=1m") -> Path:
        target = tmp_path / directory
        target.mkdir()
        result = subprocess.run(
            [mount, "-t", "tmpfs", "-o", options, source, str(target)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield do_mount
    for target in reversed(mounted):
        subprocess.run([umount, "-l", str(target)], check=False)


SLEEPER = "import time; print('ready', flush=True); time.sleep(300)"
# Four threads: the main one and three that sleep.
THREADED = (
    "import threading, time\n"
    "for _ in range(3):\n"
    "    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)
# Burns half a second of CPU time before it reports ready.
BURNER = (
    "import time\n"
    "end = time.process_time() + 0.5\n"
    "while time.process_time() < end:\n"
    "    pass\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)

Spawn = Callable[..., "subprocess.Popen[str]"]


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a command and wait until it prints 'ready'; all are killed (and reaped) after the test."""
    children: list[subprocess.Popen[str]] = []

    def start(command: list[str], **popen: object) -> subprocess.Popen[str]:
        child: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **popen,
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)


@pytest.fixture
def marker() -> str:
    """A string that appears in the command line of this test's children and of no other process."""
    return f"pulse-test-marker-{uuid.uuid4().hex}"


# ===================================================================================================
# Part A: values equal the kernel's.


def test_cpu_seconds_per_cpu_and_mode_are_proc_stat_ticks_over_clk_tck(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    before = read_cpu_ticks()
    exposition = parse_by_name(scrape(exporter))
    after = read_cpu_ticks()

    series = exposition["node_cpu_seconds_total"]
    assert {dict(labels)["cpu"] for labels in series} == set(before), "one cpu label per cpuN line of /proc/stat"
    assert {tuple(dict(labels)) for labels in series} == {("cpu", "mode")}
    mismatches = []
    for cpu, ticks in before.items():
        for index, mode in enumerate(CPU_MODES):
            value = series.get((("cpu", cpu), ("mode", mode)))
            low, high = ticks[index] / CLK_TCK, after[cpu][index] / CLK_TCK
            # proc(5): iowait "can decrease in certain conditions", so it gets a few ticks of slack.
            slack = 5 / CLK_TCK if mode == "iowait" else 1e-9
            if value is None or not between(value, low, high, slack=slack):
                mismatches.append(f"cpu{cpu} {mode}: exported {value}, /proc/stat {low}..{high}")
    assert not mismatches
    assert len(series) == len(before) * len(CPU_MODES)


def test_memory_is_every_proc_meminfo_field_in_bytes(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    churn = 1 * MiB  # slack for fields that grow and shrink again while the exporter reads the file

    def compare() -> tuple[dict[str, tuple[int, str | None]], ByName, list[str]]:
        before = read_meminfo()
        exposition = parse_by_name(scrape(exporter))
        after = read_meminfo()
        mismatches = []
        for key, (number, unit) in before.items():
            name, factor = meminfo_metric(key, unit)
            low, high = number * factor, after.get(key, before[key])[0] * factor
            exported = exposition.get(name, {}).get(())
            if exported is None or not between(exported, low, high, slack=churn if factor == 1024 else 0):
                mismatches.append(f"{name}: exported {exported}, /proc/meminfo {low}..{high}")
        return before, exposition, mismatches

    # Page cache, free memory and the like move all the time: on a busy host, a field can leave the
    # before/after bracket and come back. The exporter must get every field right in one of a few scrapes.
    for _attempt in range(20):
        before, exposition, mismatches = compare()
        if not mismatches:
            break
    assert not mismatches

    expected = {meminfo_metric(key, unit)[0] for key, (_, unit) in before.items()}
    exported = {name for name in exposition if name.startswith("node_memory_")}
    assert exported == expected, "one node_memory_* metric per /proc/meminfo key, and no others"
    assert single(exposition, "node_memory_MemTotal_bytes") == before["MemTotal"][0] * 1024
    assert single(exposition, "node_memory_SwapTotal_bytes") == before["SwapTotal"][0] * 1024
    # The kernel's own Cached, not psutil's "cached" (Cached + SReclaimable): SReclaimable is larger than
    # the slack, so the sum would have been a mismatch above.
    assert before["SReclaimable"][0] * 1024 > 2 * churn


def test_load_averages_are_proc_loadavg(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    before = read_loadavg()
    exposition = parse_by_name(scrape(exporter))
    after = read_loadavg()
    for index, name in enumerate(("node_load1", "node_load5", "node_load15")):
        # /proc/loadavg rounds to 0.01; the kernel's fixed-point value may be up to 0.005 away.
        assert between(single(exposition, name), before[index], after[index], slack=0.0051), name


def test_system_counters_boot_time_clock_and_uname(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    counters = {"ctxt": "node_context_switches_total", "processes": "node_forks_total", "intr": "node_intr_total"}
    before = {key: read_proc_stat_value(key) for key in counters}
    clock_before = time.time()
    exposition = parse_by_name(scrape(exporter))
    clock_after = time.time()
    after = {key: read_proc_stat_value(key) for key in counters}

    assert single(exposition, "node_boot_time_seconds") == read_proc_stat_value("btime")
    for key, name in counters.items():
        assert between(single(exposition, name), before[key], after[key]), name
    assert between(single(exposition, "node_time_seconds"), clock_before, clock_after, slack=0.01)
    # The exporter's own collecting thread was running when it read /proc/stat.
    assert single(exposition, "node_procs_running") >= 1
    assert single(exposition, "node_procs_blocked") >= 0

    uname = os.uname()
    domainname = Path("/proc/sys/kernel/domainname").read_text().strip()
    assert exposition["node_uname_info"] == {
        (
            ("domainname", domainname),
            ("machine", uname.machine),
            ("nodename", uname.nodename),
            ("release", uname.release),
            ("sysname", uname.sysname),
            ("version", uname.version),
        ): 1.0
    }


def test_root_filesystem_sizes_are_statvfs_blocks_times_f_bsize(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    before = os.statvfs("/")
    exposition = parse_by_name(scrape(exporter))
    after = os.statvfs("/")

    def root(name: str) -> float:
        series = series_by_mountpoint(exposition, f"node_filesystem_{name}")
        assert "/" in series, f"node_filesystem_{name} has no series for /"
        return series["/"][1]

    root_mount = [m for m in read_mounts() if m.mountpoint == "/"][-1]  # the last one mounted on / is visible
    labels = series_by_mountpoint(exposition, "node_filesystem_size_bytes")["/"][0]
    assert (labels["fstype"], labels["mountpoint"]) == (root_mount.fstype, "/")

    assert root("size_bytes") == before.f_blocks * before.f_bsize
    assert root("files") == before.f_files
    tolerance = 16 * MiB  # other processes write to the disk meanwhile
    assert between(root("free_bytes"), before.f_bfree * before.f_bsize, after.f_bfree * after.f_bsize, tolerance)
    assert between(root("avail_bytes"), before.f_bavail * before.f_bsize, after.f_bavail * after.f_bsize, tolerance)
    assert root("avail_bytes") <= root("free_bytes") <= root("size_bytes")
    assert between(root("files_free"), before.f_ffree, after.f_ffree, slack=1000)
    assert root("readonly") == (1 if "ro" in root_mount.options else 0)
    assert root("device_error") == 0


def test_default_filesystem_selection_is_node_exporters(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    exposition = parse_by_name(scrape(exporter))
    # node_filesystem_device_error has a series for every selected mount, even one statvfs fails on.
    reported = set(series_by_mountpoint(exposition, "node_filesystem_device_error"))

    assert reported == selected_mountpoints(MOUNTPOINTS_EXCLUDE, FSTYPES_EXCLUDE)
    assert "/" in reported
    pseudo = [mp for mp in reported if re.match(r"^/(proc|sys|dev|run)($|/)", mp)]
    assert not pseudo, f"pseudo and runtime filesystems must be excluded: {pseudo}"
    fstypes = {dict(labels)["fstype"] for labels in exposition["node_filesystem_size_bytes"]}
    assert not {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "overlay"} & fstypes


def test_include_mountpoints_replaces_the_default_mountpoint_exclude(start_exporter: StartExporter) -> None:
    # A mount the default mount point regex hides but whose type it keeps (e.g. tmpfs on /dev/shm or /run).
    candidates = sorted(
        m.mountpoint
        for m in read_mounts()
        if MOUNTPOINTS_EXCLUDE.search(m.mountpoint) and not FSTYPES_EXCLUDE.search(m.fstype)
    )
    if not candidates:
        pytest.skip("no mount here is hidden only by the default mount point exclude")
    wanted = candidates[0]

    exporter = start_exporter(config({"filesystem": {"include_mountpoints": f"^{re.escape(wanted)}$"}}))
    exposition = parse_by_name(scrape(exporter))

    assert set(series_by_mountpoint(exposition, "node_filesystem_device_error")) == {wanted}
    series = series_by_mountpoint(exposition, "node_filesystem_size_bytes")
    assert set(series) == {wanted}
    st = os.statvfs(wanted)
    assert series[wanted][1] == st.f_blocks * st.f_bsize


def test_exclude_fstypes_and_mountpoints_replace_the_defaults(start_exporter: StartExporter) -> None:
    root_fstype = [m for m in read_mounts() if m.mountpoint == "/"][-1].fstype
    mountpoints_exclude = r"^/(proc|sys)($|/)"
    fstypes_exclude = f"^{re.escape(root_fstype)}$"
    exporter = start_exporter(
        config({"filesystem": {"exclude_mountpoints": mountpoints_exclude, "exclude_fstypes": fstypes_exclude}})
    )
    exposition = parse_by_name(scrape(exporter))

    reported = set(series_by_mountpoint(exposition, "node_filesystem_device_error"))
    assert "/" not in reported
    assert reported == selected_mountpoints(compile_regex(mountpoints_exclude), compile_regex(fstypes_exclude))


def test_tmpfs_mounts_report_readonly_and_decoded_mount_points(
    start_exporter: StartExporter, mount_tmpfs: MountTmpfs
) -> None:
    readonly = mount_tmpfs("tmpfs", "read only", "size=1m,ro")  # the kernel writes the space as \040
    writable = mount_tmpfs("tmpfs", "writable", "size=2m")
    exporter = start_exporter()
    exposition = parse_by_name(scrape(exporter))

    sizes = series_by_mountpoint(exposition, "node_filesystem_size_bytes")
    flags = series_by_mountpoint(exposition, "node_filesystem_readonly")
    for path, size, is_readonly in ((readonly, 1 * MiB, 1), (writable, 2 * MiB, 0)):
        assert str(path) in sizes, f"{path} not reported; reported: {sorted(sizes)}"
        labels, value = sizes[str(path)]
        st = os.statvfs(path)
        assert value == st.f_blocks * st.f_bsize == size
        assert labels["fstype"] == "tmpfs"
        assert flags[str(path)][1] == is_readonly


def test_filesystem_device_label_is_the_mount_source(start_exporter: StartExporter, mount_tmpfs: MountTmpfs) -> None:
    none_source = mount_tmpfs("none", "none-source")
    root_source = mount_tmpfs("/dev/root", "dev-root-source")
    kernel = {m.mountpoint: m.device for m in read_mounts()}
    assert (kernel[str(none_source)], kernel[str(root_source)]) == ("none", "/dev/root")

    exporter = start_exporter()
    series = series_by_mountpoint(parse_by_name(scrape(exporter)), "node_filesystem_size_bytes")
    reported = (series[str(none_source)][0]["device"], series[str(root_source)][0]["device"])
    assert reported == ("none", "/dev/root")


def test_disk_counters_are_proc_diskstats_without_partitions_and_loops(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    before = read_diskstats()
    exposition = parse_by_name(scrape(exporter))
    after = read_diskstats()

    expected = {device for device, columns in before.items() if len(columns) >= 11 and not DISKS_EXCLUDE.search(device)}
    for name, _ in DISK_COLUMNS.values():
        assert set(by_label(exposition, name, "device")) == expected, name
    assert set(by_label(exposition, "node_disk_io_now", "device")) == expected
    excluded = [d for d in by_label(exposition, "node_disk_io_now", "device") if DISKS_EXCLUDE.search(d)]
    assert not excluded, f"partitions, loop and ram devices must be excluded: {excluded}"

    mismatches = []
    for column, (name, scale) in DISK_COLUMNS.items():
        for device, value in by_label(exposition, name, "device").items():
            low, high = before[device][column] * scale, after[device][column] * scale
            if not between(value, low, high, slack=1e-9):
                mismatches.append(f"{name}{{device={device}}}: exported {value}, /proc/diskstats {low}..{high}")
    for device, value in by_label(exposition, "node_disk_io_now", "device").items():
        if value < 0 or value != int(value):
            mismatches.append(f"node_disk_io_now{{device={device}}}: {value}")
    assert not mismatches


def test_network_counters_are_proc_net_dev_without_lo(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    before = read_net_dev()
    exposition = parse_by_name(scrape(exporter))
    after = read_net_dev()

    expected = {device for device in before if not NETWORK_EXCLUDE.search(device)}
    assert "lo" not in expected
    mismatches = []
    for column, name in NET_COLUMNS.items():
        series = by_label(exposition, name, "device")
        assert set(series) == expected, name
        for device, value in series.items():
            if not between(value, before[device][column], after[device][column]):
                mismatches.append(f"{name}{{device={device}}}: {value}, /proc/net/dev {before[device][column]}")
    assert not mismatches


def _process_config(marker: str, *extra_groups: dict[str, object]) -> str:
    groups = [{"name": "workers", "match": {"cmdline": re.escape(marker)}}, *extra_groups]
    return config({"processes": groups})


def test_process_group_reports_what_proc_says_about_its_processes(
    start_exporter: StartExporter, spawn: Spawn, marker: str
) -> None:
    nothing = f"no-process-has-{uuid.uuid4().hex}"
    exporter = start_exporter(_process_config(marker, {"name": "nothing", "match": {"cmdline": nothing}}))
    children = [spawn(python(SLEEPER, marker)) for _ in range(2)] + [
        spawn(python(THREADED, marker)),
        spawn(python(BURNER, marker)),
    ]
    pids = [child.pid for child in children]

    before = [read_process(pid) for pid in pids]
    exposition = parse_by_name(scrape(exporter))
    after = [read_process(pid) for pid in pids]

    def group(name: str, group_name: str = "workers") -> float:
        return by_label(exposition, name, "name")[group_name]

    assert group("pulse_process_count") == len(children)
    assert sum(p.threads for p in before) == len(children) + 3
    assert between(group("pulse_process_threads"), sum(p.threads for p in before), sum(p.threads for p in after))
    assert between(
        group("pulse_process_resident_memory_bytes"),
        sum(p.rss_bytes for p in before),
        sum(p.rss_bytes for p in after),
        slack=1 * MiB,
    )
    assert between(group("pulse_process_open_fds"), sum(p.open_fds for p in before), sum(p.open_fds for p in after))
    btime = read_proc_stat_value("btime")
    oldest = btime + min(p.start_ticks for p in before) / CLK_TCK
    assert group("pulse_process_oldest_start_time_seconds") == pytest.approx(oldest, abs=1e-6)

    cpu = exposition["pulse_process_cpu_seconds_total"]
    user, system = cpu[(("mode", "user"), ("name", "workers"))], cpu[(("mode", "system"), ("name", "workers"))]
    assert between(user, sum(p.utime for p in before) / CLK_TCK, sum(p.utime for p in after) / CLK_TCK, 1e-9)
    assert between(system, sum(p.stime for p in before) / CLK_TCK, sum(p.stime for p in after) / CLK_TCK, 1e-9)
    assert user + system >= 0.4, "the burner alone used 0.5 s of CPU"

    # A group that matches nothing is still reported, as empty, so alerts on `== 0` can fire.
    assert group("pulse_process_count", "nothing") == 0
    assert group("pulse_process_threads", "nothing") == 0
    assert group("pulse_process_resident_memory_bytes", "nothing") == 0
    assert group("pulse_process_open_fds", "nothing") == 0
    assert cpu[(("mode", "user"), ("name", "nothing"))] == cpu[(("mode", "system"), ("name", "nothing"))] == 0
    assert "nothing" not in by_label(exposition, "pulse_process_oldest_start_time_seconds", "name")


def test_process_group_cpu_counter_keeps_the_time_of_exited_processes(
    start_exporter: StartExporter, spawn: Spawn, marker: str
) -> None:
    exporter = start_exporter(_process_config(marker))
    sleepers = [spawn(python(SLEEPER, marker)) for _ in range(2)]
    burner = spawn(python(BURNER, marker))

    first = parse_by_name(scrape(exporter))
    assert by_label(first, "pulse_process_count", "name") == {"workers": 3}
    first_cpu = by_label(first, "pulse_process_cpu_seconds_total", "mode")
    assert sum(first_cpu.values()) >= 0.4

    burner.send_signal(signal.SIGKILL)
    burner.wait(10)  # reaped: no zombie left behind
    second = parse_by_name(scrape(exporter))
    assert by_label(second, "pulse_process_count", "name") == {"workers": len(sleepers)}
    second_cpu = by_label(second, "pulse_process_cpu_seconds_total", "mode")
    for mode in ("user", "system"):
        assert second_cpu[mode] >= first_cpu[mode], f"{mode} CPU went down when a process exited"

    for sleeper in sleepers:
        sleeper.kill()
        sleeper.wait(10)
    third = parse_by_name(scrape(exporter))
    assert by_label(third, "pulse_process_count", "name") == {"workers": 0}
    assert by_label(third, "pulse_process_cpu_seconds_total", "mode") == second_cpu


def test_a_process_belongs_to_the_first_group_that_matches(
    start_exporter: StartExporter, spawn: Spawn, marker: str
) -> None:
    exporter = start_exporter(_process_config(marker, {"name": "also", "match": {"cmdline": re.escape(marker)}}))
    children = [spawn(python(SLEEPER, marker)) for _ in range(2)]
    counts = by_label(parse_by_name(scrape(exporter)), "pulse_process_count", "name")
    assert counts == {"workers": len(children), "also": 0}


def test_an_exited_process_is_not_counted_before_its_parent_reaps_it(
    start_exporter: StartExporter, spawn: Spawn, marker: str
) -> None:
    exporter = start_exporter(_process_config(marker))
    alive = spawn(python(SLEEPER, marker))
    exited = spawn(python(SLEEPER, marker))
    assert by_label(parse_by_name(scrape(exporter)), "pulse_process_count", "name") == {"workers": 2}

    exited.send_signal(signal.SIGKILL)  # and deliberately not wait()ed for: the test is its parent
    stat = Path(f"/proc/{exited.pid}/stat")
    wait_until(lambda: stat.read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z", what="the killed child a zombie")
    assert alive.poll() is None

    assert by_label(parse_by_name(scrape(exporter)), "pulse_process_count", "name") == {"workers": 1}


def test_a_process_that_execs_into_a_matching_command_line_is_counted(
    start_exporter: StartExporter, spawn: Spawn, marker: str
) -> None:
    # A start script in miniature: its own command line does not match until it execs the real program
    # (the marker comes from the environment, so it is not in the script's text).
    script = 'echo ready; read go; exec "$0" -c "import time; time.sleep(300)" "$MARK"'
    exporter = start_exporter(_process_config(marker))
    child = spawn([require_binary("sh"), "-c", script, sys.executable], env={**os.environ, "MARK": marker})
    assert marker not in Path(f"/proc/{child.pid}/cmdline").read_text()
    assert by_label(parse_by_name(scrape(exporter)), "pulse_process_count", "name") == {"workers": 0}

    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    cmdline = Path(f"/proc/{child.pid}/cmdline")
    wait_until(lambda: marker in cmdline.read_text(), what="the wrapper exec'd into the matching command")

    assert by_label(parse_by_name(scrape(exporter)), "pulse_process_count", "name") == {"workers": 1}


# ===================================================================================================
def read_vmstat() -> dict[str, int]:
    with open("/proc/vmstat") as f:
        return {key: int(value) for key, value in (line.split() for line in f)}


def test_vmstat_fields_are_proc_vmstat_with_node_exporters_selection(start_exporter: StartExporter) -> None:
    before = read_vmstat()
    text = scrape(start_exporter())
    after = read_vmstat()
    exposition = parse_by_name(text)
    exported = {name.removeprefix("node_vmstat_") for name in exposition if name.startswith("node_vmstat_")}
    assert exported == {key for key in before if re.match(r"^(oom_kill|pgpg|pswp|pg.*fault)", key)}
    assert "pgmajfault" in exported, "node-mixin's major page fault alert needs it"
    for key in exported:
        assert between(single(exposition, f"node_vmstat_{key}"), before[key], after[key]), key
    assert types(text)["node_vmstat_pgfault"] == "untyped"


def test_file_handles_and_conntrack_are_the_kernels(start_exporter: StartExporter) -> None:
    exposition = parse_by_name(scrape(start_exporter()))
    with open("/proc/sys/fs/file-nr") as f:
        allocated, _, maximum = (int(v) for v in f.read().split())
    assert single(exposition, "node_filefd_maximum") == maximum
    assert between(single(exposition, "node_filefd_allocated"), allocated, allocated, slack=200)
    conntrack_max = Path("/proc/sys/net/netfilter/nf_conntrack_max")
    if conntrack_max.exists():
        assert single(exposition, "node_nf_conntrack_entries_limit") == int(conntrack_max.read_text())
    else:
        assert "node_nf_conntrack_entries_limit" not in exposition


def test_network_up_is_operstate(start_exporter: StartExporter) -> None:
    up = by_label(parse_by_name(scrape(start_exporter())), "node_network_up", "device")
    expected = {
        device.name: 1.0 if (device / "operstate").read_text().strip() == "up" else 0.0
        for device in Path("/sys/class/net").iterdir()
        if not NETWORK_EXCLUDE.search(device.name) and device.name in read_net_dev()
    }
    assert up == expected


# Part B: the same names, types, labels and values as node_exporter 1.5.

MAIN_FAMILIES = (
    "node_cpu_seconds_total",
    "node_filesystem_size_bytes",
    "node_disk_read_bytes_total",
    "node_network_receive_bytes_total",
    "node_memory_MemTotal_bytes",
    "node_load1",
    "node_boot_time_seconds",
    "node_uname_info",
)


def test_the_defaults_used_here_are_node_exporters() -> None:
    binary = require_binary("prometheus-node-exporter")
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=False).stdout
    for flag, regex in NODE_EXPORTER_DEFAULTS.items():
        match = re.search(rf'--{re.escape(flag)}="((?:[^"\\]|\\.)*)"', help_text)
        assert match, f"--{flag} has no default in node_exporter --help"
        assert match.group(1).replace("\\\\", "\\") == regex, flag


def test_every_node_metric_exists_in_node_exporter_with_the_same_type(
    start_exporter: StartExporter, start_node_exporter: StartNodeExporter
) -> None:
    reference = node_exporter_text(start_node_exporter())
    pulse = scrape(start_exporter())

    pulse_types = {name: kind for name, kind in types(pulse).items() if name.startswith("node_")}
    reference_types = types(reference)
    assert set(MAIN_FAMILIES) <= set(pulse_types)
    missing = sorted(set(pulse_types) - set(reference_types))
    assert not missing, f"node_* metrics that node_exporter 1.5 does not have: {missing}"
    different = {
        name: (kind, reference_types[name]) for name, kind in pulse_types.items() if reference_types[name] != kind
    }
    assert not different, f"types differ (pulse, node_exporter): {different}"
    reference_samples = parse_by_name(reference)
    extra = sorted(name for name in parse_by_name(pulse) if name.startswith("node_") and name not in reference_samples)
    assert not extra, f"node_* samples that node_exporter 1.5 does not have: {extra}"


def test_main_families_have_node_exporters_labels_and_values(
    start_exporter: StartExporter, start_node_exporter: StartNodeExporter
) -> None:
    node_exporter_url = start_node_exporter()
    pulse_exporter = start_exporter()
    for _attempt in range(5):  # loads change every 5 s; compare two scrapes that saw the same /proc/loadavg
        load_before = read_loadavg()
        started = time.monotonic()
        reference = parse_by_name(node_exporter_text(node_exporter_url))
        pulse = parse_by_name(scrape(pulse_exporter))
        elapsed = time.monotonic() - started
        if read_loadavg() == load_before:
            break

    for name in MAIN_FAMILIES:
        assert {tuple(k for k, _ in labels) for labels in pulse[name]} == {
            tuple(k for k, _ in labels) for labels in reference[name]
        }, f"{name}: label names differ"
        assert set(pulse[name]) == set(reference[name]), f"{name}: label values differ"

    assert pulse["node_memory_MemTotal_bytes"] == reference["node_memory_MemTotal_bytes"]
    assert pulse["node_filesystem_size_bytes"] == reference["node_filesystem_size_bytes"]
    assert pulse["node_uname_info"] == reference["node_uname_info"]
    assert single(pulse, "node_boot_time_seconds") == pytest.approx(single(reference, "node_boot_time_seconds"), abs=1)
    assert single(pulse, "node_load1") == pytest.approx(single(reference, "node_load1"), abs=0.0051)
    # Scraped after node_exporter: counters are at least as large, and a CPU spends at most the elapsed
    # wall time (plus a tick of rounding) across its modes.
    for labels, value in pulse["node_cpu_seconds_total"].items():
        lowest = -5 / CLK_TCK if ("mode", "iowait") in labels else 0  # iowait may decrease, see proc(5)
        assert lowest <= value - reference["node_cpu_seconds_total"][labels] <= elapsed + 2 / CLK_TCK, labels
    for name in ("node_disk_read_bytes_total", "node_network_receive_bytes_total"):
        for labels, value in pulse[name].items():
            assert value >= reference[name][labels], (name, labels)


def test_filesystem_labels_match_node_exporter_for_none_and_dev_root_sources(
    start_exporter: StartExporter, start_node_exporter: StartNodeExporter, mount_tmpfs: MountTmpfs
) -> None:
    mount_tmpfs("none", "none-source")
    mount_tmpfs("/dev/root", "dev-root-source")
    reference = parse_by_name(node_exporter_text(start_node_exporter()))
    pulse = parse_by_name(scrape(start_exporter()))
    assert set(pulse["node_filesystem_size_bytes"]) == set(reference["node_filesystem_size_bytes"])


# promtool's lints that node_exporter's own names trip (node-mixin needs those names unchanged): camelCase
# in node_memory_<Field> and node_netstat_<Protocol>_<Field>, and entropy counted in bits.
INHERITED_FINDING = re.compile(
    r"^node_(memory|netstat)_\w+ metric names should be written in 'snake_case' not 'camelCase'$"
    r'|^node_entropy_\w+_bits use base unit "bytes" instead of "bits"$'
)


def promtool_findings(text: str) -> set[str]:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False, timeout=60
    )
    findings = {line for line in (result.stdout + result.stderr).splitlines() if line.strip()}
    assert result.returncode == (3 if findings else 0), f"promtool exited {result.returncode}: {findings}"
    return findings


def test_promtool_finds_nothing_but_what_node_exporters_own_names_trip(start_exporter: StartExporter) -> None:
    text = scrape(start_exporter())
    assert "node_memory_MemTotal_bytes" in text  # promtool accepts an empty body: make sure it had work to do

    findings = promtool_findings(text)
    others = sorted(line for line in findings if not INHERITED_FINDING.match(line))
    assert not others, f"promtool findings besides those of node_exporter's own names: {others}"
    assert "node_memory_MemTotal_bytes metric names should be written in 'snake_case' not 'camelCase'" in findings


def test_node_exporter_gets_the_same_findings_for_the_same_names(
    start_exporter: StartExporter, start_node_exporter: StartNodeExporter
) -> None:
    pulse_text = scrape(start_exporter())
    reference_text = node_exporter_text(start_node_exporter())
    pulse_names = set(types(pulse_text))

    pulse_findings = promtool_findings(pulse_text)
    reference_findings = {line for line in promtool_findings(reference_text) if line.split()[0] in pulse_names}
    assert pulse_findings
    assert pulse_findings == reference_findings


def test_clock_synchronisation_matches_node_exporter(
    start_exporter: StartExporter, start_node_exporter: StartNodeExporter
) -> None:
    pulse = parse_by_name(scrape(start_exporter()))
    reference = parse_by_name(node_exporter_text(start_node_exporter()))
    for name in (
        "node_timex_sync_status",
        "node_timex_status",
        "node_timex_tick_seconds",
        "node_timex_loop_time_constant",
        "node_timex_tai_offset_seconds",
    ):
        assert single(pulse, name) == single(reference, name), name
    for name in ("node_timex_maxerror_seconds", "node_timex_offset_seconds", "node_timex_frequency_adjustment_ratio"):
        assert single(pulse, name) == pytest.approx(single(reference, name), abs=0.5), name


# ===================================================================================================
# Part C: the collectors node_exporter has by default beyond the basics (pressure, netstat, sockstat,
# softnet, entropy, md arrays, disk info and discard/flush counters), against node_exporter 1.5.
#
# This machine has no md arrays and its counters are mostly zeros, so node_exporter and Pulse also read
# the same fixture tree (tests/fixtures/host: a degraded RAID1, a resyncing RAID5, an inactive array, a
# recovering array with a bitmap, ...; PSI files; udev records): node_exporter through --path.procfs and
# --path.udev.data, Pulse's collectors built on the same root and scraped through the exporter's own
# scrape and encoder. Everything they print must be identical: names, types, HELP, labels, values.

FIXTURE_ROOT = Path(__file__).parent / "fixtures" / "host"
NEW_FAMILIES = re.compile(r"^node_(pressure|netstat|sockstat|softnet|entropy|md|disk)_")
# node_exporter's name for each (its md collector is `mdadm`) -> Pulse's collector.
FIXTURE_COLLECTORS = {
    "pressure": "host.pressure",
    "netstat": "host.netstat",
    "sockstat": "host.sockstat",
    "softnet": "host.softnet",
    "entropy": "host.entropy",
    "mdadm": "host.mdstat",
    "diskstats": "host.disk",
}


def collectors_on(root: Path, netstat_fields: str | None = None) -> list[Collector]:
    """Pulse's collectors reading the tree under `root` instead of /proc and /run/udev/data."""
    proc = str(root / "proc")
    netstat_config = netstat.NetstatConfig() if netstat_fields is None else netstat.NetstatConfig(fields=netstat_fields)
    return [
        pressure.PressureCollector(Toggle(), proc_path=proc),
        netstat.NetstatCollector(netstat_config, proc_path=proc),
        sockstat.SockstatCollector(Toggle(), proc_path=proc),
        softnet.SoftnetCollector(Toggle(), proc_path=proc),
        entropy.EntropyCollector(Toggle(), proc_path=proc),
        mdstat.MdstatCollector(Toggle(), proc_path=proc),
        disk.DiskCollector(disk.DiskConfig(), diskstats_path=f"{proc}/diskstats", udev_data_path=f"{root}/udev/data"),
    ]


def pulse_scrape_on(root: Path, netstat_fields: str | None = None) -> tuple[str, Exporter]:
    exporter = Exporter(None, None, load_files(None, None))
    return scrape_with(exporter, collectors_on(root, netstat_fields)), exporter


def scrape_with(exporter: Exporter, collectors: list[Collector]) -> str:
    body, _ = asyncio.run(exporter.scrape(collectors, 5, "text/plain"))
    return body.decode()


def node_exporter_on(start: StartNodeExporter, root: Path, *flags: str) -> str:
    return node_exporter_text(
        start(
            "--collector.disable-defaults",
            *(f"--collector.{name}" for name in FIXTURE_COLLECTORS),
            f"--path.procfs={root / 'proc'}",
            f"--path.sysfs={root}",
            f"--path.udev.data={root / 'udev' / 'data'}",
            *flags,
        )
    )


def helps(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# HELP (\S+) (.*)$", text, flags=re.MULTILINE))


def new_only(mapping: dict[str, _V]) -> dict[str, _V]:
    return {name: value for name, value in mapping.items() if NEW_FAMILIES.match(name)}


def successes(text: str, name: str) -> dict[str, float]:
    return by_label(parse_by_name(text), name, "collector")


def assert_same_output(pulse: str, reference: str) -> None:
    assert new_only(types(pulse)) == new_only(types(reference)), "types differ"
    assert new_only(helps(pulse)) == new_only(helps(reference)), "HELP texts differ"
    pulse_samples, reference_samples = new_only(parse_by_name(pulse)), new_only(parse_by_name(reference))
    assert sorted(pulse_samples) == sorted(reference_samples), "families differ"
    for name, series in reference_samples.items():
        assert pulse_samples[name] == series, name


def copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    shutil.copytree(FIXTURE_ROOT, root)
    return root


def test_new_collectors_print_what_node_exporter_prints_from_the_same_files(
    start_node_exporter: StartNodeExporter,
) -> None:
    reference = node_exporter_on(start_node_exporter, FIXTURE_ROOT)
    pulse, _ = pulse_scrape_on(FIXTURE_ROOT)
    assert successes(reference, "node_scrape_collector_success") == dict.fromkeys(FIXTURE_COLLECTORS, 1)
    assert successes(pulse, "pulse_exporter_collector_success") == dict.fromkeys(
        [*FIXTURE_COLLECTORS.values(), "exporter"], 1
    )
    assert_same_output(pulse, reference)

    samples = parse_by_name(pulse)
    # The fixture has what it is meant to have, so the comparison above covered it.
    assert {name for name in types(pulse) if NEW_FAMILIES.match(name)} >= {
        "node_pressure_cpu_waiting_seconds_total",
        "node_pressure_memory_stalled_seconds_total",
        "node_netstat_Tcp_RetransSegs",
        "node_netstat_Ip6_InOctets",
        "node_sockstat_TCP_mem_bytes",
        "node_softnet_times_squeezed_total",
        "node_entropy_pool_size_bits",
        "node_md_blocks_synced",
        "node_disk_info",
        "node_disk_flush_requests_time_seconds_total",
        "node_disk_ata_rotation_rate_rpm",
        "node_disk_device_mapper_info",
        "node_disk_filesystem_info",
    }
    # node-mixin's NodeRAIDDegraded: disks_required - disks{state="active"} > 0.
    required = by_label(samples, "node_md_disks_required", "device")
    active = {
        dict(labels)["device"]: value
        for labels, value in samples["node_md_disks"].items()
        if dict(labels)["state"] == "active"
    }
    assert {device for device in required if required[device] - active[device] > 0} == {"md0", "md3"}
    states = {dict(labels)["device"]: dict(labels)["state"] for labels, v in samples["node_md_state"].items() if v}
    assert states == {"md0": "active", "md1": "resync", "md2": "inactive", "md3": "recovering", "md4": "active",
                      "md5": "check", "md6": "resync", "md7": "active"}  # fmt: skip
    # An older kernel without flush columns (nvme0n1 has 15) gets no flush series, as in node_exporter.
    assert "nvme0n1" not in by_label(samples, "node_disk_flush_requests_total", "device")


def test_netstat_fields_regex_selects_as_node_exporters_flag_does(start_node_exporter: StartNodeExporter) -> None:
    fields = r"^(Tcp_.*Segs|Udp6_.*|IpExt_InOctets)$"
    reference = node_exporter_on(start_node_exporter, FIXTURE_ROOT, f"--collector.netstat.fields={fields}")
    pulse, _ = pulse_scrape_on(FIXTURE_ROOT, netstat_fields=fields)
    assert_same_output(pulse, reference)
    netstat_names = {name for name in types(pulse) if name.startswith("node_netstat_")}
    assert "node_netstat_Tcp_RetransSegs" in netstat_names
    assert "node_netstat_Tcp_CurrEstab" not in netstat_names
    assert any(name.startswith("node_netstat_Udp6_") for name in netstat_names)


def test_values_that_change_between_scrapes_are_served_anew(tmp_path: Path) -> None:
    # Families whose value holds are handed out again (procfs.SteadyFamilies); a changed one must not be.
    root = copy_fixture(tmp_path)
    exporter, collectors = Exporter(None, None, load_files(None, None)), collectors_on(root)
    first = parse_by_name(scrape_with(exporter, collectors))

    def edit(relative: str, old: str, new: str) -> None:
        path = root / relative
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new, 1))

    edit("proc/net/sockstat", "TCP: inuse 57", "TCP: inuse 58")
    edit("proc/pressure/memory", "total=5555555", "total=6555555")
    edit("proc/net/softnet_stat", "0001a2b3 00000004", "0001a2b4 00000004")
    edit("proc/diskstats", "sda 184214 ", "sda 184215 ")
    snmp6 = root / "proc/net/snmp6"
    snmp6.write_text(re.sub(r"^(Ip6InOctets\s+)\d+", r"\g<1>999", snmp6.read_text(), flags=re.MULTILINE))
    second = parse_by_name(scrape_with(exporter, collectors))

    assert single(first, "node_sockstat_TCP_inuse") == 57
    assert single(second, "node_sockstat_TCP_inuse") == 58
    assert single(second, "node_pressure_memory_waiting_seconds_total") == 6.555555
    assert single(second, "node_netstat_Ip6_InOctets") == 999
    assert by_label(second, "node_softnet_processed_total", "cpu")["0"] == 0x1A2B4
    assert by_label(second, "node_disk_reads_completed_total", "device")["sda"] == 184215
    changed = {
        "node_sockstat_TCP_inuse",
        "node_pressure_memory_waiting_seconds_total",
        "node_netstat_Ip6_InOctets",
        "node_softnet_processed_total",
        "node_disk_reads_completed_total",
    }
    assert {name: v for name, v in new_only(second).items() if name not in changed} == {
        name: v for name, v in new_only(first).items() if name not in changed
    }


def test_netstat_fields_come_from_the_config_file(start_exporter: StartExporter) -> None:
    exporter = start_exporter(config({"netstat": {"fields": "^Tcp_(InSegs|OutSegs)$"}, "sockstat": {"enabled": False}}))
    text = scrape(exporter)
    assert {name for name in types(text) if name.startswith("node_netstat_")} == {
        "node_netstat_Tcp_InSegs",
        "node_netstat_Tcp_OutSegs",
    }
    assert not [name for name in types(text) if name.startswith("node_sockstat_")]
    assert "host.sockstat" not in successes(text, "pulse_exporter_collector_success")


def test_a_netstat_fields_regex_that_re2_refuses_is_a_config_error() -> None:
    [problem] = problems("collectors:\n  host:\n    netstat: {fields: '(?<=Tcp)_x'}\n")
    assert problem.startswith("pulse.yml:3: collectors.host.netstat.fields: ")
    assert "RE2" in problem


# (file under the fixture root, garbled content, Pulse's collector, what the error must say)
GARBLED = (
    ("proc/mdstat", "Personalities : [raid1]\nmd0 : active raid1 sdb1[1] sda1[0]\n      many blocks [2/2] [UU]\n\n"
     "unused devices: <none>\n", "host.mdstat", "mdstat:3: md0: expected '<N> blocks ...'"),
    ("proc/mdstat", "Personalities : [raid1]\nmd0 : active raid1 sdb1[1] sda1[0]\n", "host.mdstat",
     "mdstat:2: md0: the file ends before its status lines"),
    ("proc/net/netstat", "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 1\n", "host.netstat",
     "netstat:2: the values do not match the header's field count"),
    ("proc/net/snmp", "Tcp: InSegs OutSegs\nTcp: 12 many\n", "host.netstat", "snmp:2: 'many' is not a number"),
    ("proc/net/sockstat", "sockets: used 3\nTCP: inuse\n", "host.sockstat", "sockstat:2: expected '<PROTOCOL>:"),
    ("proc/net/sockstat", "TCP{x}: inuse 3\n", "host.sockstat", "sockstat:1: 'TCP{x}' cannot be part of a metric"),
    ("proc/net/softnet_stat", "00000001 00000002 00000003\n", "host.softnet", "softnet_stat:1: 3 columns"),
    ("proc/pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00\n", "host.pressure", "io:1: no total="),
    ("proc/sys/kernel/random/poolsize", "lots\n", "host.entropy", "poolsize:1: 'lots' is not a number of bits"),
    ("proc/diskstats", "   8       0 sda 1 2 3\n   8  16 sdb x 0 0 0 0 0 0 0 0 0 0\n", "host.disk",
     "diskstats:2: sdb: a column is not a number"),
)  # fmt: skip


@pytest.mark.parametrize(("relative", "content", "collector", "reason"), GARBLED, ids=lambda v: str(v)[:24])
def test_a_garbled_file_fails_only_its_collector_with_the_file_and_line(
    tmp_path: Path, relative: str, content: str, collector: str, reason: str
) -> None:
    root = copy_fixture(tmp_path)
    (root / relative).write_text(content)
    text, exporter = pulse_scrape_on(root)
    expected = dict.fromkeys([*FIXTURE_COLLECTORS.values(), "exporter"], 1.0)
    expected[collector] = 0.0
    assert successes(text, "pulse_exporter_collector_success") == expected
    assert reason in exporter.last_outcomes[collector].error
    served = {name.split("_")[1] for name in types(text) if NEW_FAMILIES.match(name)}
    assert len(served) == len(FIXTURE_COLLECTORS) - 1, f"every other collector still served: {served}"


def test_node_exporter_also_fails_on_the_garbled_mdstat(tmp_path: Path, start_node_exporter: StartNodeExporter) -> None:
    root = copy_fixture(tmp_path)
    (root / "proc/mdstat").write_text(GARBLED[0][1])
    reference = successes(node_exporter_on(start_node_exporter, root), "node_scrape_collector_success")
    pulse = successes(pulse_scrape_on(root)[0], "pulse_exporter_collector_success")
    assert reference["mdadm"] == pulse["host.mdstat"] == 0


def test_missing_files_mean_nothing_to_report_not_a_failure(tmp_path: Path) -> None:
    # No md driver (no /proc/mdstat), no PSI (kernel < 4.20 or CONFIG_PSI off), IPv6 off (no snmp6,
    # sockstat6), no udev database (a container). node_exporter 1.5 reports its pressure and mdadm
    # collectors as failed then; Pulse has nothing to say and says nothing, so alerts on
    # pulse_exporter_collector_success fire only for real trouble.
    root = copy_fixture(tmp_path)
    for relative in ("proc/mdstat", "proc/net/snmp6", "proc/net/sockstat6"):
        (root / relative).unlink()
    shutil.rmtree(root / "proc/pressure")
    shutil.rmtree(root / "udev")
    text, _ = pulse_scrape_on(root)
    assert set(successes(text, "pulse_exporter_collector_success").values()) == {1.0}
    names = set(types(text))
    assert not {name for name in names if name.startswith(("node_md_", "node_pressure_", "node_sockstat_TCP6"))}
    assert not {name for name in names if name.startswith("node_netstat_") and "6_" in name}
    info = {dict(labels)["device"]: dict(labels) for labels in parse_by_name(text)["node_disk_info"]}
    assert info["sda"] == {"device": "sda", "major": "8", "minor": "0", "path": "", "wwn": "", "model": "",
                           "serial": "", "revision": ""}  # fmt: skip
    assert not names & {"node_disk_filesystem_info", "node_disk_device_mapper_info", "node_disk_ata_write_cache"}


def test_new_families_on_this_machine_match_node_exporter(
    start_exporter: StartExporter, start_node_exporter: StartNodeExporter
) -> None:
    reference_text = node_exporter_text(start_node_exporter())
    pulse_text = scrape(start_exporter())
    assert new_only(types(pulse_text)) == new_only(types(reference_text))
    assert new_only(helps(pulse_text)) == new_only(helps(reference_text))
    pulse, reference = new_only(parse_by_name(pulse_text)), new_only(parse_by_name(reference_text))
    assert sorted(pulse) == sorted(reference)
    for name, series in reference.items():
        assert set(pulse[name]) == set(series), f"{name}: label sets differ"
        if name.endswith("_total"):  # scraped after node_exporter: a counter is at least as large
            for labels, value in series.items():
                assert pulse[name][labels] >= value, (name, labels)
    assert pulse["node_entropy_pool_size_bits"] == reference["node_entropy_pool_size_bits"]
    if Path("/proc/pressure/cpu").exists():
        assert "node_pressure_cpu_waiting_seconds_total" in pulse
