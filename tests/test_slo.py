"""SLO specs (Sloth's prometheus/v1 format): what is refused and how it is reported, and what a Sloth
user's spec generates: Sloth's rule names and labels, Pulse's routing labels, and valid rules for promtool.
The shipped specs' alerts and series are specified by promtool unit tests (prometheus/tests/slos*.test.yml),
run by tests/test_rules.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.bundle.generate import GENERATED_MARK
from exporter.bundle.rules import Links
from exporter.bundle.slo.generate import load_specs, render
from exporter.config.loader import ConfigError
from tests.helpers import require_binary
from tests.rules import ROOT

LINKS = Links("https://runbooks.example/docs/runbooks", "http://grafana:3000")

# The shape of Sloth's getting-started example (README, examples/getting-started.yml), with Pulse's team.
SLOTH_SPEC = """\
version: "prometheus/v1"
service: "myservice"
labels:
  owner: "myteam"
  tier: "2"
slos:
  # We allow failing (5xx and 429) 1 request every 1000 requests (99.9%).
  - name: "requests-availability"
    objective: 99.9
    description: "Common SLO based on availability for HTTP request responses."
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      name: MyServiceHighErrorRate
      labels:
        category: "availability"
        team: platform
      annotations:
        summary: "High error rate on 'myservice' requests responses."
      page_alert:
        labels:
          severity: critical
      ticket_alert:
        labels:
          severity: warning
  - name: "cpu-ratio"
    objective: 95
    sli:
      raw:
        error_ratio_query: avg(rate(node_cpu_seconds_total{mode!="idle"}[{{ .window }}]))
    alerting:
      name: MyServiceCpuBudgetBurn
      labels: {team: platform}
      ticket_alert: {disable: true}
"""

SLOTH_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")


def generated(tmp_path: Path, text: str, name: str = "spec.yml") -> dict[str, Any]:
    spec = tmp_path / name
    spec.write_text(text)
    rules: dict[str, Any] = yaml.safe_load(render(load_specs([spec]), LINKS, GENERATED_MARK, str(spec)))
    return rules


def rules_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def problems_of(tmp_path: Path, text: str) -> str:
    spec = tmp_path / "bad.yml"
    spec.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_specs([spec])
    return str(raised.value)


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# ----------------------------------------------------------------------------------------- generation


def test_a_sloth_spec_generates_sloths_series_with_its_labels(tmp_path: Path) -> None:
    rules = rules_of(generated(tmp_path, SLOTH_SPEC))
    availability = [r for r in rules if r.get("labels", {}).get("sloth_slo") == "requests-availability"]
    records = {r["record"] for r in availability if "record" in r}
    assert {f"slo:sli_error:ratio_rate{w}" for w in SLOTH_WINDOWS} <= records
    assert {
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
    } <= records
    for rule in availability:
        if "record" in rule:
            labels = rule["labels"]
            assert labels["sloth_id"] == "myservice-requests-availability"
            assert labels["sloth_service"] == "myservice"
            assert (labels["owner"], labels["tier"]) == ("myteam", "2")
    by_name = {r["record"]: r for r in availability if "record" in r}
    assert by_name["slo:objective:ratio"]["expr"] == "vector(0.999)"
    assert by_name["slo:error_budget:ratio"]["expr"] == "vector(0.001)"
    assert by_name["slo:sli_error:ratio_rate1h"]["labels"]["sloth_window"] == "1h"
    assert 'code=~"(5..|429)"}[1h]' in by_name["slo:sli_error:ratio_rate1h"]["expr"]
    # Weighted by events: sums of the recorded error and total events, not an average of ratios.
    assert "slo:sli_error_events:rate5m" in by_name["slo:sli_error:ratio_rate30d"]["expr"]
    assert "count_over_time" not in by_name["slo:sli_error:ratio_rate30d"]["expr"]


def test_a_sloth_spec_gets_page_and_ticket_alerts_that_pulse_can_route(tmp_path: Path) -> None:
    alerts = [r for r in rules_of(generated(tmp_path, SLOTH_SPEC)) if "alert" in r]
    page, ticket = [a for a in alerts if a["alert"] == "MyServiceHighErrorRate"]
    assert page["labels"] == {
        "category": "availability",
        "service": "myservice",
        "severity": "critical",
        "sloth_severity": "page",
        "team": "platform",
    }
    assert (ticket["labels"]["severity"], ticket["labels"]["sloth_severity"]) == ("warning", "ticket")
    assert "slo:sli_error:ratio_rate1h{" in page["expr"]
    assert "/ 0.001 > 14.4" in page["expr"]
    assert "slo:sli_error:ratio_rate30m{" in page["expr"]
    assert "/ 0.001 > 6" in page["expr"]
    assert "slo:sli_error:ratio_rate3d{" in ticket["expr"]
    assert "/ 0.001 > 1\n" in ticket["expr"]
    annotations = page["annotations"]
    assert annotations["summary"] == "High error rate on 'myservice' requests responses."
    assert annotations["runbook_url"] == "https://runbooks.example/docs/runbooks/slos.md#myservicehigherrorrate"
    assert annotations["dashboard_url"] == "http://grafana:3000/d/pulse-slos"
    assert "{{" in annotations["description"]
    cpu = [a for a in alerts if a["alert"] == "MyServiceCpuBudgetBurn"]
    assert [a["labels"]["sloth_severity"] for a in cpu] == ["page"]  # ticket_alert.disable


def test_a_raw_sli_is_averaged_over_time_as_sloth_does(tmp_path: Path) -> None:
    rules = rules_of(generated(tmp_path, SLOTH_SPEC))
    raw_30d = next(
        r for r in rules if r.get("record") == "slo:sli_error:ratio_rate30d" and r["labels"]["sloth_slo"] == "cpu-ratio"
    )
    assert "count_over_time(slo:sli_error:ratio_rate5m" in raw_30d["expr"]
    raw_5m = next(
        r for r in rules if r.get("record") == "slo:sli_error:ratio_rate5m" and r["labels"]["sloth_slo"] == "cpu-ratio"
    )
    assert raw_5m["expr"] == 'avg(rate(node_cpu_seconds_total{mode!="idle"}[5m]))'


@pytest.mark.parametrize(("threshold", "matcher"), [(0.5, 'le="0.5"'), (1, 'le=~"1(\\\\.0)?"'), (2.5, 'le="2.5"')])
def test_a_latency_sli_matches_the_bucket_in_both_spellings(tmp_path: Path, threshold: float, matcher: str) -> None:
    spec = f"""\
version: prometheus/v1
service: api
slos:
  - name: latency
    objective: 99
    sli:
      latency: {{histogram: http_request_duration_seconds, threshold_seconds: {threshold}, selector: 'job="api"'}}
    alerting: {{name: ApiLatencyBudgetBurn, labels: {{team: platform}}}}
"""
    rules = rules_of(generated(tmp_path, spec))
    errors = next(r for r in rules if r.get("record") == "slo:sli_error_events:rate5m")["expr"]
    assert f'http_request_duration_seconds_bucket{{job="api", {matcher}}}[5m]' in errors
    assert 'http_request_duration_seconds_count{job="api"}[5m]' in errors


def test_generated_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    out = tmp_path / "rules.yml"
    spec = tmp_path / "sloth.yml"
    spec.write_text(SLOTH_SPEC)
    result = run_cli("slo", "generate", str(spec), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith(GENERATED_MARK)
    checked = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_slo_generate_prints_to_stdout_without_o(tmp_path: Path) -> None:
    spec = tmp_path / "sloth.yml"
    spec.write_text(SLOTH_SPEC)
    result = run_cli("slo", "generate", str(spec))
    assert result.returncode == 0, result.stderr
    assert "alert: MyServiceHighErrorRate" in result.stdout


def test_rules_generate_reads_slos_from_the_given_directory(tmp_path: Path) -> None:
    slos = tmp_path / "slos"
    slos.mkdir()
    (slos / "sloth.yml").write_text(SLOTH_SPEC)
    out = tmp_path / "rules"
    assert run_cli("rules", "generate", "--slos", str(slos), "--out", str(out)).returncode == 0
    assert "MyServiceHighErrorRate" in (out / "slos.yml").read_text()
    (slos / "sloth.yml").unlink()
    assert run_cli("rules", "generate", "--slos", str(slos), "--out", str(out)).returncode == 0
    assert not (out / "slos.yml").exists()  # no specs left: the generated file goes


# ----------------------------------------------------------------------------------------- validation

MINIMAL = """\
version: prometheus/v1
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(x{{code="500"}}[{{{{.window}}}}]))
        total_query: sum(rate(x[{{{{.window}}}}]))
    alerting:
      name: ApiBudgetBurn
      labels: {labels}
"""


def test_a_spec_without_a_team_is_refused_with_file_line_and_field(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL.format(labels="{}"))
    assert f"{tmp_path / 'bad.yml'}:10: slos[0].alerting: labels.team is required" in problems


def test_an_unknown_team_and_a_severity_pulse_cannot_route_are_refused(tmp_path: Path) -> None:
    assert "labels.team is 'sre'; Pulse's teams are platform" in problems_of(
        tmp_path, MINIMAL.format(labels="{team: sre}")
    )
    text = MINIMAL.format(labels="{team: platform}") + "      page_alert: {labels: {severity: pageteam}}\n"
    assert "alerting.page_alert.labels.severity is 'pageteam'" in problems_of(tmp_path, text)


def test_unknown_keys_are_refused_at_their_line(tmp_path: Path) -> None:
    text = MINIMAL.format(labels="{team: platform}").replace(
        "    objective: 99.9\n", "    objective: 99.9\n    objetive: 99\n"
    )
    assert f"{tmp_path / 'bad.yml'}:6: slos[0].objetive: unknown field (did you mean 'objective'?)" in problems_of(
        tmp_path, text
    )


def test_a_query_without_the_window_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.format(labels="{team: platform}").replace("sum(rate(x[{{.window}}]))", "sum(rate(x[5m]))")
    assert "slos[0].sli.events.total_query: the query must use {{.window}}" in problems_of(tmp_path, text)


def test_sloths_plugins_are_refused_with_the_reason(tmp_path: Path) -> None:
    text = MINIMAL.format(labels="{team: platform}").replace(
        "      events:\n", "      plugin: {id: sloth-common/kubernetes/apiserver/availability}\n      events:\n"
    )
    assert "slos[0].sli.plugin: Sloth's plugins are Go code that runs inside Sloth" in problems_of(tmp_path, text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("objective: 99.9", "objective: 100"), "slos[0].objective: Input should be less than 100"),
        (("version: prometheus/v1", "version: prometheus/v2"), "version: Input should be 'prometheus/v1'"),
        (("name: ApiBudgetBurn", "name: Api-Burn"), "slos[0].alerting.name: String should match pattern"),
    ],
)
def test_other_bad_values_are_located(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = MINIMAL.format(labels="{team: platform}").replace(*change)
    assert message in problems_of(tmp_path, text)


def test_two_slos_with_one_alert_name_are_refused(tmp_path: Path) -> None:
    text = MINIMAL.format(labels="{team: platform}")
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    first.write_text(text)
    second.write_text(text.replace("service: api", "service: web"))
    with pytest.raises(ConfigError, match="ApiBudgetBurn is also the alert of api-availability"):
        render(load_specs([first, second]), LINKS, GENERATED_MARK, "specs")


def test_the_cli_reports_a_bad_spec_without_a_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yml"
    spec.write_text(MINIMAL.format(labels="{}"))
    result = run_cli("slo", "generate", str(spec))
    assert result.returncode == 1
    assert f"{spec}:10: slos[0].alerting: labels.team is required" in result.stderr
    assert "Traceback" not in result.stderr
    slos = tmp_path / "slos"
    slos.mkdir()
    (slos / "bad.yml").write_text(MINIMAL.format(labels="{}"))
    rules = run_cli("rules", "generate", "--slos", str(slos), "--out", str(tmp_path / "out"))
    assert rules.returncode == 1
    assert f"{slos / 'bad.yml'}:10: slos[0].alerting" in rules.stderr
    assert "Traceback" not in rules.stderr
