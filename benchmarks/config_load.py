"""Config loading cost on hostile and large files: Pulse's loader against plain PyYAML, side by side.

Each case is written to a temporary file and loaded in a fresh Python process, twice: once by Pulse
(`exporter.registry.load_config`, what `--config.check` and `/-/reload` run) and once by
`yaml.safe_load` followed by one walk over the result (the anchor: what most Python exporters, and
Pulse before its limits, do; safe_load shares aliased objects, so a bomb explodes in whatever walks
the data next, validation for instance, and the walk stands for it). Each child
runs under an address-space cap (`--memory`, default 2 GiB) and a wall-clock timeout (`--timeout`,
default 60 s), so a bomb cannot take the machine down. Per case and loader this prints the outcome
(loaded, refused with Pulse's message, or killed by the cap or the timeout), the wall time and the
child's peak RSS growth over an interpreter with the same imports. Pulse's figure for a config with
a SQL source includes importing SQLAlchemy, which the DSN check does on first use.

Cases: the issue's 272-byte "billion laughs" (6 levels of 9 aliases), the same with 9 levels, a
4 MiB list of zeros (the largest file Pulse reads), a config with 20,000 probe targets (about the
largest that fits under the 200,000-node bound), and examples/demo.yml.

Run it from the repository root (about a minute):

    .venv/bin/python benchmarks/config_load.py
    .venv/bin/python benchmarks/config_load.py --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024

# Run in the child: imports first (their RSS is the baseline), then one load. Prints one JSON line.
CHILD = """
import json, resource, sys, time
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import yaml
from exporter.config.loader import ConfigError
from exporter.registry import load_config
from pathlib import Path
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    if sys.argv[1] == "pulse":
        load_config(Path(sys.argv[2]))
    else:
        with open(sys.argv[2], encoding="utf-8") as f:
            stack, nodes = [yaml.safe_load(f)], 0
        while stack:  # every node once per path to it, as validation visits it
            value = stack.pop()
            nodes += 1
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
    outcome = "loaded"
except ConfigError as err:
    outcome = "refused: " + str(err).splitlines()[-1].split(": ", 2)[-1][:70]
except MemoryError:
    outcome = "MemoryError"
except RecursionError:
    outcome = "RecursionError"
seconds = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"outcome": outcome, "seconds": seconds, "rss_growth_mib": grown / 1024}))
"""


@dataclass
class Result:
    case: str
    loader: str
    outcome: str
    seconds: float | None
    rss_growth_mib: float | None


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        aliases = ",".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def cases() -> dict[str, str]:
    targets = "".join(f"    - {{target: 'h{n}.example:443', module: tcp_connect}}\n" for n in range(20_000))
    return {
        "billion laughs, 6 levels (272 B)": billion_laughs(6),
        "billion laughs, 9 levels": billion_laughs(9),
        "4 MiB list of zeros": "x: [" + "0," * (2 * MiB - 8) + "0]\n",
        "20,000 probe targets": "probes:\n  modules: {tcp_connect: {prober: tcp}}\n  targets:\n" + targets,
        "examples/demo.yml": (ROOT / "examples" / "demo.yml").read_text(),
    }


def run(loader: str, path: Path, memory: int, timeout: float) -> tuple[str, float | None, float | None]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, loader, str(path), str(memory)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"killed after the {timeout:g} s timeout", None, None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"crashed: {last[:70]}", None, None
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["outcome"], figures["seconds"], figures["rss_growth_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory", type=int, default=2048, help="address-space cap per child, MiB")
    parser.add_argument("--timeout", type=float, default=60.0, help="wall-clock limit per child, seconds")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases().items():
            path = Path(tmp) / "pulse.yml"
            path.write_text(text)
            for loader in ("pulse", "pyyaml"):
                outcome, seconds, grown = run(loader, path, args.memory * MiB, args.timeout)
                results.append(Result(name, loader, outcome, seconds, grown))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    print(f"{'case':34} {'loader':7} {'time':>9} {'RSS +':>9}  outcome")
    for r in results:
        time_text = f"{r.seconds * 1000:8.1f}ms" if r.seconds is not None else f"{'-':>9}"
        rss_text = f"{r.rss_growth_mib:6.1f}MiB" if r.rss_growth_mib is not None else f"{'-':>9}"
        print(f"{r.case:34} {r.loader:7} {time_text} {rss_text}  {r.outcome}")


if __name__ == "__main__":
    main()
