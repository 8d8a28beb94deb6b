"""`pulse-exporter rules generate [--settings FILE] [--out DIR] [--slos DIR] [--check]`, and
`pulse-exporter slo generate SPEC... [-o FILE] [--settings FILE]` (Sloth's `generate -i`: one or more SLO
specs to one rule file, stdout without -o).

Exit codes: 0 written (or, with --check, nothing differs); 1 a bad settings file or SLO spec, or --check
found differences; 2 bad flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.bundle import generate
from exporter.bundle.rules import Links
from exporter.bundle.settings import BundleSettings, load
from exporter.bundle.slo import generate as slo_generate
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
        "--slos", default=str(generate.DEFAULT_SLO_DIR), help="SLO specs, generated into slos.yml: %(default)s"
    )
    generate_parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from a fresh generation"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        files = generate.generate(load(Path(args.settings)), args.settings, Path(args.slos))
    except ConfigError as err:
        print(f"pulse-exporter rules: invalid settings or SLO spec:\n{err}", file=sys.stderr)
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


def build_slo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse-exporter slo",
        description="Generate Prometheus rules from SLO specs in Sloth's prometheus/v1 format (see docs/slos.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate_parser = commands.add_parser("generate", help="write the rules of SLO specs to stdout or a file")
    generate_parser.add_argument("specs", nargs="+", metavar="SPEC", help="a spec file (prometheus/slos/*.yml)")
    generate_parser.add_argument("-o", "--out", help="the rule file to write (default: stdout)")
    generate_parser.add_argument(
        "--settings",
        help="prometheus/settings.yml, for where alert links point (default: that file if it exists)",
    )
    return parser


def slo_main(argv: list[str]) -> int:
    args = build_slo_parser().parse_args(argv)
    default_settings = Path("prometheus/settings.yml")
    try:
        if args.settings is not None:
            settings = load(Path(args.settings))
        else:
            settings = load(default_settings) if default_settings.is_file() else BundleSettings()
        specs = slo_generate.load_specs(Path(spec) for spec in args.specs)
        text = slo_generate.render(
            specs, Links(settings.runbook_url, settings.grafana_url), generate.GENERATED_MARK, " ".join(args.specs)
        )
    except ConfigError as err:
        print(f"pulse-exporter slo: invalid SLO spec or settings:\n{err}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
        print(f"pulse-exporter slo: wrote {args.out}", file=sys.stderr)
    return 0
