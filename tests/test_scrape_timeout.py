"""The time a scrape's work may take, the same for /metrics and /probe: Prometheus' timeout from its
header, less the offset; blackbox_exporter's 120 s when there is no header."""

from __future__ import annotations

import pytest

from exporter.scrape_timeout import InvalidTimeoutHeader, parse_scrape_timeout, time_budget


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("10", 9.5),
        ("1.5", 1.0),
        (None, 119.5),  # no header: a person or a script; Prometheus always sends one
        ("", 119.5),
        ("0", 119.5),  # 0 means "not set", as in blackbox
        ("-3", 119.5),
        ("nan", 119.5),
        ("0.5", 0.01),  # at or below the offset: still a short attempt, never none
    ],
)
def test_the_budget_is_prometheus_timeout_less_the_offset(header: str | None, expected: float) -> None:
    assert time_budget(header) == pytest.approx(expected)


def test_the_offset_can_be_chosen() -> None:
    assert time_budget("4", offset=1.0) == pytest.approx(3.0)
    assert parse_scrape_timeout("4") == 4.0


def test_a_header_that_is_not_a_number_is_refused_quoting_it() -> None:
    with pytest.raises(InvalidTimeoutHeader) as caught:
        time_budget("ten")
    assert str(caught.value) == "X-Prometheus-Scrape-Timeout-Seconds is not a number: 'ten'"
