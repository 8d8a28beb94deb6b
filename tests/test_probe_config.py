"""The `probes:` section: blackbox.yml modules (inline or from modules_file), targets, the allowlist,
and errors that name the file, the line and the field."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from exporter.config.loader import ConfigError
from exporter.probes import PROBERS
from exporter.probes.config import ProbeModule, ProbesConfig
from exporter.probes.runner import probe_timeout
from exporter.probes.tcp import TCPProbe
from exporter.registry import load_config
from exporter.scrape_timeout import InvalidTimeoutHeader
from tests.helpers import exporter_command, require_binary

BLACKBOX_YML = """\
modules:
  tcp_connect:
    prober: tcp
    timeout: 5s
  smtp_starttls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      query_response:
        - expect: "^220 ([^ ]+) ESMTP (.+)$"
        - send: "EHLO prober\\r"
        - expect: "^250-STARTTLS"
        - send: "STARTTLS\\r"
        - expect: "^220"
        - starttls: true
        - send: "EHLO prober\\r"
        - expect: "^250-AUTH"
        - send: "QUIT\\r"
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_modules_file_is_read_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "etc" / "pulse"
    write(conf, "blackbox.yml", BLACKBOX_YML)
    config_path = write(
        conf,
        "pulse.yml",
        "probes:\n"
        "  modules_file: blackbox.yml\n"
        "  modules:\n"
        "    tcp_v4: {prober: tcp, tcp: {preferred_ip_protocol: ip4}}\n"
        "  targets:\n"
        "    - {target: 'mail.example.com:25', module: smtp_starttls, labels: {team: mail}}\n",
    )
    monkeypatch.chdir(tmp_path)  # a different working directory must not matter
    probes = load_config(config_path).probes
    assert sorted(probes.modules) == ["smtp_starttls", "tcp_connect", "tcp_v4"]
    smtp = probes.modules["smtp_starttls"]
    assert smtp.timeout == 5.0
    settings = smtp.settings()
    assert isinstance(settings, TCPProbe)
    assert settings.preferred_ip_protocol == "ip4"
    assert not settings.ip_protocol_fallback
    assert [step.starttls for step in settings.query_response].count(True) == 1
    assert probes.targets[0].labels == {"team": "mail"}


def test_a_module_without_its_prober_key_gets_blackbox_defaults() -> None:
    module = ProbesConfig.model_validate({"modules": {"m": {"prober": "tcp"}}}).modules["m"]
    assert module.timeout is None
    assert module.settings() == TCPProbe()
    assert TCPProbe().preferred_ip_protocol == "ip6"
    assert TCPProbe().ip_protocol_fallback


@pytest.mark.parametrize(("prober", "missing"), [("dns", "dns.query_name"), ("journey", "journey.steps")])
def test_a_module_without_the_options_its_prober_requires_fails_when_the_config_loads(
    tmp_path: Path, prober: str, missing: str
) -> None:
    path = write(tmp_path, "pulse.yml", f"probes:\n  modules:\n    check: {{prober: {prober}, timeout: 5s}}\n")
    message = config_error(path)
    assert f"pulse.yml:3: probes.modules.check: prober '{prober}' needs a `{prober}:` section with {missing}" in message


def test_every_registered_prober_has_its_options_key_in_a_module() -> None:
    assert set(PROBERS) <= set(ProbeModule.model_fields)


def test_the_blackbox_file_used_here_is_accepted_by_blackbox_exporter_itself(tmp_path: Path) -> None:
    """Keeps the compatibility claim honest: the format is blackbox's, not a look-alike."""
    blackbox = require_binary("prometheus-blackbox-exporter", "blackbox_exporter")
    path = write(tmp_path, "blackbox.yml", BLACKBOX_YML)
    result = subprocess.run(
        [blackbox, f"--config.file={path}", "--config.check"], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_an_unknown_option_in_the_modules_file_names_that_file_its_line_and_the_option(tmp_path: Path) -> None:
    blackbox = write(
        tmp_path,
        "blackbox.yml",
        "modules:\n  tcp_connect:\n    prober: tcp\n    tcp:\n"
        "      preferred_ip_protocol: ip4\n      no_such_option: 1\n",
    )
    config_path = write(tmp_path, "pulse.yml", "probes:\n  modules_file: blackbox.yml\n")
    message = config_error(config_path)
    assert f"{config_path}:2: probes.modules_file:" in message
    assert f"{blackbox}:6: modules.tcp_connect.tcp.no_such_option: unknown field" in message


def test_a_blackbox_option_pulse_does_not_support_is_an_error_naming_it(tmp_path: Path) -> None:
    # grpc is a blackbox prober Pulse does not have: both the key and the prober name are refused.
    config_path = write(
        tmp_path, "pulse.yml", "probes:\n  modules:\n    g:\n      prober: grpc\n      grpc: {service: x}\n"
    )
    message = config_error(config_path)
    assert f"{config_path}:4: probes.modules.g.prober: unknown prober 'grpc'; Pulse supports:" in message
    assert f"{config_path}:5: probes.modules.g.grpc: unknown field" in message


def test_an_inline_unknown_option_names_the_field_path(tmp_path: Path) -> None:
    config_path = write(
        tmp_path, "pulse.yml", "probes:\n  modules:\n    t:\n      prober: tcp\n      tcp:\n        tsl: true\n"
    )
    assert f"{config_path}:6: probes.modules.t.tcp.tsl: unknown field (did you mean 'tls'?)" in config_error(
        config_path
    )


def test_a_missing_modules_file_is_reported_with_its_resolved_path(tmp_path: Path) -> None:
    config_path = write(tmp_path, "pulse.yml", "probes:\n  modules_file: nowhere/blackbox.yml\n")
    message = config_error(config_path)
    assert f"{config_path}:2: probes.modules_file: cannot read {tmp_path / 'nowhere' / 'blackbox.yml'}" in message


def test_bad_yaml_in_the_modules_file_names_that_file(tmp_path: Path) -> None:
    blackbox = write(tmp_path, "blackbox.yml", "modules:\n  a: [unclosed\n")
    config_path = write(tmp_path, "pulse.yml", "probes:\n  modules_file: blackbox.yml\n")
    message = config_error(config_path)
    assert f"probes.modules_file: {blackbox}:" in message
    assert "not valid YAML" in message


def test_a_module_defined_inline_and_in_the_modules_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "blackbox.yml", BLACKBOX_YML)
    config_path = write(
        tmp_path,
        "pulse.yml",
        "probes:\n  modules_file: blackbox.yml\n  modules:\n    tcp_connect: {prober: tcp}\n",
    )
    assert "probes.modules: tcp_connect defined both here and in modules_file" in config_error(config_path)


def test_a_target_with_an_undefined_module_is_reported_at_its_own_line(tmp_path: Path) -> None:
    config_path = write(
        tmp_path,
        "pulse.yml",
        "probes:\n"
        "  modules:\n    tcp_connect: {prober: tcp}\n"
        "  targets:\n"
        "    - {target: 'a:1', module: tcp_connect}\n"
        "    - {target: 'b:2', module: http_2xx}\n"
        "    - target: 'c:3'\n"
        "      module: tcp_conect\n",
    )
    message = config_error(config_path)
    assert (
        f"{config_path}:6: probes.targets[1].module: 'http_2xx' is not a defined module (defined: tcp_connect)"
        in message
    )
    assert (
        f"{config_path}:8: probes.targets[2].module: 'tcp_conect' is not a defined module (did you mean 'tcp_connect'?)"
        in message
    )


def test_a_target_listed_twice_with_the_same_module_is_an_error(tmp_path: Path) -> None:
    config_path = write(
        tmp_path,
        "pulse.yml",
        "probes:\n  modules: {t: {prober: tcp}}\n  targets:\n"
        "    - {target: 'a:1', module: t}\n    - {target: 'a:1', module: t, labels: {x: y}}\n",
    )
    assert f"{config_path}:5: probes.targets[1]: a:1 with module t is listed twice" in config_error(config_path)


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("{module: x}", "label 'module' is reserved"),
        ("{__param_module: x}", "label '__param_module' is reserved"),
        ("{'bad-name': x}", "'bad-name' is not a valid Prometheus label name"),
    ],
)
def test_target_labels_must_be_valid_and_not_reserved(tmp_path: Path, labels: str, problem: str) -> None:
    config_path = write(
        tmp_path,
        "pulse.yml",
        "probes:\n  modules: {t: {prober: tcp}}\n  targets:\n"
        f"    - {{target: 'a:1', module: t, labels: {labels}}}\n",
    )
    assert f"{config_path}:4: probes.targets[0].labels: {problem}" in config_error(config_path)


def test_a_bad_allow_regex_is_reported(tmp_path: Path) -> None:
    config_path = write(tmp_path, "pulse.yml", "probes:\n  allow: ['(unclosed']\n")
    assert f"{config_path}:2: probes.allow[0]: not a valid regular expression" in config_error(config_path)


def test_allow_rules_match_the_whole_target_and_listing_is_per_module() -> None:
    probes = ProbesConfig.model_validate(
        {
            "modules": {"a": {"prober": "tcp"}, "b": {"prober": "tcp"}},
            "targets": [{"target": "db.internal:5432", "module": "a"}],
            "allow": [r"[a-z]+\.shop\.example:443"],
        }
    )
    assert probes.allows("db.internal:5432", "a")
    assert not probes.allows("db.internal:5432", "b")  # listed for another module only
    assert probes.allows("www.shop.example:443", "b")
    # Anchored: a target that merely contains an allowed one is not allowed.
    assert not probes.allows("www.shop.example:443.evil.example:443", "a")
    assert not probes.allows("169.254.169.254:80/www.shop.example:443", "a")


def test_an_unchanged_config_compares_equal_and_a_changed_modules_file_does_not(tmp_path: Path) -> None:
    """Reloads keep a collector whose config compares equal; the modules file is part of that config."""
    blackbox = write(tmp_path, "blackbox.yml", BLACKBOX_YML)
    config_path = write(tmp_path, "pulse.yml", "probes:\n  modules_file: blackbox.yml\n")
    first, second = load_config(config_path), load_config(config_path)
    assert first == second
    blackbox.write_text(BLACKBOX_YML.replace("timeout: 5s", "timeout: 7s", 1))
    assert load_config(config_path) != first


@pytest.mark.parametrize(
    ("header", "module_timeout", "expected"),
    [
        (None, None, 119.5),  # blackbox: 120 s without a header, minus the offset
        ("10", None, 9.5),
        ("10", 5.0, 5.0),  # the module caps it
        ("3", 5.0, 2.5),  # the scrape's own timeout is shorter
        ("0.2", 5.0, 5.0),  # below the offset: blackbox falls back to the module timeout
        ("0", 2.0, 2.0),  # 0 means "not set", as blackbox
    ],
)
def test_probe_timeout_follows_blackbox(header: str | None, module_timeout: float | None, expected: float) -> None:
    assert probe_timeout(header, module_timeout) == pytest.approx(expected)


def test_the_timeout_offset_is_configurable_and_defaults_to_blackboxs() -> None:
    assert ProbesConfig().timeout_offset == 0.5
    assert ProbesConfig.model_validate({"timeout_offset": "1s"}).timeout_offset == 1.0
    assert probe_timeout("3", None, offset=1.0) == pytest.approx(2.0)
    assert probe_timeout("3", 5.0, offset=1.0) == pytest.approx(2.0)


def test_a_timeout_header_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(InvalidTimeoutHeader):
        probe_timeout("ten", None)


def test_the_documentation_lists_every_option_of_every_prober() -> None:
    """docs/probes.md's option table must follow the probers' models (and name no option they lack)."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "probes.md").read_text()
    for name, prober in PROBERS.items():
        row = next((line for line in docs.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/probes.md has no option row for the {name} prober"
        # Top-level options only: nested keys and defaults are written in parentheses.
        options_cell = re.sub(r"\([^)]*\)", "", row.split("|")[2]).split("see ")[0]
        documented = set(re.findall(r"`([a-z_0-9]+)`", options_cell))
        options = set(prober.config_model.model_fields)
        assert options <= documented, f"{name}: undocumented options {sorted(options - documented)}"
        extra = documented - options - {f"{o}_file" for o in options}
        assert not extra, f"{name}: documented options the prober lacks {sorted(extra)}"


def test_an_allow_regex_outside_re2_syntax_is_refused_at_load(tmp_path: Path) -> None:
    """Look-arounds and backreferences are not linear-time; RE2 (as in blackbox_exporter) refuses them."""
    config_path = write(tmp_path, "pulse.yml", "probes:\n  allow: ['(?<=a)b', '(x)\\1']\n")
    error = config_error(config_path)
    assert f"{config_path}:2: probes.allow[0]: not a valid regular expression" in error
    assert f"{config_path}:2: probes.allow[1]: not a valid regular expression" in error
    assert "RE2 syntax" in error


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_modules_file_that_is_not_a_regular_file_is_refused_without_hanging(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        modules_file = tmp_path / "blackbox.yml"
        os.mkfifo(modules_file)  # no writer: reading it would wait forever
        what = "a FIFO"
    else:
        modules_file, what = Path(kind), "a character device"
    config_path = write(tmp_path, "pulse.yml", f"probes:\n  modules_file: {modules_file}\n")
    result = subprocess.run(  # its timeout catches a hang
        [*exporter_command(), "--config.check", f"--config.file={config_path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    expected = f"{config_path}:2: probes.modules_file: cannot read {modules_file}: it is {what}, not a regular file"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_modules_file_problem_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    config_path = write(
        tmp_path,
        "pulse.yml",
        "probes:\n  modules_file: missing.yml\n  modules:\n    m: {prober: tcp, timeout: 5x}\n"
        "  targets:\n    - {target: 'a:1', module: from_the_file}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_path)
    assert caught.value.problems == [
        f"{config_path}:2: probes.modules_file: cannot read {tmp_path / 'missing.yml'}: No such file or directory",
        f"{config_path}:4: probes.modules.m.timeout: not a duration: '5x' (write it like 30s, 5m, 1h30m or 250ms)",
    ]  # the target's module may be in the unreadable file: not reported as undefined


@pytest.mark.parametrize(
    ("timeout", "problem"),
    [
        (".nan", "not a duration: nan (a number of seconds must be finite)"),
        (".inf", "not a duration: inf (a number of seconds must be finite)"),
        ("99999999999999999999y", "too long; a duration is at most 10y"),
        ("-1", "a duration cannot be negative"),
    ],
)
def test_a_module_timeout_must_be_a_finite_duration(tmp_path: Path, timeout: str, problem: str) -> None:
    config_path = write(tmp_path, "pulse.yml", f"probes:\n  modules:\n    m: {{prober: tcp, timeout: {timeout}}}\n")
    assert config_error(config_path) == f"{config_path}:3: probes.modules.m.timeout: {problem}"
