"""`pulse-exporter rules generate [--settings FILE] [--out DIR] [--check]`.

Exit codes: 0 written (or, with --check, nothing differs); 1 a bad settings file, or --check found
differences; 2 bad flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.bundle import generate
from exporter.bundle.settings import load
from exporter.config.loader import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse-exporter rules",
        description="Generate Prometheus rule files from prometheus/settings.yml (see prometheus/README.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate_parser = commands.add_parser("generate", help="write prometheus/rules/*.yml from the settings")
    generate_parser.add_argument("--settings", default="prometheus/settings.yml", help="%(default)s")
    generate_parser.add_argument("--out", default="prometheus/rules", help="directory of the rule files: %(default)s")
    generate_parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from a fresh generation"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        files = generate.generate(load(Path(args.settings)), args.settings)
    except ConfigError as err:
        print(f"pulse-exporter rules: invalid settings:\n{err}", file=sys.stderr)
        return 1
    out_dir = Path(args.out)
    if args.check:
        problems = generate.differences(out_dir, files)
        for problem in problems:
            print(f"pulse-exporter rules: {problem}", file=sys.stderr)
        if problems:
            print("pulse-exporter rules: run `pulse-exporter rules generate` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    for path in generate.write(out_dir, files):
        print(f"pulse-exporter rules: wrote {path}" if path.exists() else f"pulse-exporter rules: removed {path}")
    return 0
