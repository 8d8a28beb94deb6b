"""Synthetic probes (/probe): availability and latency recorded for dashboards, reports and SLOs, and the
alerts on probe results.

One failing probe pages once. Which alert pages depends on the prober, never two of them:
- JourneyFailing for a journey module (it names the step), ProbeDnsFailing for a DNS module;
- ProbeCertificateExpired when the probe failed because a certificate expired;
- ProbeFailing for every other failed probe (http, tcp, icmp, and journeys or DNS modules never).
The warnings (ProbeSlow, ProbeHttpStatusUnexpected) are muted by ProbeFailing in Alertmanager.
"""

from __future__ import annotations

from typing import Annotated

import pydantic

from exporter.bundle.rules import Alert, Group, Recording, Rule, Severity
from exporter.bundle.sets.base import PromDuration, RuleSet, RuleSetSettings, Selectors

DAY_SECONDS = 86400
SLOW_RECORD = "instance_module:probe_duration_seconds:avg_over_time5m"  # what ProbeSlow compares
EXPIRED_REASON = 'reason="certificate_expired"'  # ProbeCertificateExpired's case, not ProbeFailing's
ModuleName = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]


class ProbesSettings(RuleSetSettings):
    failing_for: PromDuration = "2m"  # ProbeFailing, ProbeDnsFailing, JourneyFailing, ProbeCertificateExpired
    slow_seconds: float = pydantic.Field(1.0, gt=0)  # ProbeSlow: 5-minute average probe duration above this
    slow_seconds_by_module: dict[ModuleName, Annotated[float, pydantic.Field(gt=0)]] = {}  # per-module overrides
    slow_for: PromDuration = "5m"
    accepted_status_min: int = pydantic.Field(200, ge=100, le=599)  # ProbeHttpStatusUnexpected outside min..max
    accepted_status_max: int = pydantic.Field(399, ge=100, le=599)
    status_for: PromDuration = "5m"
    certificate_warning_days: int = pydantic.Field(21, gt=0)  # ProbeCertificateExpiring, warning
    certificate_critical_days: int = pydantic.Field(7, gt=0)  # ProbeCertificateExpiring, critical
    certificate_for: PromDuration = "15m"

    @pydantic.model_validator(mode="after")
    def _ranges_in_order(self) -> ProbesSettings:
        if self.accepted_status_min > self.accepted_status_max:
            raise ValueError("accepted_status_min must not be above accepted_status_max")
        if self.certificate_critical_days >= self.certificate_warning_days:
            raise ValueError("certificate_critical_days must be fewer than certificate_warning_days")
        return self


def matchers(*parts: str) -> str:
    """A series selector's braces from label matchers, skipping empty ones (an empty selector setting)."""
    return "{" + ", ".join(part for part in parts if part) + "}"


def module_is(module: str) -> str:
    return 'module="' + module + '"'  # module names are checked: letters, digits, _ and -


def failure_reason(selector: str) -> str:
    """A description fragment: ", reason <reason>" from probe_failure_info{reason} of the alert's probe,
    when the probe reported one (Pulse exports it on every failure; blackbox_exporter does not)."""
    query = "probe_failure_info" + matchers(selector.replace("%", "%%"), "instance=%q", "module=%q")
    return (
        f"{{{{ with printf `{query}` $labels.instance $labels.module | query }}}}"
        '; reason: {{ . | first | label "reason" }}{{ end }}'
    )


def recordings(probes: str) -> list[Rule]:
    """Per probe (labels job, instance, module, service) and per service (instance and module summed away)."""
    per_probe = [
        Recording(
            f"instance_module:probe_success:avg_over_time{window}",
            f"avg_over_time(probe_success{{{probes}}}[{window}])",
        )
        for window in ("5m", "1h", "1d")
    ]
    per_probe += [
        Recording(
            "instance_module:probe_duration_seconds:avg_over_time5m",
            f"avg_over_time(probe_duration_seconds{{{probes}}}[5m])",
        ),
        Recording(
            "instance_module_phase:probe_http_duration_seconds:avg_over_time5m",
            f"avg_over_time(probe_http_duration_seconds{{{probes}}}[5m])",
        ),
        Recording(
            "instance_module_step:probe_journey_step_duration_seconds:avg_over_time5m",
            f"avg_over_time(probe_journey_step_duration_seconds{{{probes}}}[5m])",
        ),
    ]
    per_service: list[Rule] = [
        Recording(
            f"service:probe_success:avg_over_time{window}",
            f"avg without (instance, module) (instance_module:probe_success:avg_over_time{window})",
        )
        for window in ("5m", "1h", "1d")
    ]
    per_service += [
        Recording(
            "service:probe_duration_seconds:avg_over_time5m",
            "avg without (instance, module) (instance_module:probe_duration_seconds:avg_over_time5m)",
        ),
        Recording("service:probe_success:sum", f"sum without (instance, module) (probe_success{{{probes}}})"),
        Recording("service:probe_success:count", f"count without (instance, module) (probe_success{{{probes}}})"),
    ]
    return [*per_probe, *per_service]


def failure_alerts(settings: ProbesSettings, probes: str) -> list[Alert]:
    where = "{{ $labels.instance }} (module {{ $labels.module }}, service {{ $labels.service }})"
    reason = failure_reason(probes)
    return [
        Alert(
            name="ProbeFailing",
            expr=f"probe_success{{{probes}}} == 0\n"
            f"unless probe_journey_steps{{{probes}}}\n"
            f"unless probe_dns_query_succeeded{{{probes}}}\n"
            f"unless ignoring (reason) probe_failure_info{matchers(probes, EXPIRED_REASON)}",
            for_=settings.failing_for,
            severity="critical",
            team="platform",
            summary="A synthetic probe has been failing.",
            description=f"The probe of {where} has failed for {settings.failing_for}{reason}.",
            dashboard="probes",
        ),
        Alert(
            name="ProbeDnsFailing",
            expr=f"probe_success{{{probes}}} == 0\nand probe_dns_query_succeeded{{{probes}}}",
            for_=settings.failing_for,
            severity="critical",
            team="platform",
            summary="A DNS probe has been failing.",
            description=f"The DNS probe of the server {where} has failed for {settings.failing_for}{reason}.",
            dashboard="probes",
        ),
        Alert(
            name="JourneyFailing",
            # The failed step is the one with success 0 that ran (the steps after it report duration 0);
            # a journey that failed before its first step (a bad target, a timeout) alerts without `step`.
            expr=f"(probe_journey_step_success{{{probes}}} == 0\n"
            f" and probe_journey_step_duration_seconds{{{probes}}} > 0)\n"
            f"or ignoring (step)\n"
            f"(probe_success{{{probes}}} == 0 and probe_journey_steps{{{probes}}})",
            for_=settings.failing_for,
            severity="critical",
            team="platform",
            summary="A journey probe has been failing.",
            description=f"The journey {{{{ $labels.module }}}} of {{{{ $labels.instance }}}} (service "
            f"{{{{ $labels.service }}}}) has failed for {settings.failing_for}"
            f"{{{{ if $labels.step }}}} at step {{{{ $labels.step }}}}{{{{ else }}}} before its first step{{{{ end }}}}"
            f"{reason}.",
            dashboard="probes",
        ),
    ]


def slow_alert(settings: ProbesSettings, probes: str) -> Alert:
    """The default threshold, and each module's own (journeys take longer), in one rule: promtool refuses
    two rules with the same name and labels."""
    overrides = sorted(settings.slow_seconds_by_module.items())
    others = f'module!~"{"|".join(module for module, _ in overrides)}"' if overrides else ""
    branches = [f"{SLOW_RECORD}{matchers(probes, others)} > {settings.slow_seconds:g}"]
    branches += [f"{SLOW_RECORD}{matchers(probes, module_is(module))} > {seconds:g}" for module, seconds in overrides]
    threshold = "".join(
        f'{{{{ if eq $labels.module "{module}" }}}}{seconds:g}{{{{ else }}}}' for module, seconds in overrides
    )
    threshold += f"{settings.slow_seconds:g}" + "{{ end }}" * len(overrides)
    return Alert(
        name="ProbeSlow",
        expr="\nor ".join(branches),
        for_=settings.slow_for,
        severity="warning",
        team="platform",
        summary="A synthetic probe is slow.",
        description="The probe of {{ $labels.instance }} (module {{ $labels.module }}, service "
        "{{ $labels.service }}) took {{ $value | humanizeDuration }} on average over 5 minutes, for "
        f"{settings.slow_for}; the threshold is {threshold}s.",
        dashboard="probes",
    )


def status_alert(settings: ProbesSettings, probes: str) -> Alert:
    low, high = settings.accepted_status_min, settings.accepted_status_max
    status = f"probe_http_status_code{{{probes}}}"
    return Alert(
        name="ProbeHttpStatusUnexpected",
        # 0 is no response at all (ProbeFailing's case); a journey's statuses are its steps' expectations.
        expr=f"({status} > 0 and ({status} < {low} or {status} > {high}))\nunless probe_journey_steps{{{probes}}}",
        for_=settings.status_for,
        severity="warning",
        team="platform",
        summary="A probed HTTP endpoint answers with an unexpected status.",
        description="{{ $labels.instance }} (module {{ $labels.module }}, service {{ $labels.service }}) has "
        f"answered HTTP {{{{ $value }}}} for {settings.status_for}, outside the accepted {low}-{high}.",
        dashboard="probes",
    )


def certificate_alerts(settings: ProbesSettings, probes: str) -> list[Alert]:
    left = f"probe_ssl_earliest_cert_expiry{{{probes}}} - time()"
    where = "{{ $labels.instance }} (module {{ $labels.module }}, service {{ $labels.service }})"
    warning, critical = settings.certificate_warning_days, settings.certificate_critical_days
    # Disjoint ranges: at most one of the two fires for a certificate, and none once it has expired.
    expiring: list[tuple[Severity, int, str]] = [
        ("warning", warning, f">= {critical * DAY_SECONDS}"),
        ("critical", critical, "> 0"),
    ]
    alerts = [
        Alert(
            name="ProbeCertificateExpiring",
            expr=f"{left} < {days * DAY_SECONDS}\nand {left} {lower_bound}",
            for_=settings.certificate_for,
            severity=severity,
            team="platform",
            summary="A TLS certificate expires soon.",
            description=f"A TLS certificate served by {where} expires in {{{{ $value | humanizeDuration }}}} "
            f"(less than {days} days).",
            dashboard="probes",
        )
        for severity, days, lower_bound in expiring
    ]
    alerts.append(
        Alert(
            name="ProbeCertificateExpired",
            # The leaf's expiry is exported also when verification failed; the failure reason covers an
            # expired intermediate, which no metric dates.
            expr=f"time() - probe_ssl_earliest_cert_expiry{{{probes}}} >= 0\n"
            f"or time() - probe_ssl_leaf_not_after_timestamp_seconds{{{probes}}} >= 0\n"
            f"or max without (reason) (probe_failure_info{matchers(probes, EXPIRED_REASON)}) * 0",
            for_=settings.failing_for,
            severity="critical",
            team="platform",
            summary="A TLS certificate has expired.",
            description=f"A TLS certificate served by {where} has expired"
            "{{ if gt $value 0.0 }} {{ $value | humanizeDuration }} ago{{ else }} (the probe's TLS handshake "
            "rejected an expired certificate of the chain){{ end }}: clients refuse the connection.",
            dashboard="probes",
        )
    )
    return alerts


def build(settings: ProbesSettings, selectors: Selectors) -> list[Group]:
    probes = selectors.probes
    alerts: list[Rule] = [
        *failure_alerts(settings, probes),
        slow_alert(settings, probes),
        status_alert(settings, probes),
        *certificate_alerts(settings, probes),
    ]
    return [Group("probes-recording", recordings(probes)), Group("probes", alerts)]


RULE_SET = RuleSet(
    name="probes", title="Synthetic probes: availability, latency and alerts", settings=ProbesSettings, build=build
)
