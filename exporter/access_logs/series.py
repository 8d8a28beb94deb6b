"""The series one log feeds, kept between scrapes, and what a batch adds to them.

`LogSeries` holds the request counts, response bytes and duration histograms by bounded labels
(route, method, code). At most `series_limit` label sets: a line that would add one more is counted
in `over_limit` and dropped, with one warning. `LogStats` holds the log's self-metrics.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

from exporter.access_logs.batch import Batch, Duration, RawKey
from exporter.access_logs.labels import Labeler

log = logging.getLogger(__name__)

Labels = tuple[str, str, str]  # route, method, code


class Histogram:
    __slots__ = ("buckets", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0


@dataclass
class LogStats:
    """A log's self-metrics (docs/access-logs.md)."""

    lines_read: int = 0
    lines_parsed: int = 0
    lines_unparsed: int = 0
    lines_over_limit: int = 0
    bytes_read: int = 0
    last_line_time: float | None = None  # Unix time Pulse last read a line
    files_followed: int = 0
    files_unreadable: int = 0
    rotations: int = 0
    truncations: int = 0
    read_errors: int = 0


@dataclass
class LogSeries:
    buckets: tuple[float, ...]
    series_limit: int
    requests: dict[Labels, int] = field(default_factory=dict)
    sizes: dict[Labels, int] = field(default_factory=dict)
    durations: dict[Labels, Histogram] = field(default_factory=dict)
    upstream: dict[Labels, Histogram] = field(default_factory=dict)
    limit_logged: bool = False

    def fold(self, batch: Batch, labeler: Labeler, log_name: str) -> tuple[int, int]:
        """Add the batch; returns (lines rejected for their code, lines dropped for the series limit)."""
        labels_of: dict[RawKey, Labels | None] = {}
        rejected = dropped = 0
        requests = self.requests
        for key, count in batch.requests.items():
            labels = self._labels(key, labeler, labels_of)
            if labels is None:
                rejected += count
                continue
            if labels not in requests:
                if len(requests) >= self.series_limit:
                    labels_of[key] = None
                    dropped += count
                    self._warn_limit(log_name)
                    continue
                requests[labels] = 0
            requests[labels] += count
        for key, size in batch.sizes.items():
            labels = labels_of[key]
            if labels is not None:
                self.sizes[labels] = self.sizes.get(labels, 0) + size
        self._observe(self.durations, batch.durations, labels_of)
        self._observe(self.upstream, batch.upstream, labels_of)
        return rejected, dropped

    @staticmethod
    def _labels(key: RawKey, labeler: Labeler, labels_of: dict[RawKey, Labels | None]) -> Labels | None:
        method, path, raw_code = key
        code = labeler.code(raw_code)
        labels = None if code is None else (labeler.route(path), labeler.method(method), code)
        labels_of[key] = labels
        return labels

    def _observe(
        self,
        histograms: dict[Labels, Histogram],
        observed: dict[RawKey, list[Duration]],
        labels_of: dict[RawKey, Labels | None],
    ) -> None:
        grouped: dict[Labels, list[Duration]] = {}
        for key, values in observed.items():
            labels = labels_of[key]
            if labels is None:
                continue
            group = grouped.get(labels)
            if group is None:
                grouped[labels] = values  # the batch's own list: extended in place, the batch is done with it
            else:
                group.extend(values)
        bounds = self.buckets
        for labels, values in grouped.items():
            seconds = sorted(map(float, values))
            histogram = histograms.get(labels)
            if histogram is None:
                histogram = histograms[labels] = Histogram(len(bounds) + 1)
            counts = histogram.buckets
            below = 0
            for index, bound in enumerate(bounds):  # le: a value equal to the bound is in its bucket
                upto = bisect.bisect_right(seconds, bound, below)
                counts[index] += upto - below
                below = upto
            counts[-1] += len(seconds) - below
            histogram.sum += sum(seconds)

    def _warn_limit(self, log_name: str) -> None:
        if not self.limit_logged:
            self.limit_logged = True
            log.warning(
                "access log reached its series limit; lines with new label sets are dropped",
                extra={"log": log_name, "series_limit": self.series_limit},
            )
