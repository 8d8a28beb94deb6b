"""Report benchmark: the time to build a month's report from the demo's Prometheus, and to write it.

Against `--prometheus URL` (the demo's, `./scripts/demo`), or, without it, a Prometheus of its own on a
backfilled history: a demo database of `--weeks` weeks (exporter/demo/generator.py, at
`--sessions-per-day`), its KPIs written every `--step` (exporter/demo/backfill.py), turned into blocks by
promtool. A month's report compares the last whole month with the one before, so the default history
covers both (ten weeks). The recording rules' series (SLOs, probes' uptime) are not in a backfill: their
sections say "No data", as on a fresh demo.

Measured, each after the setup:
1. the anchor: every board's main panels drawn over 30 days, as `pulse-exporter dashboards render` does
   (the same panels, queries and drawing the report's charts use);
2. build_report("month"): total, and the time between progress steps, summed by section;
3. writing: report.html, report.pdf (WeasyPrint), report.json.

Until build_report is in the tree (h-report-data), step 2 is a stand-in of the same kind: one section per
board, its main time-series panels drawn over the month by panel_chart, as sections draw their charts.

    .venv/bin/python benchmarks/report.py                                   # a few minutes, mostly setup
    .venv/bin/python benchmarks/report.py --prometheus http://127.0.0.1:9090 --out /tmp/month

Figures include this machine's noise (other processes share its CPUs); compare runs on one machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from exporter.dashboards.boards import BOARDS
from exporter.dashboards.render.board import main_rows, render_board
from exporter.dashboards.render.data import PrometheusClient
from exporter.reports.build import ReportInputs
from exporter.reports.charts import panel_chart
from exporter.reports.cli import json_safe
from exporter.reports.html import render_html
from exporter.reports.model import Report, ReportWindow, Section
from exporter.reports.pdf import pdf_bytes

MONTH = 30 * 86400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(command: list[str], what: str) -> float:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{what} failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


@contextmanager
def backfilled_prometheus(weeks: int, sessions_per_day: int, step: str) -> Iterator[str]:
    """A Prometheus on a demo history of `weeks` weeks; yields its URL, stops it and deletes it at the end."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        sys.exit("prometheus and promtool are needed (Debian: apt-get install prometheus), or give --prometheus")
    with tempfile.TemporaryDirectory(prefix="pulse-report-bench-") as directory:
        work = Path(directory)
        db, history, data = work / "demo.db", work / "history.om", work / "data"
        python = sys.executable
        seconds = _run([python, "-m", "exporter.demo.generator", "--url", f"sqlite:///{db}", "--backfill",
                        f"{weeks}w", "--sessions-per-day", str(sessions_per_day)], "the demo generator")  # fmt: skip
        print(f"setup: demo database, {weeks} weeks at {sessions_per_day} sessions a day: {seconds:.1f} s")
        seconds = _run([python, "-m", "exporter.demo.backfill", "--db", str(db), "--out", str(history), "--step", step],
                       "the backfill")  # fmt: skip
        print(f"setup: KPI history every {step}, {history.stat().st_size / 1e6:.0f} MB of OpenMetrics: {seconds:.1f} s")
        seconds = _run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                        str(history), str(data)], "promtool")  # fmt: skip
        print(f"setup: promtool blocks: {seconds:.1f} s")
        config = work / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        port = _free_port()
        with (work / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=400d"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"prometheus did not start:\n{(work / 'prometheus.log').read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(30)


class StepClock:
    """ReportInputs.progress that times each step: the time until the next step is the step's."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)
        self._current: str | None = None
        self._since = time.monotonic()

    def __call__(self, step: str) -> None:
        self.stop()
        self._current = step.split(":", maxsplit=1)[0].strip()  # "uptime: Online shop" counts as "uptime"

    def stop(self) -> None:
        now = time.monotonic()
        if self._current is not None:
            self.times[self._current] += now - self._since
        self._current, self._since = None, now


def anchor(client: PrometheusClient, end: float) -> None:
    started = time.monotonic()
    panels = 0
    for board in BOARDS:
        picture = render_board(client, board, end, MONTH)
        panels += len(picture.panels)
    seconds = time.monotonic() - started
    print(f"anchor: dashboards render of {len(BOARDS)} boards ({panels} panels) over 30 days: {seconds:.2f} s")


def stand_in(client: PrometheusClient, end: float) -> Report:
    """Before build_report exists: a report of the same kind of content, one section per board with its
    main time-series panels as charts, drawn over the month by panel_chart (what sections use)."""
    started = time.monotonic()
    window = ReportWindow(end - MONTH, end, "the last 30 days")
    sections = []
    for board in BOARDS:
        panels = [panel for row in main_rows(board) for panel in row.panels if panel.kind == "timeseries"]
        charts = tuple(panel_chart(client, board.key, panel.title, window) for panel in panels)
        sections.append(Section(board.key, board.title, charts=charts))
    report = Report("Monthly review (stand-in)", "month", window, None, "UTC", time.time(), tuple(sections))
    count = sum(len(section.charts) for section in report.sections)
    with_data = sum(chart.has_data for section in report.sections for chart in section.charts)
    print(f"stand-in report: {count} panels as charts over 30 days ({with_data} with data): "
          f"{time.monotonic() - started:.2f} s")  # fmt: skip
    return report


def build(client: PrometheusClient, end: float) -> Report:
    module = importlib.import_module("exporter.reports.build")
    if not hasattr(module, "build_report"):
        print("build_report: not in this tree yet (h-report-data's exporter/reports/build.py): not measured")
        return stand_in(client, end)
    clock = StepClock()
    inputs = ReportInputs(client, None, {}, "UTC", clock)
    started = time.monotonic()
    report: Report = module.build_report("month", inputs, None)
    clock.stop()
    total = time.monotonic() - started
    charts = sum(len(section.charts) for section in report.sections)
    print(
        f"build_report(month), {report.window.label}: {total:.2f} s, {len(report.sections)} sections, {charts} charts"
    )
    for step, seconds in sorted(clock.times.items(), key=lambda item: -item[1]):
        print(f"  {step}: {seconds:.2f} s")
    return report


def write(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    html = render_html(report)
    html_seconds = time.monotonic() - started
    (out / "report.html").write_text(html)
    started = time.monotonic()
    pdf = pdf_bytes(html)
    pdf_seconds = time.monotonic() - started
    (out / "report.pdf").write_bytes(pdf)
    started = time.monotonic()
    (out / "report.json").write_text(json.dumps(json_safe(report.to_json()), indent=2, allow_nan=False))
    json_seconds = time.monotonic() - started
    print(f"report.html: {html_seconds:.2f} s ({len(html) / 1e6:.1f} MB)")
    print(f"report.pdf: {pdf_seconds:.2f} s ({len(pdf) / 1e6:.1f} MB)")
    print(f"report.json: {json_seconds:.3f} s")
    print(f"written to {out}" + (" (deleted at the end)" if out.name.startswith("pulse-report-") else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", help="a running Prometheus (the demo's); default: a backfilled one of its own")
    parser.add_argument("--weeks", type=int, default=10, help="history to backfill (%(default)s weeks)")
    parser.add_argument("--sessions-per-day", type=int, default=3000, help="demo traffic (%(default)s)")
    parser.add_argument("--step", default="5m", help="backfill step (%(default)s, as scripts/demo)")
    parser.add_argument("--out", type=Path, help="where the report goes (default: a temporary directory)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop Prometheus, delete its files

    @contextmanager
    def given(url: str) -> Iterator[str]:
        yield url

    source = given(args.prometheus) if args.prometheus else backfilled_prometheus(
        args.weeks, args.sessions_per_day, args.step
    )  # fmt: skip
    with source as url, PrometheusClient(url, timeout=120) as client:
        client.check()
        end = time.time()
        anchor(client, end)
        report = build(client, end)
        with tempfile.TemporaryDirectory(prefix="pulse-report-") as scratch:
            write(report, args.out or Path(scratch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
