"""When a KPI query runs next: a fixed interval, or a cron schedule.

Intervals are fixed-rate (the next run is due `interval` after the previous one *started*), so a
query that takes 2 s every 30 s does not drift to every 32 s. A run that overruns its slot is
followed by the next one at once, never by two to catch up. Cron schedules use the exporter's
local time zone, like cron itself.
"""

from __future__ import annotations

import time
from datetime import datetime

from croniter import croniter


class Schedule:
    def __init__(self, interval: float | None, cron: str | None, run_on_start: bool = True) -> None:
        if (interval is None) == (cron is None):
            raise ValueError("a schedule needs exactly one of interval and cron")
        self.interval = interval
        self.cron = cron
        self.run_on_start = run_on_start
        self._last_start: float | None = None  # monotonic
        self._last_start_wall = 0.0

    def seconds_until_next(self) -> float:
        """How long to wait before the next run (0: run now)."""
        now = time.monotonic()
        if self._last_start is None and (self.interval is not None or self.run_on_start):
            return 0.0
        if self.interval is not None:
            assert self._last_start is not None
            return max(0.0, self._last_start + self.interval - now)
        assert self.cron is not None
        wall = time.time()
        # From at least one second after the last start: a timer that fires a hair early must not
        # find the slot it is running for still ahead, and run twice.
        base = max(wall, self._last_start_wall + 1.0)
        next_wall = croniter(self.cron, datetime.fromtimestamp(base).astimezone()).get_next(float)
        return max(0.0, next_wall - wall)

    def started(self) -> None:
        """Record that a run starts now."""
        self._last_start = time.monotonic()
        self._last_start_wall = time.time()
