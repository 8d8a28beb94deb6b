"""Config files: a mistake is reported with file, line, field path and problem, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from exporter.config.loader import ConfigError, load_model
from exporter.config.model import PulseConfig, default_config_text, load_config
from exporter.config.types import Duration, StrictModel, secret_field
from tests.conftest import exporter_command


def problems(text: str, name: str = "pulse.yml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_model(PulseConfig, name, text)
    return caught.value.problems


def test_embedded_default_config_enables_host_metrics() -> None:
    config = load_config(None)
    assert config.collectors.host.enabled  # type: ignore[attr-defined]
    assert "collectors:" in default_config_text()


def test_invalid_regex_names_file_line_and_field_path() -> None:
    text = "collectors:\n  host:\n    filesystem:\n      exclude_mountpoints: '^/(dev'\n"
    [problem] = problems(text)
    assert problem.startswith(
        "pulse.yml:4: collectors.host.filesystem.exclude_mountpoints: not a valid regular expression"
    )


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    [problem] = problems("collectors:\n  host:\n    filesystem:\n      exclude_mountpionts: x\n")
    assert problem == (
        "pulse.yml:4: collectors.host.filesystem.exclude_mountpionts: "
        "unknown field (did you mean 'exclude_mountpoints'?)"
    )


def test_unknown_key_without_a_close_match_lists_the_known_fields() -> None:
    [problem] = problems("collectors:\n  nonsense: {}\n")
    assert problem.startswith("pulse.yml:2: collectors.nonsense: unknown field; known fields: host")


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = "collectors:\n  host:\n    enabled: maybe\n    cpu: {enabled: true, extra: 1}\n"
    found = problems(text)
    assert len(found) == 2
    assert any(p.startswith("pulse.yml:3: collectors.host.enabled:") for p in found)
    assert any(p.startswith("pulse.yml:4: collectors.host.cpu.extra: unknown field") for p in found)


def test_list_items_are_located_by_index() -> None:
    text = (
        "collectors:\n  host:\n    processes:\n"
        "      - {name: erp, match: {cmdline: erp}}\n"
        "      - {name: db, match: {}}\n"
    )
    [problem] = problems(text)
    assert problem == "pulse.yml:5: collectors.host.processes[1].match: give at least one of name, cmdline, exe"


def test_duplicate_process_group_names_are_rejected() -> None:
    text = "collectors: {host: {processes: [{name: a, match: {name: x}}, {name: a, match: {name: y}}]}}"
    [problem] = problems(text)
    assert "process group names must be unique; repeated: a" in problem


def test_a_key_given_twice_is_an_error() -> None:
    [problem] = problems("collectors:\n  host:\n    enabled: true\n    enabled: false\n")
    assert problem == "pulse.yml:4: collectors.host.enabled: key given twice (the second would hide the first)"


def test_broken_yaml_names_the_line() -> None:
    [problem] = problems("collectors:\n  host: {enabled: true\n")
    assert re.match(r"pulse\.yml:\d+: not valid YAML: ", problem)


def test_environment_variables_are_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_TEST_ENABLED", "false")
    config = load_model(PulseConfig, "pulse.yml", "collectors:\n  host:\n    enabled: ${PULSE_TEST_ENABLED}\n")
    assert config.collectors.host.enabled is False  # type: ignore[attr-defined]


def test_dollar_dollar_brace_is_a_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X", "should-not-appear")
    text = "collectors:\n  host:\n    filesystem:\n      exclude_mountpoints: '^/$${X}'\n"
    config = load_model(PulseConfig, "pulse.yml", text)
    assert config.collectors.host.filesystem.exclude_mountpoints.pattern == "^/${X}"  # type: ignore[attr-defined]


def test_unset_environment_variable_names_field_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULSE_SURELY_UNSET", raising=False)
    [problem] = problems("collectors:\n  host:\n    enabled: ${PULSE_SURELY_UNSET}\n")
    assert problem == "pulse.yml:3: collectors.host.enabled: environment variable PULSE_SURELY_UNSET is not set"


class Source(StrictModel):
    dsn: str = secret_field()


class Sources(StrictModel):
    sources: dict[str, Source]


def test_secret_fields_can_be_read_from_a_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "dsn.secret").write_text("postgresql://user:s3cret@db/shop\n")
    config_path = tmp_path / "pulse.yml"
    config_path.write_text("sources:\n  shop: {dsn_file: dsn.secret}\n")
    config = load_model(Sources, config_path)
    assert config.sources["shop"].dsn == "postgresql://user:s3cret@db/shop"


def test_secret_file_that_cannot_be_read_is_a_located_error(tmp_path: Path) -> None:
    config_path = tmp_path / "pulse.yml"
    config_path.write_text("sources:\n  shop:\n    dsn_file: missing.secret\n")
    with pytest.raises(ConfigError) as caught:
        load_model(Sources, config_path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{config_path}:3: sources.shop.dsn_file: cannot read ")
    assert "No such file or directory" in problem


def test_secret_given_twice_is_rejected() -> None:
    with pytest.raises(ConfigError, match="set either dsn or dsn_file, not both"):
        load_model(Sources, "x.yml", "sources:\n  shop: {dsn: a, dsn_file: b}\n")


def test_include_regex_replaces_the_default_exclude() -> None:
    text = "collectors:\n  host:\n    filesystem:\n      include_mountpoints: '^/run$'\n"
    filesystem = load_model(PulseConfig, "pulse.yml", text).collectors.host.filesystem  # type: ignore[attr-defined]
    assert filesystem.exclude_mountpoints is None
    assert load_config(None).collectors.host.filesystem.exclude_mountpoints is not None  # type: ignore[attr-defined]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exporter_command(), *args], capture_output=True, text=True, timeout=60, check=False)


def test_config_check_accepts_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "pulse.yml"
    path.write_text("collectors:\n  host:\n    processes: [{name: erp, match: {cmdline: 'erp-server'}}]\n")
    result = run_cli("--config.check", f"--config.file={path}")
    assert result.returncode == 0, result.stderr
    assert f"configuration valid: {path}" in result.stdout


def test_config_check_rejects_a_bad_file_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "pulse.yml"
    path.write_text("collectors:\n  host:\n    filesystem:\n      exclude_mountpoints: '(('\n")
    result = run_cli("--config.check", f"--config.file={path}")
    assert result.returncode == 1
    assert f"{path}:4: collectors.host.filesystem.exclude_mountpoints: not a valid regular expression" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_config_file_is_reported_without_traceback(tmp_path: Path) -> None:
    result = run_cli(f"--config.file={tmp_path / 'absent.yml'}")
    assert result.returncode == 1
    assert "absent.yml: cannot read config file: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.yml"
    path.write_text("collectors: {host: {enabled: nope}}\n")
    result = subprocess.run(
        [*exporter_command(), "--config.check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**__import__("os").environ, "PULSE_CONFIG_FILE": str(path)},
    )
    assert result.returncode == 1
    assert f"{path}:1: collectors.host.enabled:" in result.stderr


def test_bad_listen_address_is_a_clear_error() -> None:
    result = run_cli("--web.listen-address=nonsense")
    assert result.returncode == 1
    assert "listen address 'nonsense' is not host:port" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_flag() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("pulse-exporter, version ")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), ("1d", 86400.0), (5, 5.0), ("0s", 0.0)],
)
def test_durations_are_written_the_prometheus_way(written: object, seconds: float) -> None:
    class WithDuration(StrictModel):
        every: Duration

    assert WithDuration.model_validate({"every": written}).every == seconds


@pytest.mark.parametrize("written", ["30", "5 minutes", "1.5s", "", "-5s", True, "s"])
def test_a_malformed_duration_names_the_field(written: object) -> None:
    class WithDuration(StrictModel):
        every: Duration

    with pytest.raises(ConfigError) as err:
        load_model(WithDuration, "pulse.yml", f"every: {json.dumps(written)}\n")
    assert "pulse.yml:1: every:" in str(err.value)
