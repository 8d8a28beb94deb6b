"""The `access_logs` collector: a background thread follows and parses the logs; a scrape only reads
the counts it keeps.

The thread polls every log's files each `poll_interval` (at once again while a backlog remains),
parses what was written, and folds each chunk's counts into the log's series under a lock that a
scrape holds only to copy numbers out. A reload hands the followers (open files, offsets) and the
counts to the successor, so no line is counted twice and no counter goes back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from exporter.access_logs.batch import Batch, Parser
from exporter.access_logs.config import LogConfig, LogsConfig
from exporter.access_logs.follower import Follower
from exporter.access_logs.formats import FORMATS
from exporter.access_logs.labels import Labeler
from exporter.access_logs.series import Histogram, Labels, LogSeries, LogStats
from exporter.collectors.base import Cell, Collector, StatusTable

log = logging.getLogger(__name__)

COLLECTOR_NAME = "access_logs"
HTTP_LABELS = ("service", "route", "method", "code")
SAMPLE_LENGTH = 200  # of an unparsed line quoted in the log


class AccessLog:
    """One configured log: its follower, its parser, its counts."""

    def __init__(self, name: str, config: LogConfig, service: str) -> None:
        self.name, self.config, self.service = name, config, service
        self.follower = Follower(name, config.paths, config.from_start, config.max_line_length)
        self.parse: Parser = FORMATS[config.format](config)
        self.labeler = Labeler(config.routes)
        self.series = LogSeries(config.buckets, config.series_limit)
        self.stats = LogStats()
        self.lock = threading.Lock()
        self.unparsed_logged = False

    def take_over(self, predecessor: AccessLog) -> None:
        """Continue where the predecessor (the same log before a reload) stopped."""
        self.follower = predecessor.follower
        self.follower.reconfigure(self.config.paths, self.config.from_start, self.config.max_line_length)
        self.stats, self.unparsed_logged = predecessor.stats, predecessor.unparsed_logged
        if predecessor.series.buckets == self.series.buckets and predecessor.service == self.service:
            self.series = predecessor.series
            self.series.series_limit = self.config.series_limit
        # else: new buckets cannot continue the old histograms, and counts of another service are not
        # this one's: the series start again (a counter reset, which rate() handles).

    def poll(self) -> bool:
        with self.lock:
            stats = self.stats
        return self.follower.poll(self._consume, stats)

    def _consume(self, lines: Sequence[bytes], overlong: int, nbytes: int) -> None:
        batch = Batch()
        if lines:
            self.parse(lines, batch)
        with self.lock:
            rejected, dropped = self.series.fold(batch, self.labeler, self.name) if batch.requests else (0, 0)
            stats = self.stats
            read = len(lines) + overlong
            unparsed = batch.unparsed + rejected + overlong
            stats.lines_read += read
            stats.lines_unparsed += unparsed
            stats.lines_parsed += read - unparsed
            stats.lines_over_limit += dropped
            stats.bytes_read += nbytes
            if read:
                stats.last_line_time = time.time()
        if unparsed and not self.unparsed_logged:
            self.unparsed_logged = True  # one line; the rising count tells the rest
            sample = (batch.sample or b"").decode("utf-8", "replace")[:SAMPLE_LENGTH]
            log.warning(
                "access log lines do not match the log's format; counted in pulse_access_log_lines_unparsed_total",
                extra={"log": self.name, "format": self.config.format, "line": sample},
            )


class AccessLogsCollector(Collector):
    def __init__(self, config: LogsConfig) -> None:
        super().__init__(COLLECTOR_NAME, config)
        self.poll_interval = config.poll_interval
        self.logs = [AccessLog(name, log_config, config.service_of(name)) for name, log_config in config.files.items()]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self, predecessor: Collector | None = None) -> None:
        if isinstance(predecessor, AccessLogsCollector):
            # Its thread stops first: from here on only this collector reads the files.
            await asyncio.to_thread(predecessor.stop_following)
            previous = {access_log.name: access_log for access_log in predecessor.logs}
            for access_log in self.logs:
                if access_log.name in previous:
                    access_log.take_over(previous.pop(access_log.name))
            for dropped in previous.values():
                dropped.follower.close()
            predecessor.logs = []  # its close() must not close the files this collector now follows
        self._thread = threading.Thread(target=self._run, name="pulse-access-logs", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        await asyncio.to_thread(self.stop_following)
        for access_log in self.logs:
            access_log.follower.close()

    def stop_following(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            pending = False
            for access_log in self.logs:
                try:
                    pending |= access_log.poll()
                except Exception:  # a bug must not end the following of every log
                    log.exception("access log poll failed", extra={"log": access_log.name})
                if self._stop.is_set():
                    return
            wait = 0.0 if pending else self.poll_interval

    async def collect(self) -> Sequence[Metric]:
        return self.families()

    def families(self) -> list[Metric]:
        requests = CounterMetricFamily(
            "http_requests_total", "HTTP requests, counted from access logs.", labels=HTTP_LABELS
        )
        sizes = SummaryMetricFamily(
            "http_response_size_bytes", "HTTP response body sizes from access logs.", labels=HTTP_LABELS
        )
        durations = HistogramMetricFamily(
            "http_request_duration_seconds",
            "HTTP request durations from access logs (nginx $request_time).",
            labels=HTTP_LABELS,
        )
        upstream = HistogramMetricFamily(
            "http_upstream_duration_seconds",
            "Time the upstream took to answer, from access logs (nginx $upstream_response_time).",
            labels=HTTP_LABELS,
        )
        # Logs of one service (two servers' logs) add up; the config makes their buckets agree.
        merged_requests: dict[tuple[str, ...], int] = {}
        merged_sizes: dict[tuple[str, ...], int] = {}
        merged_durations: dict[tuple[str, ...], tuple[tuple[float, ...], list[int], float]] = {}
        merged_upstream: dict[tuple[str, ...], tuple[tuple[float, ...], list[int], float]] = {}
        self_metrics = _SelfMetrics()
        for access_log in self.logs:
            with access_log.lock:
                series = access_log.series
                prefix = (access_log.service,)
                for labels, count in series.requests.items():
                    key = prefix + labels
                    merged_requests[key] = merged_requests.get(key, 0) + count
                    merged_sizes[key] = merged_sizes.get(key, 0) + series.sizes.get(labels, 0)
                _merge_histograms(merged_durations, prefix, series.buckets, series.durations)
                _merge_histograms(merged_upstream, prefix, series.buckets, series.upstream)
                self_metrics.add(access_log.name, access_log.stats)
        for merged_key, count in merged_requests.items():
            requests.add_metric(merged_key, count)
            sizes.add_metric(merged_key, count_value=count, sum_value=merged_sizes[merged_key])
        for family, merged in ((durations, merged_durations), (upstream, merged_upstream)):
            for series_key, (bounds, buckets, total) in merged.items():
                cumulative: list[tuple[str, float]] = []
                running = 0
                for bound, in_bucket in zip((*bounds, float("inf")), buckets, strict=True):
                    running += in_bucket
                    cumulative.append((_le(bound), running))
                family.add_metric(series_key, cumulative, total)
        return [requests, sizes, durations, upstream, *self_metrics.families]

    def status_tables(self) -> list[StatusTable]:
        rows = []
        for access_log in self.logs:
            with access_log.lock:
                stats = access_log.stats
                problems = dict(access_log.follower.problems)
            rows.append(
                (
                    Cell(access_log.name),
                    Cell(str(stats.files_followed), "ok" if stats.files_followed else "bad"),
                    Cell(f"{stats.lines_read:,}"),
                    Cell(f"{stats.lines_unparsed:,}", "bad" if stats.lines_unparsed else "text"),
                    Cell(when=stats.last_line_time) if stats.last_line_time else Cell("no line yet", "none"),
                    Cell("; ".join(f"{path}: {why}" for path, why in sorted(problems.items())[:5]), "error"),
                )
            )
        return [
            StatusTable(
                "Access logs",
                ("Log", "Files followed", "Lines read", "Unparsed", "Last line", "Problems"),
                rows,
            )
        ]


def _le(bound: float) -> str:
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]  # untyped in client_python


def _merge_histograms(
    merged: dict[tuple[str, ...], tuple[tuple[float, ...], list[int], float]],
    prefix: tuple[str],
    bounds: tuple[float, ...],
    histograms: dict[Labels, Histogram],
) -> None:
    for labels, histogram in histograms.items():
        key = prefix + labels
        entry = merged.get(key)
        if entry is None:
            merged[key] = (bounds, list(histogram.buckets), histogram.sum)
        else:
            merged[key] = (
                bounds,
                [a + b for a, b in zip(entry[1], histogram.buckets, strict=True)],
                entry[2] + histogram.sum,
            )


class _SelfMetrics:
    """pulse_access_log_*: one series per configured log (label `log`), never per file."""

    def __init__(self) -> None:
        def counter(name: str, help_text: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"pulse_access_log_{name}", help_text, labels=("log",))

        def gauge(name: str, help_text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"pulse_access_log_{name}", help_text, labels=("log",))

        self.lines_read = counter("lines_read_total", "Lines read from the log's files.")
        self.lines_parsed = counter("lines_parsed_total", "Lines that matched the log's format.")
        self.lines_unparsed = counter(
            "lines_unparsed_total", "Lines that did not match the log's format (or were too long)."
        )
        self.over_limit = counter(
            "lines_over_series_limit_total", "Parsed lines dropped because their label set exceeded series_limit."
        )
        self.bytes_read = counter("bytes_read_total", "Bytes read from the log's files.")
        self.rotations = counter("rotations_total", "Files that stopped being followed: rotated away or deleted.")
        self.truncations = counter(
            "truncations_total", "Files found truncated (copytruncate), read again from the start."
        )
        self.errors = counter("read_errors_total", "Matching paths found unreadable (once per problem, not per poll).")
        self.files = gauge("files_followed", "Files of the log currently followed.")
        self.unreadable = gauge("files_unreadable", "Paths matching the log that cannot be read right now.")
        self.last_line = gauge(
            "last_line_timestamp_seconds", "Unix time Pulse last read a line from the log (absent before the first)."
        )
        self.families: list[Metric] = [
            self.lines_read,
            self.lines_parsed,
            self.lines_unparsed,
            self.over_limit,
            self.bytes_read,
            self.rotations,
            self.truncations,
            self.errors,
            self.files,
            self.unreadable,
            self.last_line,
        ]

    def add(self, name: str, stats: LogStats) -> None:
        labels = (name,)
        self.lines_read.add_metric(labels, stats.lines_read)
        self.lines_parsed.add_metric(labels, stats.lines_parsed)
        self.lines_unparsed.add_metric(labels, stats.lines_unparsed)
        self.over_limit.add_metric(labels, stats.lines_over_limit)
        self.bytes_read.add_metric(labels, stats.bytes_read)
        self.rotations.add_metric(labels, stats.rotations)
        self.truncations.add_metric(labels, stats.truncations)
        self.errors.add_metric(labels, stats.read_errors)
        self.files.add_metric(labels, stats.files_followed)
        self.unreadable.add_metric(labels, stats.files_unreadable)
        if stats.last_line_time is not None:
            self.last_line.add_metric(labels, stats.last_line_time)


def build(config: LogsConfig) -> list[Collector]:
    return [AccessLogsCollector(config)] if config.files else []
