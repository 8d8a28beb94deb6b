"""How long the work behind a scrape may take, for /metrics and /probe alike: Prometheus' scrape timeout,
as its X-Prometheus-Scrape-Timeout-Seconds header says, less an offset left to write and send the answer.
"""

from __future__ import annotations

HEADER = "x-prometheus-scrape-timeout-seconds"  # lower-case, as the HTTP server hands headers over

# Without the header: 120 s, blackbox_exporter's value. Prometheus always sends the header, so only
# people and scripts go without, and for them the longer default is the safe one: a probe opened from
# the landing page's debug link runs to its module's own `timeout` (say 30 s) as it would for
# Prometheus, where a 10 s default would fail it for nothing; a /metrics request only ever waits this
# long while a collector hangs (node_exporter would wait for ever).
DEFAULT_SCRAPE_TIMEOUT = 120.0
TIMEOUT_OFFSET = 0.5  # blackbox's --timeout-offset default; /probe's is probes.timeout_offset
MIN_TIMEOUT = 0.01  # a scrape timeout at or below the offset still gets a (likely hopeless) attempt


class InvalidTimeoutHeader(ValueError):
    """X-Prometheus-Scrape-Timeout-Seconds is not a number."""


def parse_scrape_timeout(header: str | None) -> float:
    """Prometheus' scrape timeout in seconds from the header's value: the default when it is absent or
    not above 0 (blackbox reads 0 as "not set"); InvalidTimeoutHeader when it is not a number."""
    if not header:
        return DEFAULT_SCRAPE_TIMEOUT
    try:
        seconds = float(header)
    except ValueError:
        raise InvalidTimeoutHeader(f"X-Prometheus-Scrape-Timeout-Seconds is not a number: {header!r}") from None
    return seconds if seconds > 0 else DEFAULT_SCRAPE_TIMEOUT  # `> 0` is also False for NaN


def time_budget(header: str | None, offset: float = TIMEOUT_OFFSET) -> float:
    """Seconds the work may take: the scrape timeout less `offset`, at least MIN_TIMEOUT."""
    return max(MIN_TIMEOUT, parse_scrape_timeout(header) - offset)
