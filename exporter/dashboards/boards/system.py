"""System health: the host by the USE method (utilisation, saturation, errors of CPU, memory, disks,
filesystems and network), in the spirit of node-mixin's dashboards and "Node Exporter Full": a quick row
of stats, then a row per resource, then the named process groups, the backups and batch jobs, and Pulse's
own health. Host series come from node-mixin's recording rules in prometheus/rules/host.yml where one
exists (they keep `job` and `instance`), raw metrics otherwise; rarely opened rows start collapsed."""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold, Variable

HOST = 'job=~"$job", instance=~"$instance"'
FILESYSTEMS = f'{HOST}, fstype!="", mountpoint!=""'  # as the host rules select them: no pseudo filesystems
NOT_LO = 'device!="lo"'  # loopback traffic never leaves the host
YEAR = 365 * 24 * 3600

BUSY = (Threshold(0.8, "yellow"), Threshold(0.9, "red"))


def _rate(metric: str, also: str = "") -> str:
    """A per-second rate on the chosen hosts, with more label matchers if `also` has them."""
    selector = f"{HOST}, {also}" if also else HOST
    return f"rate({metric}{{{selector}}}[$__rate_interval])"


CPU_NOT_IDLE = _rate("node_cpu_seconds_total", 'mode!="idle"')

QUICK = Row(
    "Quick view",
    (
        Panel(
            "CPU busy",
            "The share of CPU time spent on anything but idle, I/O wait and steal, averaged over all cores "
            "and the last 5 minutes (node-mixin's instance:node_cpu_utilisation:rate5m).",
            "percentunit",
            (Query(f"instance:node_cpu_utilisation:rate5m{{{HOST}}}", "{{instance}}", instant=True),),
            kind="stat",
            width=4,
            height=4,
            thresholds=BUSY,
            minimum=0,
            maximum=1,
        ),
        Panel(
            "Load per core",
            "The 1-minute load average divided by the number of cores: above 1 processes queue for CPU; "
            "the NodeSystemSaturation alert fires above 2.",
            "short",
            (Query(f"instance:node_load1_per_cpu:ratio{{{HOST}}}", "{{instance}}", instant=True),),
            kind="stat",
            width=4,
            height=4,
            thresholds=(Threshold(1, "yellow"), Threshold(2, "red")),
        ),
        Panel(
            "Memory used",
            "The share of memory not available to new work (1 - MemAvailable / MemTotal): page cache the "
            "kernel can drop counts as available. NodeMemoryHighUtilization fires above 90 %.",
            "percentunit",
            (Query(f"instance:node_memory_utilisation:ratio{{{HOST}}}", "{{instance}}", instant=True),),
            kind="stat",
            width=4,
            height=4,
            thresholds=BUSY,
            minimum=0,
            maximum=1,
        ),
        Panel(
            "Root filesystem used",
            "The share of the root filesystem's space not available to unprivileged users (the blocks "
            "reserved for root count as used).",
            "percentunit",
            (
                Query(
                    f'1 - node_filesystem_avail_bytes{{{HOST}, mountpoint="/", fstype!=""}} '
                    f'/ node_filesystem_size_bytes{{{HOST}, mountpoint="/", fstype!=""}}',
                    "{{instance}}",
                    instant=True,
                ),
            ),
            kind="stat",
            width=4,
            height=4,
            thresholds=(Threshold(0.8, "yellow"), Threshold(0.95, "red")),
            minimum=0,
            maximum=1,
        ),
        Panel(
            "Uptime",
            "How long the host has run since its last boot; a short uptime you did not plan is a reboot or "
            "a crash to look into.",
            "s",
            (Query(f"node_time_seconds{{{HOST}}} - node_boot_time_seconds{{{HOST}}}", "{{instance}}", instant=True),),
            kind="stat",
            width=4,
            height=4,
        ),
        Panel(
            "Pressure (some)",
            "Pressure stall information: the share of time at least one task waited for CPU, memory or I/O "
            "over the last minute. Above 10 % work is being held up; the Pressure row has the detail.",
            "percentunit",
            (
                Query(_rate("node_pressure_cpu_waiting_seconds_total"), "{{instance}} CPU", instant=True),
                Query(_rate("node_pressure_memory_waiting_seconds_total"), "{{instance}} Memory", instant=True),
                Query(_rate("node_pressure_io_waiting_seconds_total"), "{{instance}} I/O", instant=True),
            ),
            kind="stat",
            width=4,
            height=4,
            thresholds=(Threshold(0.1, "yellow"), Threshold(0.25, "red")),
        ),
    ),
)

CPU = Row(
    "CPU and load",
    (
        Panel(
            "CPU utilisation by mode",
            "The share of all cores' time in each mode except idle, stacked: the top of the stack is how "
            "busy the CPU is. A tall iowait band means tasks wait for disks, steal means the hypervisor "
            "gives the time to other guests.",
            "percentunit",
            (
                Query(
                    f"avg without (cpu) ({CPU_NOT_IDLE})",
                    "{{instance}} {{mode}}",
                ),
            ),
            width=12,
            stacked=True,
            minimum=0,
        ),
        Panel(
            "Load average per core",
            "The 1, 5 and 15 minute load averages divided by the number of cores: runnable and "
            "uninterruptible tasks per core. Above 1 tasks queue; above 2 for long, the host is saturated.",
            "short",
            (
                Query(f"instance:node_load1_per_cpu:ratio{{{HOST}}}", "{{instance}} 1m"),
                Query(f"node_load5{{{HOST}}} / instance:node_num_cpu:sum{{{HOST}}}", "{{instance}} 5m"),
                Query(f"node_load15{{{HOST}}} / instance:node_num_cpu:sum{{{HOST}}}", "{{instance}} 15m"),
            ),
            width=12,
            thresholds=(Threshold(1, "yellow"), Threshold(2, "red")),
            minimum=0,
        ),
    ),
)

MEMORY = Row(
    "Memory",
    (
        Panel(
            "Memory",
            "Used is what is not available to new work (total - MemAvailable); cached and buffers are file "
            "pages the kernel can give back, so they are also in available. Swap used grows when memory "
            "runs short.",
            "bytes",
            (
                Query(
                    f"node_memory_MemTotal_bytes{{{HOST}}} - node_memory_MemAvailable_bytes{{{HOST}}}",
                    "{{instance}} used",
                ),
                Query(f"node_memory_Cached_bytes{{{HOST}}}", "{{instance}} cached"),
                Query(f"node_memory_Buffers_bytes{{{HOST}}}", "{{instance}} buffers"),
                Query(f"node_memory_MemAvailable_bytes{{{HOST}}}", "{{instance}} available"),
                Query(f"node_memory_MemTotal_bytes{{{HOST}}}", "{{instance}} total"),
                Query(
                    f"node_memory_SwapTotal_bytes{{{HOST}}} - node_memory_SwapFree_bytes{{{HOST}}}",
                    "{{instance}} swap used",
                ),
            ),
            width=16,
            minimum=0,
        ),
        Panel(
            "Major page faults",
            "Page faults per second that had to read from disk (5-minute rate): memory saturation. A "
            "lasting rise means the working set no longer fits; NodeMemoryMajorPagesFaults fires above 500/s.",
            "short",
            (Query(f"instance:node_vmstat_pgmajfault:rate5m{{{HOST}}}", "{{instance}}"),),
            width=8,
            thresholds=(Threshold(500, "red"),),
            minimum=0,
        ),
    ),
)

DISKS = Row(
    "Disk I/O",
    (
        Panel(
            "Disk utilisation",
            "The share of time each disk was busy with at least one request (5-minute rate of io_time). "
            "Near 100 % a disk that serves one request at a time is saturated; SSDs and arrays may do more.",
            "percentunit",
            (Query(f"instance_device:node_disk_io_time_seconds:rate5m{{{HOST}}}", "{{instance}} {{device}}"),),
            minimum=0,
            thresholds=BUSY,
        ),
        Panel(
            "Disk saturation",
            "The average number of requests in flight or queued per disk (5-minute rate of the weighted I/O "
            "time): requests waiting their turn. NodeDiskIOSaturation fires above 10 for 30 minutes.",
            "short",
            (
                Query(
                    f"instance_device:node_disk_io_time_weighted_seconds:rate5m{{{HOST}}}",
                    "{{instance}} {{device}}",
                ),
            ),
            minimum=0,
            thresholds=(Threshold(10, "red"),),
        ),
        Panel(
            "Disk throughput",
            "Bytes read from and written to each disk per second.",
            "Bps",
            (
                Query(_rate("node_disk_read_bytes_total", 'device!=""'), "{{instance}} {{device}} read"),
                Query(_rate("node_disk_written_bytes_total", 'device!=""'), "{{instance}} {{device}} written"),
            ),
            minimum=0,
        ),
        Panel(
            "Disk IOPS",
            "Reads and writes completed per second on each disk: with the throughput, the average request size.",
            "iops",
            (
                Query(_rate("node_disk_reads_completed_total", 'device!=""'), "{{instance}} {{device}} reads"),
                Query(_rate("node_disk_writes_completed_total", 'device!=""'), "{{instance}} {{device}} writes"),
            ),
            minimum=0,
        ),
    ),
    collapsed=True,
)

FILESYSTEM_ROW = Row(
    "Filesystems",
    (
        Panel(
            "Space used per mountpoint",
            "The share of each filesystem's space not available to unprivileged users. "
            "NodeFilesystemAlmostOutOfSpace fires at 95 % used (critical at 97 %).",
            "percentunit",
            (
                Query(
                    f"1 - node_filesystem_avail_bytes{{{FILESYSTEMS}}} / node_filesystem_size_bytes{{{FILESYSTEMS}}}",
                    "{{instance}} {{mountpoint}}",
                ),
            ),
            width=14,
            thresholds=(Threshold(0.8, "yellow"), Threshold(0.95, "red")),
            minimum=0,
            maximum=1,
        ),
        Panel(
            "Time until full",
            "When each filesystem runs out of space at the pace of the last 6 hours (the host rules' "
            "instance_mountpoint:node_filesystem_seconds_until_full:deriv). A filesystem that is not filling "
            "up, or would take longer than a year, shows 1 year.",
            "s",
            (
                Query(
                    f"clamp_max(instance_mountpoint:node_filesystem_seconds_until_full:deriv{{{HOST}}}, {YEAR}) "
                    f"or 0 * node_filesystem_avail_bytes{{{FILESYSTEMS}}} + {YEAR}",
                    "{{instance}} {{mountpoint}}",
                    instant=True,
                ),
            ),
            kind="stat",
            width=10,
        ),
    ),
)

NETWORK = Row(
    "Network",
    (
        Panel(
            "Network throughput",
            "Bytes received and sent per second over all interfaces but loopback (5-minute rate, the host "
            "rules' instance:node_network_*_bytes_excluding_lo:rate5m).",
            "Bps",
            (
                Query(f"instance:node_network_receive_bytes_excluding_lo:rate5m{{{HOST}}}", "{{instance}} received"),
                Query(f"instance:node_network_transmit_bytes_excluding_lo:rate5m{{{HOST}}}", "{{instance}} sent"),
            ),
            minimum=0,
        ),
        Panel(
            "Network errors and drops",
            "Packets per second that interfaces (loopback aside) failed to receive or send (errors: bad "
            "frames, carrier problems) or dropped (full queues): anything above 0 for long is worth a look; "
            "NodeNetworkReceiveErrs fires when more than 1 % of packets fail.",
            "pps",
            (
                Query(_rate("node_network_receive_errs_total", NOT_LO), "{{instance}} {{device}} receive errors"),
                Query(_rate("node_network_transmit_errs_total", NOT_LO), "{{instance}} {{device}} send errors"),
                Query(f"instance:node_network_receive_drop_excluding_lo:rate5m{{{HOST}}}", "{{instance}} dropped in"),
                Query(f"instance:node_network_transmit_drop_excluding_lo:rate5m{{{HOST}}}", "{{instance}} dropped out"),
            ),
            minimum=0,
        ),
    ),
    collapsed=True,
)

SOCKETS = Row(
    "TCP and sockets",
    (
        Panel(
            "TCP connections and sockets",
            "Established TCP connections, TCP sockets in use, waiting out TIME_WAIT and orphaned (closed by "
            "their process, not yet by the peer), and all sockets in use. A climbing orphan or TIME_WAIT "
            "count points at connections not being reused.",
            "short",
            (
                Query(f"node_netstat_Tcp_CurrEstab{{{HOST}}}", "{{instance}} established"),
                Query(f"node_sockstat_TCP_inuse{{{HOST}}}", "{{instance}} TCP in use"),
                Query(f"node_sockstat_TCP_tw{{{HOST}}}", "{{instance}} TIME_WAIT"),
                Query(f"node_sockstat_TCP_orphan{{{HOST}}}", "{{instance}} orphaned"),
                Query(f"node_sockstat_sockets_used{{{HOST}}}", "{{instance}} all sockets"),
            ),
            minimum=0,
        ),
        Panel(
            "TCP retransmissions",
            "The share of TCP segments sent that were retransmissions: above a percent or two the network "
            "loses packets or a peer is overloaded.",
            "percentunit",
            (
                Query(
                    f"{_rate('node_netstat_Tcp_RetransSegs')} / {_rate('node_netstat_Tcp_OutSegs')}",
                    "{{instance}}",
                ),
            ),
            minimum=0,
            thresholds=(Threshold(0.01, "yellow"), Threshold(0.05, "red")),
        ),
    ),
    collapsed=True,
)

PRESSURE = Row(
    "Pressure stall",
    (
        Panel(
            "Pressure stall information",
            "The share of time some task waited for CPU, memory or I/O (some), and for memory and I/O the "
            "share of time every non-idle task was stalled at once (full: the host did no useful work). "
            "Kernel 4.20 and later; the first sign of saturation, before utilisation reaches 100 %.",
            "percentunit",
            (
                Query(_rate("node_pressure_cpu_waiting_seconds_total"), "{{instance}} CPU some"),
                Query(_rate("node_pressure_memory_waiting_seconds_total"), "{{instance}} memory some"),
                Query(_rate("node_pressure_memory_stalled_seconds_total"), "{{instance}} memory full"),
                Query(_rate("node_pressure_io_waiting_seconds_total"), "{{instance}} I/O some"),
                Query(_rate("node_pressure_io_stalled_seconds_total"), "{{instance}} I/O full"),
            ),
            width=24,
            minimum=0,
        ),
    ),
    collapsed=True,
)

PROCESSES = Row(
    "Process groups",
    (
        Panel(
            "Processes per group",
            "How many processes each named group (collectors.host.processes in pulse.yml) has running. "
            "0 fires ProcessGroupDown: the service is not running.",
            "short",
            (Query(f"pulse_process_count{{{HOST}}}", "{{instance}} {{name}}"),),
            width=8,
            minimum=0,
        ),
        Panel(
            "CPU per group",
            "CPU time each group's processes use per second, user and system together: 100 % is one core "
            "busy all the time.",
            "percentunit",
            (Query(f"sum without (mode) ({_rate('pulse_process_cpu_seconds_total')})", "{{instance}} {{name}}"),),
            width=8,
            minimum=0,
        ),
        Panel(
            "Memory per group",
            "Resident memory of each group's processes together (shared pages count once per process, so "
            "this is an upper bound).",
            "bytes",
            (Query(f"pulse_process_resident_memory_bytes{{{HOST}}}", "{{instance}} {{name}}"),),
            width=8,
            minimum=0,
        ),
    ),
)

JOBS = Row(
    "Backups and batch jobs",
    (
        Panel(
            "Since last success",
            "How long ago each job (run through `pulse-exporter job run`, docs/jobs.md) last succeeded. "
            "JobNotRunRecently fires after 26 hours (critical for backups).",
            "s",
            (Query(f"job_name:pulse_job_last_success:age_seconds{{{HOST}}}", "{{job_name}}", instant=True),),
            kind="bargauge",
            width=7,
            thresholds=(Threshold(86400, "yellow"), Threshold(93600, "red")),
            minimum=0,
        ),
        Panel(
            "Last run's duration",
            "How long each job's last run took, successful or not: a backup that keeps growing will one "
            "day overrun its window.",
            "s",
            (Query(f"pulse_job_last_duration_seconds{{{HOST}}}", "{{job_name}}", instant=True),),
            kind="bargauge",
            width=5,
            minimum=0,
        ),
        Panel(
            "Last run's exit code",
            "The exit code of each job's last run: 0 succeeded; 124 timed out, 128+N was killed by signal N. "
            "Non-zero fires JobFailed (critical for backups).",
            "none",
            (Query(f"pulse_job_last_exit_code{{{HOST}}}", "{{job_name}}", instant=True),),
            kind="stat",
            width=3,
            thresholds=(Threshold(1, "red"),),
        ),
        Panel(
            "Failed runs, last 24 hours",
            "How many runs of each job failed in the last 24 hours, retried ones included.",
            "short",
            (Query(f"increase(pulse_job_failures_total{{{HOST}}}[24h])", "{{job_name}}", instant=True),),
            kind="stat",
            width=3,
            thresholds=(Threshold(1, "red"),),
        ),
        Panel(
            "Running now",
            "1 while a job runs. A job that stays at 1 far longer than its usual duration is stuck "
            "(JobStuck fires after 6 hours).",
            "short",
            (Query(f"pulse_job_running{{{HOST}}}", "{{job_name}}", instant=True),),
            kind="stat",
            width=3,
        ),
        Panel(
            "Textfile read errors",
            "1 when Pulse could not read a file of the textfile directory the jobs write their metrics to: "
            "their metrics are then stale or missing (NodeTextFileCollectorScrapeError).",
            "none",
            (Query(f"node_textfile_scrape_error{{{HOST}}}", "{{instance}}", instant=True),),
            kind="stat",
            width=3,
            thresholds=(Threshold(1, "red"),),
        ),
    ),
)

PULSE = Row(
    "Pulse's own health",
    (
        Panel(
            "Problems now",
            "Collectors whose last scrape failed (PulseCollectorFailing names which), KPI queries whose "
            "last run failed, access logs whose paths match no file Pulse can follow (their traffic metrics "
            "stop), and 1 if the last configuration reload failed (Pulse keeps the previous one). All 0 is "
            "healthy.",
            "short",
            (
                Query(
                    f"sum without (collector) (1 - pulse_exporter_collector_success{{{HOST}}})",
                    "{{instance}} failing collectors",
                    instant=True,
                ),
                Query(
                    f"sum without (query) (1 - pulse_kpi_query_success{{{HOST}}})",
                    "{{instance}} failing KPI queries",
                    instant=True,
                ),
                Query(
                    f"sum without (log) (pulse_access_log_files_followed{{{HOST}}} == bool 0)",
                    "{{instance}} access logs not followed",
                    instant=True,
                ),
                Query(
                    f"1 - pulse_exporter_config_last_reload_successful{{{HOST}}}",
                    "{{instance}} config reload failed",
                    instant=True,
                ),
            ),
            kind="stat",
            width=8,
            thresholds=(Threshold(1, "red"),),
        ),
        Panel(
            "Collector duration",
            "How long each collector took on the last scrape: a slow one delays the whole scrape, and past "
            "Prometheus' scrape timeout every metric of the scrape is lost.",
            "s",
            (Query(f"pulse_exporter_collector_duration_seconds{{{HOST}}}", "{{instance}} {{collector}}"),),
            width=16,
            minimum=0,
        ),
        Panel(
            "KPI query age",
            "Seconds since each KPI query last succeeded: it should stay below the query's interval. A "
            "growing line is a query failing or stuck; its KPIs on the business boards are stale.",
            "s",
            (
                Query(
                    f"time() - pulse_kpi_query_last_success_timestamp_seconds{{{HOST}}}",
                    "{{instance}} {{query}}",
                ),
            ),
            width=12,
            minimum=0,
        ),
        Panel(
            "Access-log lines read",
            "Lines per second Pulse reads from each access log it follows, and of those the lines it "
            "could not parse (a format that does not match the log's).",
            "cps",
            (
                Query(_rate("pulse_access_log_lines_read_total"), "{{instance}} {{log}} read"),
                Query(_rate("pulse_access_log_lines_unparsed_total"), "{{instance}} {{log}} unparsed"),
            ),
            width=12,
            minimum=0,
        ),
        Panel(
            "HTTP connections",
            "Connections open to Pulse's web server (scrapes, probes, the landing page) against its limit: "
            "at the limit new connections are refused and scrapes fail.",
            "short",
            (
                Query(f"pulse_exporter_http_connections{{{HOST}}}", "{{instance}} open"),
                Query(f"pulse_exporter_http_connections_limit{{{HOST}}}", "{{instance}} limit"),
            ),
            width=24,
            minimum=0,
        ),
    ),
    collapsed=True,
)

BOARD = Board(
    key="system",
    title="Pulse / System health",
    description="The host by the USE method (utilisation, saturation, errors), its named process groups, "
    "backups and batch jobs, and Pulse's own health.",
    tags=("system", "host"),
    variables=(
        Variable("job", "Job", "node_uname_info", "job"),
        Variable("instance", "Instance", 'node_uname_info{job=~"$job"}', "instance"),
    ),
    rows=(QUICK, CPU, MEMORY, DISKS, FILESYSTEM_ROW, NETWORK, SOCKETS, PRESSURE, PROCESSES, JOBS, PULSE),
)
