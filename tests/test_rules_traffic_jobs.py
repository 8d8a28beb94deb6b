"""What the shipped unit tests of the traffic and jobs sets cannot show, because they run on the shipped
settings: per-job limits (each override its own rule, the default leaving those jobs out, the severity of
an override following `critical_jobs`), and settings that make no sense refused when they load.

The overrides are judged by promtool on rules generated from such settings, as Prometheus would run them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.bundle import generate
from exporter.bundle.settings import BundleSettings
from tests.helpers import require_binary

OVERRIDES = {
    "jobs": {
        "max_age_overrides": {"invoice_export": "1h", "offsite_backup": "8d"},
        "stuck_after_overrides": {"nightly_backup": "3h"},
    }
}
# promtool's view of those rules: which job fires, with which limit and severity.
OVERRIDE_UNIT_TESTS = Path(__file__).parent / "fixtures" / "jobs_overrides.test.yml"


def jobs_rules(settings: Mapping[str, object]) -> list[dict[str, Any]]:
    text = generate.generate(BundleSettings.model_validate(settings), "s.yml")["jobs.yml"]
    groups = yaml.safe_load(text)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_each_override_is_one_rule_and_the_default_rules_leave_the_overridden_jobs_out() -> None:
    rules = {
        (rule["alert"], rule["labels"]["severity"], rule["expr"])
        for rule in jobs_rules(OVERRIDES)
        if rule["alert"] in ("JobNotRunRecently", "JobStuck")
    }
    success = "pulse_job_last_success_timestamp_seconds"
    assert rules == {
        (
            "JobNotRunRecently",
            "critical",
            f'time() - ({success}{{job="pulse", job_name=~".*backup.*", job_name!~"invoice_export|offsite_backup"}} '
            "> 0) > 93600",
        ),
        (
            "JobNotRunRecently",
            "warning",
            f'time() - ({success}{{job="pulse", job_name!~".*backup.*", job_name!~"invoice_export|offsite_backup"}} '
            "> 0) > 93600",
        ),
        ("JobNotRunRecently", "warning", f'time() - ({success}{{job="pulse", job_name="invoice_export"}} > 0) > 3600'),
        (
            "JobNotRunRecently",
            "critical",
            f'time() - ({success}{{job="pulse", job_name="offsite_backup"}} > 0) > 691200',
        ),
        (
            "JobStuck",
            "warning",
            'time() - pulse_job_last_start_timestamp_seconds{job="pulse", job_name!~"nightly_backup"} > 21600\n'
            'and\npulse_job_running{job="pulse", job_name!~"nightly_backup"} == 1',
        ),
        (
            "JobStuck",
            "warning",
            'time() - pulse_job_last_start_timestamp_seconds{job="pulse", job_name="nightly_backup"} > 10800\n'
            'and\npulse_job_running{job="pulse", job_name="nightly_backup"} == 1',
        ),
    }


def test_promtool_judges_each_job_by_its_own_limit(tmp_path: Path) -> None:
    """offsite_backup (8d) and daily_sync (26h) stay silent; invoice_export fires at 1h, nightly_backup is stuck
    at 3h while invoice_export, running as long, is not (6h)."""
    promtool = require_binary("promtool")
    rules_dir, tests_dir = tmp_path / "rules", tmp_path / "tests"
    generate.write(rules_dir, generate.generate(BundleSettings.model_validate(OVERRIDES), "s.yml"))
    tests_dir.mkdir()
    (tests_dir / "overrides.test.yml").write_text(OVERRIDE_UNIT_TESTS.read_text())
    result = subprocess.run(
        [promtool, "test", "rules", "overrides.test.yml"], cwd=tests_dir, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"jobs": {"critical_jobs": "(backup"}}, "not a valid regular expression"),
        ({"jobs": {"max_age_overrides": {"nightly-backup": "1h"}}}, "should match pattern"),
        ({"jobs": {"stuck_after_overrides": {"nightly_backup": "3 hours"}}}, "should match pattern"),
        ({"traffic": {"error_ratio_warning": 0.1}}, "error_ratio_warning must be below error_ratio_critical"),
        ({"traffic": {"unparsed_ratio": 5}}, "less than or equal to 1"),
    ],
)
def test_settings_that_make_no_sense_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BundleSettings.model_validate(section)
