"""Backups and jobs (the `pulse-exporter job` wrapper's pulse_job_* series): runs and failures over the
period (exact increase of pulse_job_runs_total and pulse_job_failures_total), the last exit code and the
last success at the period's end. A job whose name contains "backup" counts as a backup, as the alerts do."""

from __future__ import annotations

from exporter.reports.model import Column, Figure, ReportWindow, Section, Table
from exporter.reports.sections.context import Context, SectionSpec, counter_increase, last_before

SELECT = '{job="pulse"}'


def runs(ctx: Context, window: ReportWindow, metric: str) -> dict[str, float]:
    expr = f"sum by (job_name) ({counter_increase(metric + SELECT, window.start, window.end)})"
    return ctx.by(expr, "job_name", "the jobs' runs")


def build(ctx: Context) -> Section:
    counts = {
        w: (runs(ctx, w, "pulse_job_runs_total"), runs(ctx, w, "pulse_job_failures_total")) for w in ctx.windows()
    }
    (ran, failed), (_, failed_before) = counts[ctx.window], counts[ctx.previous]
    exit_codes = ctx.by(f"max by (job_name) ({last_before('pulse_job_last_exit_code' + SELECT, ctx.window.end)})",
                        "job_name", "the jobs' exit codes")  # fmt: skip
    successes = ctx.by(
        f"max by (job_name) ({last_before('pulse_job_last_success_timestamp_seconds' + SELECT, ctx.window.end)})",
        "job_name", "the jobs' last successes",
    )  # fmt: skip

    def failures(found: dict[str, float], backups: bool) -> float | None:
        if not ran and not found:
            return None
        return sum(n for name, n in found.items() if ("backup" in name) == backups)

    figures = (
        Figure("backups_failed", "Failed backup runs", failures(failed, True), "short", failures(failed_before, True),
               "lower"),
        Figure("jobs_failed", "Failed job runs (other jobs)", failures(failed, False), "short",
               failures(failed_before, False), "lower"),
    )  # fmt: skip
    names = sorted(set(ran) | set(failed) | set(exit_codes))
    rows = tuple(
        (name, ran.get(name, 0.0), failed.get(name, 0.0), exit_codes.get(name),
         ctx.local(successes[name]).strftime("%Y-%m-%d %H:%M") if successes.get(name) else "never")
        for name in sorted(names, key=lambda n: (-failed.get(n, 0.0), n))
    )  # fmt: skip
    table = Table("Jobs", (Column("Job"), Column("Runs", "short"), Column("Failed", "short"),
                  Column("Last exit code", "none"), Column("Last success")), rows)  # fmt: skip
    notes = () if rows else ("No data for jobs (pulse_job_runs_total): no job ran under `pulse-exporter job`.",)
    return Section("jobs", "Backups and jobs", figures, (table,), notes=notes)


SECTION = SectionSpec("jobs", "Backups and jobs", build)
