"""`pulse-exporter dashboards render`: each board's main panels from a Prometheus, as docs/dashboards/<key>.png.

Its arguments are declared here without importing matplotlib (`dashboards generate` shares the parser);
the drawing modules are imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from exporter.dashboards.boards import BOARDS

DEFAULT_RANGE = "6h"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus' URL (%(default)s)")
    parser.add_argument("--out", default="docs/dashboards", help="where <board>.png go (%(default)s)")
    parser.add_argument(
        "--board",
        action="append",
        choices=[board.key for board in BOARDS],
        help="a board's key; repeat for several (default: every board)",
    )
    parser.add_argument("--range", default=DEFAULT_RANGE, help="how far back, e.g. 30m, 6h, 7d (%(default)s)")
    parser.add_argument("--end", help="the last instant drawn, ISO 8601 or Unix seconds (default: now)")
    parser.add_argument("--panels", type=int, default=8, help="at most this many main panels a board (%(default)s)")
    parser.add_argument("--width", type=int, default=1600, help="the picture's width in pixels (%(default)s)")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="a board variable's value (default: All), e.g. --var service=checkout",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a panel has no data or a query failed")


def _end(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        return moment.timestamp()


def run(args: argparse.Namespace) -> int:
    """Render the chosen boards; 2 with one clear line when Prometheus cannot be used or an argument is wrong."""
    from exporter.dashboards.render.data import PrometheusClient, PrometheusUnreachable, parse_duration  # noqa: PLC0415

    def fail(message: str) -> int:
        print(f"pulse-exporter dashboards render: {message}", file=sys.stderr)
        return 2

    try:
        from exporter.dashboards.render.board import render_board  # noqa: PLC0415 - matplotlib only when drawing
    except ModuleNotFoundError as error:
        return fail(f"{error}: install the render extra, pip install 'pulse-exporter[render]'")

    try:
        range_seconds = parse_duration(args.range)
        end = _end(args.end)
        if any("=" not in item for item in args.var):
            raise ValueError("--var takes NAME=REGEX, e.g. --var service=checkout")
        values = dict(item.split("=", 1) for item in args.var)
    except ValueError as error:
        return fail(str(error))
    if args.panels < 1 or args.width < 400:
        return fail("--panels must be at least 1 and --width at least 400")
    chosen = [board for board in BOARDS if not args.board or board.key in args.board]
    out_dir = Path(args.out)
    problems: list[str] = []
    with PrometheusClient(args.prometheus) as client:
        try:
            client.check()
            out_dir.mkdir(parents=True, exist_ok=True)
            for board in chosen:
                picture = render_board(
                    client, board, end, range_seconds, limit=args.panels, values=values, width=args.width
                )
                path = out_dir / f"{board.key}.png"
                path.write_bytes(picture.png)
                print(
                    f"pulse-exporter dashboards render: wrote {path} ({len(picture.panels)} panels, "
                    f"{picture.width}x{picture.height})"
                )
                problems += picture.problems()
        except PrometheusUnreachable as error:
            return fail(str(error))
    for problem in problems:
        print(f"pulse-exporter dashboards render: {problem}", file=sys.stderr)
    return 1 if problems and args.strict else 0
