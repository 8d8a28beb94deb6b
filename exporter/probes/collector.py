"""The `probes:` section of pulse.yml and the collector of the probes' own metrics on /metrics.

Probes themselves run when Prometheus scrapes /probe (probes/endpoint.py, probes/runner.py). What /metrics
shows is the exporter's record of them, counted at every /probe call, so probe SLOs can be computed
from Pulse's own history even between (or without) the probe scrapes being stored:

    pulse_probes_total{module, result="success"|"failure"}
    pulse_probe_duration_seconds{module} (histogram)
    pulse_probe_requests_rejected_total{reason="forbidden"|"bad_request"}

The last one counts /probe requests refused before any probe ran: a rising `forbidden` count is someone
(or a misconfigured Prometheus) asking Pulse to reach targets it does not list. `debug=true` probes are
a person looking, not monitoring: they count nowhere.

For the landing page it keeps the last result of each target listed in `probes.targets` (not of the
targets an `allow` rule admits, which anyone may name: that memory would grow with every new name),
and shows them in its status table.

It also logs a target's changes of state: a warning when it starts failing or fails for another
reason, an info line when it recovers; not a line per scrape of a target that is down for a day.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import Cell, Collector, Link, StatusTable, milliseconds
from exporter.probes.base import FailureReason
from exporter.probes.config import ProbesConfig

log = logging.getLogger(__name__)

__all__ = ["LastProbe", "ProbesCollector", "ProbesConfig"]

COLLECTOR_NAME = "probes"
# From a local TCP connect (well under 5 ms) to blackbox's 120 s ceiling; fine where SLOs are set
# (a few hundred ms to a few seconds).
REJECTION_REASONS = ("forbidden", "bad_request")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# States remembered for change logging; `allow` rules can admit unlisted targets, so the memory is bounded.
MAX_TRACKED_TARGETS = 10_000


@dataclass(frozen=True)
class LastProbe:
    """The last counted probe of a listed target, for the landing page."""

    success: bool
    seconds: float
    at: float  # Unix time it ended
    reason: str = ""  # the failure reason and its detail; empty on success
    detail: str = ""


@dataclass
class _ModuleRecord:
    successes: int = 0
    failures: int = 0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))  # last: +Inf
    seconds_sum: float = 0.0


class ProbesCollector(Collector):
    """Counts of probes run through /probe, per module. They carry on across reloads while the set of
    module names is unchanged, so adding a target or changing a module's options does not reset them;
    modules that appear or disappear give fresh counts, so no stale series remain."""

    def __init__(self, config: ProbesConfig) -> None:
        self.module_names = tuple(sorted(config.modules))
        self.targets = tuple((target.target, target.module) for target in config.targets)  # for the landing page
        # A reload that changes neither keeps this collector as it is; one that changes only the targets
        # builds a successor, which takes over the counts when it starts.
        super().__init__(COLLECTOR_NAME, (self.module_names, self.targets))
        # Every configured module from the start, at 0: rate() needs the series before the first probe.
        self._records = {name: _ModuleRecord() for name in self.module_names}
        self._rejected = dict.fromkeys(REJECTION_REASONS, 0)
        self._failing: dict[tuple[str, str], str | None] = {}  # (module, target) -> reason of the last probe
        # (module, target) -> its last probe, for listed targets; least recently probed first. Bounded
        # like _failing: targets removed by reloads are forgotten once the limit is reached.
        self._last: dict[tuple[str, str], LastProbe] = {}

    async def start(self, predecessor: Collector | None = None) -> None:
        if isinstance(predecessor, ProbesCollector) and predecessor.module_names == self.module_names:
            # The same objects, not copies: a probe still running on the predecessor counts here too.
            self._records, self._rejected = predecessor._records, predecessor._rejected
            self._failing, self._last = predecessor._failing, predecessor._last

    def record(
        self,
        module: str,
        target: str,
        success: bool,
        seconds: float,
        failure: tuple[FailureReason, str] | None,
        *,
        listed: bool = False,
    ) -> None:
        """Called by the runner after each probe (on the event loop, so no lock is needed). `listed`:
        the target is in probes.targets with this module, so its last result is kept."""
        self._log_change(module, target, failure)
        if listed:
            self._remember(module, target, success, seconds, failure)
        entry = self._records.get(module)
        if entry is None:  # a module added by a reload while this collector was being replaced
            entry = self._records[module] = _ModuleRecord()
        if success:
            entry.successes += 1
        else:
            entry.failures += 1
        entry.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        entry.seconds_sum += seconds

    def _remember(
        self, module: str, target: str, success: bool, seconds: float, failure: tuple[FailureReason, str] | None
    ) -> None:
        key = (module, target)
        self._last.pop(key, None)  # re-inserted last: the dict stays ordered by the time of the last probe
        reason, detail = (failure[0].value, failure[1]) if failure and not success else ("", "")
        self._last[key] = LastProbe(success, seconds, time.time(), reason, detail)
        if len(self._last) > MAX_TRACKED_TARGETS:
            del self._last[next(iter(self._last))]

    def last_probe(self, module: str, target: str) -> LastProbe | None:
        """The last counted probe of a listed target; None before its first one."""
        return self._last.get((module, target))

    def status_tables(self) -> list[StatusTable]:
        rows = []
        for target, module in self.targets:
            last = self.last_probe(module, target)
            if last is None:
                result = [Cell("not probed yet", "none"), Cell(), Cell()]
            elif last.success:
                result = [Cell(f"success in {milliseconds(last.seconds)}", "ok"), Cell(), Cell(when=last.at)]
            else:
                failed = Cell(f"FAILED after {milliseconds(last.seconds)}", "bad")
                result = [failed, Cell(f"{last.reason}: {last.detail}", "error"), Cell(when=last.at)]
            query = urlencode({"target": target, "module": module})
            links = (Link("probe", f"probe?{query}"), Link("debug", f"probe?{query}&debug=true"))
            rows.append([Cell(target), Cell(module), *result, Cell(links=links)])
        return [
            StatusTable(
                "Probe targets",
                ("Target", "Module", "Last result", "Failure reason", "When", ""),
                rows,
                "Results of the probes Prometheus runs through /probe; debug probes are not recorded.",
            )
        ]

    def _log_change(self, module: str, target: str, failure: tuple[FailureReason, str] | None) -> None:
        key, reason = (module, target), failure[0].value if failure else None
        known = key in self._failing
        previous = self._failing.get(key)
        if known and previous == reason:
            return
        fields = {"probe_module": module, "target": target}
        if failure is not None:
            log.warning("probe target failing", extra={**fields, "reason": reason, "err": failure[1]})
        elif previous is not None:
            log.info("probe target recovered", extra=fields)
        if known or len(self._failing) < MAX_TRACKED_TARGETS:
            self._failing[key] = reason

    def reject(self, reason: str) -> None:
        """Count a /probe request refused before probing (`forbidden` or `bad_request`)."""
        self._rejected[reason] = self._rejected.get(reason, 0) + 1

    async def collect(self) -> Sequence[Metric]:
        total = CounterMetricFamily(
            "pulse_probes", "Probes run through /probe, by module and result.", labels=["module", "result"]
        )
        duration = HistogramMetricFamily(
            "pulse_probe_duration_seconds", "Duration of the probes run through /probe, by module.", labels=["module"]
        )
        for module, entry in sorted(self._records.items()):
            total.add_metric([module, "success"], entry.successes)
            total.add_metric([module, "failure"], entry.failures)
            cumulative, buckets = 0, []
            for bound, count in zip((*DURATION_BUCKETS, float("inf")), entry.bucket_counts, strict=True):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            duration.add_metric([module], buckets, entry.seconds_sum)
        rejected = CounterMetricFamily(
            "pulse_probe_requests_rejected",
            "/probe requests refused before probing: forbidden (target not listed or allowed), bad_request.",
            labels=["reason"],
        )
        for reason, count in self._rejected.items():
            rejected.add_metric([reason], count)
        return [total, duration, rejected]


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def build(config: ProbesConfig) -> list[Collector]:
    # Without modules /probe can only answer 400: no collector, nothing added to /metrics.
    return [ProbesCollector(config)] if config.modules else []
