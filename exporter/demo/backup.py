"""The demo's nightly job: a real backup of the demo database, run by scripts/demo through
`pulse-exporter job run --name demo_backup`, so that `pulse_job_last_success_timestamp_seconds` shows.

    python -m exporter.demo.backup demo.db /var/backups/demo.db

SQLite's online backup API copies a consistent snapshot while the traffic generator keeps writing. The
copy is written beside the target and renamed over it: an interrupted backup never replaces a good one.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from contextlib import closing  # a connection's own `with` commits; it does not close


def backup(source: str, target: str) -> int:
    """Copy `source` into `target`; the size written, in bytes."""
    partial = f"{target}.partial"
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as reader,
        closing(sqlite3.connect(partial)) as writer,
    ):
        reader.backup(writer)
    os.replace(partial, target)
    return os.path.getsize(target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.demo.backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the SQLite database to back up")
    parser.add_argument("target", help="the backup file (replaced when the copy is complete)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.source):
        print(f"demo backup: {args.source}: no such database", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        size = backup(args.source, args.target)
    except (sqlite3.Error, OSError) as err:
        print(f"demo backup: {args.source} -> {args.target}: {err}", file=sys.stderr)
        return 1
    print(f"demo backup: {args.source} -> {args.target}: {size} bytes in {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
