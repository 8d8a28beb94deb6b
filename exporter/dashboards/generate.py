"""`pulse-exporter dashboards generate [--out DIR] [--check]`: grafana/dashboards/<uid>.json from the boards.
(`pulse-exporter dashboards render`, the boards' pictures, is exporter/dashboards/render/cli.py.)

Same contract as the rules (exporter/bundle/generate.py): deterministic output, `--check` diffs and
changes nothing, and a generated file of a board since removed is recognised (its `pulse` tag and a uid
of ours) and removed without touching a user's own dashboards in the same directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter import generated
from exporter.bundle.rules import DASHBOARDS
from exporter.dashboards.boards import BOARDS
from exporter.dashboards.grafana import dashboard_json
from exporter.dashboards.render import cli as render_cli


def generate() -> dict[str, str]:
    return {f"{DASHBOARDS[board.key]}.json": dashboard_json(board) for board in BOARDS}


def _stale(out_dir: Path, files: dict[str, str]) -> list[Path]:
    ours = {f"{uid}.json" for uid in DASHBOARDS.values()}
    return [path for path in sorted(out_dir.glob("*.json")) if path.name in ours and path.name not in files]


def differences(out_dir: Path, files: dict[str, str]) -> list[str]:
    return generated.differences(out_dir, files, _stale(out_dir, files), "the boards", "a board that no longer exists")


def write(out_dir: Path, files: dict[str, str]) -> list[Path]:
    return generated.write(out_dir, files, _stale(out_dir, files))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pulse-exporter dashboards", description="Generate Pulse's dashboards.")
    commands = parser.add_subparsers(dest="command", required=True)
    generate_parser = commands.add_parser("generate", help="write grafana/dashboards/*.json")
    generate_parser.add_argument("--out", default="grafana/dashboards", help="%(default)s")
    generate_parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files differ")
    render_parser = commands.add_parser("render", help="draw each board's main panels from a Prometheus as PNG")
    render_cli.add_arguments(render_parser)
    args = parser.parse_args(argv)
    if args.command == "render":
        return render_cli.run(args)
    files = generate()
    out_dir = Path(args.out)
    if args.check:
        problems = differences(out_dir, files)
        for problem in problems:
            print(f"pulse-exporter dashboards: {problem}", file=sys.stderr)
        if problems:
            print("pulse-exporter dashboards: run `pulse-exporter dashboards generate` and commit", file=sys.stderr)
        return 1 if problems else 0
    for path in write(out_dir, files):
        print(f"pulse-exporter dashboards: {'wrote' if path.exists() else 'removed'} {path}")
    return 0
