"""Run one probe the way blackbox_exporter's handler does: within the scrape's deadline, always ending
in a set of metrics (a failing target is `probe_success 0`, never an HTTP error).

Timeout: the `X-Prometheus-Scrape-Timeout-Seconds` header (120 s without one) minus the offset,
capped by the module's `timeout`. At the deadline the prober is cancelled and the probe fails with
reason `timeout`; what the prober had written so far is kept, as blackbox keeps its registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.probes import PROBERS
from exporter.probes.base import FailureReason, ProbeSink
from exporter.probes.config import ProbeModule
from exporter.scrape_timeout import MIN_TIMEOUT, TIMEOUT_OFFSET, parse_scrape_timeout

log = logging.getLogger(__name__)

# (module, target, success, seconds, (reason, detail) of a failure or None)
Recorder = Callable[[str, str, bool, float, "tuple[FailureReason, str] | None"], None]


def probe_timeout(
    scrape_timeout_header: str | None, module_timeout: float | None, offset: float = TIMEOUT_OFFSET
) -> float:
    """Seconds the probe may take; raises InvalidTimeoutHeader for a header that is not a number."""
    available = parse_scrape_timeout(scrape_timeout_header) - offset
    if module_timeout and (module_timeout < available or available <= 0):
        return module_timeout
    return max(MIN_TIMEOUT, available)


async def run_probe(
    module_name: str,
    module: ProbeModule,
    target: str,
    scrape_timeout_header: str | None,
    *,
    record: Recorder | None = None,
    timeout_offset: float = TIMEOUT_OFFSET,
    listed: Callable[[str], bool] | None = None,
) -> tuple[list[Metric], ProbeSink]:
    """Probe `target` with `module`; returns the metric families to serve and the sink (for its trace).

    `listed` says whether probes.targets / probes.allow accept a URL with this module: a redirect to
    such a URL is followed wherever it points (see redirects.py). None: nothing is listed."""
    timeout = probe_timeout(scrape_timeout_header, module.timeout, timeout_offset)
    prober = PROBERS[module.prober]
    sink = ProbeSink(listed)
    sink.log(f"beginning probe: module={module_name} prober={module.prober} target={target} timeout={timeout:g}s")
    try:
        async with asyncio.timeout(timeout):
            success = await prober.probe(target, module.settings(), sink)
    except TimeoutError:
        success = sink.fail(FailureReason.TIMEOUT, f"no result within the {timeout:g}s timeout")
    except OSError as err:
        success = _prober_bug(sink, FailureReason.CONNECTION_ERROR, module_name, target, err)
    except Exception as err:
        success = _prober_bug(sink, FailureReason.PROTOCOL_ERROR, module_name, target, err)
    if success and sink.failure is not None:
        success = False  # a prober that recorded a failure and still said yes: the failure wins
    elif not success and sink.failure is None:
        sink.fail(FailureReason.PROTOCOL_ERROR, "the prober reported failure without a reason")
    seconds = time.perf_counter() - sink.started

    families = sink.families()
    families.append(
        GaugeMetricFamily(
            "probe_duration_seconds", "Returns how long the probe took to complete in seconds", value=seconds
        )
    )
    families.append(
        GaugeMetricFamily("probe_success", "Displays whether or not the probe was a success", value=1 if success else 0)
    )
    if sink.failure is not None and not success:
        reason, detail = sink.failure
        failure = GaugeMetricFamily(
            "probe_failure_info", "Why the probe failed (1 for the reason; absent on success)", labels=["reason"]
        )
        failure.add_metric([reason.value], 1)
        families.append(failure)
        sink.log(f"probe failed after {seconds:.6f}s: {reason.value}: {detail}")
        # Every failed probe at debug level, as blackbox; the probes collector logs at warning when a
        # target starts failing or fails differently (not at every scrape of a target down for a day).
        log.debug(
            "probe failed", extra={"probe_module": module_name, "target": target, "reason": reason.value, "err": detail}
        )
    else:
        sink.log(f"probe succeeded after {seconds:.6f}s")
    if record is not None:
        record(module_name, target, bool(success), seconds, None if success else sink.failure)
    return families, sink


def _prober_bug(sink: ProbeSink, reason: FailureReason, module_name: str, target: str, err: Exception) -> bool:
    """A prober let an exception out: a bug in Pulse (or an unforeseen error), reported as a failure."""
    log.warning(
        "prober raised an exception",
        exc_info=err,
        extra={"probe_module": module_name, "target": target, "err": f"{type(err).__name__}: {err}"},
    )
    return sink.fail(reason, f"{type(err).__name__}: {err}")
