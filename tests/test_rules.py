"""The shipped Prometheus rules: generated from prometheus/settings.yml and committed, valid for promtool,
written to Pulse's alert conventions (mixtool's lint rules), linked to runbooks that exist, and each
alert covered by a promtool unit test that sees it fire and one that sees it stay silent.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.bundle import generate
from exporter.bundle.rules import DASHBOARDS, TEAMS
from exporter.bundle.sets import RULE_SETS
from exporter.bundle.settings import BundleSettings, load, section_fields
from exporter.config.loader import ConfigError
from tests.helpers import require_binary
from tests.rules import (
    PROMETHEUS_DIR,
    RULES_DIR,
    SET_NAMES,
    SETTINGS_FILE,
    UNIT_TESTS_DIR,
    ShippedRule,
    alert_rule_tests,
    rule_files,
    runbook_headings,
    shipped_alerts,
    shipped_rules,
    unit_test_files,
)

# Alerts that by design never stay silent, so no unit test can show them silent.
ALWAYS_FIRING = {"Watchdog"}
RECORDING_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-zA-Z][a-zA-Z0-9_]*:[a-z][a-z0-9_]*$")
ALERT_NAME = re.compile(r"^[A-Z][a-z0-9]*([A-Z0-9][a-z0-9]*)*$")


def run_cli(*args: str, cwd: Path = PROMETHEUS_DIR.parent) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# ------------------------------------------------------------------------------------ generated, committed


def test_the_committed_rule_files_are_what_the_settings_generate() -> None:
    files = generate.generate(load(SETTINGS_FILE), "prometheus/settings.yml")
    assert generate.differences(RULES_DIR, files) == []
    assert run_cli("rules", "generate", "--check").returncode == 0


def test_every_rule_set_has_its_file_unit_tests_and_runbooks() -> None:
    for name in SET_NAMES:
        assert (RULES_DIR / f"{name}.yml").is_file(), name
        assert (UNIT_TESTS_DIR / f"{name}.test.yml").is_file(), name
        assert runbook_headings(name), f"docs/runbooks/{name}.md has no sections"


def test_check_reports_an_edited_file_and_generate_restores_it(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    assert run_cli("rules", "generate", "--out", str(out)).returncode == 0
    edited = out / "pulse.yml"
    edited.write_text(edited.read_text().replace("for: 5m", "for: 1m"))
    checked = run_cli("rules", "generate", "--out", str(out), "--check")
    assert checked.returncode == 1
    assert f"{edited}: differs from what the settings generate" in checked.stderr
    assert run_cli("rules", "generate", "--out", str(out)).returncode == 0
    assert run_cli("rules", "generate", "--out", str(out), "--check").returncode == 0


def test_a_disabled_set_loses_its_file_and_a_users_own_rule_file_stays(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    assert run_cli("rules", "generate", "--out", str(out)).returncode == 0
    own = out / "my-team.yml"
    own.write_text("groups: []\n")
    settings = tmp_path / "settings.yml"
    settings.write_text("pulse:\n  enabled: false\n")
    assert run_cli("rules", "generate", "--settings", str(settings), "--out", str(out), "--check").returncode == 1
    assert run_cli("rules", "generate", "--settings", str(settings), "--out", str(out)).returncode == 0
    assert not (out / "pulse.yml").exists()
    assert own.read_text() == "groups: []\n"


def test_disabled_alerts_are_left_out_and_unknown_names_are_refused() -> None:
    settings = BundleSettings.model_validate({"pulse": {"disabled_alerts": ["PulseDown"]}})
    text = generate.generate(settings, "s.yml")["pulse.yml"]
    assert "PulseDown" not in text
    assert "Watchdog" in text
    typo = BundleSettings.model_validate({"pulse": {"disabled_alerts": ["PulseDwn"]}})
    with pytest.raises(ConfigError, match=r"pulse\.disabled_alerts: no alert named PulseDwn in this set"):
        generate.generate(typo, "s.yml")


def test_a_bad_settings_file_names_file_line_and_field_without_a_traceback(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yml"
    settings.write_text("grafana_url: http://grafana:3000\npulse:\n  down_for: five minutes\n")
    result = run_cli("rules", "generate", "--settings", str(settings), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{settings}:3: pulse.down_for" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_settings_file_shows_every_key_of_every_set() -> None:
    """The shipped settings.yml is where users look for what they can tune: no key only in the code."""
    raw = yaml.safe_load(SETTINGS_FILE.read_text())
    for rule_set in RULE_SETS:
        section = raw.get(rule_set.name) or {}
        own = [name for name in section_fields(rule_set) if name not in ("enabled", "disabled_alerts")]
        assert [name for name in own if name not in section] == [], rule_set.name


# ------------------------------------------------------------------------------------------------ promtool


def test_promtool_checks_the_config_and_every_rule_file() -> None:
    promtool = require_binary("promtool")
    config = str(PROMETHEUS_DIR / "prometheus.yml")
    # --lint-fatal: promtool's lint (two rules with the same name and labels) prints FAILED but exits 0.
    checked = subprocess.run(
        [promtool, "check", "config", "--lint-fatal", config], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", "--lint-fatal", *map(str, rule_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_the_promtool_unit_tests_pass() -> None:
    """One promtool per file, all at once: the long files (30 days of SLO windows) take most of a core each."""
    promtool = require_binary("promtool")
    runs = {
        path.name: subprocess.Popen(
            [promtool, "test", "rules", path.name],
            cwd=UNIT_TESTS_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in unit_test_files()
    }
    outputs = {name: run.communicate(timeout=300)[0] for name, run in runs.items()}
    assert {name: outputs[name] for name, run in runs.items() if run.returncode != 0} == {}


def test_every_alert_is_seen_firing_and_seen_silent_by_a_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for _, case in alert_rule_tests():
        (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {alert.name for alert in shipped_alerts()}
    assert sorted(names - firing) == []
    assert sorted(names - silent - ALWAYS_FIRING) == []


def test_every_expected_alert_in_the_unit_tests_carries_the_routing_labels() -> None:
    """Alertmanager routes on severity, team and service: a unit test's expected labels must show all three."""
    for path, case in alert_rule_tests():
        for expected in case.get("exp_alerts") or []:
            labels = expected.get("exp_labels", {})
            assert {"severity", "team", "service"} <= set(labels), (path.name, case["alertname"], labels)


# -------------------------------------------------------------------------------- conventions (mixtool lint)


@pytest.mark.parametrize("alert", shipped_alerts(), ids=lambda alert: alert.name)
def test_alert_follows_the_conventions(alert: ShippedRule) -> None:
    rule = alert.rule
    labels, annotations = rule["labels"], rule["annotations"]
    assert ALERT_NAME.match(alert.name), "alert names are CamelCase"
    assert labels["severity"] in ("critical", "warning", "info")
    assert labels["team"] in TEAMS
    summary = annotations["summary"]
    assert "{{" not in summary, "the summary is static: the description carries the details"
    assert summary[0].isupper(), "the summary is a sentence"
    assert summary.endswith("."), "the summary is a sentence"
    assert "{{" in annotations["description"], "the description says what fired, where and how much"
    set_name = alert.file.stem
    assert annotations["runbook_url"].endswith(f"/{set_name}.md#{alert.name.lower()}")
    assert alert.name in runbook_headings(set_name), f"docs/runbooks/{set_name}.md has no '## {alert.name}'"
    assert annotations["dashboard_url"].rsplit("/d/", 1)[1] in DASHBOARDS.values()


def test_alert_names_are_unique_across_sets_unless_severities_differ() -> None:
    seen: dict[tuple[str, str], str] = {}
    for alert in shipped_alerts():
        key = (alert.name, alert.rule["labels"]["severity"])
        assert key not in seen or seen[key] == alert.file.name, key
        seen[key] = alert.file.name


# Sloth's info series keeps Sloth's name, so that Sloth's dashboards and queries work on Pulse's SLOs.
FOREIGN_RECORDING_NAMES = {"sloth_slo_info"}


def test_recording_rules_are_named_level_metric_operations() -> None:
    records = [rule.name for rule in shipped_rules() if not rule.is_alert]
    assert records
    assert [name for name in records if not RECORDING_NAME.match(name) and name not in FOREIGN_RECORDING_NAMES] == []


@pytest.mark.parametrize("set_name", SET_NAMES)
def test_every_runbook_section_says_what_it_means_what_to_check_and_how_to_resolve(set_name: str) -> None:
    text = (PROMETHEUS_DIR.parent / "docs" / "runbooks" / f"{set_name}.md").read_text()
    alerts = {alert.name for alert in shipped_alerts() if alert.file.stem == set_name}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading = section.splitlines()[0].strip()
        if heading not in alerts:
            continue
        for part in ("**Means:**", "**Check first:**", "**Resolve:**"):
            assert part in section, (set_name, heading, part)
