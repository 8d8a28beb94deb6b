"""prometheus/prometheus.yml and prometheus/agent.yml, with their commented examples, stay valid.

The examples (file_sd probe targets, hashmod sharding, federation, external labels, remote write to Thanos
Receive, Mimir or VictoriaMetrics) sit in the files as comments between `>>> example: NAME` and
`<<< example: NAME`. Each is uncommented here into a copy of prometheus/ and checked by promtool, so an
example cannot rot; the file_sd and sharding relabelling is also run by a real Prometheus, which shows the
targets, modules and labels it would probe.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import require_binary, wait_until
from tests.prometheus_server import PrometheusServer, running_prometheus

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
AGENT = PROMETHEUS_DIR / "agent.yml"
START = re.compile(r"^\s*# >>> example: (?P<name>[a-z0-9-]+)\s*$")
END = re.compile(r"^\s*# <<< example: (?P<name>[a-z0-9-]+)\s*$")
COMMENTED = re.compile(r"^(?P<indent>\s*)# ?(?P<rest>.*)$")


def example_names(text: str) -> list[str]:
    starts = [m["name"] for line in text.splitlines() if (m := START.match(line))]
    ends = [m["name"] for line in text.splitlines() if (m := END.match(line))]
    assert starts == ends, f"unbalanced example markers: {starts} / {ends}"
    assert len(set(starts)) == len(starts), f"example names repeat: {starts}"
    return starts


def uncomment(text: str, name: str) -> str:
    """The file with example `name` live: one '# ' removed from each line between its markers."""
    lines, inside, seen = [], False, False
    for line in text.splitlines():
        if (start := START.match(line)) and start["name"] == name:
            inside = seen = True
        elif (end := END.match(line)) and end["name"] == name:
            inside = False
        elif inside:
            commented = COMMENTED.match(line)
            assert commented, f"example {name}: a line that is not a comment: {line!r}"
            lines.append(commented["indent"] + commented["rest"])
            continue
        lines.append(line)
    assert seen, f"no example {name}"
    return "\n".join(lines) + "\n"


def with_example(text: str, name: str) -> dict[str, Any]:
    """The config with the example in force; an example job replaces the job of the same name."""
    config: dict[str, Any] = yaml.safe_load(uncomment(text, name))
    jobs: dict[str, Any] = {}
    for job in config.get("scrape_configs") or []:
        jobs.pop(job["job_name"], None)
        jobs[job["job_name"]] = job
    if jobs:
        config["scrape_configs"] = list(jobs.values())
    return config


def promtool_check(config: dict[str, Any], directory: Path, *flags: str) -> None:
    path = directory / "prometheus-example.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", *flags, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def prometheus_copy(tmp_path: Path) -> Path:
    """A copy of prometheus/ (rules, targets), so relative paths in an example resolve as in the real one."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    return copy


# ---------------------------------------------------------------------------------------------- promtool


def test_the_files_hold_the_documented_examples() -> None:
    assert example_names(CONFIG.read_text()) == [
        "external-labels",
        "file-sd-probes",
        "hashmod-sharding",
        "federation",
        "remote-write",
    ]
    assert example_names(AGENT.read_text()) == ["mimir", "victoriametrics"]


@pytest.mark.parametrize("name", example_names(CONFIG.read_text()))
def test_each_prometheus_example_uncommented_passes_promtool(name: str, prometheus_copy: Path) -> None:
    shipped = yaml.safe_load(CONFIG.read_text())
    config = with_example(CONFIG.read_text(), name)
    assert config != shipped, f"example {name} changes nothing"
    promtool_check(config, prometheus_copy)


def test_the_agent_config_passes_promtool_in_agent_mode(prometheus_copy: Path) -> None:
    promtool_check(yaml.safe_load(AGENT.read_text()), prometheus_copy, "--agent")


@pytest.mark.parametrize("name", example_names(AGENT.read_text()))
def test_each_agent_example_uncommented_passes_promtool(name: str, prometheus_copy: Path) -> None:
    config = with_example(AGENT.read_text(), name)
    assert len(config["remote_write"]) == 2, f"example {name} adds a remote_write target"
    promtool_check(config, prometheus_copy, "--agent")


def test_the_agent_scrapes_pulse_as_the_full_prometheus_does() -> None:
    """The rules' selectors find the jobs by name: an agent's jobs must be prometheus.yml's Pulse jobs.
    Prometheus' and Alertmanager's own jobs stay with the full Prometheus: an agent evaluates no rules
    and sends no alerts, and the store's ruler and Alertmanager are watched where they run."""
    agent, full = yaml.safe_load(AGENT.read_text()), yaml.safe_load(CONFIG.read_text())
    pulse_jobs = [job for job in full["scrape_configs"] if job["job_name"] not in ("prometheus", "alertmanager")]
    assert [job["job_name"] for job in pulse_jobs] == ["pulse", "pulse-probes"]
    assert agent["scrape_configs"] == pulse_jobs
    assert "rule_files" not in agent
    assert "alerting" not in agent


def test_the_file_sd_targets_carry_service_and_module() -> None:
    groups = yaml.safe_load((PROMETHEUS_DIR / "targets" / "probes.yml").read_text())
    assert groups
    for group in groups:
        assert group["targets"]
        assert set(group["labels"]) == {"service", "module"}


# ------------------------------------------------------------------------------------ a real Prometheus


def test_prometheus_probes_file_sd_targets_with_their_module_and_shards_split_them(prometheus_copy: Path) -> None:
    """The file_sd example's relabelling gives each /probe scrape its module and target, and the labels
    the rules use; two hashmod shards keep every target exactly once between them."""
    text = CONFIG.read_text()
    file_sd = with_example(text, "file-sd-probes")
    sharded = with_example(text, "hashmod-sharding")["scrape_configs"][-1]
    shards = []
    for number in ("0", "1"):
        shard = yaml.safe_load(yaml.safe_dump(sharded))
        shard["job_name"] = f"shard-{number}"
        shard.pop("http_sd_configs")
        shard["file_sd_configs"] = [{"files": ["targets/probes.yml"]}]
        shard["relabel_configs"][1]["regex"] = number
        shard["relabel_configs"].insert(0, {"source_labels": ["module"], "target_label": "__param_module"})
        shards.append(shard)
    config = {
        "global": {"scrape_interval": "1h"},  # only discovery is looked at: no scrape needed
        "scrape_configs": [job for job in file_sd["scrape_configs"] if job["job_name"] == "pulse-probes"] + shards,
    }
    groups = yaml.safe_load((PROMETHEUS_DIR / "targets" / "probes.yml").read_text())
    expected = {
        (target, group["labels"]["module"], group["labels"]["service"])
        for group in groups
        for target in group["targets"]
    }
    # In the copy's directory, so that file_sd finds targets/probes.yml where prometheus.yml says.
    with running_prometheus(prometheus_copy, yaml.safe_dump(config, sort_keys=False)) as prometheus:
        targets = wait_until(lambda: _active_targets(prometheus, len(expected) * 2), 60, "the targets", interval=0.2)
    by_job: dict[str, set[tuple[str, str, str]]] = {}
    for target in targets:
        labels = target["labels"]
        assert target["scrapeUrl"].startswith("http://127.0.0.1:10135/probe?")
        query = httpx.URL(target["scrapeUrl"]).params
        assert (query["target"], query["module"]) == (labels["instance"], labels["module"])
        by_job.setdefault(labels["job"], set()).add((labels["instance"], labels["module"], labels["service"]))
    assert by_job["pulse-probes"] == expected
    assert by_job.get("shard-0", set()) | by_job.get("shard-1", set()) == expected
    assert not by_job.get("shard-0", set()) & by_job.get("shard-1", set())


def _active_targets(prometheus: PrometheusServer, count: int) -> list[Any] | None:
    prometheus.assert_running()
    active: list[Any] = prometheus.api("targets", state="active")["activeTargets"]
    return active if len(active) >= count else None
