"""Config files: a mistake is reported with file, line, field path and problem, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path

import pydantic
import pytest

from exporter import app
from exporter.app import Exporter, load_files
from exporter.collectors.host import filesystem
from exporter.config.loader import ConfigError, load_model
from exporter.config.types import Duration, StrictModel, secret_field
from exporter.registry import PulseConfig, default_config_text, load_config
from tests.helpers import exporter_command


def problems(text: str, name: str = "pulse.yml", model: type[pydantic.BaseModel] = PulseConfig) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_model(model, name, text)
    return caught.value.problems


def test_embedded_default_config_enables_host_metrics() -> None:
    config = load_config(None)
    assert config.collectors.host.enabled
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
    assert config.collectors.host.enabled is False


def test_dollar_dollar_brace_is_a_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X", "should-not-appear")
    text = "collectors:\n  host:\n    filesystem:\n      exclude_mountpoints: '^/$${X}'\n"
    config = load_model(PulseConfig, "pulse.yml", text)
    exclude = config.collectors.host.settings(filesystem.COLLECTOR).exclude_mountpoints
    assert exclude is not None
    assert exclude.pattern == "^/${X}"


def test_a_default_stands_in_for_an_unset_or_empty_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "prometheus:\n  url: ${PULSE_TEST_PROMETHEUS:-http://127.0.0.1:9090}\n"
    monkeypatch.delenv("PULSE_TEST_PROMETHEUS", raising=False)
    assert load_model(PulseConfig, "pulse.yml", text).prometheus is not None
    assert str(load_model(PulseConfig, "pulse.yml", text).prometheus.url) == "http://127.0.0.1:9090/"  # type: ignore[union-attr]
    monkeypatch.setenv("PULSE_TEST_PROMETHEUS", "")
    assert str(load_model(PulseConfig, "pulse.yml", text).prometheus.url) == "http://127.0.0.1:9090/"  # type: ignore[union-attr]
    monkeypatch.setenv("PULSE_TEST_PROMETHEUS", "http://prometheus:9090")
    assert str(load_model(PulseConfig, "pulse.yml", text).prometheus.url) == "http://prometheus:9090/"  # type: ignore[union-attr]
    monkeypatch.setenv("X", "should-not-appear")
    literal = "collectors:\n  host:\n    filesystem:\n      exclude_mountpoints: '^/$${X:-y}'\n"
    exclude = (
        load_model(PulseConfig, "pulse.yml", literal).collectors.host.settings(filesystem.COLLECTOR).exclude_mountpoints
    )
    assert exclude is not None
    assert exclude.pattern == "^/${X:-y}"


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
    given = load_model(PulseConfig, "pulse.yml", text).collectors.host.settings(filesystem.COLLECTOR)
    assert given.exclude_mountpoints is None
    assert load_config(None).collectors.host.settings(filesystem.COLLECTOR).exclude_mountpoints is not None


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


@pytest.mark.parametrize(
    "written", ["30", "5 minutes", "1.5s", "", "-5s", True, "s", "11y", "99999999999999999999y", 10**400]
)
def test_a_malformed_duration_names_the_field(written: object) -> None:
    class WithDuration(StrictModel):
        every: Duration

    with pytest.raises(ConfigError) as err:
        load_model(WithDuration, "pulse.yml", f"every: {json.dumps(written)}\n")
    assert "pulse.yml:1: every:" in str(err.value)


@pytest.mark.parametrize("written", [".nan", ".inf", "-.inf", "99999999999999999999y", "9" * 400, "3651d"])
def test_a_duration_must_be_finite_and_at_most_ten_years(written: str) -> None:
    class WithDuration(StrictModel):
        every: Duration

    [problem] = problems(f"every: {written}\n", model=WithDuration)
    assert re.match(r"pulse\.yml:1: every: (not a duration: -?(nan|inf) |too long; a duration is at most 10y)", problem)


# ---------------------------------------------------------------------------------------------- hostile files

# 272 bytes that expand to 9**6 = 531,441 strings: 16 s and 1.1 GB before the alias bound.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""

HOSTILE_CONFIGS = {
    "billion laughs": (BILLION_LAUGHS, r"pulse\.yml:5: aliases expand to \d+ nodes by here"),
    "recursive alias": ("a: &a [*a]\n", r"pulse\.yml:1: alias \*a is used inside the node it names"),
    "150 levels": ("a: " + "[" * 150 + "]" * 150 + "\n", r"pulse\.yml:1: nested deeper than 100 levels"),
    "3000 levels": ("a: " + "[" * 3000 + "]" * 3000 + "\n", r"pulse\.yml:1: not valid YAML: exceeded maximum nesting"),
    "400-digit duration": (
        "probes:\n  modules:\n    m: {prober: tcp, timeout: " + "9" * 400 + "}\n",
        r"pulse\.yml:3: probes\.modules\.m\.timeout: too long; a duration is at most 10y",
    ),
    "5000-digit integer": ("kpis:\n  series_limit: " + "9" * 5000 + "\n", r"pulse\.yml:2: not valid YAML: cannot read"),
    "impossible date": ("collectors:\n  host: {enabled: 2021-02-30}\n", r"pulse\.yml:2: not valid YAML: cannot read"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_hostile_yaml_is_a_located_config_error(case: str) -> None:
    text, expected = HOSTILE_CONFIGS[case]
    [problem] = problems(text)
    assert re.match(expected, problem), problem


def test_aliases_that_stay_within_the_bound_are_expanded() -> None:
    text = (
        "probes:\n  modules: {tcp: {prober: tcp}}\n  targets:\n"
        + "".join(f"    - {{target: 'h{i}:1', module: tcp, labels: &l{i} {{team: a, env: prod}}}}\n" for i in range(3))
        + "".join(f"    - {{target: 'g{i}:1', module: tcp, labels: *l{i % 3}}}\n" for i in range(300))
    )
    config = load_model(PulseConfig, "pulse.yml", text)
    assert config.probes.targets[-1].labels == {"team": "a", "env": "prod"}


def test_a_file_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "pulse.yml"
    path.write_text("# padding\n" * 500_000)  # 5 MB of comments
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: cannot read config file: larger than 4 MiB, the limit for a config file"]


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory"])
def test_a_config_file_that_is_not_a_regular_file_is_refused_without_hanging(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "pulse.yml"
        os.mkfifo(path)  # no writer: reading it would wait forever
        what = "a FIFO"
    elif kind == "directory":
        path, what = tmp_path, "a directory"
    else:
        path, what = Path(kind), "a character device"
    result = run_cli("--config.check", f"--config.file={path}")  # its 60 s timeout catches a hang
    assert result.returncode == 1
    assert f"{path}: cannot read config file: it is {what}, not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["billion laughs", "recursive alias", "3000 levels", "400-digit duration"])
def test_config_check_reports_hostile_files_without_a_traceback(tmp_path: Path, case: str) -> None:
    text, expected = HOSTILE_CONFIGS[case]
    path = tmp_path / "pulse.yml"
    path.write_text(text)
    result = run_cli("--config.check", f"--config.file={path}")
    assert result.returncode == 1
    assert re.search(expected.replace(r"pulse\.yml", re.escape(str(path))), result.stderr), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing configured yet\n", "~\n"])
def test_an_empty_config_file_means_the_embedded_default(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pulse.yml"
    path.write_text(text)
    assert load_config(path) == load_config(None)


def test_every_problem_in_a_copy_of_the_demo_config_is_reported_at_once(tmp_path: Path) -> None:
    demo = (Path(__file__).parent.parent / "examples" / "demo.yml").read_text()
    broken = (
        demo.replace("      interval: 10s", "      intervall: 10s", 1)
        .replace("http_2xx: {prober: http, timeout: 5s", "http_2xx: {prober: http, timeout: 5x", 1)
        .replace("module: tcp_connect, labels", "module: tcp_conect, labels", 1)
    )
    lines = broken.splitlines()
    line_of = {
        word: next(i for i, line in enumerate(lines, 1) if word in line) for word in ("intervall", "5x", "conect")
    }
    path = tmp_path / "demo.yml"
    path.write_text(broken)
    assert config_problems(path) == [
        f"{path}:{line_of['intervall']}: kpis.packs[0].intervall: unknown field (did you mean 'interval'?)",
        f"{path}:{line_of['5x']}: probes.modules.http_2xx.timeout: not a duration: '5x' "
        "(write it like 30s, 5m, 1h30m or 250ms)",
        f"{path}:{line_of['conect']}: probes.targets[1].module: 'tcp_conect' is not a defined module "
        "(did you mean 'tcp_connect'?)",
    ]


def config_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_config_file_given_twice_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    first.write_text("collectors: {host: {enabled: nope}}\n")  # invalid: must not be skipped silently
    second.write_text("collectors: {host: {enabled: true}}\n")
    result = run_cli("--config.check", f"--config.file={first}", f"--config.file={second}")
    assert result.returncode == 2
    assert "--config.file given more than once; Pulse reads one file (files are not merged)" in result.stderr
    assert "one file, given once (files are not merged)" in " ".join(run_cli("--help").stdout.split())


def test_an_exception_the_loader_did_not_foresee_is_still_a_failed_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: every known cause is a ConfigError now (see the fuzz test), so a bug is simulated.
    path = tmp_path / "pulse.yml"
    path.write_text("collectors: {host: {cpu: {enabled: false}}}\n")
    exporter = Exporter(path, None, load_files(path, None))
    running = exporter.config

    def broken_loader(config_path: Path | None) -> PulseConfig:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(app, "load_config", broken_loader)
    ok, message = asyncio.run(exporter.reload())
    assert not ok
    assert not exporter.reload_successful
    assert exporter.config is running
    assert message == (
        "reload failed; the running config is kept:\n"
        f"{path}: cannot load the config (RecursionError: maximum recursion depth exceeded); "
        "please report this as a bug"
    )
