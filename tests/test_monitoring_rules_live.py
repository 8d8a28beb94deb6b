"""The monitoring rules on the real Prometheus and Alertmanager: the shipped prometheus.yml scrapes both
(its `prometheus` and `alertmanager` jobs), Prometheus evaluates prometheus/rules/monitoring.yml every
second, and two faults are real: a rule group that fails at every evaluation, and an Alertmanager whose
only receiver is a webhook where nothing listens. promtool's unit tests feed series written by hand;
this shows the selectors, metric names and label matching fit what these versions serve, and that the
two alerts start (pending: their `for` is minutes) while the others stay quiet.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alertmanager_server import RunningAlertmanager, firing, start_alertmanager
from tests.helpers import free_port, wait_until
from tests.prometheus_server import PrometheusServer, RuleState, running_prometheus
from tests.rules import RULES_DIR, metric_names_in
from tests.stack import prometheus_config

MONITORING_RULES = RULES_DIR / "monitoring.yml"
FAULTS = {"PrometheusRuleFailures", "AlertmanagerFailedToSendAlerts"}

# A group that fails at every evaluation: `on ()` makes every `up` series the same match group ("found
# duplicate series").
TEST_RULES = """\
groups:
  - name: broken
    rules:
      - record: job:up:broken
        expr: vector(1) * on () group_left () up
"""


@dataclass(frozen=True)
class Pair:
    prometheus: PrometheusServer
    alertmanager: RunningAlertmanager
    directory: Path

    def monitoring_rules(self) -> dict[str, RuleState]:
        return {rule.name: rule for rule in self.prometheus.rules() if rule.group == "monitoring"}


def alertmanager_config(nowhere: int) -> dict[str, Any]:
    return {
        "route": {"receiver": "nowhere", "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1m"},
        "receivers": [{"name": "nowhere", "webhook_configs": [{"url": f"http://127.0.0.1:{nowhere}/hook"}]}],
    }


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("monitoring")
    alertmanager = start_alertmanager(alertmanager_config(free_port()), directory / "alertmanager")
    try:
        test_rules = directory / "test-rules.yml"
        test_rules.write_text(TEST_RULES)
        port = free_port()
        # The shipped config: Pulse's jobs find nobody (their `up` is 0), the other two are real.
        config = prometheus_config(
            f"127.0.0.1:{free_port()}", alertmanager.url.removeprefix("http://"), f"127.0.0.1:{port}"
        )
        with running_prometheus(directory, config, [MONITORING_RULES, test_rules], port=port) as prometheus:
            yield Pair(prometheus, alertmanager, directory)
    finally:
        alertmanager.stop()


def test_every_monitoring_rule_evaluates_on_the_series_prometheus_and_alertmanager_serve(pair: Pair) -> None:
    prometheus = pair.prometheus
    for job in ("prometheus", "alertmanager"):
        prometheus.wait_for_samples(f'count_over_time(up{{job="{job}"}}[1m]) >= 3 and up == 1', f"{job} scraped")
    rules = {rule.name: rule for rule in prometheus.wait_for_rules_evaluated_after(time.time())}
    shipped = yaml.safe_load(MONITORING_RULES.read_text())["groups"]
    monitoring = [rule for group in shipped for rule in group["rules"]]
    assert [(rule["alert"], rules[rule["alert"]].health, rules[rule["alert"]].last_error) for rule in monitoring
            if rules[rule["alert"]].health != "ok"] == []  # fmt: skip

    # A misspelt metric evaluates without error, to nothing: every name must be one the two servers serve.
    used = set().union(*(metric_names_in(rule["expr"]) for rule in monitoring))
    held = set(prometheus.api("label/__name__/values"))
    assert sorted(used - held) == []


def test_a_failing_rule_group_and_an_undeliverable_receiver_start_their_alerts_and_nothing_else(pair: Pair) -> None:
    instances = {"prometheus": f"127.0.0.1:{pair.prometheus.port}",
                 "alertmanager": pair.alertmanager.url.removeprefix("http://")}  # fmt: skip

    def started() -> dict[str, RuleState] | None:
        rules = pair.monitoring_rules()
        return rules if all(rules[name].alerts for name in FAULTS) else None

    def state() -> str:
        quiet = [
            f"{name}: {rule.health} {rule.last_error} {len(rule.alerts)} alert(s)"
            for name, rule in pair.monitoring_rules().items()
        ]
        return "both alerts pending; rules now: " + "; ".join(quiet) + "\n" + pair.alertmanager.log()[-2000:]

    # Something for Alertmanager to deliver (Prometheus would send its own alerts only after it has
    # discovered Alertmanager, and then once a minute). Alertmanager gives the notification up about
    # 10 s after its first try; the next scrape shows it.
    pair.alertmanager.post_alerts([firing({"alertname": "MonitoringTestUndeliverable", "severity": "warning"})])
    rules = wait_until(started, 60, state, interval=0.5)

    [rule_failure] = rules["PrometheusRuleFailures"].alerts
    assert rule_failure["state"] == "pending"  # for 15m
    assert rule_failure["labels"]["rule_group"].endswith("test-rules.yml;broken")
    assert {key: rule_failure["labels"][key] for key in ("job", "instance", "severity", "team", "service")} == {
        "job": "prometheus", "instance": instances["prometheus"], "severity": "critical", "team": "platform",
        "service": "prometheus",
    }  # fmt: skip

    [undelivered] = rules["AlertmanagerFailedToSendAlerts"].alerts
    assert undelivered["state"] == "pending"  # for 5m
    assert {key: undelivered["labels"][key] for key in ("job", "instance", "integration", "service")} == {
        "job": "alertmanager", "instance": instances["alertmanager"], "integration": "webhook",
        "service": "alertmanager",
    }  # fmt: skip
    assert float(undelivered["value"]) > 0.01

    assert {name: rule.alerts for name, rule in rules.items() if name not in FAULTS and rule.alerts} == {}


def test_a_refused_reload_shows_in_the_series_the_reload_alerts_read(pair: Pair) -> None:
    """Their `for` (5m of failures, then 10m) is the unit tests'; here: a real refused reload sets the very
    series, under the very job, that the alerts' expressions select."""
    prometheus_config_file = pair.directory / "prometheus.yml"
    alertmanager_config_file = pair.directory / "alertmanager" / "alertmanager.yml"
    prometheus_config_file.write_text("scrape_configs: [{job_name: }]\n")
    alertmanager_config_file.write_text("route: {receiver: missing}\nreceivers: []\n")
    pair.prometheus.process.send_signal(signal.SIGHUP)
    pair.alertmanager.process.send_signal(signal.SIGHUP)
    for job, metric in (("prometheus", "prometheus_config_last_reload_successful"),
                        ("alertmanager", "alertmanager_config_last_reload_successful")):  # fmt: skip
        pair.prometheus.wait_for_samples(f'{metric}{{job="{job}"}} == 0', f"{job}'s refused reload scraped")
    pair.prometheus.assert_running()
    pair.alertmanager.assert_running()
