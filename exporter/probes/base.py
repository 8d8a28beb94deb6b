"""What every prober shares: why a probe failed, the sink it writes metrics to, and its registry entry.

The layout follows blackbox_exporter's prober/: one module per protocol (http.py, tcp.py, dns.py, ...),
every prober with the same signature

    async def probe(target: str, config: <its config model>, sink: ProbeSink) -> bool

returning success. The caller (runner) owns the timeout: it cancels the probe at the deadline and
records `timeout`; whatever the prober put in the sink until then is still served, as blackbox does.
So a prober writes its metrics as it learns them, not at its end: as blackbox's gauges, each series
is set first to its starting value (0) and then to what was measured (`ProbeSink.gauge` replaces a
series' value), and `ProbeSink.phases` keeps the per-phase durations of a probe in the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.config.types import CompiledRegex, StrictModel

ConfigT = TypeVar("ConfigT", bound=StrictModel)


class FailureReason(StrEnum):
    """The `reason` label of probe_failure_info: a small fixed set, so it is safe to alert and group on."""

    DNS_ERROR = "dns_error"  # the target's name did not resolve (or not to the wanted IP protocol)
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_ERROR = "connection_error"  # reset, unreachable, closed before the answer was complete
    TIMEOUT = "timeout"
    TLS_ERROR = "tls_error"  # handshake failed for another reason than the certificate
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_INVALID = "certificate_invalid"  # untrusted, wrong host name, not yet valid
    HTTP_STATUS = "http_status"
    HTTP_VERSION = "http_version"
    SSL_POLICY = "ssl_policy"  # fail_if_ssl / fail_if_not_ssl
    BODY_REGEX = "body_regex"
    HEADER_REGEX = "header_regex"
    REDIRECT_LIMIT = "redirect_limit"
    REDIRECT_BLOCKED = "redirect_blocked"  # a redirect to another origin or a more internal address (redirects.py)
    BODY_TOO_LARGE = "body_too_large"
    PROTOCOL_ERROR = "protocol_error"  # the peer spoke something else than the protocol
    QUERY_RESPONSE = "query_response"  # a tcp query_response `expect` was not met
    DNS_RCODE = "dns_rcode"
    DNS_RECORDS = "dns_records"  # a validate_answer_rrs / authority / additional check failed
    PERMISSION_DENIED = "permission_denied"  # e.g. ICMP without the privilege to send it
    ASSERTION = "assertion"  # a journey step's assertion did not hold


@dataclass
class _Family:
    documentation: str
    label_names: tuple[str, ...]
    values: dict[tuple[str, ...], float] = field(default_factory=dict)  # label values -> value


class ProbeSink:
    """Collects one probe's metrics, its failure reason and (for `debug=true`) a readable trace.

    A probe may fail at several points (a status check, then a regex); the first failure recorded is
    the reason reported, because it is the one that made the rest fail.
    """

    def __init__(self, listed: Callable[[str], bool] | None = None) -> None:
        self.started = time.perf_counter()
        # Whether probes.targets / probes.allow accept a URL with this probe's module (set by the runner):
        # a redirect to such a URL is followed wherever it points. Without an allowlist nothing is listed.
        self.listed: Callable[[str], bool] = listed or _nothing_listed
        self.failure: tuple[FailureReason, str] | None = None
        self.trace: list[str] = []
        self._families: dict[str, _Family] = {}

    def gauge(self, name: str, documentation: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Set one sample of gauge `name`, replacing an earlier value of the same labels; a family's
        label names are fixed by its first sample, and families are served in the order first set."""
        family = self._families.get(name)
        names, label_values = (tuple(labels), tuple(labels.values())) if labels else ((), ())
        if family is None:
            family = self._families[name] = _Family(documentation, names)
        elif names != family.label_names:
            raise ValueError(f"{name}: label names {names} differ from {family.label_names}")
        family.values[label_values] = value

    def remove(self, *names: str) -> None:
        """Drop these families (those describing a response that a later one replaces)."""
        for name in names:
            self._families.pop(name, None)

    def phases(self, name: str, documentation: str, phases: Iterable[str]) -> PhaseDurations:
        """A `{phase=...}` duration family, each phase 0 until measured."""
        return PhaseDurations(self, name, documentation, tuple(phases))

    def fail(self, reason: FailureReason, detail: str) -> bool:
        """Record why the probe failed; returns False so a prober can `return sink.fail(...)`."""
        if self.failure is None:
            self.failure = (reason, detail)
        self.log(f"failed: {reason.value}: {detail}")
        return False

    def log(self, message: str) -> None:
        self.trace.append(f"{time.perf_counter() - self.started:8.4f}s {message}")

    def families(self) -> list[Metric]:
        families: list[Metric] = []
        for name, family in self._families.items():
            metric = GaugeMetricFamily(name, family.documentation, labels=family.label_names)
            for label_values, value in family.values.items():
                metric.add_metric(label_values, value)
            families.append(metric)
        return families


class PhaseDurations:
    """Seconds spent in each phase of a probe, written to the sink as they are measured, so a probe cut
    at its deadline reports the phases it got through. Time added to a phase accumulates (an http
    probe's redirects sum up, as in blackbox)."""

    def __init__(self, sink: ProbeSink, name: str, documentation: str, phases: tuple[str, ...]) -> None:
        for phase in phases:
            sink.gauge(name, documentation, 0.0, {"phase": phase})
        self._seconds = sink._families[name].values  # the family's samples, keyed by (phase,)

    def __getitem__(self, phase: str) -> float:
        return self._seconds[(phase,)]

    def add(self, phase: str, seconds: float) -> None:
        self._seconds[(phase,)] += seconds

    @contextlib.contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        """Add the time the block takes to `phase`, also when it fails or the deadline cancels it."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)


def _nothing_listed(url: str) -> bool:
    return False


def report_regex_failure(sink: ProbeSink, failed: bool) -> None:
    """probe_failed_due_to_regex of the tcp and http probers: set to 0 when the probe starts, as blackbox's
    gauge, and to 1 when a regex check failed it."""
    sink.gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex", int(failed))


def broken_regex(
    text: str, fail_if_matches: list[CompiledRegex], fail_if_not_matches: list[CompiledRegex]
) -> tuple[CompiledRegex, bool] | None:
    """The first regex that fails `text`: one of `fail_if_matches` that matches it (with True), else one
    of `fail_if_not_matches` that does not (with False); None when `text` passes them all."""
    for pattern in fail_if_matches:
        if pattern.search(text):
            return pattern, True
    for pattern in fail_if_not_matches:
        if not pattern.search(text):
            return pattern, False
    return None


ProbeFunction = Callable[[str, ConfigT, ProbeSink], Awaitable[bool]]


@dataclass(frozen=True)
class Prober(Generic[ConfigT]):
    """A protocol: its name is the module's `prober:` value and the key of its options in the module
    (`prober: http` reads `http: {...}`), as in blackbox.yml."""

    name: str
    config_model: type[ConfigT]
    probe: ProbeFunction[ConfigT]
