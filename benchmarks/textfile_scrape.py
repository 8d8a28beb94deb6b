"""Textfile collector scrape cost, Pulse against Debian's node_exporter, and the job wrapper's overhead.

Both exporters run as real processes on free 127.0.0.1 ports, reading the same directory of `.prom`
files (FILES files of SERIES series each, plus job files written by `pulse-exporter job run`);
node_exporter with only its textfile collector, Pulse with `collect[]=host.textfile`. One keep-alive
client scrapes them in turn, with Prometheus' headers, and this prints for each:

- scrape latency, median and p90 (client wall time until the last byte, ms)
- CPU time per scrape of the exporter process (utime + stime from /proc/<pid>/stat)

in two cases: files unchanged between scrapes (the usual: cron rewrites a file every few minutes), and
one file rewritten (atomically, as a script does) before every scrape. Then the job wrapper: wall time
of `pulse-exporter job run -- true` against `true` alone (median of RUNS).

Figures include this machine's noise; compare runs on the same machine only. From the repository root:

    .venv/bin/python benchmarks/textfile_scrape.py
    .venv/bin/python benchmarks/textfile_scrape.py --files 50 --series 1000 --scrapes 100
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PULSE = str(Path(sys.executable).parent / "pulse-exporter")
HEADERS = {"Accept": "text/plain;version=0.0.4", "X-Prometheus-Scrape-Timeout-Seconds": "10"}
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def write_file(path: Path, index: int, series: int, value: int) -> None:
    lines = [f"# HELP bench_metric_{index} Series of file {index}.\n", f"# TYPE bench_metric_{index} gauge\n"]
    lines += [f'bench_metric_{index}{{instance_id="{n}",shard="s{n % 7}"}} {value + n}\n' for n in range(series)]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("".join(lines))
    temporary.rename(path)


def start(command: list[str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{command[0]} did not answer on {url}")


def measure(
    client: httpx.Client, url: str, pid: int, scrapes: int, before: Callable[[int], None]
) -> tuple[float, float, float, int]:
    latencies = []
    for warmup in range(5):
        before(-1 - warmup)
        client.get(url)
    cpu = 0.0
    series = 0
    for n in range(scrapes):
        before(n)
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        response = client.get(url)
        latencies.append(time.perf_counter() - started)
        cpu += cpu_seconds(pid) - cpu_before
        series = sum(1 for line in response.text.splitlines() if line and not line.startswith("#"))
    latencies.sort()
    return statistics.median(latencies) * 1e3, latencies[int(len(latencies) * 0.9)] * 1e3, cpu / scrapes * 1e3, series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--series", type=int, default=250, help="series per file")
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20, help="job wrapper runs")
    args = parser.parse_args()
    if not Path(NODE_EXPORTER).exists():
        raise SystemExit(f"{NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter")

    with tempfile.TemporaryDirectory() as work:
        directory = Path(work) / "textfile"
        directory.mkdir()
        for index in range(args.files):
            write_file(directory / f"file{index}.prom", index, args.series, 0)
        for name in ("nightly_backup", "hourly_export", "invoice_sync"):
            subprocess.run(
                [PULSE, "job", "run", "--name", name, f"--textfile-directory={directory}", "--", "true"], check=True
            )
        config = Path(work) / "pulse.yml"
        config.write_text(f"collectors:\n  host:\n    textfile: {{directory: '{directory}'}}\n")

        node_port, pulse_port = free_port(), free_port()
        node_url = f"http://127.0.0.1:{node_port}/metrics"
        pulse_url = f"http://127.0.0.1:{pulse_port}/metrics?collect[]=host.textfile"
        node = start(
            [
                NODE_EXPORTER,
                f"--web.listen-address=127.0.0.1:{node_port}",
                "--collector.disable-defaults",
                "--collector.textfile",
                f"--collector.textfile.directory={directory}",
            ],
            node_url,
        )
        pulse = start([PULSE, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{pulse_port}"], pulse_url)
        try:

            def unchanged(_n: int) -> None:
                pass

            def one_rewritten(n: int) -> None:
                write_file(directory / "file0.prom", 0, args.series, n + 1000)

            print(f"{args.files} files x {args.series} series + 3 job files; {args.scrapes} scrapes each")
            print(f"{'case':<24}{'exporter':<15}{'median ms':>10}{'p90 ms':>9}{'CPU ms/scrape':>15}{'series':>8}")
            with httpx.Client(headers=HEADERS, timeout=10) as client:
                for case, before in (("files unchanged", unchanged), ("one file rewritten", one_rewritten)):
                    for label, url, process in (("node_exporter", node_url, node), ("pulse", pulse_url, pulse)):
                        median, p90, cpu, series = measure(client, url, process.pid, args.scrapes, before)
                        print(f"{case:<24}{label:<15}{median:>10.2f}{p90:>9.2f}{cpu:>15.2f}{series:>8}")
        finally:
            for process in (node, pulse):
                process.terminate()
                process.wait(10)

        def wall(command: list[str]) -> float:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run(command, check=True)
                times.append(time.perf_counter() - started)
            return statistics.median(times) * 1e3

        plain = wall(["true"])
        wrapped = wall([PULSE, "job", "run", "--name", "bench", f"--textfile-directory={directory}", "--", "true"])
        print(
            f"\njob wrapper: `true` {plain:.1f} ms; through `pulse-exporter job run` {wrapped:.1f} ms"
            f" (median of {args.runs})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
