"""Backups and cron jobs run through `pulse-exporter job run`, and the textfile collector that serves their
metrics (docs/jobs.md).

Jobs whose name matches `critical_jobs` (backups, by default) page; the others go to chat. Age limits have
a default and per-job overrides: each override is its own rule, and the default rule leaves those jobs out,
so a job is judged by exactly one limit. Every alert has `service="jobs"` and keeps the job's `job_name`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

import pydantic

from exporter.bundle.rules import Alert, Group, Recording, Severity
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors
from exporter.bundle.sets.promql import seconds, string
from exporter.config.types import compile_regex

# What `pulse-exporter job run --name` accepts, so an override cannot name a job that cannot exist.
JobName = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
# An RE2 pattern, as Prometheus reads it: checked when the settings load, kept as written.
Pattern = Annotated[str, pydantic.AfterValidator(lambda text: compile_regex(text).pattern)]


class JobsSettings(RuleSetSettings):
    critical_jobs: Pattern = ".*backup.*"  # job names (whole name) whose failures and age page
    max_age: PromDuration = "26h"  # JobNotRunRecently: no success for this long
    max_age_overrides: dict[JobName, PromDuration] = pydantic.Field(default_factory=dict)
    stuck_after: PromDuration = "6h"  # JobStuck: one run going for this long
    stuck_after_overrides: dict[JobName, PromDuration] = pydantic.Field(default_factory=dict)
    textfile_error_for: PromDuration = "15m"


# Builds one alert from its severity, its label matchers and its limit (a duration).
AlertFor = Callable[[Severity, str, str], Alert]


def per_job_limits(
    settings: JobsSettings, selector: str, default: str, overrides: Mapping[str, str], alert: AlertFor, *, split: bool
) -> list[Alert]:
    """The default limit's rule(s), leaving the overridden jobs out, then one rule per override.

    With `split`, the default is two rules, critical for jobs matching `critical_jobs` and warning for the
    others, and each override takes the severity its job's name gets (RE2 decides here as in Prometheus)."""
    critical = compile_regex(settings.critical_jobs)
    excluded = f", job_name!~{string('|'.join(sorted(overrides)))}" if overrides else ""
    if split:
        pattern = string(settings.critical_jobs)
        rules = [
            alert("critical", f"{selector}, job_name=~{pattern}{excluded}", default),
            alert("warning", f"{selector}, job_name!~{pattern}{excluded}", default),
        ]
    else:
        rules = [alert("warning", f"{selector}{excluded}", default)]
    for job_name, limit in sorted(overrides.items()):
        severity: Severity = "critical" if split and critical.fullmatch(job_name) else "warning"
        rules.append(alert(severity, f"{selector}, job_name={string(job_name)}", limit))
    return rules


def build(settings: JobsSettings, selectors: Selectors) -> list[Group]:
    selector = selectors.pulse
    where = "Job {{ $labels.job_name }} on {{ $labels.instance }}"

    def failed(severity: Severity, matchers: str) -> Alert:
        return Alert(
            name="JobFailed",
            expr=f"pulse_job_last_exit_code{{{matchers}}} != 0",
            severity=severity,
            team="platform",
            service="jobs",
            summary="A job's last run failed.",
            description=f"{where} exited with code {{{{ $value }}}} on its last run (124: timed out; 128+N: killed "
            "by signal N; 127: command not found).",
            dashboard="system",
        )

    def not_run_recently(severity: Severity, matchers: str, limit: str) -> Alert:
        return Alert(
            name="JobNotRunRecently",
            # `> 0`: a job that never succeeded has 0 here; JobFailed and JobStuck speak for it.
            expr=f"time() - (pulse_job_last_success_timestamp_seconds{{{matchers}}} > 0) > {seconds(limit)}",
            severity=severity,
            team="platform",
            service="jobs",
            summary="A job has not succeeded for too long.",
            description=f"{where} last succeeded {{{{ $value | humanizeDuration }}}} ago ({severity} after {limit}).",
            dashboard="system",
        )

    def stuck(severity: Severity, matchers: str, limit: str) -> Alert:
        return Alert(
            name="JobStuck",
            expr=f"time() - pulse_job_last_start_timestamp_seconds{{{matchers}}} > {seconds(limit)}\n"
            f"and\npulse_job_running{{{matchers}}} == 1",
            severity=severity,
            team="platform",
            service="jobs",
            summary="A job has been running for too long.",
            description=f"{where} started {{{{ $value | humanizeDuration }}}} ago and has not ended (warning after "
            f"{limit}): it hangs, or its wrapper was killed.",
            dashboard="system",
        )

    pattern = string(settings.critical_jobs)
    alerts = [
        failed("critical", f"{selector}, job_name=~{pattern}"),
        failed("warning", f"{selector}, job_name!~{pattern}"),
        *per_job_limits(settings, selector, settings.max_age, settings.max_age_overrides, not_run_recently, split=True),
        *per_job_limits(settings, selector, settings.stuck_after, settings.stuck_after_overrides, stuck, split=False),
        Alert(
            name="TextfileScrapeError",
            expr=f"node_textfile_scrape_error{{{selector}}} == 1",
            for_=settings.textfile_error_for,
            severity="warning",
            team="platform",
            service="jobs",
            summary="The textfile collector cannot read a file of its directory.",
            description="Pulse's textfile collector on {{ $labels.instance }} has failed to open, read or parse a "
            f"file (or list its directory) for {settings.textfile_error_for}: that file's metrics, such as a "
            "job's, are missing.",
            dashboard="system",
        ),
    ]
    recordings = [
        # The age of each job's last success, for dashboards; absent for a job that never succeeded.
        Recording(
            "job_name:pulse_job_last_success:age_seconds",
            f"time() - (pulse_job_last_success_timestamp_seconds{{{selector}}} > 0)",
        ),
    ]
    return [Group("jobs_recording", recordings), Group("jobs", alerts)]


RULE_SET = RuleSet(
    name="jobs",
    title="Backups and cron jobs: failures, age of the last success, stuck runs and the textfile collector",
    settings=JobsSettings,
    build=build,
)
