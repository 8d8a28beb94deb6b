"""Clock discipline from the kernel (adjtimex), as node_exporter's timex collector.

node-mixin's NodeClockNotSynchronising and NodeClockSkewDetected alerts read these: is NTP keeping
this machine's clock in sync, and how far off is it? Read-only: adjtimex with `modes = 0`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind

TIME_ERROR = 5  # adjtimex's return value when the clock is not synchronised
STA_NANO = 0x2000  # status bit: offset is in nanoseconds rather than microseconds
MICRO = 1e-6


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (Linux); ctypes adds the same padding as the C compiler."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


class TimexCollector(BlockingCollector):
    def __init__(self, config: Toggle) -> None:
        super().__init__("host.timex", config)
        self._adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex

    def collect_blocking(self) -> Sequence[Metric]:
        timex = _Timex()  # modes = 0: read, change nothing
        state = self._adjtimex(ctypes.byref(timex))
        if state < 0:
            raise OSError(ctypes.get_errno(), "adjtimex failed")
        offset_unit = 1e-9 if timex.status & STA_NANO else MICRO
        values = (
            ("offset_seconds", "Time offset in between local system and reference clock.", timex.offset * offset_unit),
            # freq is in parts per million with a 16-bit fraction.
            ("frequency_adjustment_ratio", "Local clock frequency adjustment.", 1 + timex.freq / 65536 / 1e6),
            ("maxerror_seconds", "Maximum error in seconds.", timex.maxerror * MICRO),
            ("estimated_error_seconds", "Estimated error in seconds.", timex.esterror * MICRO),
            ("status", "Value of the status array bits.", timex.status),
            ("loop_time_constant", "Phase-locked loop time constant.", timex.constant),
            ("tick_seconds", "Seconds between clock ticks.", timex.tick * MICRO),
            ("tai_offset_seconds", "International Atomic Time (TAI) offset.", timex.tai),
            (
                "sync_status",
                "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
                0 if state == TIME_ERROR else 1,
            ),
        )
        return [GaugeMetricFamily(f"node_timex_{name}", help_text, value=value) for name, help_text, value in values]


COLLECTOR = HostCollectorKind(name="timex", config=Toggle, default=Toggle(), build=TimexCollector)
