"""The collector framework's promises: one collector's failure or hang never hides the others,
a stuck collector is not started twice, and a reload keeps unchanged collectors with their state."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.app import Exporter, load_files
from exporter.collectors import host
from exporter.collectors.base import BlockingCollector, Cell, Collector, Link, StatusTable
from exporter.collectors.host import processes
from exporter.exposition import encode_as_accepted
from exporter.probes.collector import ProbesCollector
from exporter.scrape import collect_all, unique_families
from exporter.web.landing import landing_page
from tests.helpers import landing_table, samples_of


class Constant(BlockingCollector):
    def __init__(self, name: str, value: float = 1.0) -> None:
        super().__init__(name)
        self.value = value
        self.runs = 0

    def collect_blocking(self) -> Sequence[Metric]:
        self.runs += 1
        return [GaugeMetricFamily(f"test_{self.name}", "A test value.", value=self.value)]


class Broken(BlockingCollector):
    def collect_blocking(self) -> Sequence[Metric]:
        raise OSError("disk on fire")


class Hanging(BlockingCollector):
    """Blocks in its worker thread until released, like statvfs on a dead NFS server."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = threading.Event()

    def collect_blocking(self) -> Sequence[Metric]:
        self.release.wait(30)
        return [GaugeMetricFamily("test_hanging", "Finally.", value=1)]


class AsyncConstant(Collector):
    async def collect(self) -> Sequence[Metric]:
        await asyncio.sleep(0)
        return [GaugeMetricFamily("test_async", "From the event loop.", value=2)]


def by_name(outcomes: Sequence[object]) -> dict[str, object]:
    return {o.collector: o for o in outcomes}  # type: ignore[attr-defined]


def test_a_failing_collector_hides_nothing_else() -> None:
    collectors: list[Collector] = [Constant("a"), Broken("broken"), Constant("b"), AsyncConstant("async")]
    outcomes = asyncio.run(collect_all(collectors, timeout=5))
    assert [o.collector for o in outcomes] == ["a", "broken", "b", "async"]
    assert [o.success for o in outcomes] == [True, False, True, True]
    body, _ = encode_as_accepted([f for o in outcomes for f in o.families], "text/plain")
    for sample in (b"test_a 1.0", b"test_b 1.0", b"test_async 2.0"):
        assert sample in body


def test_a_hung_collector_times_out_and_the_ones_queued_behind_it_still_run() -> None:
    hanging = Hanging("hanging")
    after = Constant("after")
    collectors: list[Collector] = [Constant("before"), hanging, after]
    try:
        started = time.monotonic()
        outcomes = by_name(asyncio.run(collect_all(collectors, timeout=2)))
        elapsed = time.monotonic() - started
        assert outcomes["before"].success  # type: ignore[attr-defined]
        assert not outcomes["hanging"].success  # type: ignore[attr-defined]
        assert outcomes["after"].success, "the stall watchdog should have run it in another worker"  # type: ignore[attr-defined]
        assert elapsed < 10  # bounded by the scrape timeout, not by the hang
    finally:
        hanging.release.set()


def test_a_collector_still_stuck_from_the_last_scrape_is_not_started_again() -> None:
    hanging = Hanging("hanging")

    async def two_scrapes() -> tuple[bool, bool, float]:
        first = await collect_all([hanging], timeout=0.3)
        started = time.monotonic()
        second = await collect_all([hanging, Constant("other")], timeout=5)
        return first[0].success, second[0].success, time.monotonic() - started

    try:
        first_ok, second_ok, second_took = asyncio.run(two_scrapes())
        assert not first_ok
        assert not second_ok
        assert second_took < 2, "a busy collector must fail at once, not wait for the timeout"
    finally:
        hanging.release.set()


def test_the_same_family_name_from_two_collectors_is_exposed_once() -> None:
    outcomes = asyncio.run(collect_all([Constant("x", 1), Constant("x", 2)], timeout=5))
    body, _ = encode_as_accepted(unique_families(f for o in outcomes for f in o.families), "text/plain")
    assert body.count(b"# TYPE test_x gauge") == 1


def test_openmetrics_is_served_when_asked_for() -> None:
    outcomes = asyncio.run(collect_all([Constant("a")], timeout=5))
    body, content_type = encode_as_accepted(outcomes[0].families, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_reload_keeps_unchanged_collectors_and_replaces_changed_ones(tmp_path: Path) -> None:
    config = write(
        tmp_path / "pulse.yml",
        "collectors:\n  host:\n    processes: [{name: me, match: {cmdline: pytest}}]\n",
    )

    async def scenario() -> None:
        exporter = Exporter(config, None, load_files(config, None))
        await exporter.start()
        before = {c.name: c for c in exporter.collectors}
        write(
            config,
            "collectors:\n  host:\n    disk: {exclude_devices: '^loop'}\n"
            "    processes: [{name: me, match: {cmdline: pytest}}]\n",
        )
        ok, _ = await exporter.reload()
        after = {c.name: c for c in exporter.collectors}
        assert ok
        assert after["host.processes"] is before["host.processes"], "unchanged: kept with its counters"
        assert after["host.cpu"] is before["host.cpu"]
        assert after["host.disk"] is not before["host.disk"], "changed: rebuilt"
        await exporter.stop()

    asyncio.run(scenario())


def test_each_host_collector_is_a_key_of_collectors_host_and_named_after_it() -> None:
    """A host module's COLLECTOR is all it takes: its key under collectors.host, its settings, its
    collector `host.<key>`, switched off by its own settings."""
    assert list(host.HostConfig.model_fields) == ["enabled", *(kind.name for kind in host.KINDS)]
    for kind in host.KINDS:
        assert kind.build(kind.default).name == f"host.{kind.name}"
    one_group: dict[str, object] = {"processes": [{"name": "me", "match": {"cmdline": "pytest"}}]}
    one_group["textfile"] = {"directory": "/nonexistent"}  # off until given a directory
    everything = host.build(host.HostConfig.model_validate(one_group))
    assert [c.name for c in everything] == [f"host.{kind.name}" for kind in host.KINDS]
    off = {kind.name: {"enabled": False} for kind in host.KINDS if kind is not processes.COLLECTOR}
    assert host.build(host.HostConfig.model_validate(off)) == []
    assert host.build(host.HostConfig(enabled=False)) == []


def test_a_bad_reload_keeps_the_running_collectors(tmp_path: Path) -> None:
    config = write(tmp_path / "pulse.yml", "collectors:\n  host:\n    cpu: {enabled: false}\n")

    async def scenario() -> None:
        exporter = Exporter(config, None, load_files(config, None))
        await exporter.start()
        running = list(exporter.collectors)
        write(config, "collectors:\n  host:\n    cpu: {enabled: perhaps}\n")
        ok, message = await exporter.reload()
        assert not ok
        assert f"{config}:3: collectors.host.cpu.enabled:" in message
        assert exporter.collectors == running
        assert not exporter.reload_successful
        await exporter.stop()

    asyncio.run(scenario())


def test_async_collectors_alone_do_not_wait_for_the_timeout() -> None:
    started = time.monotonic()
    outcomes = asyncio.run(collect_all([AsyncConstant("async")], timeout=5))
    assert outcomes[0].success
    assert time.monotonic() - started < 2


class Flaky(BlockingCollector):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.error: str | None = "disk on fire"

    def collect_blocking(self) -> Sequence[Metric]:
        if self.error:
            raise OSError(self.error)
        return []


def test_a_lasting_failure_is_logged_when_it_starts_changes_and_ends(caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky()
    pages: list[str] = []

    async def scrape_with(error: str | None, times: int) -> None:
        flaky.error = error
        for _ in range(times):
            await exporter.scrape([flaky], 5, "")
        pages.append(landing_page(exporter))

    async def scenario() -> None:
        await scrape_with("disk on fire", 3)
        await scrape_with("disk flooded", 1)
        await scrape_with(None, 2)

    exporter = Exporter(None, None, load_files(None, None))
    exporter.collectors = [flaky]
    caplog.set_level(logging.DEBUG, logger="exporter.app")
    asyncio.run(scenario())
    logged = [
        (record.levelname, record.getMessage(), getattr(record, "err", None))
        for record in caplog.records
        if getattr(record, "collector", None) == "flaky"
    ]
    assert logged == [
        ("WARNING", "collector failed", "OSError: disk on fire"),
        ("DEBUG", "collector still failing", "OSError: disk on fire"),
        ("DEBUG", "collector still failing", "OSError: disk on fire"),
        ("WARNING", "collector failed", "OSError: disk flooded"),
        ("INFO", "collector recovered", None),
    ]
    assert ["flaky", "FAILED OSError: disk on fire"] in landing_table(pages[0], "Collectors")
    assert ["flaky", "FAILED OSError: disk flooded"] in landing_table(pages[1], "Collectors")
    [[_, result]] = [row for row in landing_table(pages[2], "Collectors") if row[0] == "flaky"]
    assert result.startswith("ok in ")


class Reporting(Collector):
    """A collector that tells the landing page how it is doing."""

    async def collect(self) -> Sequence[Metric]:
        return []

    def status_tables(self) -> list[StatusTable]:
        failing = [
            Cell("<nightly>"),
            Cell("FAILING", "bad"),
            Cell(when=time.time() - 5),
            Cell("disk <full>", "error"),
            Cell(links=(Link("log", "log?job=nightly&lines=10"),)),
        ]
        never = [Cell("weekly"), Cell("not run yet", "none"), Cell("never"), Cell("", "error"), Cell()]
        return [
            StatusTable("Jobs", ("Job", "State", "Last run", "Error", ""), [failing, never], "Each job's last run."),
            StatusTable("Nothing yet", ("Job",), []),
        ]

    def status_note(self) -> Cell:
        return Cell("1 of 2 jobs failing", "bad")


def test_a_collectors_status_tables_and_note_are_on_the_landing_page_escaped() -> None:
    exporter = Exporter(None, None, load_files(None, None))
    exporter.collectors = [Reporting("jobs")]
    page = landing_page(exporter)
    [failing, never] = landing_table(page, "Jobs")
    assert failing[:2] == ["<nightly>", "FAILING"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)", failing[2])
    assert failing[3:] == ["disk <full>", "log"]
    assert never == ["weekly", "not run yet", "never", "", ""]
    assert "<td>&lt;nightly&gt;</td>" in page
    assert '<a href="log?job=nightly&amp;lines=10">log</a>' in page
    assert "<p>Each job&#x27;s last run.</p>" in page
    assert "Nothing yet" not in page  # a table without rows is left out
    assert landing_table(page, "Collectors") == [["jobs", "not scraped yet (1 of 2 jobs failing)"]]


def test_state_carries_over_a_reload_only_to_the_collector_it_replaces(tmp_path: Path) -> None:
    """A reload hands the replaced collector to its successor (Collector.start), and nothing else shares
    state: two exporters in one process with the same probe modules keep their own counts."""
    probes = "probes:\n  modules:\n    tcp: {prober: tcp}\n  targets:\n    - {target: 'localhost:1', module: tcp}\n"
    config = write(tmp_path / "pulse.yml", "collectors:\n  host: {enabled: false}\n" + probes)

    def probes_collector(exporter: Exporter) -> ProbesCollector:
        return next(c for c in exporter.collectors if isinstance(c, ProbesCollector))

    async def counts(exporter: Exporter) -> dict[str, float]:
        return samples_of(await probes_collector(exporter).collect())

    async def scenario() -> None:
        first = Exporter(config, None, load_files(config, None))
        await first.start()
        probes_collector(first).record("tcp", "localhost:1", True, 0.01, None)
        second = Exporter(config, None, load_files(config, None))
        await second.start()
        assert (await counts(second))['pulse_probes_total{module="tcp",result="success"}'] == 0

        write(config, "collectors:\n  host: {enabled: false}\n" + probes.replace("localhost:1", "localhost:2"))
        replaced = probes_collector(first)
        ok, _ = await first.reload()
        assert ok
        assert probes_collector(first) is not replaced, "the targets changed: a new collector"
        assert (await counts(first))['pulse_probes_total{module="tcp",result="success"}'] == 1
        await first.stop()
        await second.stop()

    asyncio.run(scenario())
