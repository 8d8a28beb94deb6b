"""SLO specs in, Prometheus rules out: Sloth's series names and alerts, with three things done better.

Per SLO, a group of recording rules (`sloth-slo-recordings-<id>`) and one of alerts (`sloth-slo-alerts-<id>`),
every series labelled `sloth_id`, `sloth_service`, `sloth_slo` and the spec's labels:

- `slo:sli_error:ratio_rate<w>` for the alert windows 5m ... 3d, from the spec's queries at that window;
- `slo:sli_error:ratio_rate30d`, **weighted by requests**: Sloth averages the 5-minute ratios over 30 days,
  so a quiet night's 5 minutes count as much as a busy noon's. Pulse records the error and total events of
  every 5-minute window (`slo:sli_error_events:rate5m`, `slo:sli_total_events:rate5m`) and divides their
  sums: errors over requests, as the objective means it. (A `raw` SLI has no events: it is averaged as
  Sloth does.)
- `slo:sli_error:ratio_month_to_date` and `slo:month_error_budget_remaining:ratio`, the **calendar month**
  beside the rolling 30 days. PromQL ranges are constants, so the month to date is two subqueries: daily
  sums over 31 days, keeping the days that lie in the month of the evaluation time (which `@ end()` pins
  inside the subquery), plus hourly sums over a day, keeping today's hours. Subquery steps fall on whole
  days and hours (UTC), so the current hour joins at its end: the series starts an hour into the month.
- latency SLIs from histogram buckets and from probe durations (spec.py's `latency`, `probe_latency`).

Alerts follow the SRE workbook's multi-window multi-burn-rate table for a 30-day budget: page when 1h and
5m both burn faster than 14.4x, or 6h and 30m faster than 6x; ticket for 1d and 2h at 3x, or 3d and 6h at
1x. Both alerts of a SLO have its alert name; `sloth_severity` page|ticket and Pulse's `severity`
critical|warning tell them apart. Their value is the long window's burn rate, and `sloth_window` is
dropped from them, so one alert stays one alert whichever of its two conditions holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from exporter.bundle.rules import Links
from exporter.bundle.slo.spec import SLO, WINDOW, Spec, load_spec
from exporter.config.loader import ConfigError

RULE_SET = "slos"  # prometheus/rules/slos.yml, docs/runbooks/slos.md, prometheus/tests/slos.test.yml
DASHBOARD = "slos"  # a key of rules.DASHBOARDS
ALERT_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# A day and an hour, less the second that would count a sample on a step's boundary in two steps: a
# Prometheus 2 range includes both ends (Prometheus 3 excludes the start).
DAY, HOUR = "23h59m59s", "59m59s"
MINUTE = "59s999ms"  # a whole minute less a millisecond: a per-second gap would drop 1 sample in 60
# Sloth's own name, kept so that Sloth's dashboards and users' queries work unchanged: an `_info`
# series, the one recording rule outside the level:metric:operations names (tests/test_rules.py).
INFO_RECORD = "sloth_slo_info"


@dataclass(frozen=True)
class BurnRate:
    factor: float
    long: str
    short: str


# The SRE workbook's table for a 30-day objective (2 %, 5 %, 10 % and 10 % of the budget spent).
PAGE = (BurnRate(14.4, "1h", "5m"), BurnRate(6, "6h", "30m"))
TICKET = (BurnRate(3, "1d", "2h"), BurnRate(1, "3d", "6h"))


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line expressions as literal blocks (as generate.py writes the other rule files)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def load_specs(paths: Iterable[Path]) -> list[tuple[str, Spec]]:
    """Each spec file validated, with the name errors should use; ConfigError names file, line and field."""
    return [(str(path), load_spec(path)) for path in paths]


def spec_files(slo_dir: Path) -> list[Path]:
    """The specs of a directory, in a stable order: *.yml and *.yaml."""
    return sorted([*slo_dir.glob("*.yml"), *slo_dir.glob("*.yaml")]) if slo_dir.is_dir() else []


def render(specs: Sequence[tuple[str, Spec]], links: Links, mark: str, source: str) -> str:
    """The rule file for `specs`: `mark` (the generated-file marker), then the groups of every SLO."""
    _refuse_clashes(specs)
    groups = [group for _, spec in specs for slo in spec.slos for group in _groups(spec, slo, links)]
    header = (
        f"{mark} from {source}: edit the specs, not this file.\n"
        "# SLOs from Sloth prometheus/v1 specs (docs/slos.md). Runbooks: docs/runbooks/slos.md; unit tests: "
        "prometheus/tests/slos.test.yml.\n"
    )
    return header + yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)


def _refuse_clashes(specs: Sequence[tuple[str, Spec]]) -> None:
    problems = []
    ids: dict[str, str] = {}
    alerts: dict[str, str] = {}
    for name, spec in specs:
        for index, slo in enumerate(spec.slos):
            where = f"{name}: slos[{index}]"
            slo_id = f"{spec.service}-{slo.name}"
            if slo_id in ids:
                problems.append(f"{where}.name: SLO id {slo_id} (service-name) is also defined in {ids[slo_id]}")
            ids.setdefault(slo_id, name)
            if slo.alerting.name in alerts:
                problems.append(
                    f"{where}.alerting.name: {slo.alerting.name} is also the alert of {alerts[slo.alerting.name]}; "
                    "give each SLO its own (its runbook section is found by name)"
                )
            alerts.setdefault(slo.alerting.name, f"{slo_id} ({name})")
    if problems:
        raise ConfigError("SLO specs", problems)


def number(value: Decimal | float) -> str:
    """A number as PromQL reads it, without float noise (0.999, not 0.9990000000000001)."""
    return format(Decimal(str(value)).normalize(), "f")


def _le_matcher(threshold: float) -> str:
    """`le` of a bucket bound, for both spellings: Prometheus 3 writes "1" as "1.0" (ecosystem-facts)."""
    text = number(threshold)
    return f'le="{text}"' if "." in text else f'le=~"{text}(\\\\.0)?"'


def _with(selector: str, matcher: str) -> str:
    return f"{selector}, {matcher}" if selector.strip() else matcher


def _events(slo: SLO) -> tuple[str, str] | None:
    """The SLI as (error query, total query) templated with {{.window}}, or None for a raw ratio."""
    sli = slo.sli
    if sli.events is not None:
        return sli.events.error_query.strip(), sli.events.total_query.strip()
    if sli.latency is not None:
        name, selector = sli.latency.histogram, sli.latency.selector
        total = f"sum(rate({name}_count{{{selector}}}[{{{{.window}}}}]))"
        bucket = _with(selector, _le_matcher(sli.latency.threshold_seconds))
        fast = f"sum(rate({name}_bucket{{{bucket}}}[{{{{.window}}}}]))"
        return f"{total}\n-\n{fast}", total
    if sli.probe_latency is not None:
        # Each evaluation step counts the probes' latest runs: one per run when Prometheus scrapes the
        # probes as often as it evaluates rules (15s in prometheus.yml). Windows beyond 5m sum the
        # recorded 5-minute counts (_groups).
        selector, threshold = sli.probe_latency.selector, number(sli.probe_latency.threshold_seconds)
        slow = f"sum(count_over_time((probe_duration_seconds{{{selector}}} > {threshold})[{{{{.window}}}}:]))"
        every = f"sum(count_over_time(probe_duration_seconds{{{selector}}}[{{{{.window}}}}:]))"
        return slow, every
    return None


def _at(query: str, window: str) -> str:
    return WINDOW.sub(window, query)


def _selector(labels: dict[str, str]) -> str:
    return ", ".join(f'{key}="{labels[key]}"' for key in ("sloth_id", "sloth_service", "sloth_slo"))


def _record(record: str, expr: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"record": record, "expr": expr, "labels": dict(sorted(labels.items()))}


def _groups(spec: Spec, slo: SLO, links: Links) -> list[dict[str, Any]]:
    slo_id = f"{spec.service}-{slo.name}"
    ids = {"sloth_id": slo_id, "sloth_service": spec.service, "sloth_slo": slo.name}
    labels = {**spec.labels, **slo.labels, **ids}
    sel = _selector(ids)
    objective = Decimal(str(slo.objective)) / 100
    budget = 1 - objective

    # The month to date = its complete days before today + today's complete hours + this hour's complete
    # minutes, each a subquery of sums whose steps outside the period are dropped (docs/slos.md, "The
    # calendar month"). The minutes give a value a minute after the month (or Prometheus) starts.
    def month_sum(series: str, over: str = "sum_over_time") -> str:
        days = (
            f"sum_over_time(({over}({series}{{{sel}}}[{DAY}]) and on () "
            "(month(vector(time() - 1)) == on () last_over_time(month()[1m:1m] @ end())))[31d:1d])"
        )
        hours = (
            f"sum_over_time(({over}({series}{{{sel}}}[{HOUR}]) and on () "
            "(day_of_month(vector(time() - 1)) == on () last_over_time(day_of_month()[1m:1m] @ end())))[1d:1h])"
        )
        minutes = (
            f"sum_over_time(({over}({series}{{{sel}}}[{MINUTE}]) and on () "
            "(hour(vector(time() - 1)) == on () last_over_time(hour()[1m:1m] @ end())))[1h:1m])"
        )
        return (
            f'sum without (part) (\n  label_replace({days}, "part", "days", "", "")\n  or\n'
            f'  label_replace({hours}, "part", "hours", "", "")\n  or\n'
            f'  label_replace({minutes}, "part", "minutes", "", "")\n)'
        )

    def windowed(window: str) -> dict[str, str]:
        return {**labels, "sloth_window": window}

    sli: list[dict[str, Any]] = []
    events = _events(slo)
    if events is not None:
        error, total = events
        sli += [
            _record("slo:sli_error_events:rate5m", _at(error, "5m"), windowed("5m")),
            _record("slo:sli_total_events:rate5m", _at(total, "5m"), windowed("5m")),
            _record(
                "slo:sli_error:ratio_rate5m",
                f"slo:sli_error_events:rate5m{{{sel}}}\n/\nslo:sli_total_events:rate5m{{{sel}}}",
                windowed("5m"),
            ),
        ]
        for w in ALERT_WINDOWS[1:]:
            if slo.sli.probe_latency is not None:
                # Its queries are subqueries, costly over days: sum the recorded 5-minute counts instead.
                ratio = (
                    f"sum_over_time(slo:sli_error_events:rate5m{{{sel}}}[{w}])\n/\n"
                    f"sum_over_time(slo:sli_total_events:rate5m{{{sel}}}[{w}])"
                )
            else:
                ratio = f"({_at(error, w)})\n/\n({_at(total, w)})"
            sli.append(_record(f"slo:sli_error:ratio_rate{w}", ratio, windowed(w)))
        period_30d = (
            f"sum_over_time(slo:sli_error_events:rate5m{{{sel}}}[30d])\n/\n"
            f"sum_over_time(slo:sli_total_events:rate5m{{{sel}}}[30d])"
        )
        month = f"{month_sum('slo:sli_error_events:rate5m')}\n/\n{month_sum('slo:sli_total_events:rate5m')}"
    else:
        assert slo.sli.raw is not None
        query = slo.sli.raw.error_ratio_query.strip()
        sli += [_record(f"slo:sli_error:ratio_rate{w}", _at(query, w), windowed(w)) for w in ALERT_WINDOWS]
        # No events to weigh by: the 5-minute ratios averaged over time, as Sloth does.
        period_30d = (
            f"sum_over_time(slo:sli_error:ratio_rate5m{{{sel}}}[30d])\n/\n"
            f"count_over_time(slo:sli_error:ratio_rate5m{{{sel}}}[30d])"
        )
        ratios = "slo:sli_error:ratio_rate5m"
        month = f"{month_sum(ratios)}\n/\n{month_sum(ratios, 'count_over_time')}"
    sli += [
        _record("slo:sli_error:ratio_rate30d", period_30d, windowed("30d")),
        _record("slo:sli_error:ratio_month_to_date", month, windowed("month")),
    ]

    def over_budget(series: str) -> str:
        return (
            f"{series}{{{sel}}}\n/ on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{{{sel}}}"
        )

    period_ratio = "slo:sli_error:ratio_rate30d" if slo.period == "30d" else "slo:sli_error:ratio_month_to_date"
    meta = [
        _record("slo:objective:ratio", f"vector({number(objective)})", labels),
        _record("slo:error_budget:ratio", f"vector({number(budget)})", labels),
        _record("slo:time_period:days", "vector(30)" if slo.period == "30d" else "days_in_month()", labels),
        _record("slo:current_burn_rate:ratio", over_budget("slo:sli_error:ratio_rate5m"), labels),
        _record("slo:period_burn_rate:ratio", over_budget(period_ratio), labels),
        _record("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{{{sel}}}", labels),
        _record("slo:month_burn_rate:ratio", over_budget("slo:sli_error:ratio_month_to_date"), labels),
        _record("slo:month_error_budget_remaining:ratio", f"1 - slo:month_burn_rate:ratio{{{sel}}}", labels),
        _record(
            INFO_RECORD,
            "vector(1)",
            {
                **labels,
                "sloth_window": slo.period,
                "sloth_spec": "prometheus/v1",
                "sloth_objective": number(objective * 100),
            },
        ),
    ]

    alerts = [
        _alert(spec, slo, "page", PAGE, sel, budget, links),
        _alert(spec, slo, "ticket", TICKET, sel, budget, links),
    ]
    # One group for Sloth's two recording groups: rules in a group run in order, so the meta series read
    # this evaluation's SLI values, not the last one's (with no order between groups, an hourly promtool
    # test would find none within the 5-minute lookback).
    return [
        {"name": f"sloth-slo-recordings-{slo_id}", "rules": sli + meta},
        *([{"name": f"sloth-slo-alerts-{slo_id}", "rules": [a for a in alerts if a]}] if any(alerts) else []),
    ]


def _alert(  # noqa: PLR0917 - one call site, every argument named there
    spec: Spec, slo: SLO, kind: str, rates: Sequence[BurnRate], sel: str, budget: Decimal, links: Links
) -> dict[str, Any] | None:
    alerting = slo.alerting
    own = alerting.page_alert if kind == "page" else alerting.ticket_alert
    if own.disable:
        return None

    def burning(rate: BurnRate) -> str:
        factor = number(rate.factor)
        return (
            f"  (\n    slo:sli_error:ratio_rate{rate.long}{{{sel}}} / {number(budget)} > {factor}\n"
            f"    and ignoring (sloth_window)\n"
            f"    slo:sli_error:ratio_rate{rate.short}{{{sel}}} / {number(budget)} > {factor}\n  )"
        )

    expr = "max without (sloth_window) (\n" + "\n  or ignoring (sloth_window)\n".join(map(burning, rates)) + "\n)"
    severity = "critical" if kind == "page" else "warning"
    labels = {
        "severity": severity,
        "service": spec.service,
        **alerting.labels,
        **own.labels,
        "sloth_severity": kind,
    }
    when = " or ".join(f"{number(r.factor)}x over {r.long} and {r.short}" for r in rates)
    defaults = {
        "summary": f"The {spec.service} {slo.name} SLO is burning its error budget too fast.",
        "description": (
            "{{ $labels.sloth_service }} {{ $labels.sloth_slo }} (objective "
            + number(Decimal(str(slo.objective)))
            + ' %) is spending its error budget {{ printf "%.1f" $value }} times as fast as the objective '
            f"allows; a {kind} fires at {when}." + (f" {slo.description.strip()}" if slo.description.strip() else "")
        ),
        "runbook_url": links.runbook(RULE_SET, alerting.name),
        "dashboard_url": links.dashboard(DASHBOARD),
    }
    annotations = {**defaults, **alerting.annotations, **own.annotations}
    return {
        "alert": alerting.name,
        "expr": expr,
        "labels": dict(sorted(labels.items())),
        "annotations": annotations,
    }
