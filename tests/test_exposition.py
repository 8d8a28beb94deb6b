"""Pulse's encoders write what client_python's parsers and promtool read back, sample for sample."""

from __future__ import annotations

import math
import subprocess

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from exporter.exposition import Encoder, encode_as_accepted, encode_openmetrics, encode_text, wants_openmetrics
from tests.helpers import parse_families, require_binary


def tricky_families() -> list[Metric]:
    help_text = 'Help with \\ backslash, "quotes"\nand a newline.'
    gauge = GaugeMetricFamily("test_path_size_bytes", help_text, labels=["path"])
    gauge.add_metric(['C:\\dir "quoted"\nnext'], 1.5)
    gauge.add_metric(["plain"], -0.0)
    specials = GaugeMetricFamily("test_special_values", "Infinities and NaN.", labels=["kind"])
    specials.add_metric(["inf"], math.inf)
    specials.add_metric(["-inf"], -math.inf)
    specials.add_metric(["nan"], math.nan)
    specials.add_metric(["big"], 1.5e16)
    specials.add_metric(["small"], 1e-9)
    counter = CounterMetricFamily("test_requests_total", "A counter.", labels=["code"])
    counter.add_metric(["200"], 12345)
    histogram = HistogramMetricFamily("test_latency_seconds", "A histogram.", labels=["module"])
    histogram.add_metric(["http"], [("0.1", 3), ("1.0", 7), ("+Inf", 9)], sum_value=4.2)
    info = GaugeMetricFamily("test_build_info", "Build information.", labels=["version"])
    info.add_metric(["1.0"], 1)
    return [gauge, specials, counter, histogram, info]


def as_samples(families: list[Metric]) -> list[tuple[str, str, dict[str, str], float | str]]:
    return [
        (f.name, f.type, s.labels, "NaN" if math.isnan(s.value) else s.value)
        for f in families
        for s in f.samples
        if not s.name.endswith("_created")
    ]


def test_text_format_round_trips_through_client_python() -> None:
    families = tricky_families()
    parsed = parse_families(encode_text(families).decode())
    assert as_samples(parsed) == as_samples(families)
    assert [f.documentation for f in parsed] == [f.documentation for f in families]


def test_openmetrics_round_trips_through_client_python() -> None:
    families = tricky_families()
    parsed = list(parse_openmetrics(encode_openmetrics(families).decode()))  # type: ignore[no-untyped-call]
    assert as_samples(parsed) == as_samples(families)
    assert [f.documentation for f in parsed] == [f.documentation for f in families]


def test_promtool_accepts_the_text_format() -> None:
    promtool = require_binary("promtool")
    body = encode_text(tricky_families())
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert body.count(b"# HELP") == 5


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        # Prometheus 2.x's default Accept header prefers OpenMetrics.
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            True,
        ),
        ("text/plain;version=0.0.4", False),
        ("", False),
        ("*/*", False),
        ("text/plain;q=1, application/openmetrics-text;q=0.3", False),
        ("application/openmetrics-text; version=1.0.0", True),
        ("application/openmetrics-text;q=0", False),
    ],
)
def test_content_negotiation(accept: str, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics
    _, content_type = encode_as_accepted([], accept)
    assert content_type.startswith("application/openmetrics-text" if openmetrics else "text/plain; version=0.0.4")


OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.mark.parametrize("accept", ["text/plain", OPENMETRICS])
def test_the_scrape_encoder_writes_exactly_what_the_plain_encoders_write(accept: str) -> None:
    encoder = Encoder()
    families = tricky_families()
    expected = encode_as_accepted(families, accept)
    assert encoder.encode_memoized(families, accept) == expected
    assert encoder.encode_memoized(families, accept) == expected  # second time from its memo
    assert encoder.encode_memoized(families[1:], accept) == encode_as_accepted(families[1:], accept)


def test_a_family_handed_out_again_is_not_written_again_but_a_new_family_is() -> None:
    encoder = Encoder()
    cached = GaugeMetricFamily("test_orders", "Orders, cached between query runs.", value=1)
    first, _ = encoder.encode_memoized([cached], "text/plain")
    # The collector contract: a returned family never changes. Breaking it here shows the memo is used.
    cached.samples[0] = cached.samples[0]._replace(value=2)
    again, _ = encoder.encode_memoized([cached], "text/plain")
    assert again == first
    fresh = GaugeMetricFamily("test_orders", "Orders, cached between query runs.", value=3)
    assert encoder.encode_memoized([fresh], "text/plain")[0] == first.replace(b"test_orders 1.0", b"test_orders 3.0")


def test_the_memo_holds_only_the_latest_scrape() -> None:
    encoder = Encoder()
    old = GaugeMetricFamily("test_old", "Dropped by its collector.", value=1)
    encoder.encode_memoized([old], "text/plain")
    encoder.encode_memoized([GaugeMetricFamily("test_new", "Its successor.", value=1)], "text/plain")
    old.samples[0] = old.samples[0]._replace(value=5)  # not memoised any more: written afresh
    assert b"test_old 5.0" in encoder.encode_memoized([old], "text/plain")[0]
