"""The windows a report covers: the last whole day, ISO week or calendar month before a moment, in the
reports' time zone, and the one before it. Pure date arithmetic, light enough for the exporter's report
schedule to import (building a report needs the journal and Prometheus, in build.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from exporter.reports.config import Period
from exporter.reports.model import ReportWindow


def local_midnight(day: date, zone: ZoneInfo) -> float:
    """The instant the local day begins (DST-correct: the offset of that very day)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _period_start(period: Period, day: date) -> date:
    """The first day of the day, week (Monday) or month containing `day`."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _previous_start(period: Period, first: date) -> date:
    if period == "day":
        return first - timedelta(days=1)
    if period == "week":
        return first - timedelta(days=7)
    return (first - timedelta(days=1)).replace(day=1)


def _label(period: Period, first: date, last: date) -> str:
    if period == "day":
        return f"{first:%A} {first.day} {first:%B %Y}"
    if period == "week":
        year, week, _ = first.isocalendar()
        months = f"{first.day} {first:%B}" if first.month != last.month else f"{first.day}"
        return f"week {week}, {year} ({months} to {last.day} {last:%B %Y})"
    return f"{first:%B %Y}"


def period_windows(
    period: Period, end: datetime | None = None, timezone: str = "UTC"
) -> tuple[ReportWindow, ReportWindow]:
    """The last whole day, ISO week (Monday to Sunday) or calendar month before `end` (default now) in the
    time zone, and the one before it. Local midnights bound them, so a day lasts 23 or 25 hours when the
    clocks change. A naive `end` is read in the time zone."""
    zone = ZoneInfo(timezone)
    moment = datetime.now(zone) if end is None else (end.replace(tzinfo=zone) if end.tzinfo is None else end)
    current = _period_start(period, moment.astimezone(zone).date())
    first = _previous_start(period, current)
    before = _previous_start(period, first)

    def window(start: date, stop: date) -> ReportWindow:
        return ReportWindow(
            local_midnight(start, zone), local_midnight(stop, zone), _label(period, start, stop - timedelta(days=1))
        )

    return window(first, current), window(before, first)
