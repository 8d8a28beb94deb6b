"""The sink a prober writes to (exporter/probes/base.py): gauges set as the probe goes, phase durations."""

from __future__ import annotations

import asyncio

import pytest

from exporter.probes.base import ProbeSink
from tests.helpers import samples_of


def test_a_gauge_set_again_replaces_its_value_and_keeps_its_place() -> None:
    sink = ProbeSink()
    sink.gauge("probe_a", "first", 0)
    sink.gauge("probe_b", "second", 1, {"kind": "x"})
    sink.gauge("probe_a", "first", 7)
    sink.gauge("probe_b", "second", 2, {"kind": "y"})
    assert samples_of(sink.families()) == {"probe_a": 7, 'probe_b{kind="x"}': 1, 'probe_b{kind="y"}': 2}
    assert [family.name for family in sink.families()] == ["probe_a", "probe_b"]


def test_a_family_keeps_the_label_names_of_its_first_sample() -> None:
    sink = ProbeSink()
    sink.gauge("probe_b", "second", 1, {"kind": "x"})
    with pytest.raises(ValueError, match="label names"):
        sink.gauge("probe_b", "second", 1, {"other": "x"})


def test_remove_drops_families() -> None:
    sink = ProbeSink()
    sink.gauge("probe_a", "first", 1)
    sink.gauge("probe_b", "second", 1)
    sink.remove("probe_a", "probe_missing")
    assert samples_of(sink.families()) == {"probe_b": 1}


def test_phases_start_at_zero_and_add_up() -> None:
    sink = ProbeSink()
    phases = sink.phases("probe_x_duration_seconds", "Duration by phase", ("connect", "request"))
    assert samples_of(sink.families()) == {
        'probe_x_duration_seconds{phase="connect"}': 0,
        'probe_x_duration_seconds{phase="request"}': 0,
    }
    phases.add("connect", 0.25)
    phases.add("connect", 0.5)
    assert phases["connect"] == 0.75
    assert samples_of(sink.families())['probe_x_duration_seconds{phase="connect"}'] == 0.75


def test_a_timed_phase_is_recorded_also_when_the_deadline_cancels_it() -> None:
    sink = ProbeSink()
    phases = sink.phases("probe_x_duration_seconds", "Duration by phase", ("request",))

    async def probe() -> None:
        with phases.timing("request"):
            await asyncio.Event().wait()  # never set: only the deadline ends it

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await probe()

    asyncio.run(main())
    assert phases["request"] > 0
    assert samples_of(sink.families())['probe_x_duration_seconds{phase="request"}'] == phases["request"]
