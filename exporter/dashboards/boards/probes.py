"""Uptime and probes: is each target up, how long has it been up, how fast does it answer, and why does
it fail, from the probes Prometheus runs through Pulse's /probe (job `pulse-probes`) and the recording
rules of prometheus/rules/probes.yml. Laid out as blackbox_exporter users know it from the blackbox
mixin: a summary first, then success, latency, failures, certificates and DNS, and journeys."""

from __future__ import annotations

from exporter.dashboards.model import Board, Panel, Query, Row, Threshold, Variable

# Every query is filtered by every variable: the board has an `instance` variable (template-instance-rule).
PROBES = 'job="pulse-probes", service=~"$service", instance=~"$instance", module=~"$module"'
PER_TARGET = "{{instance}} ({{module}})"
# The model's base colour is green; a first step far below any real value makes red the colour of
# everything under the next step (probe_success 0, a certificate that has a few days left).

BOARD = Board(
    key="probes",
    title="Pulse / Uptime and probes",
    description="Synthetic probes of every target: up or down now, uptime, latency by phase, why probes "
    "fail, certificates, DNS and the steps of business journeys.",
    tags=("probes", "blackbox"),
    variables=(
        Variable("service", "Service", 'probe_success{job="pulse-probes"}', "service"),
        Variable("instance", "Target", 'probe_success{job="pulse-probes", service=~"$service"}', "instance"),
        Variable(
            "module",
            "Module",
            'probe_success{job="pulse-probes", service=~"$service", instance=~"$instance"}',
            "module",
        ),
    ),
    rows=(
        Row(
            "Summary",
            (
                Panel(
                    "Status per target",
                    "Whether each target's last probe succeeded: green (1) is up, red (0) is down. A target "
                    "probed by several modules (HTTP, TCP, a journey) shows once per module.",
                    "none",
                    (Query(f"probe_success{{{PROBES}}}", PER_TARGET, instant=True),),
                    kind="stat",
                    width=12,
                    base_color="red",
                    thresholds=(Threshold(1, "green"),),
                ),
                Panel(
                    "Targets up",
                    "How many of the selected targets (per module) passed their last probe.",
                    "short",
                    (Query(f"sum(probe_success{{{PROBES}}})", "up", instant=True),),
                    kind="stat",
                    width=3,
                ),
                Panel(
                    "Targets down",
                    "How many of the selected targets (per module) failed their last probe; anything above "
                    "0 is red. The reasons are in 'Failure reasons' below.",
                    "short",
                    (Query(f"count(probe_success{{{PROBES}}} == 0) or vector(0)", "down", instant=True),),
                    kind="stat",
                    width=3,
                    thresholds=(Threshold(1, "red"),),
                ),
                Panel(
                    "Uptime per service",
                    "The share of successful probes per service over the last hour and the last day: the "
                    "average of its selected targets' uptime (the recording rules "
                    "instance_module:probe_success:avg_over_time1h and 1d; with every target selected it "
                    "equals service:probe_success:avg_over_time1h and 1d). Red below 99 %.",
                    "percentunit",
                    tuple(
                        Query(
                            f"avg by (service) (instance_module:probe_success:avg_over_time{window}{{{PROBES}}})",
                            f"{{{{service}}}} {window}",
                            instant=True,
                        )
                        for window in ("1h", "1d")
                    ),
                    kind="stat",
                    width=6,
                    base_color="red",
                    thresholds=(Threshold(0.99, "yellow"), Threshold(0.999, "green")),
                ),
            ),
        ),
        Row(
            "Success over time",
            (
                Panel(
                    "Uptime per target, last day",
                    "The share of successful probes of each target over the last 24 hours (the recording rule "
                    "instance_module:probe_success:avg_over_time1d). Red below 99 %, yellow below 99.9 %.",
                    "percentunit",
                    (Query(f"instance_module:probe_success:avg_over_time1d{{{PROBES}}}", PER_TARGET, instant=True),),
                    kind="bargauge",
                    width=8,
                    base_color="red",
                    thresholds=(Threshold(0.99, "yellow"), Threshold(0.999, "green")),
                    minimum=0,
                    maximum=1,
                ),
                Panel(
                    "Probe success per target",
                    "Each probe's result over time: 1 succeeded, 0 failed. A line that drops to 0 is an "
                    "outage of that target as the probe saw it; gaps mean the probe was not run.",
                    "none",
                    (Query(f"probe_success{{{PROBES}}}", PER_TARGET),),
                    width=16,
                    minimum=0,
                    maximum=1,
                ),
            ),
        ),
        Row(
            "Latency",
            (
                Panel(
                    "Total probe duration",
                    "How long each whole probe took, from Prometheus' request to Pulse's answer: DNS, "
                    "connection, TLS, request and every journey step. ProbeSlow fires above 1 s on average.",
                    "s",
                    (Query(f"probe_duration_seconds{{{PROBES}}}", PER_TARGET),),
                    thresholds=(Threshold(1, "red"),),
                ),
                Panel(
                    "HTTP latency by phase",
                    "Where an HTTP probe spends its time, averaged over 5 minutes (the recording rule "
                    "instance_module_phase:probe_http_duration_seconds:avg_over_time5m), stacked: resolve "
                    "(DNS), connect (TCP), tls (handshake), processing (until the first byte), transfer.",
                    "s",
                    (
                        Query(
                            f"instance_module_phase:probe_http_duration_seconds:avg_over_time5m{{{PROBES}}}",
                            "{{instance}} {{phase}}",
                        ),
                    ),
                    stacked=True,
                ),
            ),
        ),
        Row(
            "Failures",
            (
                Panel(
                    "HTTP status code",
                    "The status code of each HTTP probe's final response: green for 2xx, yellow for 3xx, red "
                    "for 4xx and 5xx and for 0, which means no response at all (refused, timed out).",
                    "none",
                    (Query(f"probe_http_status_code{{{PROBES}}}", PER_TARGET, instant=True),),
                    kind="stat",
                    width=8,
                    base_color="red",
                    thresholds=(
                        Threshold(200, "green"),
                        Threshold(300, "yellow"),
                        Threshold(400, "red"),
                    ),
                ),
                Panel(
                    "Failure reasons",
                    "How many targets fail, by reason (probe_failure_info's `reason`: connection_refused, "
                    "timeout, http_status, certificate_expired, dns_error...). Empty when every probe "
                    "succeeds; the landing page of Pulse shows each failing probe's log.",
                    "short",
                    (Query(f"count by (reason) (probe_failure_info{{{PROBES}}})", "{{reason}}"),),
                    width=16,
                    stacked=True,
                ),
            ),
        ),
        Row(
            "Certificates and DNS",
            (
                Panel(
                    "Certificate days left",
                    "Days until the earliest-expiring certificate each HTTPS or TLS target sends expires "
                    "(probe_ssl_earliest_cert_expiry). Red below 7 days (ProbeCertificateExpiring pages), "
                    "orange below 21 (it warns). Negative: expired.",
                    "d",
                    (
                        Query(
                            f"(probe_ssl_earliest_cert_expiry{{{PROBES}}} - time()) / 86400",
                            PER_TARGET,
                            instant=True,
                        ),
                    ),
                    kind="stat",
                    width=12,
                    base_color="red",
                    thresholds=(Threshold(7, "orange"), Threshold(21, "green")),
                ),
                Panel(
                    "DNS query time by phase",
                    "How long each DNS probe took to ask its server, by phase: resolve (the server's own "
                    "address), connect, request (the query and its answer). A DNS probe that fails shows in "
                    "'Failure reasons' as dns_error or dns_rcode.",
                    "s",
                    (Query(f"probe_dns_duration_seconds{{{PROBES}}}", "{{instance}} {{phase}}"),),
                    width=12,
                    stacked=True,
                ),
            ),
        ),
        Row(
            "Journeys",
            (
                Panel(
                    "Journey step success",
                    "Whether each step of each business journey (log in, add to cart, check out...) passed "
                    "in the last run: green passed, red failed. The first red step is where customers get "
                    "stuck; the steps after it were not run.",
                    "none",
                    (Query(f"probe_journey_step_success{{{PROBES}}}", "{{instance}} {{step}}", instant=True),),
                    kind="stat",
                    width=12,
                    base_color="red",
                    thresholds=(Threshold(1, "green"),),
                ),
                Panel(
                    "Journey step duration",
                    "How long each journey step takes, averaged over 5 minutes (the recording rule "
                    "instance_module_step:probe_journey_step_duration_seconds:avg_over_time5m), stacked: "
                    "the top of the stack is the whole journey.",
                    "s",
                    (
                        Query(
                            f"instance_module_step:probe_journey_step_duration_seconds:avg_over_time5m{{{PROBES}}}",
                            "{{instance}} {{step}}",
                        ),
                    ),
                    width=12,
                    stacked=True,
                ),
            ),
        ),
    ),
)
