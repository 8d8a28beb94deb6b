"""The probes set's settings that the shipped defaults leave unused: per-module ProbeSlow thresholds, and
the refusal of thresholds out of order. (prometheus/tests/probes.test.yml covers the defaults.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.bundle import generate
from exporter.bundle.settings import BundleSettings
from tests.helpers import require_binary

UNIT_TEST = {
    "rule_files": ["probes.yml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                {
                    "series": 'probe_duration_seconds{job="pulse-probes", instance="a", module="http_2xx"}',
                    "values": "2x20",
                },
                {
                    "series": 'probe_duration_seconds{job="pulse-probes", instance="b", module="checkout"}',
                    "values": "3x20",
                },
                {
                    "series": 'probe_duration_seconds{job="pulse-probes", instance="c", module="checkout"}',
                    "values": "6x20",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "15m",
                    "alertname": "ProbeSlow",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "team": "platform",
                                "job": "pulse-probes",
                                "instance": instance,
                                "module": module,
                            },
                            "exp_annotations": {
                                "summary": "A synthetic probe is slow.",
                                "description": f"The probe of {instance} (module {module}, service ) took {took} on "
                                f"average over 5 minutes, for 5m; the threshold is {threshold}s.",
                                "runbook_url": "https://github.com/pulse-monitoring/pulse/blob/main/docs/runbooks/probes.md#probeslow",
                                "dashboard_url": "http://localhost:3000/d/pulse-probes",
                            },
                        }
                        for instance, module, took, threshold in (
                            ("a", "http_2xx", "2s", "1"),
                            ("c", "checkout", "6s", "5"),
                        )
                    ],
                }
            ],
        }
    ],
}


def test_a_module_with_its_own_slow_threshold_is_judged_by_it(tmp_path: Path) -> None:
    settings = BundleSettings.model_validate({"probes": {"slow_seconds_by_module": {"checkout": 5}}})
    (tmp_path / "probes.yml").write_text(generate.generate(settings, "s.yml")["probes.yml"])
    (tmp_path / "slow.test.yml").write_text(yaml.safe_dump(UNIT_TEST))
    promtool = require_binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", "probes.yml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "slow.test.yml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize(
    ("probes", "message"),
    [
        ({"certificate_warning_days": 7, "certificate_critical_days": 7}, "certificate_critical_days must be fewer"),
        ({"accepted_status_min": 400, "accepted_status_max": 399}, "accepted_status_min must not be above"),
        ({"slow_seconds_by_module": {'x"}': 2}}, "slow_seconds_by_module"),
    ],
)
def test_settings_out_of_order_or_unsafe_are_refused(probes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BundleSettings.model_validate({"probes": probes})
