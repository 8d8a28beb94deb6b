"""`pulse-exporter maintenance add|list|cancel`: planned maintenance windows.

A window is an Alertmanager silence for the service (matcher service="<name>": its alerts do not page
anyone) and a row in the incident journal (Journal.add_maintenance, with the silence's id): the status
page shows it, the reports take it out of the SLA figures.

    pulse-exporter maintenance add --service shop --start 2026-12-08T02:00 --duration 1h \\
        --comment "Database upgrade" [--by NAME] [--config.file pulse.yml]
    pulse-exporter maintenance list [--json] [--all]
    pulse-exporter maintenance cancel ID    # ends a window in progress now; removes one that has not begun

Times are ISO 8601 with an offset (2026-12-08T02:00+01:00, ...Z), or without one in the config's
`reports.timezone`; `now` starts a window at once. The silence is made first: when Alertmanager cannot
be reached nothing is recorded. The bearer token of `alertmanager:` goes to that origin only, and no
redirect is followed. Errors are one line on stderr, exit code 1 (2 for usage errors).
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
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pydantic

from exporter.config.loader import ConfigError
from exporter.config.platform import EndpointConfig
from exporter.config.types import PositiveDuration
from exporter.status.config import PlatformConfig

if TYPE_CHECKING:  # SQLAlchemy only when the journal opens
    from exporter.incidents.journal import Journal
    from exporter.incidents.model import Maintenance

MAX_WINDOW = 31 * 86400  # longer is almost surely a typo (`--duration 1y`), and would hide a month of SLA
MAX_COMMENT = 1000  # it is shown on the public status page
PAST_TOLERANCE = 60.0  # a start this far in the past is "now" typed slowly; earlier ones would rewrite history

LoadConfig = Callable[[Path | None], PlatformConfig]


class MaintenanceError(Exception):
    """A one-line reason the command did nothing (or, for cancel, what it could not finish)."""


# --------------------------------------------------------------------------------------- Alertmanager


class Alertmanager:
    """Alertmanager's API v2, the silences part."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.url = endpoint.base
        headers = {"Authorization": f"Bearer {endpoint.bearer_token}"} if endpoint.bearer_token else {}
        # follow_redirects=False (httpx's default, said here on purpose): the token stays with this origin.
        self._http = httpx.Client(base_url=self.url, timeout=endpoint.timeout, headers=headers, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def create_silence(self, service: str, starts_at: float, ends_at: float, created_by: str, comment: str) -> str:
        body = {
            "matchers": [{"name": "service", "value": service, "isRegex": False, "isEqual": True}],
            "startsAt": _rfc3339(starts_at),
            "endsAt": _rfc3339(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = self._call("POST", "/api/v2/silences", body)
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise MaintenanceError(f"Alertmanager at {self.url} answered without a silence id: {str(answer)[:200]}")
        return silence_id

    def expire_silence(self, silence_id: str) -> bool:
        """Expire it now; False when Alertmanager no longer knows it (expiring an expired one is fine)."""
        try:
            self._call("DELETE", f"/api/v2/silence/{silence_id}", None)
        except MaintenanceError as err:
            if "silence not found" in str(err):
                return False
            raise
        return True

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as err:
            raise MaintenanceError(f"cannot reach Alertmanager at {self.url}: {err or type(err).__name__}") from None
        if response.is_redirect:
            raise MaintenanceError(
                f"Alertmanager at {self.url} answered a redirect ({response.status_code}), not followed: "
                "set alertmanager.url to Alertmanager's own address"
            )
        if response.status_code >= 300:
            reason = " ".join(response.text.split())[:200] or response.reason_phrase
            raise MaintenanceError(f"Alertmanager at {self.url} answered HTTP {response.status_code}: {reason}")
        try:
            return response.json() if response.content else None
        except ValueError:
            raise MaintenanceError(f"Alertmanager at {self.url} answered something that is not JSON") from None


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -------------------------------------------------------------------------------------------- inputs


def parse_time(text: str, zone: ZoneInfo, now: float) -> float:
    """`now`, or ISO 8601: with an offset as given, without one in `zone` (refused where clocks change and
    the local time is missing or happens twice)."""
    if text.strip().lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MaintenanceError(
            f"--start {text!r}: not a time; use ISO 8601 (2026-12-08T02:00, 2026-12-08T02:00+01:00) or now"
        ) from None
    if moment.tzinfo is not None:
        return moment.timestamp()
    earlier, later = moment.replace(tzinfo=zone, fold=0), moment.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        round_trip = earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        happens = "does not exist" if round_trip != moment else "happens twice"
        raise MaintenanceError(f"--start {text!r} {happens} in {zone.key} (clocks change): give an offset")
    return earlier.timestamp()


def parse_duration(text: str) -> float:
    try:
        seconds = float(pydantic.TypeAdapter(PositiveDuration).validate_python(text))
    except pydantic.ValidationError as err:
        reason = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise MaintenanceError(f"--duration {text!r}: {reason} (e.g. 30m, 1h, 2h30m)") from None
    if seconds > MAX_WINDOW:
        raise MaintenanceError(f"--duration {text!r}: longer than 31 days; plan shorter windows")
    return seconds


def _moment(seconds: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M %Z")


def describe(window: Maintenance, zone: ZoneInfo) -> str:
    return (
        f"maintenance {window.id}: {window.service} from {_moment(window.starts_at, zone)} "
        f"to {_moment(window.ends_at, zone)}"
    )


# ------------------------------------------------------------------------------------------ commands


def _journal(config: PlatformConfig, config_name: str) -> Journal:
    if not config.incidents.enabled:
        raise MaintenanceError(
            f"{config_name}: maintenance windows are kept in the incident journal: set incidents.enabled: true"
        )
    from exporter.incidents.journal import Journal, JournalError  # noqa: PLC0415 - see the imports above

    try:
        return Journal(config.incidents.database)
    except JournalError as err:
        raise MaintenanceError(str(err)) from None


def _alertmanager(config: PlatformConfig, config_name: str) -> Alertmanager:
    if config.alertmanager is None:
        raise MaintenanceError(f"{config_name}: a maintenance window is an Alertmanager silence: set alertmanager.url")
    return Alertmanager(config.alertmanager)


def add(config: PlatformConfig, config_name: str, args: argparse.Namespace, now: float) -> str:
    if args.service not in config.services:
        known = ", ".join(sorted(config.services)) or "none"
        raise MaintenanceError(f"unknown service {args.service!r}; the services of {config_name}: {known}")
    comment = " ".join(args.comment.split())
    if not comment:
        raise MaintenanceError("--comment is empty: say what the maintenance is (it is shown on the status page)")
    if len(comment) > MAX_COMMENT:
        raise MaintenanceError(f"--comment is {len(comment)} characters; at most {MAX_COMMENT}")
    zone = ZoneInfo(config.reports.timezone)
    starts_at = parse_time(args.start, zone, now)
    if starts_at < now - PAST_TOLERANCE:
        raise MaintenanceError(f"--start {args.start!r} is in the past; a planned window starts now or later")
    starts_at = max(starts_at, now)
    ends_at = starts_at + parse_duration(args.duration)
    created_by = args.by or _user()
    alertmanager = _alertmanager(config, config_name)
    try:
        journal = _journal(config, config_name)  # opened first: no silence is made for a window that cannot be kept
    except MaintenanceError:
        alertmanager.close()
        raise
    try:
        silence_id = alertmanager.create_silence(args.service, starts_at, ends_at, created_by, comment)
        from exporter.incidents.journal import JournalError  # noqa: PLC0415 - loaded with the journal

        try:
            window = journal.add_maintenance(
                args.service, starts_at, ends_at, comment=comment, created_by=created_by, silence_id=silence_id
            )
        except JournalError as err:  # undo the silence: a window is both or neither
            alertmanager.expire_silence(silence_id)
            raise MaintenanceError(f"{err}; the silence was expired again") from None
    finally:
        alertmanager.close()
        journal.close()
    return f"{describe(window, zone)}, silence {silence_id}"


def list_windows(config: PlatformConfig, config_name: str, args: argparse.Namespace, now: float) -> str:
    zone = ZoneInfo(config.reports.timezone)
    from exporter.incidents.journal import JournalError  # noqa: PLC0415 - see the imports above

    journal = _journal(config, config_name)
    try:
        windows = journal.maintenance(since=None if args.all else now)
    except JournalError as err:
        raise MaintenanceError(str(err)) from None
    finally:
        journal.close()
    if args.json:
        return json.dumps(
            [
                {
                    "id": w.id,
                    "service": w.service,
                    "starts_at": _rfc3339(w.starts_at),
                    "ends_at": _rfc3339(w.ends_at),
                    "comment": w.comment,
                    "created_by": w.created_by,
                    "silence_id": w.silence_id,
                    "state": _state(w, now),
                }
                for w in windows
            ],
            indent=1,
            ensure_ascii=False,
        )
    if not windows:
        return "no maintenance windows" + ("" if args.all else " in progress or planned")
    rows = [("ID", "SERVICE", "STATE", "START", "END", "BY", "COMMENT")]
    rows += [
        (
            str(w.id),
            w.service,
            _state(w, now),
            _moment(w.starts_at, zone),
            _moment(w.ends_at, zone),
            w.created_by,
            w.comment,
        )
        for w in windows
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]) for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _state(window: Maintenance, now: float) -> str:
    if window.ends_at <= now:
        return "over"
    return "in progress" if window.starts_at <= now else "planned"


def cancel(config: PlatformConfig, config_name: str, args: argparse.Namespace, now: float) -> str:
    zone = ZoneInfo(config.reports.timezone)
    from exporter.incidents.journal import JournalError  # noqa: PLC0415 - see the imports above

    journal = _journal(config, config_name)
    try:
        window = next((w for w in journal.maintenance() if w.id == args.id), None)
        if window is None:
            raise MaintenanceError(f"no maintenance window {args.id} in {journal.where}")
        if window.ends_at <= now:
            return f"{describe(window, zone)} is already over; nothing to cancel"
        note = ""
        if window.silence_id:
            alertmanager = _alertmanager(config, config_name)
            try:
                if not alertmanager.expire_silence(window.silence_id):
                    note = f" (Alertmanager no longer had silence {window.silence_id})"
            finally:
                alertmanager.close()
        ended = journal.cancel_maintenance(window.id, now)
    except JournalError as err:
        raise MaintenanceError(str(err)) from None
    finally:
        journal.close()
    if ended is None:
        return f"cancelled {describe(window, zone)}: it had not begun, removed from the journal{note}"
    return f"cancelled {describe(ended, zone)}: ended now{note}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "pulse-exporter"


# ------------------------------------------------------------------------------------------ the CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulse-exporter maintenance",
        description="Planned maintenance windows: an Alertmanager silence for the service, shown on the status "
        "page and taken out of the reports' SLA figures.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=os.environ.get("PULSE_CONFIG_FILE"),
        help="Pulse config file (services, alertmanager, incidents, reports.timezone). Env: PULSE_CONFIG_FILE",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{add,list,cancel}")
    adding = commands.add_parser("add", help="plan a window: silence the service's alerts and record it")
    adding.add_argument("--service", required=True, help="a service of the config's services:")
    adding.add_argument(
        "--start", required=True, help="ISO 8601, e.g. 2026-12-08T02:00 (in reports.timezone) or with an offset; now"
    )
    adding.add_argument("--duration", required=True, help="how long: 30m, 1h, 2h30m (at most 31d)")
    adding.add_argument("--comment", required=True, help="what is done; shown on the status page")
    adding.add_argument("--by", help="who plans it (Alertmanager's createdBy). Default: the user running this")
    listing = commands.add_parser("list", help="windows in progress and planned")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.add_argument("--all", action="store_true", help="past windows too")
    cancelling = commands.add_parser("cancel", help="end a window now and expire its silence")
    cancelling.add_argument("id", type=int, help="the window's id (maintenance list)")
    for sub in (adding, listing, cancelling):  # accepted after the subcommand too
        sub.add_argument("--config.file", dest="config_file", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


COMMANDS = {"add": add, "list": list_windows, "cancel": cancel}


def main(argv: Sequence[str], load: LoadConfig) -> int:
    args = build_parser().parse_args(list(argv))
    path = Path(args.config_file) if args.config_file else None
    config_name = str(path) if path else "the embedded default config"
    try:
        config = load(path)
    except ConfigError as err:
        print(f"pulse-exporter maintenance: invalid configuration:\n{err}", file=sys.stderr)
        return 1
    try:
        print(COMMANDS[args.command](config, config_name, args, time.time()))
    except MaintenanceError as err:
        print(f"pulse-exporter maintenance: {err}", file=sys.stderr)
        return 1
    return 0
