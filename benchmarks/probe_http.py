"""HTTP probe cost: Pulse against Debian's blackbox_exporter, side by side in one run, probing a local nginx.

Started here, each on a free 127.0.0.1 port: nginx (a small static page), blackbox_exporter and
pulse-exporter with the same `http_2xx` module, and a listener that accepts connections and never
answers. A light keep-alive client (raw asyncio, so the driver costs little of the 2 shared cores)
drives each exporter's /probe in turn and prints:

- sequential latency: p50 / p99 of /probe round trips, one at a time (ms)
- CPU per probe: the exporter's utime + stime (/proc/<pid>/stat, all threads) over the probes made
- throughput at 50 concurrent: probes/s with 50 connections each probing back to back
- "a hung target never delays other probes": p50 / p99 of ok probes while 50 probes of the silent
  listener are pending (module timeout 5 s), and how long those hung probes took
- RSS after the run (VmRSS) and its peak (VmHWM)

Every probe's answer is checked (probe_success 1 for nginx, 0 for the hung listener): a failing probe
would look cheap. `--profile` reruns Pulse under cProfile for the concurrent phase and prints the top
functions by own time, to see what limits it (HTTP client, server, exposition).

    .venv/bin/python benchmarks/probe_http.py
    .venv/bin/python benchmarks/probe_http.py --sequential 1000 --concurrent 5000 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT = 20.0
HANG_MODULE_TIMEOUT = 5.0
SCRAPE_TIMEOUT_HEADER = "10"  # what Prometheus sends with scrape_timeout: 10s

MODULES = f"""\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  http_hang:
    prober: http
    timeout: {HANG_MODULE_TIMEOUT:g}s
    http:
      preferred_ip_protocol: ip4
"""

# (label, file suffix, function) of the parts of a /probe request, for the profile summary.
PROFILE_PARTS = [
    ("HTTP server: the whole /probe request (h11, routing, below)", "exporter/web/server.py", "_serve"),
    ("  runner: deadline, self-metrics, probe_success (and below)", "exporter/probes/runner.py", "run_probe"),
    ("    http prober: resolve, connect, request, response", "exporter/probes/http.py", "probe"),
    ("      of which ProbeSink.gauge (metric families)", "exporter/probes/base.py", "gauge"),
    ("  exposition: text format of the probe's metrics", "exporter/exposition.py", "encode_as_accepted"),
]

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port};
        root {dir}/www;
    }}
}}
"""
PAGE = "<!doctype html><title>shop</title><h1>The shop is open</h1>\n" + "<p>lorem ipsum dolor sit amet</p>\n" * 20


@dataclass
class Result:
    exporter: str
    sequential_p50_ms: float
    sequential_p99_ms: float
    cpu_per_probe_ms_sequential: float
    cpu_per_probe_ms_concurrent: float
    throughput_per_s: float
    hung_ok_p50_ms: float
    hung_ok_p99_ms: float
    hung_probe_seconds: float
    rss_mib: float
    peak_rss_mib: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=500, help="sequential probes per exporter")
    parser.add_argument("--concurrent", type=int, default=3000, help="probes in the 50-concurrent run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--hung", type=int, default=50, help="probes left hanging on the silent listener")
    parser.add_argument("--profile", action="store_true", help="profile Pulse (cProfile) in a second run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    name = Path(str(process.args[0] if isinstance(process.args, list) else process.args)).name
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"{name} did not listen on {port} in {STARTUP_TIMEOUT}s:\n{log.read_text()}")


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        wait_for_port(port, process, log)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mib(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


class SilentListener:
    """Accepts connections and never answers (keeps them open), in a thread."""

    def __init__(self) -> None:
        self._socket = socket.create_server((HOST, 0), backlog=256)
        self.port = int(self._socket.getsockname()[1])
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)


class KeepAlive:
    """A minimal HTTP/1.1 keep-alive client: enough for /probe answers (Content-Length or chunked)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> bytes:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        assert self._reader is not None
        self._writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nAccept: text/plain;version=0.0.4\r\n"
            f"X-Prometheus-Scrape-Timeout-Seconds: {SCRAPE_TIMEOUT_HEADER}\r\n\r\n".encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        headers = head.lower()
        if b"transfer-encoding: chunked" in headers:
            body = bytearray()
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
                body += await self._reader.readexactly(size + 2)
                if size == 0:
                    break
            content = bytes(body)
        else:
            length = int(headers.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            content = await self._reader.readexactly(length)
        if b"connection: close" in headers:
            self.close()
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"/probe answered {head.splitlines()[0]!r}: {content[:200]!r}")
        return content

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def probe_path(target: str, module: str) -> str:
    return "/probe?" + urlencode({"target": target, "module": module})


def check(body: bytes, success: bool) -> None:
    expected = b"\nprobe_success 1" if success else b"\nprobe_success 0"
    if expected not in b"\n" + body:
        raise RuntimeError(f"unexpected probe result (wanted probe_success {int(success)}):\n{body.decode()[:2000]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(port: int, path: str, count: int) -> list[float]:
    client = KeepAlive(port)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        check(await client.get(path), success=True)
        latencies.append(time.perf_counter() - started)
    client.close()
    return latencies


async def concurrent(port: int, path: str, count: int, concurrency: int) -> float:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        client = KeepAlive(port)
        while remaining > 0:
            remaining -= 1
            check(await client.get(path), success=True)
        client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def while_hung(port: int, ok_path: str, hung_path: str, hung: int, count: int) -> tuple[list[float], float]:
    async def hung_probe() -> float:
        client = KeepAlive(port)
        started = time.perf_counter()
        check(await client.get(hung_path), success=False)
        client.close()
        return time.perf_counter() - started

    tasks = [asyncio.create_task(hung_probe()) for _ in range(hung)]
    await asyncio.sleep(0.3)  # let the hung probes connect
    latencies = await sequential(port, ok_path, count)
    if any(task.done() for task in tasks):
        raise RuntimeError("a hung probe ended before the ok probes were measured")
    durations = await asyncio.gather(*tasks)
    return latencies, max(durations)


def measure(
    name: str, process: subprocess.Popen[bytes], port: int, targets: tuple[str, str], args: argparse.Namespace
) -> Result:
    page, hang = targets
    ok_path, hung_path = probe_path(page, "http_2xx"), probe_path(hang, "http_hang")
    asyncio.run(sequential(port, ok_path, 50))  # warm-up
    before = cpu_seconds(process.pid)
    latencies = asyncio.run(sequential(port, ok_path, args.sequential))
    cpu_sequential = (cpu_seconds(process.pid) - before) / args.sequential
    before = cpu_seconds(process.pid)
    throughput = asyncio.run(concurrent(port, ok_path, args.concurrent, args.concurrency))
    cpu_concurrent = (cpu_seconds(process.pid) - before) / args.concurrent
    hung_latencies, hung_seconds = asyncio.run(while_hung(port, ok_path, hung_path, args.hung, 200))
    rss, peak = rss_mib(process.pid)
    return Result(
        exporter=name,
        sequential_p50_ms=percentile(latencies, 0.5) * 1000,
        sequential_p99_ms=percentile(latencies, 0.99) * 1000,
        cpu_per_probe_ms_sequential=cpu_sequential * 1000,
        cpu_per_probe_ms_concurrent=cpu_concurrent * 1000,
        throughput_per_s=throughput,
        hung_ok_p50_ms=percentile(hung_latencies, 0.5) * 1000,
        hung_ok_p99_ms=percentile(hung_latencies, 0.99) * 1000,
        hung_probe_seconds=hung_seconds,
        rss_mib=rss,
        peak_rss_mib=peak,
    )


def pulse_command() -> list[str]:
    script = Path(sys.executable).parent / "pulse-exporter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]


def print_table(results: list[Result]) -> None:
    rows = [
        ("sequential latency p50 (ms)", "sequential_p50_ms", "lower"),
        ("sequential latency p99 (ms)", "sequential_p99_ms", "lower"),
        ("CPU per probe, sequential (ms)", "cpu_per_probe_ms_sequential", "lower"),
        ("CPU per probe, 50 concurrent (ms)", "cpu_per_probe_ms_concurrent", "lower"),
        ("throughput, 50 concurrent (probes/s)", "throughput_per_s", "higher"),
        ("ok probe p50 while 50 hang (ms)", "hung_ok_p50_ms", "lower"),
        ("ok probe p99 while 50 hang (ms)", "hung_ok_p99_ms", "lower"),
        ("hung probe answered after (s)", "hung_probe_seconds", ""),
        ("RSS after the run (MiB)", "rss_mib", "lower"),
        ("peak RSS (MiB)", "peak_rss_mib", "lower"),
    ]
    blackbox, pulse = results
    print(f"{'':40} {'blackbox':>10} {'pulse':>10} {'pulse/bb':>9}")
    for label, key, _ in rows:
        theirs, ours = getattr(blackbox, key), getattr(pulse, key)
        ratio = f"{ours / theirs:9.2f}" if theirs else f"{'':9}"
        print(f"{label:40} {theirs:10.2f} {ours:10.2f} {ratio}")


def profile_pulse(directory: Path, pulse_yml: Path, page: str, args: argparse.Namespace) -> None:
    """Run Pulse under cProfile through the concurrent phase and print where its CPU goes."""
    port = free_port()
    out = directory / "pulse.prof"
    command = [
        sys.executable,
        "-m",
        "cProfile",
        "-o",
        str(out),
        "-m",
        "exporter",
        f"--config.file={pulse_yml}",
        f"--web.listen-address={HOST}:{port}",
    ]
    with running(command, port, directory / "pulse-profile.log", directory):
        asyncio.run(concurrent(port, probe_path(page, "http_2xx"), args.concurrent, args.concurrency))
    if not out.exists():
        print("(no profile written: the exporter did not exit through its normal path)")
        return
    stats = pstats.Stats(str(out))
    print(f"\nPulse under cProfile, {args.concurrent} probes at {args.concurrency} concurrent: where the time goes")
    print("(time inside each part and what it calls, per probe; coroutines are timed while running only)")
    total = sum(timing[2] for timing in stats.stats.values())  # type: ignore[attr-defined]
    for label, file_part, function in PROFILE_PARTS:
        cumulative = sum(
            timing[3]
            for (file, _, name), timing in stats.stats.items()  # type: ignore[attr-defined]
            if file.endswith(file_part) and name == function
        )
        print(f"  {label:58} {cumulative / args.concurrent * 1e6:7.0f} us")
    print(f"  {'everything (profiled, with its overhead)':58} {total / args.concurrent * 1e6:7.0f} us")
    print("\nTop 20 functions by own time")
    stats.sort_stats("tottime").print_stats(20)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    blackbox_binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    nginx_binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not blackbox_binary or not nginx_binary:
        raise SystemExit("needs prometheus-blackbox-exporter and nginx-light (apt-get install them)")
    with tempfile.TemporaryDirectory(prefix="pulse-probe-bench-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx workers run as an unprivileged user when started as root
        (directory / "www").mkdir()
        (directory / "www" / "index.html").write_text(PAGE)
        nginx_port, blackbox_port, pulse_port = free_port(), free_port(), free_port()
        (directory / "nginx.conf").write_text(NGINX_CONF.format(dir=directory, host=HOST, port=nginx_port))
        (directory / "blackbox.yml").write_text(MODULES)
        listener = SilentListener()
        page, hang = f"http://{HOST}:{nginx_port}/", f"http://{HOST}:{listener.port}/"
        pulse_yml = directory / "pulse.yml"
        pulse_yml.write_text(
            f"probes:\n  modules_file: {directory / 'blackbox.yml'}\n  targets:\n"
            f"    - {{target: '{page}', module: http_2xx}}\n    - {{target: '{hang}', module: http_hang}}\n"
        )
        results = []
        with running(
            [nginx_binary, "-c", str(directory / "nginx.conf"), "-p", str(directory)],
            nginx_port,
            directory / "nginx.log",
            directory,
        ):
            exporters = [
                (
                    "blackbox",
                    [
                        blackbox_binary,
                        f"--config.file={directory / 'blackbox.yml'}",
                        f"--web.listen-address={HOST}:{blackbox_port}",
                    ],
                    blackbox_port,
                ),
                (
                    "pulse",
                    [*pulse_command(), f"--config.file={pulse_yml}", f"--web.listen-address={HOST}:{pulse_port}"],
                    pulse_port,
                ),
            ]
            for name, command, port in exporters:
                with running(command, port, directory / f"{name}.log", directory) as process:
                    results.append(measure(name, process, port, (page, hang), args))
            print(
                f"nginx page {len(PAGE)} bytes; {args.sequential} sequential probes, {args.concurrent} at "
                f"{args.concurrency} concurrent, {args.hung} hung probes (module timeout {HANG_MODULE_TIMEOUT:g} s)"
            )
            print_table(results)
            if args.json:
                print(json.dumps([asdict(r) for r in results], indent=2))
            if args.profile:
                profile_pulse(directory, pulse_yml, page, args)


if __name__ == "__main__":
    main()
