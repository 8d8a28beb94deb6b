"""Capacity: disks (space used, its growth over the period, time until full at the period's trend) and
the peaks of CPU and memory.

- Used a month before: at the same local time a calendar month before the period's end (growth against
  last month, whatever the period).
- Disk growth: the free space (node_filesystem_avail_bytes) before the period minus at its end.
- Time until full: the free space at the end divided by the rate it shrank over the whole period
  (deriv(), a least-squares slope over the period's samples): a trend over the period, not the last 6 h
  the alert uses. Only filesystems whose free space shrank have one.
- Peak CPU and memory: max_over_time of the host rules' instance:node_cpu_utilisation:rate5m and
  instance:node_memory_utilisation:ratio over the period (exact over the recorded samples).
Each figure comes with the previous period's (for a monthly review, last month's).
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import Context, SectionSpec, figure, in_period, last_before, over

FILESYSTEMS = 'node_filesystem_avail_bytes{job="pulse", fstype!="", mountpoint!=""}'
SIZES = 'node_filesystem_size_bytes{job="pulse", fstype!="", mountpoint!=""}'
KEYS = ("instance", "mountpoint")
PULSE = '{job="pulse"}'


def used_at(instant: float) -> str:
    return f"max by (instance, mountpoint) (1 - {last_before(FILESYSTEMS, instant)} / {last_before(SIZES, instant)})"


def disks(ctx: Context, window: ReportWindow) -> dict[tuple[str, ...], dict[str, float]]:
    """{(instance, mountpoint): {"used": ratio, "used_month_before": ratio, "growth": bytes, "until_full": s}}
    over the window."""
    avail_end = last_before(FILESYSTEMS, window.end)
    avail_start = last_before(FILESYSTEMS, window.start)
    shrinking = in_period(FILESYSTEMS, window.start, window.end)
    found: dict[tuple[str, ...], dict[str, float]] = {}
    queries = {
        "used": used_at(window.end),
        "used_month_before": used_at(ctx.month_before(window.end)),
        "growth": f"max by (instance, mountpoint) ({avail_start} - {avail_end})",
        "until_full": f"min by (instance, mountpoint) ({avail_end} / -(deriv({shrinking}) < 0))",
    }
    for name, expr in queries.items():
        for key, value in ctx.by_labels(expr, KEYS, "disk space").items():
            found.setdefault(key, {})[name] = value
    return found


def build(ctx: Context) -> Section:
    def peak(name: str) -> Callable[[ReportWindow], float | None]:
        return lambda w: ctx.scalar(f"max({over('max_over_time', name + PULSE, w.start, w.end)})", name)

    now, before = disks(ctx, ctx.window), disks(ctx, ctx.previous)
    figures = [
        figure("cpu_peak", "Peak CPU busy", peak("instance:node_cpu_utilisation:rate5m"), ctx, "percentunit",
               "lower"),
        figure("memory_peak", "Peak memory used", peak("instance:node_memory_utilisation:ratio"), ctx,
               "percentunit", "lower"),
    ]  # fmt: skip
    used = [d["used"] for d in now.values() if "used" in d]
    used_before = [d["used"] for d in before.values() if "used" in d]
    figures.append(Figure("disk_used_max", "Fullest filesystem", max(used, default=None), "percentunit",
                          max(used_before, default=None), "lower"))  # fmt: skip
    full = [d["until_full"] for d in now.values() if "until_full" in d]
    full_before = [d["until_full"] for d in before.values() if "until_full" in d]
    if full:
        figures.append(Figure("disk_time_to_full", "Shortest time until a filesystem is full", min(full), "s",
                              min(full_before, default=None), "higher"))  # fmt: skip
    rows = tuple(
        (instance, mountpoint, d.get("used"), d.get("used_month_before"), d.get("growth"),
         before.get((instance, mountpoint), {}).get("growth"), d.get("until_full", "not filling"))
        for (instance, mountpoint), d in sorted(now.items())
    )  # fmt: skip
    columns = (Column("Instance"), Column("Mountpoint"), Column("Used", "percentunit"),
               Column("Used a month before", "percentunit"), Column("Growth", "bytes"),
               Column("Growth, previous period", "bytes"), Column("Time until full", "s"))  # fmt: skip
    table = Table("Filesystems", columns, rows)
    notes = () if rows else ("No data for filesystems (node_filesystem_avail_bytes).",)
    charts = (ctx.chart("system", "Space used per mountpoint"), ctx.chart("system", "Memory"))
    return Section("capacity", "Capacity", tuple(figures), (table,), charts, notes)


SECTION = SectionSpec("capacity", "Capacity", build)
