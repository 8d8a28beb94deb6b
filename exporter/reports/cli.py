"""`pulse-exporter report`: a period's report, or one incident's, as report.html, report.pdf and report.json.

    pulse-exporter report --period week [--end 2026-12-07] [--prometheus URL] [--out DIR] [--config.file pulse.yml]
    pulse-exporter report incident 42 [--prometheus URL] [--out DIR] [--config.file pulse.yml]

What it reads comes from pulse.yml (`--config.file`, or PULSE_CONFIG_FILE): Prometheus from `prometheus.url`
(--prometheus overrides it), the journal from `incidents.database` when `incidents.enabled`, the services
and their SLA targets from `services:`, the time zone from `reports.timezone`.

Exit codes: 0 written; 1 the report could not be written (an invalid config, Prometheus or the journal
unreachable, no such incident, the PDF's libraries missing), with one line on stderr saying why; 2 bad
arguments. Progress goes to stderr: one line redrawn on a terminal, a plain line per step otherwise.

The drawing (matplotlib) and the PDF (WeasyPrint) are imported when the command runs, not with this module.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import time
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from exporter.config.loader import ConfigError
from exporter.config.platform import EndpointConfig, ServiceConfig
from exporter.incidents.config import IncidentsConfig
from exporter.reports.config import ReportsConfig
from exporter.reports.model import Report

PROG = "pulse-exporter report"
DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
FILES = ("report.html", "report.pdf", "report.json")


class PlatformConfig(Protocol):
    """The parts of pulse.yml a report reads (exporter.registry.PulseConfig has them)."""

    @property
    def services(self) -> Mapping[str, ServiceConfig]: ...
    @property
    def prometheus(self) -> EndpointConfig | None: ...
    @property
    def incidents(self) -> IncidentsConfig: ...
    @property
    def reports(self) -> ReportsConfig: ...


LoadConfig = Callable[[Path | None], PlatformConfig]


class CannotReport(Exception):
    """The report cannot be written: the message is the one line the command prints."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=os.environ.get("PULSE_CONFIG_FILE"),
        help="pulse.yml: Prometheus, the journal, the services and the time zone. Env: PULSE_CONFIG_FILE",
    )
    parser.add_argument("--prometheus", help=f"Prometheus' URL (default: prometheus.url, else {DEFAULT_PROMETHEUS})")
    parser.add_argument("--out", default=".", help="the directory report.html, .pdf and .json go to (%(default)s)")
    parser.add_argument("--timezone", help="an IANA zone for days and times (default: reports.timezone, else UTC)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the report of a day, a week or a month as report.html, report.pdf and report.json. "
        f"For one incident's report: {PROG} incident ID --help.",
    )
    parser.add_argument("--period", required=True, choices=("day", "week", "month"), help="the report's period")
    parser.add_argument(
        "--end",
        help="the report covers the last whole period before this date or time (ISO 8601, in the report's "
        "time zone; default: now), e.g. --period day --end 2026-12-07 is Sunday 6 December",
    )
    _common(parser)
    return parser


def build_incident_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} incident",
        description="Write one incident's report (from the journal) as report.html, report.pdf and report.json.",
    )
    parser.add_argument("id", type=int, help="the incident's id (pulse-exporter incidents list)")
    _common(parser)
    return parser


# ---------------------------------------------------------------------------------------------- progress


class Progress:
    """ReportInputs.progress: on a terminal, one line redrawn in place (a bar, the steps so far, the time,
    the current step); elsewhere (a log, cron) one plain line per step. A step that says "3/12" fills the
    bar that far; otherwise the bar only shows that work goes on."""

    BAR = 20
    _FRACTION = re.compile(r"\b(\d+)/(\d+)\b")
    _UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

    def __init__(self, stream: TextIO, prefix: str = PROG) -> None:
        self.stream, self.prefix = stream, prefix
        self.tty = stream.isatty()
        self.steps = 0
        self.started = time.monotonic()

    def __call__(self, step: str) -> None:
        self.steps += 1
        step = self._UNPRINTABLE.sub(" ", step)  # a title from a config must not move the cursor
        if not self.tty:
            self.stream.write(f"{self.prefix}: {step}\n")
            self.stream.flush()
            return
        fraction = self._FRACTION.search(step)
        if fraction and int(fraction.group(2)) > 0:
            filled = min(self.BAR, round(self.BAR * int(fraction.group(1)) / int(fraction.group(2))))
            bar = "#" * filled + "." * (self.BAR - filled)
        else:  # a block that moves to and fro
            position = self.steps % (2 * (self.BAR - 3))
            position = position if position <= self.BAR - 3 else 2 * (self.BAR - 3) - position
            bar = "." * position + "###" + "." * (self.BAR - 3 - position)
        elapsed = time.monotonic() - self.started
        line = f"{self.prefix} [{bar}] {self.steps} steps, {elapsed:.0f} s: {step}"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.steps:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ------------------------------------------------------------------------------------------------ writing


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: report.json is strict JSON (a NaN is 'no data' here, as in the HTML)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def _replace(path: Path, data: bytes) -> None:
    """Write next to the file, then rename: a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_report(report: Report, out: Path) -> list[Path]:
    """report.json, report.html and report.pdf in `out` (created); PdfUnavailable after the first two when
    the PDF cannot be made here."""
    from exporter.reports.html import render_html  # noqa: PLC0415 - see the module's docstring
    from exporter.reports.pdf import pdf_bytes  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    html = render_html(report)
    text = json.dumps(json_safe(report.to_json()), indent=2, ensure_ascii=False, allow_nan=False)
    _replace(out / "report.json", (text + "\n").encode())
    _replace(out / "report.html", html.encode())
    _replace(out / "report.pdf", pdf_bytes(html))
    return [out / name for name in FILES]


# ------------------------------------------------------------------------------------------------ running


def parse_end(text: str, zone: zoneinfo.ZoneInfo) -> datetime:
    """A date or a date and time (ISO 8601; in `zone` unless it says its offset), or Unix seconds."""
    try:
        return datetime.fromtimestamp(float(text), zone)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CannotReport(
            f"--end {text!r}: not a date (2026-12-07), a time (2026-12-07T07:00) or Unix seconds"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def main(argv: list[str], load_config: LoadConfig) -> int:
    incident = argv[:1] == ["incident"]
    args = (build_incident_parser() if incident else build_parser()).parse_args(argv[1:] if incident else argv)
    progress = Progress(sys.stderr)
    started = time.monotonic()
    try:
        written = _run(args, load_config, progress, incident)
    except CannotReport as error:
        progress.finish()
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    progress.finish()
    names = ", ".join(path.name for path in written)
    print(f"{PROG}: wrote {names} to {Path(args.out)} in {time.monotonic() - started:.1f} s")
    return 0


def _run(args: argparse.Namespace, load_config: LoadConfig, progress: Progress, incident: bool) -> list[Path]:
    try:
        config = load_config(Path(args.config_file) if args.config_file else None)
    except ConfigError as error:
        raise CannotReport(f"invalid configuration: {' '.join(str(error).split())}") from None
    zone_name = args.timezone or config.reports.timezone
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CannotReport(f"--timezone {zone_name!r}: not an IANA time zone (such as Europe/Paris)") from None
    end = None if incident or args.end is None else parse_end(args.end, zone)
    try:
        from exporter.dashboards.render.data import PrometheusClient, PrometheusUnreachable  # noqa: PLC0415
        from exporter.reports.build import ReportInputs, build_report  # noqa: PLC0415
        from exporter.reports.incident import IncidentReportError, build_incident_report  # noqa: PLC0415
        from exporter.reports.pdf import PdfUnavailable  # noqa: PLC0415
    except ModuleNotFoundError as error:
        raise CannotReport(f"{error}: install the render extra, pip install 'pulse-exporter[render]'") from None
    from exporter.incidents.journal import Journal, JournalError  # noqa: PLC0415 - SQLAlchemy when it runs

    endpoint = config.prometheus
    url = args.prometheus or (endpoint.base if endpoint else DEFAULT_PROMETHEUS)
    timeout = endpoint.timeout if endpoint else 30.0
    if incident and not config.incidents.enabled:
        raise CannotReport("an incident report reads the journal: set incidents.enabled and incidents.database")
    journal = None
    try:
        if config.incidents.enabled:
            progress("opening the incident journal")
            try:
                journal = Journal(config.incidents.database)
            except OSError as error:  # its directory cannot be made
                raise CannotReport(f"cannot open the incident journal: {error.strerror or error}") from None
        with PrometheusClient(url, timeout) as client:
            progress(f"checking Prometheus at {client.url}")
            client.check()
            inputs = ReportInputs(client, journal, config.services, zone_name, progress)
            report: Report = (
                build_incident_report(args.id, inputs) if incident else build_report(args.period, inputs, end)
            )
    except PrometheusUnreachable as error:
        raise CannotReport(str(error)) from None
    except (JournalError, IncidentReportError) as error:
        raise CannotReport(str(error)) from None
    finally:
        if journal is not None:
            journal.close()
    progress("writing report.html, report.pdf and report.json")
    try:
        return write_report(report, Path(args.out))
    except PdfUnavailable as error:
        raise CannotReport(f"{error} (report.html and report.json were written)") from None
    except OSError as error:
        raise CannotReport(f"cannot write the report to {args.out}: {error.strerror or error}") from None
