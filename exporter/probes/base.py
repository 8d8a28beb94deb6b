"""What every prober shares: why a probe failed, the sink it writes metrics to, and its registry entry.

The layout follows blackbox_exporter's prober/: one module per protocol (http.py, tcp.py, dns.py, ...),
every prober with the same signature

    async def probe(target: str, config: <its config model>, sink: ProbeSink) -> bool

returning success. The caller (runner) owns the timeout: it cancels the probe at the deadline and
records `timeout`; whatever the prober put in the sink until then is still served, as blackbox does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.config.types import StrictModel

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
        self._families: dict[str, GaugeMetricFamily] = {}
        self._label_names: dict[str, tuple[str, ...]] = {}

    def gauge(self, name: str, documentation: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Set one sample of gauge `name`; a family's label names are fixed by its first sample."""
        family = self._families.get(name)
        names = tuple(labels) if labels else ()
        if family is None:
            family = GaugeMetricFamily(name, documentation, labels=names)
            self._families[name] = family
            self._label_names[name] = names
        elif names != self._label_names[name]:
            raise ValueError(f"{name}: label names {names} differ from {self._label_names[name]}")
        family.add_metric([labels[n] for n in names] if labels else [], value)

    def fail(self, reason: FailureReason, detail: str) -> bool:
        """Record why the probe failed; returns False so a prober can `return sink.fail(...)`."""
        if self.failure is None:
            self.failure = (reason, detail)
        self.log(f"failed: {reason.value}: {detail}")
        return False

    def log(self, message: str) -> None:
        self.trace.append(f"{time.perf_counter() - self.started:8.4f}s {message}")

    def families(self) -> list[Metric]:
        return list(self._families.values())


def _nothing_listed(url: str) -> bool:
    return False


ProbeFunction = Callable[[str, ConfigT, ProbeSink], Awaitable[bool]]


@dataclass(frozen=True)
class Prober(Generic[ConfigT]):
    """A protocol: its name is the module's `prober:` value and the key of its options in the module
    (`prober: http` reads `http: {...}`), as in blackbox.yml."""

    name: str
    config_model: type[ConfigT]
    probe: ProbeFunction[ConfigT]
