"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here): Debian's
docker-compose parses and resolves the file; every image is pinned, every service has a health check,
only Grafana and Pulse publish a port, every mounted path exists; the Prometheus config compose mounts
is prometheus.yml with only its addresses changed; the Dockerfile passes a few hadolint-like rules and
its health check command works against a real Pulse.

prometheus/prometheus.compose.yml is generated from prometheus/prometheus.yml, and
alertmanager/alertmanager.compose.yml from alertmanager/alertmanager.yml (its incident-journal receiver
posts to Pulse, pulse:10135 in compose):

    .venv/bin/python -m tests.test_stack        # rewrites both
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import exporter_command, free_port, require_binary, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
COMPOSE_PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.compose.yml"
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
COMPOSE_ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.compose.yml"
# prometheus.yml's addresses (as tests/stack.py rewrites them for the end-to-end test) -> compose's services.
COMPOSE_ADDRESSES = {"127.0.0.1:10135": "pulse:10135", "127.0.0.1:9093": "alertmanager:9093"}
PUBLISHED = {"pulse": ["10135:10135"], "grafana": ["3000:3000"]}


def compose_config(shipped: Path, addresses: dict[str, str]) -> str:
    """A shipped config with compose's addresses, and a header saying so."""
    text = shipped.read_text()
    for address, service in addresses.items():
        assert address in text, f"{shipped.name} no longer names {address}: update COMPOSE_ADDRESSES"
        text = text.replace(address, service)
    header = (
        f"# GENERATED from {shipped.name} by `.venv/bin/python -m tests.test_stack`: do not edit. The same\n"
        f"# file with docker-compose.yml's service names for addresses ({', '.join(addresses.values())}).\n"
    )
    return header + text


def compose_prometheus_config() -> str:
    return compose_config(PROMETHEUS_CONFIG, COMPOSE_ADDRESSES)


def compose_alertmanager_config() -> str:
    return compose_config(ALERTMANAGER_CONFIG, {"127.0.0.1:10135": "pulse:10135"})


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def resolved_compose() -> dict[str, Any]:
    """`docker-compose config`: the file parsed, merged and resolved (paths absolute, anchors expanded)."""
    binary = require_binary("docker-compose")
    result = subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


# ---------------------------------------------------------------------------------------------- compose


def test_docker_compose_parses_and_resolves_the_file() -> None:
    services = resolved_compose()["services"]
    assert sorted(services) == ["alertmanager", "demo", "grafana", "prometheus", "pulse"]
    assert services["pulse"]["build"]["context"] == str(ROOT)
    assert services["demo"]["network_mode"] == "service:pulse"


def test_every_image_is_pinned_and_every_service_checks_its_health() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image) or ("build" in service and image.endswith(":local")), (
            f"{name}: image {image!r} is not pinned to a version"
        )
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: health check {test} (exec form: the images have no shell to rely on)"


def test_only_grafana_and_pulse_publish_a_port() -> None:
    published = {name: service["ports"] for name, service in compose()["services"].items() if "ports" in service}
    assert published == PUBLISHED


def test_every_mounted_path_exists_and_data_lives_in_named_volumes() -> None:
    document = compose()
    named = set(document["volumes"])
    for name, service in resolved_compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source} is missing"
                assert Path(source).is_relative_to(ROOT), f"{name} mounts {source} from outside the repository"
            else:
                assert source in named, f"{name}: {source} is neither a path nor a named volume"
    mounts = {name: service.get("volumes", []) for name, service in document["services"].items()}
    assert "prometheus-data:/prometheus" in mounts["prometheus"]
    assert "alertmanager-data:/alertmanager" in mounts["alertmanager"]
    assert "grafana-data:/var/lib/grafana" in mounts["grafana"]


def test_grafana_reads_the_dashboards_where_its_provisioning_looks_and_the_datasource_is_compose_prometheus() -> None:
    provisioning = ROOT / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "pulse.yml").read_text())["providers"]
    grafana = compose()["services"]["grafana"]
    assert f"./grafana/dashboards:{providers[0]['options']['path']}:ro" in grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]


def test_alertmanager_runs_in_its_directory_so_the_secret_files_resolve() -> None:
    service = compose()["services"]["alertmanager"]
    assert "./alertmanager:/etc/alertmanager:ro" in service["volumes"]
    assert service["working_dir"] == "/etc/alertmanager"
    assert f"--config.file=/etc/alertmanager/{COMPOSE_ALERTMANAGER_CONFIG.name}" in service["command"]


def test_alertmanager_mounts_the_shipped_config_with_only_pulses_address_changed() -> None:
    """Alertmanager sends every alert to Pulse's incident journal: in compose, Pulse is pulse:10135."""
    assert COMPOSE_ALERTMANAGER_CONFIG.read_text() == compose_alertmanager_config(), (
        "alertmanager/alertmanager.compose.yml is stale: run .venv/bin/python -m tests.test_stack"
    )
    amtool = require_binary("amtool")
    result = subprocess.run(
        [amtool, "check-config", COMPOSE_ALERTMANAGER_CONFIG.name],
        cwd=COMPOSE_ALERTMANAGER_CONFIG.parent, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_mounts_the_shipped_config_with_only_the_addresses_changed() -> None:
    """The compose config is prometheus.yml with compose's addresses: the same replacement the end-to-end
    test (tests/stack.py) makes with its own addresses, so what compose runs is what the tests run."""
    assert COMPOSE_PROMETHEUS_CONFIG.read_text() == compose_prometheus_config(), (
        "prometheus/prometheus.compose.yml is stale: run .venv/bin/python -m tests.test_stack"
    )
    service = compose()["services"]["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in service["volumes"]
    assert f"--config.file=/etc/prometheus/{COMPOSE_PROMETHEUS_CONFIG.name}" in service["command"]
    shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    shipped_text = json.dumps(shipped)
    for address, service_address in COMPOSE_ADDRESSES.items():
        shipped_text = shipped_text.replace(address, service_address)
    assert yaml.safe_load(COMPOSE_PROMETHEUS_CONFIG.read_text()) == json.loads(shipped_text)


def test_promtool_accepts_the_compose_prometheus_config() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(COMPOSE_PROMETHEUS_CONFIG)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_images_match_the_binaries_the_tests_run() -> None:
    """Prometheus and Alertmanager in compose are the versions the rule and pipeline tests run."""
    services = compose()["services"]
    for binary, service in (("prometheus", "prometheus"), ("prometheus-alertmanager", "alertmanager")):
        version = subprocess.run(
            [require_binary(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        found = re.search(r"version (\d+\.\d+\.\d+)", version.stdout + version.stderr)
        assert found, version.stdout + version.stderr
        assert services[service]["image"].endswith(f":v{found.group(1)}")


# ------------------------------------------------------------------------------------------- Dockerfile


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped) as (KEYWORD, rest)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_is_multi_stage_pinned_and_runs_as_a_user() -> None:
    steps = instructions()
    bases = [rest.split()[0] for keyword, rest in steps if keyword == "FROM"]
    assert len(bases) >= 2, "a build stage and a runtime stage"
    for base in bases:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), f"FROM {base}: pin the version"
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    assert any(keyword == "USER" for keyword, _ in steps[last_from:]), "the runtime stage sets no USER"


def test_the_dockerfile_passes_hadolint_like_rules() -> None:
    """The cheap ones: exec-form ENTRYPOINT/CMD/HEALTHCHECK (signals reach Pulse), COPY not ADD, pip
    without its cache, every copied path exists and is not ignored by .dockerignore."""
    steps = instructions()
    assert [keyword for keyword, _ in steps if keyword == "ADD"] == []
    for keyword, rest in steps:
        if keyword in ("ENTRYPOINT", "CMD"):
            assert isinstance(json.loads(rest), list), f"{keyword} {rest}: use the exec (JSON) form"
        if keyword == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest
        if keyword == "RUN" and "apt-get install" in rest:
            assert "--no-install-recommends" in rest
    ignored = {line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")}
    for keyword, rest in steps:
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: missing"
                assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"
    (healthcheck,) = [rest for keyword, rest in steps if keyword == "HEALTHCHECK"]
    assert "CMD [" in healthcheck
    assert "/-/healthy" in healthcheck or "/-/ready" in healthcheck


def healthcheck_command(port: int) -> list[str]:
    (healthcheck,) = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *(part.replace(":10135", f":{port}") for part in command[1:])]


def test_the_dockerfile_health_check_passes_on_a_serving_pulse_and_fails_without_one(tmp_path: Path) -> None:
    port = free_port()
    check = healthcheck_command(port)
    assert subprocess.run(check, capture_output=True, timeout=30, check=False).returncode != 0
    log = (tmp_path / "pulse.log").open("wb")
    pulse = subprocess.Popen([*exporter_command(), f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/-/ready"), 30, "Pulse ready", interval=0.1)
        result = subprocess.run(check, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
    finally:
        pulse.terminate()
        pulse.wait(15)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_readme_says_the_build_is_not_run_here() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The whole stack (docker compose, scripts/demo)", 1)
    assert len(section) == 2, "README.md has no section on the whole stack"
    assert "no Docker engine" in section[1].split("\n## ", 1)[0]


if __name__ == "__main__":
    for path, text in (
        (COMPOSE_PROMETHEUS_CONFIG, compose_prometheus_config()),
        (COMPOSE_ALERTMANAGER_CONFIG, compose_alertmanager_config()),
    ):
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
