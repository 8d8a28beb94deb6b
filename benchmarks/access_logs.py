"""Access logs to metrics: Pulse against mtail (Debian's 3.0.0~rc50), side by side in one run.

Both read the same generated nginx log (combined plus $request_time and $upstream_response_time,
1,000,000 lines by default, a few malformed) once from start to end and count the same things: requests
by route, method and code (three route patterns), response bytes, a duration histogram with the
client_golang buckets. mtail runs tests/mtail/access.mtail with `--one_shot`; Pulse runs its own
`logs:` pipeline (follower, combined format, labels, series) over the file in a child process,
`from_start: true`. Each is a fresh process measured from start to exit, so start-up counts for
both; CPU is user + system time of the child (RUSAGE_CHILDREN). Both must report the same number of
requests, or the run fails.

    .venv/bin/python benchmarks/access_logs.py                 # 1,000,000 lines, 1 run of each
    .venv/bin/python benchmarks/access_logs.py --lines 200000 --runs 3 --json

Prints lines per second and CPU per line for both, the ratio, and whether the goal (at least mtail's
throughput at no more CPU per line) is met. Figures include this machine's noise.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "mtail" / "access.mtail"
ROUTES = [
    {"name": "product", "path": "/products/[0-9]+"},
    {"name": "order", "path": "/api/orders/[0-9]+"},
    {"name": "home", "path": "/"},
]
PATHS = ("/", "/products/{n}", "/cart", "/checkout", "/api/orders/{n}", "/static/app.js", "/missing", "/search")
METHODS = ("GET",) * 8 + ("POST", "PUT", "DELETE", "HEAD")
CODES = (200,) * 20 + (201, 301, 304, 404, 404, 500, 502)
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "curl/8.5.0", "Googlebot/2.1")


@dataclass
class Run:
    tool: str
    seconds: float
    cpu_seconds: float
    requests: int

    def lines_per_second(self, lines: int) -> float:
        return lines / self.seconds

    def cpu_us_per_line(self, lines: int) -> float:
        return self.cpu_seconds / lines * 1e6


def generate(path: Path, lines: int, seed: int = 1) -> int:
    """Write the log; returns how many lines are well-formed requests."""
    rng = random.Random(seed)
    requests = 0
    with path.open("w") as log:
        batch = []
        for i in range(lines):
            if i % 1000 == 999:
                batch.append("malformed line from a misconfigured log_format\n")
            else:
                requests += 1
                target = rng.choice(PATHS).format(n=rng.randint(1, 5000))
                if rng.random() < 0.3:
                    target += f"?q={rng.randint(0, 999)}"
                batch.append(
                    f"10.{i % 256}.{i // 256 % 256}.{rng.randint(1, 254)} - - [07/Dec/2026:02:50:{i % 60:02d} +0000] "
                    f'"{rng.choice(METHODS)} {target} HTTP/1.1" {rng.choice(CODES)} {rng.randint(0, 60000)} '
                    f'"https://shop.example/" "{rng.choice(AGENTS)}" {rng.randint(0, 4000) / 1000:.3f} '
                    f"{rng.randint(0, 3000) / 1000:.3f}\n"
                )
            if len(batch) >= 10000:
                log.write("".join(batch))
                batch.clear()
        log.write("".join(batch))
    return requests


def measure(tool: str, command: list[str]) -> tuple[Run, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{tool} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(tool, seconds, cpu, 0), done.stdout


def run_mtail(mtail: str, log: Path, programs: Path) -> Run:
    run, out = measure("mtail", [mtail, "--progs", str(programs), "--logs", str(log), "--one_shot", "--port", "0"])
    metrics = json.loads(out)
    run.requests = sum(entry["Value"]["Value"] for entry in metrics["http_requests_total"][0]["LabelValues"])
    return run


def run_pulse(log: Path) -> Run:
    run, out = measure("pulse", [sys.executable, __file__, "--pulse-child", str(log)])
    run.requests = int(out.strip())
    return run


def pulse_child(log: Path) -> None:
    """In the child: Pulse's pipeline over the whole file, then the number of requests it counted."""
    sys.path.insert(0, str(ROOT))
    from exporter.access_logs.collector import AccessLogsCollector  # noqa: PLC0415 - the child's own work
    from exporter.access_logs.config import LogsConfig  # noqa: PLC0415

    config = LogsConfig.model_validate(
        {"files": {"bench": {"paths": [str(log)], "from_start": True, "routes": ROUTES}}}
    )
    (access_log,) = AccessLogsCollector(config).logs
    while access_log.poll():
        pass
    print(sum(access_log.series.requests.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="runs of each, interleaved; the medians are shown")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pulse-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pulse_child:
        pulse_child(args.pulse_child)
        return
    mtail = shutil.which("mtail")
    if mtail is None:
        sys.exit("mtail is not installed (apt-get install mtail, or ./scripts/test installs it)")
    with tempfile.TemporaryDirectory(prefix="pulse-access-bench-") as tmp:
        log, programs = Path(tmp) / "access.log", Path(tmp) / "progs"
        programs.mkdir()
        shutil.copy(PROGRAM, programs)
        print(f"generating {args.lines:,} lines...", file=sys.stderr)
        expected = generate(log, args.lines)
        runs: dict[str, list[Run]] = {"mtail": [], "pulse": []}
        for _ in range(args.runs):
            runs["mtail"].append(run_mtail(mtail, log, programs))
            runs["pulse"].append(run_pulse(log))
        for tool_runs in runs.values():
            for run in tool_runs:
                if run.requests != expected:
                    sys.exit(f"{run.tool} counted {run.requests} requests, expected {expected}")
        report(args, runs, log.stat().st_size)


def report(args: argparse.Namespace, runs: dict[str, list[Run]], size: int) -> None:
    lines = args.lines
    rate = {tool: statistics.median(r.lines_per_second(lines) for r in rs) for tool, rs in runs.items()}
    cpu = {tool: statistics.median(r.cpu_us_per_line(lines) for r in rs) for tool, rs in runs.items()}
    if args.json:
        print(
            json.dumps(
                {
                    "lines": lines,
                    "bytes": size,
                    "lines_per_second": rate,
                    "cpu_us_per_line": cpu,
                    "runs": {tool: [asdict(r) for r in rs] for tool, rs in runs.items()},
                },
                indent=2,
            )
        )
        return
    goal = rate["pulse"] >= rate["mtail"] and cpu["pulse"] <= cpu["mtail"]
    print(f"{lines:,} nginx lines ({size / 2**20:.0f} MiB), median of {args.runs} run(s) each, start-up included\n")
    print(f"{'':24}{'mtail':>14}{'Pulse':>14}{'ratio':>10}")
    print(
        f"{'lines per second':24}{rate['mtail']:>14,.0f}{rate['pulse']:>14,.0f}{rate['pulse'] / rate['mtail']:>9.2f}x"
    )
    print(f"{'CPU per line':24}{cpu['mtail']:>11.2f} us{cpu['pulse']:>11.2f} us{cpu['pulse'] / cpu['mtail']:>9.2f}x")
    print(f"\ngoal (throughput >= mtail's, CPU per line <= mtail's): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
