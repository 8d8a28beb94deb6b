"""`pulse-exporter incidents ...`: the journal for people.

    pulse-exporter incidents list [--open] [--since 24h|2026-12-01] [--limit N] [--json]
    pulse-exporter incidents show ID [--json]
    pulse-exporter incidents ack ID [--by NAME]             (default: $USER)
    pulse-exporter incidents annotate ID [--cause TEXT] [--resolution TEXT]
    pulse-exporter incidents sync                            (acknowledge by Alertmanager's silences now)

Each reads `--config.file` (or PULSE_CONFIG_FILE) for `incidents.database` and `alertmanager:`, and opens
the journal itself: SQLite in WAL mode and PostgreSQL both let it work beside a running Pulse.
Times are shown in local time, durations as 1h23m. Exit codes: 0 done; 1 cannot (config invalid,
journal off, database or Alertmanager unreachable); 2 bad usage; 3 no such incident.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pydantic

from exporter.config.loader import ConfigError
from exporter.config.platform import EndpointConfig
from exporter.config.types import PositiveDuration
from exporter.incidents.config import IncidentsConfig
from exporter.incidents.model import Incident

if TYPE_CHECKING:
    from exporter.incidents.journal import Journal

EXIT_OK, EXIT_CANNOT, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
PROG = "pulse-exporter incidents"


class PlatformConfig(Protocol):
    """What the commands read of pulse.yml (the registry's PulseConfig has it)."""

    @property
    def incidents(self) -> IncidentsConfig: ...

    @property
    def alertmanager(self) -> EndpointConfig | None: ...


ConfigLoader = Callable[[Path | None], PlatformConfig]


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_CANNOT) -> None:
        super().__init__(message)
        self.code = code


def _config_flag(default: object) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config.file",
        dest="config_file",
        default=default,
        help="Pulse config file: incidents.database and alertmanager. Env: PULSE_CONFIG_FILE",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    # --config.file before or after the command; after it, a default must not overwrite one given before.
    common = _config_flag(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[_config_flag(os.environ.get("PULSE_CONFIG_FILE"))],
        description="The incident journal: list, show, acknowledge and annotate incidents; read "
        "acknowledgements back from Alertmanager's silences.",
        epilog="Exit codes: 0 done; 1 config invalid, journal off, database or Alertmanager unreachable; "
        "2 bad usage; 3 no such incident.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", parents=[common], help="incidents, newest first")
    listing.add_argument("--open", action="store_true", help="only those not resolved")
    listing.add_argument(
        "--since", help="those going on at or after: a duration ago (24h, 7d) or a local date/time (2026-12-01)"
    )
    listing.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    listing.add_argument("--json", action="store_true", help="as a JSON list")
    show = commands.add_parser("show", parents=[common], help="one incident in full")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="as a JSON object")
    ack = commands.add_parser("ack", parents=[common], help="acknowledge an incident")
    ack.add_argument("id", type=int)
    ack.add_argument("--by", help="who acknowledges it (default: $USER)")
    annotate = commands.add_parser("annotate", parents=[common], help="write down a cause and/or a resolution")
    annotate.add_argument("id", type=int)
    annotate.add_argument("--cause", help="why it happened")
    annotate.add_argument("--resolution", help="how it was resolved")
    commands.add_parser("sync", parents=[common], help="acknowledge incidents whose alerts are silenced now")
    return parser


def main(argv: Sequence[str], load_config: ConfigLoader) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "annotate" and args.cause is None and args.resolution is None:
        parser.error("annotate: give --cause TEXT, --resolution TEXT or both")
    if args.command == "list" and args.limit < 0:
        parser.error("--limit: a whole number >= 0")
    try:
        since = parse_since(args.since, time.time()) if args.command == "list" and args.since else None
    except ValueError as err:
        parser.error(f"--since {args.since!r}: {err}")
    try:
        config = _load(load_config, args.config_file)
        return _run(args, config, since)
    except CommandError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return err.code


def _load(load_config: ConfigLoader, config_file: str | None) -> PlatformConfig:
    try:
        config = load_config(Path(config_file) if config_file else None)
    except ConfigError as err:
        raise CommandError(f"invalid configuration:\n{err}") from None
    if not config.incidents.enabled:
        where = config_file or "the embedded default config"
        raise CommandError(f"the incident journal is off in {where}: set incidents.enabled: true")
    return config


def _run(args: argparse.Namespace, config: PlatformConfig, since: float | None) -> int:
    from exporter.incidents.journal import Journal, JournalError, UnknownIncident  # noqa: PLC0415 - SQLAlchemy

    try:
        with Journal(config.incidents.database) as journal:
            return _command(args, journal, config, since)
    except UnknownIncident as err:
        raise CommandError(str(err), EXIT_UNKNOWN) from None
    except JournalError as err:
        raise CommandError(str(err)) from None


def _command(args: argparse.Namespace, journal: Journal, config: PlatformConfig, since: float | None) -> int:
    now = time.time()
    if args.command == "list":
        found = journal.incidents(open_only=args.open, since=since, limit=args.limit)
        print(json.dumps([as_json(i, now) for i in found], indent=2) if args.json else table(found, now))
    elif args.command == "show":
        incident = journal.incident(args.id)
        print(json.dumps(as_json(incident, now), indent=2) if args.json else details(incident, now))
    elif args.command == "ack":
        by = args.by or os.environ.get("USER") or _login_name()
        incident = journal.acknowledge(args.id, by, now)
        if incident.acknowledged_by == by and incident.acknowledged_at == now:
            print(f"incident {incident.id} acknowledged by {by}")
        else:
            print(
                f"incident {incident.id} was acknowledged already, by {incident.acknowledged_by} "
                f"at {local_time(incident.acknowledged_at)}"
            )
    elif args.command == "annotate":
        incident = journal.annotate(args.id, cause=args.cause, resolution=args.resolution)
        print(f"incident {incident.id} annotated")
    else:
        _sync(journal, config)
    return EXIT_OK


def _sync(journal: Journal, config: PlatformConfig) -> None:
    from exporter.incidents.silences import SilenceSyncError, sync_silences  # noqa: PLC0415 - httpx only here

    if config.alertmanager is None:
        raise CommandError("sync reads silences from Alertmanager: set alertmanager.url in the config")
    try:
        result = sync_silences(journal, config.alertmanager)
    except SilenceSyncError as err:
        raise CommandError(str(err)) from None
    print(f"{result.silenced_alerts} silenced alerts in Alertmanager; {result.acknowledged} incidents acknowledged")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


# -------------------------------------------------------------------------------------------- parsing


def parse_since(text: str, now: float) -> float:
    """`24h`, `7d`, `90m`: that long ago; `2026-12-01` or `2026-12-01T08:00`: local time (or with an offset)."""
    try:
        return now - float(pydantic.TypeAdapter(PositiveDuration).validate_python(text))
    except pydantic.ValidationError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not a duration (24h, 7d) nor a date/time (2026-12-01, 2026-12-01T08:00)") from None
    return (when if when.tzinfo else when.astimezone()).timestamp()


# ------------------------------------------------------------------------------------------- printing


def duration(seconds: float | None) -> str:
    """1h23m, 5m07s, 42s, 3d4h: the two largest units, as people read durations."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def local_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def table(incidents: Sequence[Incident], now: float) -> str:
    if not incidents:
        return "no incidents"
    header = ("ID", "STARTED", "DURATION", "STATE", "ACKNOWLEDGED BY", "SEVERITY", "SERVICE", "ALERT")
    rows = [
        (
            str(i.id),
            local_time(i.started_at).rsplit(" ", 1)[0],
            duration(i.duration(now)),
            "open" if i.is_open else "resolved",
            _clip(i.acknowledged_by or "-", 30),
            i.severity or "-",
            _clip(i.service or "-", 20),
            _clip(i.alertname or "-", 40),
        )
        for i in incidents
    ]
    widths = [max(len(row[c]) for row in (header, *rows)) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in (header, *rows)]  # fmt: skip
    zone = datetime.now().astimezone().strftime("%Z")
    counted = f"{len(rows)} incident{'s' if len(rows) != 1 else ''}"
    return "\n".join([*lines, f"({counted}; times in {zone})"])


def _when(timestamp: float | None, what: str, seconds: float | None) -> str:
    return "not yet" if timestamp is None else f"{local_time(timestamp)}   ({what} {duration(seconds)})"


def details(incident: Incident, now: float) -> str:
    i = incident
    state = "open" if i.is_open else "resolved"
    lines = [
        f"Incident {i.id}: {i.alertname or '(no alertname)'} ({state})",
        f"  severity {i.severity or '-'}, team {i.team or '-'}, service {i.service or '-'}",
        f"  started        {local_time(i.started_at)}",
        f"  first notified {_when(i.first_notified_at, 'time to detect', i.time_to_detect)}",
        f"  acknowledged   {_when(i.acknowledged_at, 'time to acknowledge', i.time_to_acknowledge)}"
        + (f" by {i.acknowledged_by}" if i.acknowledged_by else ""),
        f"  resolved       {_when(i.resolved_at, 'time to resolve', i.time_to_resolve)}",
        f"  duration       {duration(i.duration(now))}{' so far' if i.is_open else ''}",
        f"  notifications  {i.notifications}, last {local_time(i.last_notified_at)}",
        f"  fingerprint    {i.fingerprint}",
    ]
    if i.generator_url:
        lines.append(f"  source         {i.generator_url}")
    lines.append("Labels:")
    lines += [f"  {name}={value}" for name, value in sorted(i.labels.items())]
    if i.annotations:
        lines.append("Annotations:")
        lines += [f"  {name}: {value}" for name, value in sorted(i.annotations.items())]
    lines.append(f"Cause:      {i.cause or '(not written yet: incidents annotate ID --cause ...)'}")
    lines.append(f"Resolution: {i.resolution or '(not written yet: incidents annotate ID --resolution ...)'}")
    return "\n".join(lines)


def as_json(incident: Incident, now: float) -> dict[str, Any]:
    i = incident
    return {
        "id": i.id,
        "fingerprint": i.fingerprint,
        "alertname": i.alertname,
        "severity": i.severity,
        "team": i.team,
        "service": i.service,
        "open": i.is_open,
        "started_at": _utc(i.started_at),
        "first_notified_at": _utc(i.first_notified_at),
        "last_notified_at": _utc(i.last_notified_at),
        "acknowledged_at": _utc(i.acknowledged_at),
        "acknowledged_by": i.acknowledged_by,
        "resolved_at": _utc(i.resolved_at),
        "time_to_detect_seconds": i.time_to_detect,
        "time_to_acknowledge_seconds": i.time_to_acknowledge,
        "time_to_resolve_seconds": i.time_to_resolve,
        "duration_seconds": i.duration(now),
        "notifications": i.notifications,
        "labels": dict(i.labels),
        "annotations": dict(i.annotations),
        "generator_url": i.generator_url,
        "cause": i.cause,
        "resolution": i.resolution,
    }
