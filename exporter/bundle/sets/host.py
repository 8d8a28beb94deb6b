"""The machine Pulse runs on: node-mixin's alerts and recording rules on Pulse's host metrics, and named
process groups that stopped.

Pulse exports node_exporter 1.5's names (docs/host.md), so node-mixin's alerts apply as they are: this set
keeps their names, severities, `for` durations and default thresholds, so that people who know them
recognise them, and puts the thresholds in prometheus/settings.yml. Left out (docs/runbooks/host.md says
why): NodeSystemdServiceFailed, NodeSystemdServiceCrashlooping and NodeBondingDegraded (Pulse has no
systemd or bonding collector), and NodeTextFileCollectorScrapeError, which the jobs set has as
TextfileScrapeError. The recording rules are node-mixin's, under its names, for the USE dashboards.
"""

from __future__ import annotations

from typing import Annotated

import pydantic

from exporter.bundle.rules import Alert, Group, Recording, Severity
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors

Percent = Annotated[float, pydantic.Field(ge=0, le=100)]
Ratio = Annotated[float, pydantic.Field(ge=0, le=1)]
Positive = Annotated[float, pydantic.Field(gt=0)]
Hours = Annotated[int, pydantic.Field(ge=1)]

# The recording rules' rate window: it is part of their names (…:rate5m), which dashboards query.
RATE_WINDOW = "5m"


class HostSettings(RuleSetSettings):
    """node-mixin's `_config`, under names that say what they are; the defaults are node-mixin's."""

    # Matchers (comma-separated, as inside {}) that pick what the alerts watch; "" watches everything.
    fs_selector: str = 'fstype!=""'  # node-mixin's fsSelector, e.g. 'fstype!~"tmpfs|squashfs"'
    fs_mountpoint_selector: str = 'mountpoint!=""'  # fsMountpointSelector, e.g. 'mountpoint!~"/snap/.*"'
    disk_device_selector: str = 'device!=""'  # diskDeviceSelector: disks and md arrays
    # NodeFilesystemSpaceFillingUp: space left under these percents and predicted to run out.
    fs_space_filling_up_warning_percent: Percent = 40
    fs_space_filling_up_critical_percent: Percent = 20
    fs_prediction_window: PromDuration = "6h"  # the history predict_linear() extrapolates
    fs_warning_horizon_hours: Hours = 24  # "runs out within": warning
    fs_critical_horizon_hours: Hours = 4  # and critical
    # NodeFilesystemAlmostOutOfSpace: space left under these percents.
    fs_space_available_warning_percent: Percent = 5
    fs_space_available_critical_percent: Percent = 3
    # NodeFilesystemFilesFillingUp / NodeFilesystemAlmostOutOfFiles: the same for inodes.
    fs_files_filling_up_warning_percent: Percent = 40
    fs_files_filling_up_critical_percent: Percent = 20
    fs_files_available_warning_percent: Percent = 5
    fs_files_available_critical_percent: Percent = 3
    network_error_ratio: Ratio = 0.01  # NodeNetwork{Receive,Transmit}Errs: errors per packet
    conntrack_used_ratio: Ratio = 0.75  # NodeHighNumberConntrackEntriesUsed
    clock_offset_seconds: Positive = 0.05  # NodeClockSkewDetected
    clock_max_error_seconds: Positive = 16  # NodeClockNotSynchronising: the kernel's maximum error
    file_descriptors_warning_percent: Percent = 70  # NodeFileDescriptorLimit
    file_descriptors_critical_percent: Percent = 90
    cpu_high_usage_percent: Percent = 90  # NodeCPUHighUsage
    system_saturation_load_per_core: Positive = 2  # NodeSystemSaturation: load1 per CPU
    memory_major_page_faults_per_second: Positive = 500  # NodeMemoryMajorPagesFaults
    memory_high_utilization_percent: Percent = 90  # NodeMemoryHighUtilization
    disk_io_saturation_queue: Positive = 10  # NodeDiskIOSaturation: average I/Os in flight (aqu-sz)
    process_group_down_for: PromDuration = "2m"  # ProcessGroupDown: a named group with no process this long


def number(value: float) -> str:
    """A threshold as PromQL and people write it: 40, not 40.0 (and every digit of 0.075 or 1234567)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def matchers(*parts: str) -> str:
    """Matchers joined for a selector's braces, leaving out empty ones (a selector set to "")."""
    return ",".join(part for part in parts if part)


def _alert(name: str, expr: str, severity: Severity, summary: str, description: str, *, for_: str = "0s") -> Alert:
    """Every host alert goes to the platform team under service `host`, linked to the system dashboard."""
    return Alert(
        name=name,
        expr=expr,
        for_=for_,
        severity=severity,
        team="platform",
        service="host",
        summary=summary,
        description=description,
        dashboard="system",
    )


def recording_rules(settings: HostSettings, selectors: Selectors) -> list[Recording]:
    pulse, disks, w = selectors.pulse, matchers(selectors.pulse, settings.disk_device_selector), RATE_WINDOW
    fs = matchers(pulse, settings.fs_selector, settings.fs_mountpoint_selector)

    def network(direction: str, what: str) -> Recording:
        return Recording(
            f"instance:node_network_{direction}_{what}_excluding_lo:rate{w}",
            f'sum without (device) (rate(node_network_{direction}_{what}_total{{{pulse},device!="lo"}}[{w}]))',
        )

    return [
        Recording(
            "instance:node_num_cpu:sum", f'count without (cpu, mode) (node_cpu_seconds_total{{{pulse},mode="idle"}})'
        ),
        # Busy CPU: all but idle, iowait and steal, averaged over the CPUs.
        Recording(
            f"instance:node_cpu_utilisation:rate{w}",
            "1 - avg without (cpu) (sum without (mode) ("
            f'rate(node_cpu_seconds_total{{{pulse},mode=~"idle|iowait|steal"}}[{w}])))',
        ),
        # CPU saturation: the run queue per CPU; over 1 means processes wait for a CPU.
        Recording("instance:node_load1_per_cpu:ratio", f"node_load1{{{pulse}}} / instance:node_num_cpu:sum{{{pulse}}}"),
        # Used memory; kernels before 3.14 have no MemAvailable, so estimate it as node-mixin does.
        Recording(
            "instance:node_memory_utilisation:ratio",
            f"1 - (\n  node_memory_MemAvailable_bytes{{{pulse}}}\n  or\n  (\n"
            f"    node_memory_Buffers_bytes{{{pulse}}} + node_memory_Cached_bytes{{{pulse}}}\n"
            f"    + node_memory_MemFree_bytes{{{pulse}}} + node_memory_Slab_bytes{{{pulse}}}\n  )\n)\n"
            f"/ node_memory_MemTotal_bytes{{{pulse}}}",
        ),
        Recording(f"instance:node_vmstat_pgmajfault:rate{w}", f"rate(node_vmstat_pgmajfault{{{pulse}}}[{w}])"),
        # Disk utilisation (busy fraction) and saturation (average I/Os in flight).
        Recording(
            f"instance_device:node_disk_io_time_seconds:rate{w}",
            f"rate(node_disk_io_time_seconds_total{{{disks}}}[{w}])",
        ),
        Recording(
            f"instance_device:node_disk_io_time_weighted_seconds:rate{w}",
            f"rate(node_disk_io_time_weighted_seconds_total{{{disks}}}[{w}])",
        ),
        network("receive", "bytes"),
        network("transmit", "bytes"),
        network("receive", "drop"),
        network("transmit", "drop"),
        # Seconds until a filesystem that is filling up is full, at its pace over the prediction window;
        # only filesystems that shrink have a series (a dashboard's "time to full" column).
        Recording(
            "instance_mountpoint:node_filesystem_seconds_until_full:deriv",
            f"node_filesystem_avail_bytes{{{fs}}}\n"
            f"/ -(deriv(node_filesystem_avail_bytes{{{fs}}}[{settings.fs_prediction_window}]) < 0)",
        ),
    ]


def filesystem_alerts(settings: HostSettings, selectors: Selectors) -> list[Alert]:
    fs = matchers(selectors.pulse, settings.fs_selector, settings.fs_mountpoint_selector)
    writable = f"node_filesystem_readonly{{{fs}}} == 0"  # a read-only filesystem cannot fill up
    where = "Filesystem {{ $labels.device }} mounted on {{ $labels.mountpoint }} at {{ $labels.instance }}"
    window = settings.fs_prediction_window
    alerts = []
    # (name part, free, total, what the summary calls it, filling-up and almost-out thresholds, almost-out's `for`)
    kinds = (
        (
            "Space",
            "node_filesystem_avail_bytes",
            "node_filesystem_size_bytes",
            "space",
            (settings.fs_space_filling_up_warning_percent, settings.fs_space_filling_up_critical_percent),
            (settings.fs_space_available_warning_percent, settings.fs_space_available_critical_percent),
            "30m",
        ),
        (
            "Files",
            "node_filesystem_files_free",
            "node_filesystem_files",
            "inodes",
            (settings.fs_files_filling_up_warning_percent, settings.fs_files_filling_up_critical_percent),
            (settings.fs_files_available_warning_percent, settings.fs_files_available_critical_percent),
            "1h",
        ),
    )
    for kind, free, total, what, filling_up, almost_out, almost_out_for in kinds:
        percent_free = f"{free}{{{fs}}} / {total}{{{fs}}} * 100"
        horizons = (settings.fs_warning_horizon_hours, settings.fs_critical_horizon_hours)
        severities: tuple[Severity, Severity] = ("warning", "critical")
        for severity, threshold, hours in zip(severities, filling_up, horizons, strict=True):
            alerts.append(
                _alert(
                    f"NodeFilesystem{kind}FillingUp",
                    f"(\n  {percent_free} < {number(threshold)}\nand\n"
                    f"  predict_linear({free}{{{fs}}}[{window}], {hours} * 3600) < 0\nand\n  {writable}\n)",
                    severity,
                    f"Filesystem is predicted to run out of {what} within the next {hours} hours.",
                    f'{where} has {{{{ printf "%.2f" $value }}}}% of its {what} left and, at its pace over '
                    f"the last {window}, runs out within {hours} hours.",
                    for_="1h",
                )
            )
        name = "NodeFilesystemAlmostOutOfSpace" if kind == "Space" else "NodeFilesystemAlmostOutOfFiles"
        for severity, threshold in zip(severities, almost_out, strict=True):
            alerts.append(
                _alert(
                    name,
                    f"(\n  {percent_free} < {number(threshold)}\nand\n  {writable}\n)",
                    severity,
                    f"Filesystem has less than {number(threshold)}% {what} left.",
                    f'{where} has only {{{{ printf "%.2f" $value }}}}% of its {what} left.',
                    for_=almost_out_for,
                )
            )
    return alerts


def machine_alerts(settings: HostSettings, selectors: Selectors) -> list[Alert]:
    pulse, disks = selectors.pulse, matchers(selectors.pulse, settings.disk_device_selector)
    offset = number(settings.clock_offset_seconds)
    fds = f"node_filefd_allocated{{{pulse}}} * 100 / node_filefd_maximum{{{pulse}}}"
    alerts = [
        _network_errors("Receive", "received", settings, pulse),
        _network_errors("Transmit", "sent", settings, pulse),
        _alert(
            "NodeHighNumberConntrackEntriesUsed",
            f"node_nf_conntrack_entries{{{pulse}}} / node_nf_conntrack_entries_limit{{{pulse}}} "
            f"> {number(settings.conntrack_used_ratio)}",
            "warning",
            "The connection tracking table is nearly full.",
            "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its conntrack entries; "
            "when the table is full, the kernel drops new connections.",
        ),
        _alert(
            "NodeClockSkewDetected",
            f"(\n  node_timex_offset_seconds{{{pulse}}} > {offset}\nand\n"
            f"  deriv(node_timex_offset_seconds{{{pulse}}}[5m]) >= 0\n)\nor\n"
            f"(\n  node_timex_offset_seconds{{{pulse}}} < -{offset}\nand\n"
            f"  deriv(node_timex_offset_seconds{{{pulse}}}[5m]) <= 0\n)",
            "warning",
            "Clock skew detected.",
            f'The clock at {{{{ $labels.instance }}}} is off by {{{{ printf "%.3f" $value }}}}s (more than '
            f"{offset}s) and not getting closer; check that NTP runs on this host.",
            for_="10m",
        ),
        _alert(
            "NodeClockNotSynchronising",
            f"min_over_time(node_timex_sync_status{{{pulse}}}[5m]) == 0\n"
            f"and\nnode_timex_maxerror_seconds{{{pulse}}} >= {number(settings.clock_max_error_seconds)}",
            "warning",
            "Clock not synchronising.",
            "The clock at {{ $labels.instance }} has not been synchronised for 10 minutes and the kernel "
            "no longer vouches for it; check that NTP runs on this host.",
            for_="10m",
        ),
        _alert(
            "NodeRAIDDegraded",
            f'node_md_disks_required{{{disks}}} - ignoring (state) node_md_disks{{{disks},state="active"}} > 0',
            "critical",
            "RAID array is degraded.",
            "RAID array {{ $labels.device }} at {{ $labels.instance }} has had {{ $value }} active disk(s) "
            "fewer than it needs for 15 minutes: it runs without redundancy, or is rebuilding onto a spare.",
            for_="15m",
        ),
        _alert(
            "NodeRAIDDiskFailure",
            f'node_md_disks{{{disks},state="failed"}} > 0',
            "warning",
            "Failed device in RAID array.",
            "RAID array {{ $labels.device }} at {{ $labels.instance }} has {{ $value }} failed disk(s); "
            "replace them before another one fails.",
        ),
    ]
    fd_thresholds: tuple[tuple[Severity, float], ...] = (
        ("warning", settings.file_descriptors_warning_percent),
        ("critical", settings.file_descriptors_critical_percent),
    )
    for severity, threshold in fd_thresholds:
        alerts.append(
            _alert(
                "NodeFileDescriptorLimit",
                f"{fds} > {number(threshold)}",
                severity,
                "Kernel is predicted to exhaust file descriptors limit soon.",
                '{{ $labels.instance }} has {{ printf "%.2f" $value }}% of the kernel\'s file descriptors '
                f"allocated (more than {number(threshold)}%).",
                for_="15m",
            )
        )
    cpu = number(settings.cpu_high_usage_percent)
    load = number(settings.system_saturation_load_per_core)
    faults = number(settings.memory_major_page_faults_per_second)
    memory = number(settings.memory_high_utilization_percent)
    queue = number(settings.disk_io_saturation_queue)
    alerts += [
        _alert(
            "NodeCPUHighUsage",
            "sum without (mode) (avg without (cpu) ("
            f'rate(node_cpu_seconds_total{{{pulse},mode!~"idle|iowait"}}[2m]))) * 100 > {cpu}',
            "info",
            "High CPU usage.",
            f"CPU usage at {{{{ $labels.instance }}}} has been above {cpu}% for 15 minutes and is "
            f'{{{{ printf "%.2f" $value }}}}%.',
            for_="15m",
        ),
        _alert(
            "NodeSystemSaturation",
            f"node_load1{{{pulse}}}\n"
            f'/ count without (cpu, mode) (node_cpu_seconds_total{{{pulse},mode="idle"}}) > {load}',
            "warning",
            "System saturated, load per core is very high.",
            f"The load per CPU at {{{{ $labels.instance }}}} has been above {load} for 15 minutes and is "
            '{{ printf "%.2f" $value }}: processes wait for CPU or I/O, and the host may stop responding.',
            for_="15m",
        ),
        _alert(
            "NodeMemoryMajorPagesFaults",
            f"rate(node_vmstat_pgmajfault{{{pulse}}}[5m]) > {faults}",
            "warning",
            "Memory major page faults are occurring at very high rate.",
            f"{{{{ $labels.instance }}}} has had more than {faults} major page faults a second for 15 "
            'minutes ({{ printf "%.0f" $value }}/s now): pages are read back from disk, memory is short.',
            for_="15m",
        ),
        _alert(
            "NodeMemoryHighUtilization",
            f"100 - (node_memory_MemAvailable_bytes{{{pulse}}} / node_memory_MemTotal_bytes{{{pulse}}} * 100) "
            f"> {memory}",
            "warning",
            "Host is running out of memory.",
            f"Memory use at {{{{ $labels.instance }}}} has been above {memory}% for 15 minutes and is "
            '{{ printf "%.2f" $value }}%.',
            for_="15m",
        ),
        _alert(
            "NodeDiskIOSaturation",
            f"rate(node_disk_io_time_weighted_seconds_total{{{disks}}}[5m]) > {queue}",
            "warning",
            "Disk IO queue is high.",
            f"Disk {{{{ $labels.device }}}} at {{{{ $labels.instance }}}} has had more than {queue} I/Os "
            'queued on average (aqu-sz) for 30 minutes ({{ printf "%.2f" $value }} now): it is saturated.',
            for_="30m",
        ),
    ]
    return alerts


def _network_errors(direction: str, done: str, settings: HostSettings, pulse: str) -> Alert:
    lower = direction.lower()
    return _alert(
        f"NodeNetwork{direction}Errs",
        f"rate(node_network_{lower}_errs_total{{{pulse}}}[2m])\n"
        f"/ rate(node_network_{lower}_packets_total{{{pulse}}}[2m]) > {number(settings.network_error_ratio)}",
        "warning",
        f"Network interface is reporting many {lower} errors.",
        f"Interface {{{{ $labels.device }}}} at {{{{ $labels.instance }}}} has had errors on "
        f"{{{{ $value | humanizePercentage }}}} of the packets {done} over the last 2 minutes, for an hour.",
        for_="1h",
    )


def process_alerts(settings: HostSettings, selectors: Selectors) -> list[Alert]:
    return [
        _alert(
            "ProcessGroupDown",
            f"pulse_process_count{{{selectors.pulse}}} == 0",
            "critical",
            "A named process group has no running process.",
            "No process of group {{ $labels.name }} (collectors.host.processes) has run at "
            f"{{{{ $labels.instance }}}} for {settings.process_group_down_for}.",
            for_=settings.process_group_down_for,
        )
    ]


def build(settings: HostSettings, selectors: Selectors) -> list[Group]:
    return [
        Group("host.rules", recording_rules(settings, selectors)),
        Group(
            "host",
            [
                *filesystem_alerts(settings, selectors),
                *machine_alerts(settings, selectors),
                *process_alerts(settings, selectors),
            ],
        ),
    ]


RULE_SET = RuleSet(
    name="host",
    title="The host: node-mixin's alerts and recording rules, and named process groups",
    settings=HostSettings,
    build=build,
)
