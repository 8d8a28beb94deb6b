"""Read the Prometheus text format (0.0.4) as node_exporter 1.5's parser (Go, prometheus/common expfmt) does.

The textfile collector must accept exactly the files node_exporter accepts and refuse the others, so that
a `.prom` file written for one works with the other. client_python's parser is far more lenient (it
takes `a 1 2 3`, `+NaN`, `1_000`, invalid escapes, a missing final newline) and renames a counter `x`
to `x_total`; this one follows expfmt's rules, checked against Debian's node_exporter in
tests/test_textfile.py:

- every line ends with `\\n`, the last one too; blanks and tabs may lead a line and separate its parts;
  a blank or anything else after a value is an error (a timestamp must be an integer);
- `# HELP name text` (escapes `\\\\` and `\\n` only) and `# TYPE name type` (the rest of the line, one of
  counter, gauge, histogram, summary, untyped, in any case); a second HELP, a second TYPE or a TYPE after
  the family's samples is an error; other comments are ignored;
- metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*` (not `__name__`, not twice
  in one sample), label values in double quotes with escapes `\\"`, `\\\\`, `\\n` and valid UTF-8;
- values as Go's ParseFloat: decimal, `Inf`/`Infinity` with a sign, `NaN` without; no `_`, no hex, no
  value beyond the float range;
- `name_sum`, `name_count` (and `name_bucket`) samples belong to a summary (histogram) `name` declared
  before them; histogram and summary samples with the same labels form one metric.

A family with no samples is dropped, as there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN]"
)
_GO_INT64 = re.compile(r"[+-]?\d+")
_BLANKS = " \t"


class TextFormatError(ValueError):
    """A file node_exporter would refuse; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class ParsedMetric:
    labels: dict[str, str]  # without a summary's `quantile` or a histogram's `le`
    value: float = 0.0  # counter, gauge, untyped
    count: int = 0  # summary, histogram
    sum: float = 0.0
    quantiles: dict[float, float] = field(default_factory=dict)
    buckets: dict[float, int] = field(default_factory=dict)  # upper bound -> cumulative count
    timestamp_ms: int | None = None


@dataclass
class ParsedFamily:
    name: str
    help: str | None = None
    type: str | None = None
    metrics: list[ParsedMetric] = field(default_factory=list)
    grouped: dict[frozenset[tuple[str, str]], ParsedMetric] = field(default_factory=dict)  # summary/histogram


def parse_float(text: str) -> float:
    """Go's strconv.ParseFloat as expfmt uses it; ValueError for what it refuses."""
    if not _GO_FLOAT.fullmatch(text):
        raise ValueError(f"not a float: {text!r}")
    value = float(text)
    if math.isinf(value) and "n" not in text.lower():
        raise ValueError(f"out of range: {text!r}")  # Go: ErrRange beyond the largest float
    return value


def format_float(value: float) -> str:
    """A float as Go's FormatFloat(v, 'g', -1, 64) writes it (histogram `le`, summary `quantile` labels)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    if exponent < -4 or exponent >= 21:
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    if len(digits) <= exponent + 1:
        return f"{sign}{digits}{'0' * (exponent + 1 - len(digits))}"
    return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest digits that read back as `value` (Python's repr, like Go's -1 precision) and the
    decimal exponent of the first one."""
    text = repr(value)
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = int(exp or 0) + len(whole) - 1
    if whole == "0":  # 0.00123 -> digits 123, exponent -3
        stripped = fraction.lstrip("0")
        exponent = int(exp or 0) - (len(fraction) - len(stripped)) - 1
        digits = stripped
    return digits.rstrip("0") or "0", exponent


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in _BLANKS:
        pos += 1
    return pos


def _token(line: str, pos: int) -> tuple[str, int]:
    """The text from `pos` up to a blank, a tab or the end of the line."""
    end = pos
    while end < len(line) and line[end] not in _BLANKS:
        end += 1
    return line[pos:end], end


def _valid_utf8(text: str) -> bool:
    return not any("\udc80" <= c <= "\udcff" for c in text)  # undecodable bytes, kept by surrogateescape


class _Parser:
    def __init__(self) -> None:
        self.families: dict[str, ParsedFamily] = {}
        self.line = 0

    def error(self, message: str) -> TextFormatError:
        return TextFormatError(self.line, message)

    def parse(self, text: str) -> dict[str, ParsedFamily]:
        lines = text.split("\n")
        unterminated = lines.pop()
        for self.line, line in enumerate(lines, 1):
            self.parse_line(line)
        if unterminated.strip(_BLANKS):
            self.line = len(lines) + 1
            raise self.error("unexpected end of input stream (the last line has no newline)")
        return {name: family for name, family in self.families.items() if family.metrics}

    def parse_line(self, line: str) -> None:
        pos = _skip_blanks(line, 0)
        if pos == len(line):
            return
        if line[pos] == "#":
            self.comment(line, pos + 1)
        else:
            self.sample(line, pos)

    def family(self, name: str) -> tuple[ParsedFamily, str]:
        """The family a name belongs to, and what it is there: "" (itself), "sum" or "count"."""
        found = self.families.get(name)
        if found is not None:
            return found, ""
        for suffix, kinds in (("_sum", ("summary", "histogram")), ("_count", ("summary", "histogram"))):
            if name.endswith(suffix):
                base = self.families.get(name[: -len(suffix)])
                if base is not None and base.type in kinds:
                    return base, suffix[1:]
        if name.endswith("_bucket"):
            base = self.families.get(name[: -len("_bucket")])
            if base is not None and base.type == "histogram":
                return base, ""
        created = self.families[name] = ParsedFamily(name)
        return created, ""

    def comment(self, line: str, pos: int) -> None:
        pos = _skip_blanks(line, pos)
        keyword, pos = _token(line, pos)
        if pos == len(line) or keyword not in ("HELP", "TYPE"):
            return
        pos = _skip_blanks(line, pos)
        match = _METRIC_NAME.match(line, pos)
        name = match.group() if match else ""
        pos += len(name)
        if pos == len(line):
            return
        if line[pos] not in _BLANKS:
            raise self.error("invalid metric name in comment")
        family, _ = self.family(name)
        pos = _skip_blanks(line, pos)
        if pos == len(line):
            return
        text = line[pos:]
        if keyword == "HELP":
            if family.help is not None:
                raise self.error(f"second HELP line for metric name {family.name!r}")
            family.help = self.unescape(text, "\\n")
        else:
            if family.type is not None:
                raise self.error(f"second TYPE line for metric name {family.name!r}, or TYPE reported after samples")
            if text.lower() not in TYPES:
                raise self.error(f"unknown metric type {text!r}")
            family.type = text.lower()

    def unescape(self, text: str, allowed: str) -> str:
        if "\\" not in text:
            return text
        out, escaped = [], False
        for char in text:
            if escaped:
                if char not in allowed:
                    raise self.error(f"invalid escape sequence '\\{char}'")
                out.append("\n" if char == "n" else char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        if escaped:
            raise self.error("invalid escape sequence at the end of the line")
        return "".join(out)

    def sample(self, line: str, pos: int) -> None:
        match = _METRIC_NAME.match(line, pos)
        if not match:
            raise self.error("invalid metric name")
        family, part = self.family(match.group())
        if family.type is None:
            family.type = "untyped"
        pos = _skip_blanks(line, match.end())
        labels: dict[str, str] = {}
        special: float = math.nan  # the quantile or le of this sample
        if pos < len(line) and line[pos] == "{":
            pos, special = self.labels(line, pos + 1, family, labels)
        value_text, pos = _token(line, pos)
        try:
            value = parse_float(value_text)
        except ValueError:
            raise self.error(f"expected float as value, got {value_text!r}") from None
        timestamp = None
        if pos < len(line):
            stamp_text, end = _token(line, _skip_blanks(line, pos))
            if not _GO_INT64.fullmatch(stamp_text) or not -(2**63) <= int(stamp_text) < 2**63:
                raise self.error(f"expected integer as timestamp, got {stamp_text!r}")
            if end < len(line):
                raise self.error(f"spurious string after timestamp: {line[end:]!r}")
            timestamp = int(stamp_text)
        self.record(family, part, labels, special=special, value=value, ts=timestamp)

    def labels(self, line: str, pos: int, family: ParsedFamily, labels: dict[str, str]) -> tuple[int, float]:
        special = math.nan
        special_name = {"summary": "quantile", "histogram": "le"}.get(family.type or "")
        while True:
            pos = _skip_blanks(line, pos)
            if pos < len(line) and line[pos] == "}":
                return _skip_blanks(line, pos + 1), special
            match = _LABEL_NAME.match(line, pos)
            if not match:
                raise self.error(f"invalid label name for metric {family.name!r}")
            name = match.group()
            if name == "__name__":
                raise self.error('label name "__name__" is reserved')
            pos = _skip_blanks(line, match.end())
            if pos >= len(line) or line[pos] != "=":
                raise self.error("expected '=' after label name")
            pos = _skip_blanks(line, pos + 1)
            if pos >= len(line) or line[pos] != '"':
                raise self.error("expected '\"' at start of label value")
            value, pos = self.label_value(line, pos + 1)
            if name == special_name:
                try:
                    special = parse_float(value)
                except ValueError:
                    raise self.error(f"expected float as value for {name!r} label, got {value!r}") from None
            else:
                if name in labels:
                    raise self.error(f"duplicate label names for metric {family.name!r}")
                labels[name] = value
            pos = _skip_blanks(line, pos)
            if pos < len(line) and line[pos] == ",":
                pos += 1
            elif pos < len(line) and line[pos] == "}":
                return _skip_blanks(line, pos + 1), special
            else:
                raise self.error(f"unexpected end of label value {value!r}")

    def label_value(self, line: str, pos: int) -> tuple[str, int]:
        end = pos
        while end < len(line) and line[end] != '"':
            end += 2 if line[end] == "\\" else 1
        if end >= len(line):
            raise self.error("label value contains unescaped new-line")
        value = self.unescape(line[pos:end], '\\n"')
        if not _valid_utf8(value):
            raise self.error(f"invalid label value {value!r}: not UTF-8")
        return value, end + 1

    def record(
        self, family: ParsedFamily, part: str, labels: dict[str, str], *, special: float, value: float, ts: int | None
    ) -> None:
        if family.type in ("summary", "histogram"):
            key = frozenset(labels.items())
            metric = family.grouped.get(key)
            if metric is None:
                metric = family.grouped[key] = ParsedMetric(labels)
                family.metrics.append(metric)
        else:
            metric = ParsedMetric(labels, value)
            family.metrics.append(metric)
        if ts is not None:
            metric.timestamp_ms = ts
        if family.type not in ("summary", "histogram"):
            return
        if part == "count":
            metric.count = _as_uint64(value)
        elif part == "sum":
            metric.sum = value
        elif not math.isnan(special):
            if family.type == "summary":
                metric.quantiles[special] = value
            else:
                metric.buckets[special] = _as_uint64(value)


def _as_uint64(value: float) -> int:
    """Go's uint64(float64) for the counts a summary or histogram keeps (fractions dropped)."""
    return int(value) if math.isfinite(value) and 0 <= value < 2**64 else 0


def parse(text: str) -> dict[str, ParsedFamily]:
    """The families of a text-format document, by name, in the order they appear; TextFormatError where
    node_exporter 1.5 would refuse it. Decode files with errors="surrogateescape": a label value that is
    not UTF-8 is then an error, as there."""
    return _Parser().parse(text)
