"""Values as Grafana shows them for a panel's unit: `0.995` in `percentunit` is "99.5%", `0.25` in `s` is
"250 ms", `3145728` in `bytes` is "3 MiB". Pure functions, shared by the pictures' axes and big numbers
and by anything else that prints a panel's value (the reports).

Precision: four significant digits at most, three decimals at most, trailing zeros dropped, so an SLO of
99.95% keeps its last digit and an axis tick of 0.30000000000000004 is "0.3".
"""

from __future__ import annotations

import math
import time

# Grafana's duration units, in seconds.
_DURATION_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# From the largest: a duration is shown in the largest of these it reaches.
_DURATION_STEPS = (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SI_BYTES = ("B", "kB", "MB", "GB", "TB", "PB")
_SHORT = ("", "k", "M", "G", "T", "P")
# Counts per second: Grafana's throughput units and the suffix they get.
_RATES = {"reqps": "req/s", "rps": "req/s", "ops": "ops/s", "wps": "wr/s", "rpm": "req/min", "opm": "ops/min"}
_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def number(value: float) -> str:
    """A plain number: four significant digits at most, three decimals at most, no trailing zeros."""
    if value == 0:
        return "0"
    digits = 3 - math.floor(math.log10(abs(value)))
    decimals = min(max(digits, 0), 3)
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _scaled(value: float, base: float, prefixes: tuple[str, ...]) -> tuple[float, str]:
    """`value` divided by the largest power of `base` it reaches, and that power's prefix."""
    index = 0
    while index < len(prefixes) - 1 and abs(value) >= base ** (index + 1):
        index += 1
    return value / base**index, prefixes[index]


def duration(seconds: float) -> str:
    """A duration in the largest unit it reaches: 0.25 -> "250 ms", 90 -> "1.5 min", 7200 -> "2 h"."""
    if seconds == 0:
        return "0 s"
    for name, size in _DURATION_STEPS:
        if abs(seconds) >= size:
            return f"{number(seconds / size)} {name}"
    return f"{number(seconds / 1e-9)} ns"


def from_now(timestamp: float, now: float | None = None) -> str:
    """A Unix time relative to now, as Grafana's dateTimeFromNow: "3 h ago", "in 12 d"."""
    delta = timestamp - (time.time() if now is None else now)
    if abs(delta) < 1:
        return "now"
    for name, size in _DURATION_STEPS[:4]:
        if abs(delta) >= size or name == "s":
            amount = f"{abs(delta) / size:.0f} {name}"
            return f"in {amount}" if delta > 0 else f"{amount} ago"
    raise AssertionError("unreachable: the loop ends at seconds")


def format_value(value: float, unit: str) -> str:
    """`value` as a panel of `unit` shows it. Unknown units get the value in `short` and the unit after it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "percentunit":
        return f"{number(value * 100)}%"
    if unit == "percent":
        return f"{number(value)}%"
    if unit in _DURATION_UNITS:
        return duration(value * _DURATION_UNITS[unit])
    if unit in ("bytes", "decbytes", "bits", "Bps", "binBps", "bps"):
        return _bytes(value, unit)
    if unit in _RATES:
        return f"{_short(value)} {_RATES[unit]}"
    if unit.startswith("currency"):
        return _money(value, unit.removeprefix("currency"))
    if unit == "dateTimeFromNow":
        return from_now(value)
    if unit in ("dateTimeAsIso", "dateTimeAsSystem"):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if unit in ("short", ""):
        return _short(value)
    if unit == "none":
        return number(value)
    if unit.startswith("suffix:"):
        return f"{_short(value)}{unit.removeprefix('suffix:')}"
    return f"{_short(value)} {unit}"


def axis_scale(unit: str, magnitude: float) -> float:
    """What format_value divides values of about `magnitude` by for `unit`: an axis puts its ticks on
    round multiples of it (0, 2, 4 MiB rather than 0, 2.1, 4.2 MB worth of bytes)."""
    magnitude = abs(magnitude)
    if unit == "percentunit":
        return 0.01
    if unit in _DURATION_UNITS:
        seconds = magnitude * _DURATION_UNITS[unit]
        size = next((size for _, size in _DURATION_STEPS if seconds >= size), 1e-9)
        return size / _DURATION_UNITS[unit]
    base = 1024.0 if unit in ("bytes", "binBps") else 1000.0
    if unit in ("none", "percent") or unit.startswith("dateTime") or magnitude < base:
        return 1.0
    return base ** min(int(math.log(magnitude, base)), len(_SHORT) - 1)


def _short(value: float) -> str:
    scaled, prefix = _scaled(value, 1000.0, _SHORT)
    return f"{number(scaled)}{prefix}"


def _bytes(value: float, unit: str) -> str:
    if unit in ("bits", "bps"):
        scaled, prefix = _scaled(value, 1000.0, _SHORT)
        return f"{number(scaled)} {prefix}b" + ("/s" if unit == "bps" else "")
    names = _SI_BYTES if unit in ("decbytes", "Bps") else _IEC
    scaled, name = _scaled(value, 1000.0 if names is _SI_BYTES else 1024.0, names)
    return f"{number(scaled)} {name}" + ("/s" if unit in ("Bps", "binBps") else "")


def _money(value: float, code: str) -> str:
    scaled, prefix = _scaled(value, 1000.0, _SHORT)
    amount = f"{scaled:,.2f}".rstrip("0").rstrip(".") if prefix else f"{value:,.2f}"
    sign = "-" if value < 0 else ""
    amount = amount.lstrip("-")
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{amount}{prefix}" if symbol else f"{sign}{amount}{prefix} {code}"
