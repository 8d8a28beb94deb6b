"""The `reports.schedule` of pulse.yml, run by the exporter while it serves.

    reports:
      directory: /var/lib/pulse/reports
      keep: 30
      timezone: Europe/Paris
      schedule:
        - {period: day, cron: "0 7 * * *"}      # each morning, yesterday's report
        - {period: week, cron: "0 7 * * 1"}     # Mondays, last week's
        - {period: month, cron: "0 7 1 * *"}    # on the 1st, last month's

A collector owns the schedule: a background task that sleeps until the next cron time (in the reports'
time zone) and then runs `python -m exporter report --period P --config.file <the exporter's file>` in a
subprocess, so matplotlib and WeasyPrint never load into the exporter and a crash in a report cannot
take it down. One report runs at a time. Each writes into a temporary directory beside the others,
renamed to `<directory>/<period>/<label>/` once complete (2026-12-06, 2026-W49, 2026-12): a reader never
sees half a report. The newest `keep` of each period are kept. Its metrics:

    pulse_report_last_success_timestamp_seconds{period}   when the last report of the period was written
    pulse_report_last_duration_seconds{period}            how long that run took
    pulse_report_failures_total{period}                   runs that failed (the log says why)

Occurrences count from the exporter's start, with one catch-up: when Pulse starts after an entry's
latest time had passed and that report is missing from a period directory the schedule has written
before (Pulse was down or restarting at 07:00), it is written at once, as long as it is still the last
whole period. Older misses are left to `pulse-exporter report --end DATE` by hand; a new schedule waits
for its first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Cell, Collector, StatusTable
from exporter.dashboards.render.units import from_now
from exporter.reports.config import Period, ReportsConfig, ScheduledReport
from exporter.reports.periods import period_windows

log = logging.getLogger(__name__)

NAME = "reports"
RUN_TIMEOUT = 30 * 60.0  # a report that has not finished by then is stopped and counted as failed
RUNNING_PREFIX = ".running-"
LABEL_FORMATS = {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}


@dataclass(frozen=True)
class ScheduleSettings:
    """What the schedule needs: the `reports:` section, and the config file the reports read (the
    exporter's own, so a report sees the same Prometheus, journal and services)."""

    reports: ReportsConfig
    config_file: str | None


def directory_label(period: Period, start: float, timezone: str) -> str:
    """The name of a report's directory: its period's first day, as a name that sorts by time."""
    return datetime.fromtimestamp(start, zoneinfo.ZoneInfo(timezone)).strftime(LABEL_FORMATS[period])


def report_label(period: Period, at: float, timezone: str) -> str:
    """The directory label of the report a run at `at` writes: that of the last whole period before it."""
    window, _ = period_windows(period, datetime.fromtimestamp(at, zoneinfo.ZoneInfo(timezone)), timezone)
    return directory_label(period, window.start, timezone)


def report_command(period: Period, out: Path, config_file: str | None) -> list[str]:
    config = ["--config.file", config_file] if config_file else []
    return [sys.executable, "-m", "exporter", "report", "--period", period, "--out", str(out), *config]


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` reports in one period's directory (and leftovers of runs that
    were killed); returns what was deleted."""
    reports = sorted(path for path in directory.iterdir() if path.is_dir() and not path.name.startswith("."))
    stale = [path for path in directory.iterdir() if path.name.startswith(RUNNING_PREFIX)]
    doomed = reports[: max(0, len(reports) - keep)] + stale
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


class ReportSchedule(Collector):
    def __init__(self, settings: ScheduleSettings, *, since: float | None = None) -> None:
        super().__init__(NAME, settings)
        self.settings = settings
        self.zone = zoneinfo.ZoneInfo(settings.reports.timezone)
        # Each entry's last occurrence dealt with: occurrences after it are due.
        start = time.time() if since is None else since
        self._done = dict.fromkeys(range(len(settings.reports.schedule)), start)
        periods = {entry.period for entry in settings.reports.schedule}
        self.failures: dict[str, int] = dict.fromkeys(sorted(periods), 0)
        self.last_success: dict[str, float] = {}
        self.last_duration: dict[str, float] = {}
        self.last_outcome: dict[str, tuple[float, str]] = {}  # period -> (when, "" or why it failed): the landing page
        self._task: asyncio.Task[None] | None = None

    async def start(self, predecessor: Collector | None = None) -> None:
        if isinstance(predecessor, ReportSchedule):  # a reload changed the schedule: the counts go on
            for period in self.failures:
                self.failures[period] = predecessor.failures.get(period, 0)
            self.last_success.update(predecessor.last_success)
            self.last_duration.update(predecessor.last_duration)
            self.last_outcome.update(predecessor.last_outcome)
        else:  # a start, not a reload: a report missed while Pulse was down is due now
            for index in self.missed(time.time()):
                self._done[index] = 0.0
        self._task = asyncio.create_task(self._loop(), name="reports schedule")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ------------------------------------------------------------------------------------------- timing

    def next_time(self, after: float) -> float | None:
        """The next occurrence of any entry after `after` (None without a schedule)."""
        from croniter import croniter  # noqa: PLC0415 - only for a configured schedule

        times = [
            croniter(entry.cron, datetime.fromtimestamp(after, self.zone)).get_next(float)
            for entry in self.settings.reports.schedule
        ]
        return min(times, default=None)

    def latest_time(self, entry: ScheduledReport, now: float) -> float:
        """The entry's latest occurrence at or before `now` (croniter's get_prev is strictly before its base)."""
        from croniter import croniter  # noqa: PLC0415 - only for a configured schedule

        times = croniter(entry.cron, datetime.fromtimestamp(now + 0.001, self.zone))
        latest: float = times.get_prev(float)
        return times.get_prev(float) if latest > now else latest

    def due(self, now: float) -> list[tuple[int, ScheduledReport, float]]:
        """The entries with an occurrence after the last one dealt with and at or before `now`."""
        found = []
        for index, entry in enumerate(self.settings.reports.schedule):
            latest = self.latest_time(entry, now)
            if self._done[index] < latest <= now:
                found.append((index, entry, latest))
        return found

    def missed(self, now: float) -> list[int]:
        """The entries whose latest occurrence would have written a report that a run now still writes (the
        same last whole period) and that is missing from a period directory already holding reports. One
        entry per period: two crons of one period write the same report."""
        timezone = self.settings.reports.timezone
        found: dict[Period, int] = {}
        for index, entry in enumerate(self.settings.reports.schedule):
            label = report_label(entry.period, self.latest_time(entry, now), timezone)
            directory = Path(self.settings.reports.directory) / entry.period
            if entry.period in found or label != report_label(entry.period, now, timezone) or not directory.is_dir():
                continue
            written = {path.name for path in directory.iterdir() if not path.name.startswith(".")}
            if written and label not in written:
                found[entry.period] = index
        return sorted(found.values())

    async def run_due(self, now: float) -> list[bool]:
        """Run every entry due at `now`, one after the other; their outcomes."""
        outcomes = []
        for index, entry, occurrence in self.due(now):
            self._done[index] = occurrence
            outcomes.append(await self.run(entry.period))
        return outcomes

    async def _loop(self) -> None:
        while True:  # the first pass runs a catch-up (see missed), if any
            try:
                await self.run_due(time.time())
            except Exception:  # a bug must not end the schedule: logged, and the next run comes
                log.exception("scheduled report failed unexpectedly")
            upcoming = self.next_time(time.time())
            if upcoming is None:
                return
            await asyncio.sleep(max(0.0, upcoming - time.time()) + 0.2)

    # ------------------------------------------------------------------------------------------ running

    async def run(self, period: Period) -> bool:
        """One report of `period` into `<directory>/<period>/<label>/`; False (logged, counted) on failure."""
        directory = Path(self.settings.reports.directory) / period
        started = time.monotonic()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            temporary = Path(tempfile.mkdtemp(prefix=RUNNING_PREFIX, dir=directory))
        except OSError as problem:
            return self._failed(period, f"cannot create {directory}: {problem.strerror or problem}")
        try:
            why = await self._subprocess(report_command(period, temporary, self.settings.config_file))
            if why:
                return self._failed(period, why)
            final = await asyncio.to_thread(self._publish, period, directory, temporary)
        except (OSError, ValueError, KeyError) as problem:
            return self._failed(period, f"cannot keep the report: {problem}")
        finally:
            if temporary.exists():
                await asyncio.to_thread(shutil.rmtree, temporary, True)
        self.last_success[period] = time.time()
        self.last_duration[period] = time.monotonic() - started
        self.last_outcome[period] = (self.last_success[period], "")
        log.info("scheduled report written", extra={"period": period, "directory": str(final)})
        return True

    async def _subprocess(self, command: Sequence[str]) -> str:
        """Run the report; "" when it succeeded, else why not (the last line it printed on stderr)."""
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            return f"stopped after {RUN_TIMEOUT:.0f} s"
        except asyncio.CancelledError:  # the exporter stops, or a reload drops the schedule
            process.kill()
            await process.wait()
            raise
        if process.returncode == 0:
            return ""
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1][:500] if lines else f"exit code {process.returncode}"

    def _publish(self, period: Period, directory: Path, temporary: Path) -> Path:
        """Rename the finished report into place (replacing one of the same label) and prune."""
        start = json.loads((temporary / "report.json").read_text(encoding="utf-8"))["start"]
        final = directory / directory_label(period, float(start), self.settings.reports.timezone)
        if final.exists():  # written again (by hand, or a schedule run twice): the newer one wins
            old = Path(tempfile.mkdtemp(prefix=RUNNING_PREFIX, dir=directory))
            os.replace(final, old / final.name)
            os.replace(temporary, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, final)
        prune(directory, self.settings.reports.keep)
        return final

    def _failed(self, period: str, why: str) -> bool:
        self.failures[period] = self.failures.get(period, 0) + 1
        self.last_outcome[period] = (time.time(), why)
        log.error("scheduled report failed", extra={"period": period, "err": why})
        return False

    def status_tables(self) -> list[StatusTable]:
        from croniter import croniter  # noqa: PLC0415 - only for a configured schedule

        rows = []
        now = time.time()
        for entry in self.settings.reports.schedule:
            upcoming = croniter(entry.cron, datetime.fromtimestamp(now, self.zone)).get_next(float)
            outcome = self.last_outcome.get(entry.period)
            if outcome is None:
                last = [Cell("not run yet", "none"), Cell()]
            elif not outcome[1]:
                last = [Cell(f"written in {self.last_duration[entry.period]:.1f} s", "ok"), Cell(when=outcome[0])]
            else:
                last = [Cell(f"FAILED: {outcome[1]}", "error"), Cell(when=outcome[0])]
            # A text, not a `when` cell: the landing page shows those as ages, and this one is ahead.
            next_run = f"{datetime.fromtimestamp(upcoming, self.zone):%Y-%m-%d %H:%M %Z} ({from_now(upcoming, now)})"
            rows.append([Cell(entry.period), Cell(entry.cron), Cell(next_run), *last])
        note = f"Written into {self.settings.reports.directory}/<period>/, the last {self.settings.reports.keep} kept."
        return [StatusTable("Scheduled reports", ("Period", "Cron", "Next", "Last run", "When"), rows, note)]

    # ------------------------------------------------------------------------------------------ metrics

    async def collect(self) -> Sequence[Metric]:
        success = GaugeMetricFamily(
            "pulse_report_last_success_timestamp_seconds",
            "When the last scheduled report of each period was written (Unix seconds).",
            labels=["period"],
        )
        duration = GaugeMetricFamily(
            "pulse_report_last_duration_seconds",
            "How long the last successful scheduled report of each period took to build and write.",
            labels=["period"],
        )
        failures = CounterMetricFamily(
            "pulse_report_failures",
            "Scheduled reports that failed, by period (the exporter's log says why).",
            labels=["period"],
        )
        for period, at in sorted(self.last_success.items()):
            success.add_metric([period], at)
            duration.add_metric([period], self.last_duration[period])
        for period, count in sorted(self.failures.items()):
            failures.add_metric([period], count)
        return [success, duration, failures]


def build(config: ReportsConfig, config_file: Path | None) -> list[Collector]:
    """The schedule's collector when `reports.schedule` has entries."""
    if not config.schedule:
        return []
    return [ReportSchedule(ScheduleSettings(config, str(config_file) if config_file else None))]
