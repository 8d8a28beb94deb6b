"""node_exporter's textfile collector: the metrics that cron jobs and scripts write as `*.prom` files.

Same directory semantics and names as node_exporter 1.5 (Debian's), checked against it in
tests/test_textfile.py: every `*.prom` file directly in the directory, in name order; a file that does
not parse, or has a sample with a timestamp, is skipped whole and sets `node_textfile_scrape_error` to
1; each file read gets `node_textfile_mtime_seconds{file="<directory>/<name>"}`; a family without HELP
gets "Metric read from <files>"; where files disagree on a family's HELP or type, or repeat a series,
the first file (by name) wins and the rest is dropped (and logged).

Where Pulse differs, on purpose:
- a file that is not a regular file (a FIFO, which would block the scrape, a directory, a device) or
  is larger than `max_file_bytes` is an error, never read;
- a file is parsed again only when it changes (inode, size, mtime, ctime): a scrape is a directory
  listing and an open and fstat per file, and serves the same families while nothing changed;
- a counter whose name lacks `_total` is exposed untyped: OpenMetrics, which Prometheus asks for
  first, cannot carry it;
- a textfile family named like one of Pulse's own loses to Pulse's (app.py serves guest collectors'
  families last), where node_exporter lets either win at random.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import pydantic
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector, Cell
from exporter.collectors.host.kind import HostCollectorKind
from exporter.config.types import StrictModel
from exporter.textformat import ParsedFamily, TextFormatError, format_float, parse

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 4 * 1024 * 1024


class TextfileSettings(StrictModel):
    enabled: bool = True  # as every host collector; it runs only once `directory` names one
    directory: str | None = None  # node_exporter's --collector.textfile.directory; none: not collected
    max_file_bytes: int = pydantic.Field(MAX_FILE_BYTES, ge=1)  # a larger file is an error, never read

    @pydantic.field_validator("directory")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("give a directory, or leave the key out to turn the textfile collector off")
        return value


FileKey = tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns: changes when the file does


@dataclass(frozen=True)
class _Parsed:
    key: FileKey
    families: dict[str, ParsedFamily] | None  # None: the file is refused
    error: str
    mtime: float
    # Families only this file exposes, built once: name -> (HELP, family, series it repeated). Served as
    # the same objects while the file is unchanged, they cost the encoder nothing either.
    built: dict[str, tuple[str, Metric, list[str]]] = field(default_factory=dict)


class TextfileCollector(BlockingCollector):
    guest = True  # its families come from outside Pulse: Pulse's own win a name clash

    def __init__(self, settings: TextfileSettings) -> None:
        super().__init__("host.textfile", settings)
        self.directory = settings.directory
        self.max_bytes = settings.max_file_bytes
        self._cache: dict[str, _Parsed] = {}
        self._errors: tuple[str, ...] = ()
        self._last_state: object = None  # the files (path, key) and errors the last families were built from
        self._last_families: list[Metric] = []
        self._lock = threading.Lock()  # status_note() reads _errors from the event loop

    def collect_blocking(self) -> Sequence[Metric]:
        if self.directory is None:
            return []
        errors: list[str] = []
        parsed: list[tuple[str, _Parsed]] = []
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".prom"))
        except OSError as err:
            names = []
            errors.append(f"cannot read the directory {self.directory}: {err.strerror or err}")
        read: dict[str, _Parsed] = {}
        for name in names:
            path = os.path.normpath(os.path.join(self.directory, name))
            result = read[path] = self._read(path)
            if result.families is None:
                errors.append(f"{path}: {result.error}")
            else:
                parsed.append((path, result))
        self._cache = read  # files gone from the directory leave the cache
        state = (tuple((path, result.key) for path, result in read.items()), tuple(errors))
        if state != self._last_state:  # else the same families again, which the encoder has memoized
            families, conflicts = _merge(parsed)
            self._report(errors, conflicts)
            self._last_state, self._last_families = state, [*families, *_own_families(parsed, errors)]
        return self._last_families

    def _read(self, path: str) -> _Parsed:
        """One file, parsed again only when it changed. Opened non-blocking and checked before reading:
        a FIFO would otherwise block the scrape until something writes to it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            return _Parsed((0, 0, 0, 0, 0), None, f"cannot open: {err.strerror or err}", 0.0)
        try:
            info = os.fstat(fd)
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            mtime = float(info.st_mtime_ns // 1_000_000_000)  # whole seconds, as node_exporter
            cached = self._cache.get(path)
            if cached is not None and cached.key == key:
                return cached
            if not stat.S_ISREG(info.st_mode):
                return _Parsed(key, None, "not a regular file", mtime)
            if info.st_size > self.max_bytes:
                return _Parsed(key, None, f"larger than max_file_bytes ({self.max_bytes} bytes)", mtime)
            data = _read_at_most(fd, self.max_bytes + 1)
        except OSError as err:
            return _Parsed((0, 0, 0, 0, 0), None, f"cannot read: {err.strerror or err}", 0.0)
        finally:
            os.close(fd)
        if len(data) > self.max_bytes:  # grew while we read it
            return _Parsed(key, None, f"larger than max_file_bytes ({self.max_bytes} bytes)", mtime)
        try:
            families = parse(data.decode("utf-8", "surrogateescape"))
        except TextFormatError as err:
            return _Parsed(key, None, f"not in the text format: {err}", mtime)
        if any(m.timestamp_ms is not None for f in families.values() for m in f.metrics):
            return _Parsed(key, None, "has samples with timestamps, which are not supported: file skipped", mtime)
        return _Parsed(key, families, "", mtime)

    def _report(self, errors: list[str], conflicts: list[str]) -> None:
        """Log the problems when they change, not at every scrape."""
        problems = (*errors, *conflicts)
        with self._lock:
            if problems == self._errors:
                return
            self._errors = problems
        for problem in errors:
            log.error("textfile skipped", extra={"collector": self.name, "err": problem})
        for problem in conflicts:
            log.warning("textfile metric dropped", extra={"collector": self.name, "err": problem})
        if not problems:
            log.info("textfile directory read without errors", extra={"collector": self.name})

    def status_note(self) -> Cell | None:
        with self._lock:
            problems = self._errors
        if not problems:
            return None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Cell(problems[0] + more, "error")


def _own_families(parsed: list[tuple[str, _Parsed]], errors: list[str]) -> list[Metric]:
    mtime = GaugeMetricFamily(
        "node_textfile_mtime_seconds", "Unixtime mtime of textfiles successfully read.", labels=["file"]
    )
    for path, result in parsed:
        mtime.add_metric([path], result.mtime)
    scrape_error = GaugeMetricFamily(
        "node_textfile_scrape_error",
        "1 if there was an error opening or reading a file, 0 otherwise",
        value=1 if errors else 0,
    )
    return [*([mtime] if parsed else []), scrape_error]


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _merge(files: list[tuple[str, _Parsed]]) -> tuple[list[Metric], list[str]]:
    """One family per name over all files, as node_exporter's registry merges them: the first file to
    expose a name sets its HELP and type; a later file that disagrees, or repeats a series, loses those
    samples."""
    sources: dict[str, list[str]] = {}
    for path, result in files:
        for name in result.families or {}:
            sources.setdefault(name, []).append(path)
    merged: dict[str, tuple[str, str, Metric]] = {}  # name -> (help, type, family)
    seen: set[SeriesKey] = set()
    conflicts: list[str] = []
    for path, result in files:
        for name, parsed in (result.families or {}).items():
            help_text = parsed.help if parsed.help is not None else f"Metric read from {', '.join(sources[name])}"
            help_text = help_text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            kind = parsed.type or "untyped"
            if len(sources[name]) == 1:
                built = result.built.get(name)
                if built is None or built[0] != help_text:
                    built = result.built[name] = (help_text, *_build(path, name, help_text, parsed))
                merged[name] = (help_text, kind, built[1])
                conflicts.extend(built[2])
                continue
            if name not in merged:
                merged[name] = (help_text, kind, _family(name, help_text, kind))
            first_help, first_kind, family = merged[name]
            if (first_help, first_kind) != (help_text, kind):
                what = "type" if first_kind != kind else "HELP"
                conflicts.append(f"{path}: {name} has another {what} than in {sources[name][0]}; its samples dropped")
                continue
            conflicts.extend(_add_new_samples(family, path, parsed, seen))
    return [merged[name][2] for name in sorted(merged)], conflicts


def _build(path: str, name: str, help_text: str, parsed: ParsedFamily) -> tuple[Metric, list[str]]:
    """The family of a name only one file exposes, without the series it repeats."""
    family = _family(name, help_text, parsed.type or "untyped")
    return family, _add_new_samples(family, path, parsed, set())


SeriesKey = tuple[str, frozenset[tuple[str, str]]]


def _add_new_samples(family: Metric, path: str, parsed: ParsedFamily, seen: set[SeriesKey]) -> list[str]:
    """Add the samples of `parsed` not `seen` before (and note them seen); one problem per repeat."""
    repeated: list[str] = []
    for sample_name, labels, value in _samples(parsed):
        key = (sample_name, frozenset(labels.items()))
        if key in seen:
            repeated.append(f"{path}: {sample_name}{_labels_text(labels)} was read before; dropped")
            continue
        seen.add(key)
        family.add_sample(sample_name, labels, value)
    return repeated


def _family(name: str, help_text: str, kind: str) -> Metric:
    if kind == "counter" and name.endswith("_total"):
        return Metric(name[: -len("_total")], help_text, "counter")  # client_python's counter naming
    return Metric(name, help_text, {"counter": "unknown", "untyped": "unknown"}.get(kind, kind))


def _samples(family: ParsedFamily) -> list[tuple[str, dict[str, str], float]]:
    """A parsed family's samples, each metric's labels filled up to the family's label names with empty
    values (node_exporter's rule) and sorted by name, as node_exporter writes them."""
    names = sorted({label for metric in family.metrics for label in metric.labels})
    samples: list[tuple[str, dict[str, str], float]] = []
    for metric in family.metrics:
        labels = {label: metric.labels.get(label, "") for label in names}
        if family.type == "summary":
            for quantile in sorted(metric.quantiles):
                samples.append(
                    (family.name, {**labels, "quantile": format_float(quantile)}, metric.quantiles[quantile])
                )
            samples.append((f"{family.name}_sum", labels, metric.sum))
            samples.append((f"{family.name}_count", labels, float(metric.count)))
        elif family.type == "histogram":
            buckets = dict(metric.buckets)
            buckets.setdefault(float("inf"), metric.count)
            for bound in sorted(buckets):
                samples.append((f"{family.name}_bucket", {**labels, "le": format_float(bound)}, float(buckets[bound])))
            samples.append((f"{family.name}_sum", labels, metric.sum))
            samples.append((f"{family.name}_count", labels, float(metric.count)))
        else:
            samples.append((family.name, labels, metric.value))
    return samples


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""


COLLECTOR = HostCollectorKind[TextfileSettings](
    name="textfile",
    config=TextfileSettings,
    default=TextfileSettings(),
    build=TextfileCollector,
    wanted=lambda settings: settings.enabled and settings.directory is not None,
)
