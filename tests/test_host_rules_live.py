"""The host rules on Pulse's real output: a real Prometheus scrapes a real Pulse (host collectors and two
process groups) and evaluates prometheus/rules/host.yml every second. promtool's unit tests feed series
written by hand; this feeds what Pulse exports, so a selector, a label match or a `without` that does not
fit its series (an error such as "many-to-many matching not allowed", or a rule that finds nothing)
fails here.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import StartExporter
from tests.prometheus_server import running_prometheus
from tests.rules import RULES_DIR, shipped_rules

HOST_RULES = RULES_DIR / "host.yml"

# One group that runs (Pulse itself) and one that never does, to see ProcessGroupDown start.
PULSE_CONFIG = """\
collectors:
  host:
    processes:
      - name: pulse
        match: {cmdline: 'pulse-exporter'}
      - name: absent
        match: {name: '^no-such-process$'}
"""

# Recording rules that have a series on any running Linux host. The time-to-full rule has one only for a
# filesystem that is filling up.
ONLY_WHEN_FILLING = {"instance_mountpoint:node_filesystem_seconds_until_full:deriv"}


def prometheus_config(pulse_port: int) -> str:
    return (
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: pulse\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{pulse_port}']}}]\n"
    )


def test_every_host_rule_evaluates_without_error_on_pulses_series(
    tmp_path: Path, start_exporter: StartExporter
) -> None:
    pulse = start_exporter(PULSE_CONFIG)
    with running_prometheus(tmp_path, prometheus_config(pulse.port), [HOST_RULES]) as prometheus:
        prometheus.wait_for_samples('up{job="pulse"} == 1', "Pulse scraped")
        # rate() needs two samples: from the third scrape on, every rule sees the data it works on.
        prometheus.wait_for_samples('count_over_time(up{job="pulse"}[1m]) >= 3', "three scrapes of Pulse")
        rules = prometheus.wait_for_rules_evaluated_after(time.time())

        expected = {rule.name for rule in shipped_rules() if rule.file == HOST_RULES}
        assert {rule.name for rule in rules} == expected
        assert [(rule.name, rule.last_error) for rule in rules if rule.health != "ok"] == []

        recordings = {rule.name for rule in rules if rule.kind == "recording"}
        assert [name for name in sorted(recordings - ONLY_WHEN_FILLING) if not prometheus.query(name)] == []

        [process_group_down] = [rule for rule in rules if rule.name == "ProcessGroupDown"]
        down = {alert["labels"]["name"]: alert for alert in process_group_down.alerts}
        assert set(down) == {"absent"}, "only the group without a process is down"
        assert down["absent"]["state"] == "pending"  # for 2m: it would page after two minutes
        assert down["absent"]["labels"] == {
            "alertname": "ProcessGroupDown",
            "job": "pulse",
            "instance": f"127.0.0.1:{pulse.port}",
            "name": "absent",
            "severity": "critical",
            "team": "platform",
            "service": "host",
        }
