"""Host /metrics scrape cost: Pulse against Debian's node_exporter, side by side in one run.

Both exporters run as real processes on free 127.0.0.1 ports with their defaults (Pulse with its
embedded config, node_exporter with its default collectors). After a warm-up, one keep-alive client
scrapes them in turn, with the headers Prometheus sends, and this prints per exporter:

- scrape latency, median and p90 (client-side wall time until the last body byte, ms)
- CPU time per scrape of the exporter process (utime + stime from /proc/<pid>/stat, all threads)
- RSS after the run (VmRSS) and its peak over the process' life (VmHWM), MiB
- series exposed (non-comment lines of an uncompressed scrape) and the gzipped response size, then the
  series per subsystem (`node_<subsystem>_*`; the exporters' own metrics as "self"), side by side

with a pulse / node_exporter ratio column and the issue's targets, marked met or not met.
Figures include this machine's noise; compare runs on the same machine only. Pulse's RSS still
creeps up (a few hundred KiB) over its first ~2000 scrapes: use --scrapes 3000 for the steady figure.

Run it from the repository root (a few seconds to a minute, depending on the machine):

    .venv/bin/python benchmarks/host_scrape.py              # 300 measured scrapes of each
    .venv/bin/python benchmarks/host_scrape.py --scrapes 1000 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
HOST = "127.0.0.1"
# What Prometheus sends when scraping with the classic text format and a 10 s scrape timeout.
SCRAPE_HEADERS = {
    "Accept": "text/plain;version=0.0.4",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
STARTUP_TIMEOUT = 20.0  # seconds for an exporter to answer its first /metrics
REQUEST_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The targets for Pulse.
LATENCY_RATIO_TARGET = 0.5
RSS_TARGET_MIB = 40.0
# Collector success gauges: a failing collector makes a scrape look cheaper than it is.
COLLECTOR_FAILED = re.compile(
    r'^(?:pulse_exporter_collector_success|node_scrape_collector_success)\{collector="([^"]+)"\} 0(?:\.0)?$',
    re.MULTILINE,
)
LOG_PROBLEM = re.compile(r"level=(?:warn|warning|error|fatal)\b|\bTraceback\b", re.IGNORECASE)


@dataclass
class RunningExporter:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"


@dataclass
class Result:
    exporter: str
    scrapes: int
    latency_median_ms: float
    latency_p90_ms: float
    cpu_per_scrape_ms: float
    rss_mib: float
    rss_growth_mib: float
    rss_peak_mib: float
    series: int
    series_by_subsystem: dict[str, int]
    gzip_bytes: int
    failed_collectors: list[str]
    log_problems: list[str]


@dataclass
class Target:
    name: str
    met: bool | None  # None: cannot be judged in this run
    measured: str


class BenchmarkError(RuntimeError):
    """An exporter did not start or answered a scrape with an error."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scrapes", type=int, default=300, help="measured scrapes per exporter (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured scrapes per exporter first (default 20)")
    parser.add_argument(
        "--budget",
        type=float,
        default=45.0,
        help="stop measuring after this many seconds, even before --scrapes (default 45)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    if args.scrapes < 1 or args.warmup < 0 or args.budget <= 0:
        parser.error("--scrapes must be >= 1, --warmup >= 0 and --budget > 0")
    return args


def free_port() -> int:
    # The kernel picks an unused port; the short window before the exporter binds it is acceptable here.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pulse_command() -> list[str]:
    script = Path(sys.executable).parent / "pulse-exporter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]


def start_exporter(name: str, command: list[str], log_dir: Path) -> RunningExporter:
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, f"--web.listen-address={HOST}:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
            # Its own session: a Ctrl-C here reaches only this script, which then stops it in order.
            start_new_session=True,
        )
    return RunningExporter(name, process, port, log_path)


def stop_exporter(exporter: RunningExporter) -> None:
    if exporter.process.poll() is not None:
        return
    exporter.process.send_signal(signal.SIGTERM)
    try:
        exporter.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        exporter.process.kill()
        exporter.process.wait()


@contextlib.contextmanager
def running(name: str, command: list[str], log_dir: Path) -> Iterator[RunningExporter]:
    exporter = start_exporter(name, command, log_dir)
    try:
        yield exporter
    finally:
        stop_exporter(exporter)


def wait_until_answering(client: httpx.Client, exporter: RunningExporter) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if exporter.process.poll() is not None:
            raise BenchmarkError(
                f"{exporter.name} exited with {exporter.process.returncode}:\n{exporter.log_path.read_text()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if client.get(exporter.metrics_url, headers=SCRAPE_HEADERS).status_code == 200:
                return
        time.sleep(0.05)
    raise BenchmarkError(f"{exporter.name} did not answer /metrics within {STARTUP_TIMEOUT:.0f} s")


def timed_scrape(client: httpx.Client, exporter: RunningExporter) -> tuple[float, int]:
    """One scrape as Prometheus does it: (wall seconds until the last byte, compressed bytes received)."""
    start = time.perf_counter()
    # Raw bytes, not decoded: gunzipping here would charge the larger body's decompression to its exporter.
    with client.stream("GET", exporter.metrics_url, headers=SCRAPE_HEADERS) as response:
        size = sum(len(chunk) for chunk in response.iter_raw())
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise BenchmarkError(f"{exporter.name} answered /metrics with HTTP {response.status_code}")
    return elapsed, size


def plain_scrape(client: httpx.Client, exporter: RunningExporter) -> str:
    headers = {**SCRAPE_HEADERS, "Accept-Encoding": "identity"}
    response = client.get(exporter.metrics_url, headers=headers)
    if response.status_code != 200:
        raise BenchmarkError(f"{exporter.name} answered /metrics with HTTP {response.status_code}")
    return response.text


def count_series(exposition: str) -> int:
    return sum(1 for line in exposition.splitlines() if line.strip() and not line.startswith("#"))


# node_exporter's own metrics about itself and its scrape, counted as "self" like Pulse's.
SELF_PREFIXES = ("node_scrape_", "node_exporter_", "node_textfile_scrape_")
SUBSYSTEM = re.compile(r"^node_([a-z0-9]+)_")


def series_by_subsystem(exposition: str) -> dict[str, int]:
    """Series per `node_<subsystem>_` prefix (node_load1 and the like under their own name); "self" for
    the exporter's own metrics (pulse_*, process_*, go_*, python_*, node_scrape_*, ...)."""
    counts: dict[str, int] = {}
    for line in exposition.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        match = SUBSYSTEM.match(name)
        if not name.startswith("node_") or name.startswith(SELF_PREFIXES):
            group = "self"
        elif match:
            group = match.group(1)
        else:
            group = name.removeprefix("node_")
        counts[group] = counts.get(group, 0) + 1
    return counts


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses; fields after its last ')' are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise BenchmarkError(f"/proc/{pid}/status has no {field}")


def log_problems(exporter: RunningExporter, limit: int = 3) -> list[str]:
    """Distinct warning/error log lines (timestamps stripped), the first `limit` of them."""
    seen: dict[str, None] = {}
    for line in exporter.log_path.read_text(errors="replace").splitlines():
        if LOG_PROBLEM.search(line):
            # Without timestamp and duration, one failure repeated on every scrape is listed once.
            seen.setdefault(re.sub(r"^ts=\S+ | duration_seconds=\S+", "", line).strip(), None)
    return list(seen)[:limit]


def interleaved_latencies(
    client: httpx.Client, exporters: Sequence[RunningExporter], scrapes: int, budget: float
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Scrape each exporter in turn, alternating who goes first, so machine noise hits all of them alike."""
    latencies: dict[str, list[float]] = {e.name: [] for e in exporters}
    sizes: dict[str, int] = {}
    deadline = time.monotonic() + budget
    for round_number in range(scrapes):
        if time.monotonic() > deadline:
            print(f"warning: --budget of {budget:.0f} s reached after {round_number} scrapes each", file=sys.stderr)
            break
        order = exporters if round_number % 2 == 0 else list(reversed(exporters))
        for exporter in order:
            elapsed, sizes[exporter.name] = timed_scrape(client, exporter)
            latencies[exporter.name].append(elapsed)
    return latencies, sizes


def benchmark(exporters: Sequence[RunningExporter], scrapes: int, warmup: int, budget: float) -> list[Result]:
    # One connection per exporter, kept alive, as Prometheus keeps one per target.
    with httpx.Client(timeout=REQUEST_TIMEOUT, limits=httpx.Limits(max_keepalive_connections=len(exporters))) as client:
        for exporter in exporters:
            wait_until_answering(client, exporter)
        for _ in range(warmup):
            for exporter in exporters:
                timed_scrape(client, exporter)
        # Outside the CPU window: only the measured, gzipped scrapes are charged.
        expositions = {e.name: plain_scrape(client, e) for e in exporters}
        rss_before = {e.name: memory_mib(e.process.pid, "VmRSS") for e in exporters}
        cpu_before = {e.name: cpu_seconds(e.process.pid) for e in exporters}
        latencies, sizes = interleaved_latencies(client, exporters, scrapes, budget)
        cpu_after = {e.name: cpu_seconds(e.process.pid) for e in exporters}
    results = []
    for exporter in exporters:
        samples = latencies[exporter.name]
        rss = memory_mib(exporter.process.pid, "VmRSS")
        done = len(samples)
        results.append(
            Result(
                exporter=exporter.name,
                scrapes=done,
                latency_median_ms=statistics.median(samples) * 1000,
                latency_p90_ms=statistics.quantiles(samples, n=10, method="inclusive")[8] * 1000
                if done > 1
                else samples[0] * 1000,
                cpu_per_scrape_ms=(cpu_after[exporter.name] - cpu_before[exporter.name]) / done * 1000,
                rss_mib=rss,
                # Growth over the measured scrapes: a leak shows here long before it reaches the target.
                rss_growth_mib=rss - rss_before[exporter.name],
                rss_peak_mib=memory_mib(exporter.process.pid, "VmHWM"),
                series=count_series(expositions[exporter.name]),
                series_by_subsystem=series_by_subsystem(expositions[exporter.name]),
                gzip_bytes=sizes[exporter.name],
                failed_collectors=COLLECTOR_FAILED.findall(expositions[exporter.name]),
                log_problems=log_problems(exporter),
            )
        )
    return results


def targets(pulse: Result, node: Result | None) -> list[Target]:
    """The issue's targets, judged on the median latency and the RSS after the run."""
    if node is None:
        latency = Target(f"host /metrics latency <= {LATENCY_RATIO_TARGET}x node_exporter's", None, "no node_exporter")
    else:
        latency_ratio = pulse.latency_median_ms / node.latency_median_ms
        latency = Target(
            f"host /metrics latency <= {LATENCY_RATIO_TARGET}x node_exporter's",
            latency_ratio <= LATENCY_RATIO_TARGET,
            f"median {latency_ratio:.3f}x",
        )
    rss = Target(f"steady RSS <= {RSS_TARGET_MIB:.0f} MiB", pulse.rss_mib <= RSS_TARGET_MIB, f"{pulse.rss_mib:.2f} MiB")
    return [latency, rss]


def ratio(pulse: float, node: float | None) -> str:
    if node is None:
        return "n/a"
    return f"{pulse / node:.2f}x" if node else "n/a"


# Table rows: label, number format, and the figure taken from a Result.
TABLE_ROWS: tuple[tuple[str, str, Callable[[Result], float]], ...] = (
    ("latency median (ms)", ".2f", lambda r: r.latency_median_ms),
    ("latency p90 (ms)", ".2f", lambda r: r.latency_p90_ms),
    ("CPU per scrape (ms)", ".2f", lambda r: r.cpu_per_scrape_ms),
    ("RSS after run (MiB)", ".1f", lambda r: r.rss_mib),
    ("RSS growth in run (MiB)", ".1f", lambda r: r.rss_growth_mib),
    ("RSS peak (MiB)", ".1f", lambda r: r.rss_peak_mib),
    ("series exposed", ".0f", lambda r: r.series),
    ("response gzipped (bytes)", ".0f", lambda r: r.gzip_bytes),
)


def render_table(pulse: Result, node: Result | None) -> str:
    lines = [f"{'':<26}{'pulse':>12}{'node_exporter':>15}{'ratio':>9}"]
    for label, spec, figure in TABLE_ROWS:
        mine, theirs = figure(pulse), None if node is None else figure(node)
        other = "-" if theirs is None else format(theirs, spec)
        lines.append(f"{label:<26}{format(mine, spec):>12}{other:>15}{ratio(mine, theirs):>9}")
    return "\n".join(lines)


def render_series(pulse: Result, node: Result | None) -> str:
    """Series per subsystem, both exporters side by side: what each one's figures above are made of."""
    theirs = node.series_by_subsystem if node else {}
    lines = [f"{'series by subsystem':<26}{'pulse':>12}{'node_exporter':>15}"]
    for group in sorted(pulse.series_by_subsystem.keys() | theirs.keys()):
        mine, other = pulse.series_by_subsystem.get(group, 0), theirs.get(group, 0) if node else None
        lines.append(f"  {group:<24}{mine:>12}{'-' if other is None else other:>15}")
    return "\n".join(lines)


def render_report(pulse: Result, node: Result | None) -> str:
    scrapes = f"{pulse.scrapes} measured scrapes each" if node else f"{pulse.scrapes} measured scrapes"
    lines = [f"Host /metrics scrape benchmark: {scrapes}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"]
    lines += ["", render_table(pulse, node), "", render_series(pulse, node), "", "Targets (pulse):"]
    for target in targets(pulse, node):
        verdict = "not evaluated" if target.met is None else ("met" if target.met else "NOT MET")
        lines.append(f"  {target.name:<45} {verdict:<14} ({target.measured})")
    for result in (pulse, node):
        if result is None:
            continue
        if result.failed_collectors:
            lines.append(f"note: {result.exporter} collectors failing: {', '.join(result.failed_collectors)}")
        for problem in result.log_problems:
            lines.append(f"note: {result.exporter} logged: {problem}")
    return "\n".join(lines)


def render_json(pulse: Result, node: Result | None) -> str:
    return json.dumps(
        {
            "pulse": asdict(pulse),
            "node_exporter": asdict(node) if node else None,
            "targets": [asdict(target) for target in targets(pulse, node)],
        },
        indent=2,
    )


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM to this script takes the same way out as Ctrl-C, so the exporters are still stopped.
    raise KeyboardInterrupt


def run(args: argparse.Namespace, log_dir: Path, out: IO[str]) -> None:
    have_node = NODE_EXPORTER.is_file() and os.access(NODE_EXPORTER, os.X_OK)
    if not have_node:
        # On stderr, so that --json output stays parseable.
        print(f"{NODE_EXPORTER} is not installed: comparison skipped, benchmarking Pulse alone", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        exporters = [stack.enter_context(running("pulse", pulse_command(), log_dir))]
        if have_node:
            exporters.append(stack.enter_context(running("node_exporter", [str(NODE_EXPORTER)], log_dir)))
        results = {r.exporter: r for r in benchmark(exporters, args.scrapes, args.warmup, args.budget)}
    pulse, node = results["pulse"], results.get("node_exporter")
    print(render_json(pulse, node) if args.json else render_report(pulse, node), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as log_dir:
        try:
            run(args, Path(log_dir), sys.stdout)
        except KeyboardInterrupt:
            print("interrupted; exporters stopped", file=sys.stderr)
            return 130
        except (BenchmarkError, httpx.HTTPError, OSError) as err:
            print(f"benchmark failed: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
