"""Reports as files a manager reads (exporter/reports/html.py, pdf.py, cli.py, incident.py, schedule.py).

A report of every shape (figures with targets, tables, charts drawn by the dashboards' own code, a
section without data, alert text that tries to be markup) is written as HTML and PDF, then looked at as
a person would: the HTML opened in headless Chromium and screenshotted, the PDF turned into pictures
with pdftoppm, its images listed with pdfimages and its text read with pdftotext. An incident's report
is written from a real journal (SQLite) against a real Prometheus with a backfilled history; the
schedule is run with a cron that is due now, in a subprocess, as the exporter runs it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from matplotlib import image
from numpy.typing import NDArray

from exporter.cli import main as cli_main
from exporter.config.platform import ServiceConfig
from exporter.dashboards.model import Panel, Query
from exporter.dashboards.render.charts import FAILED, PALETTE, Box, Canvas, draw_panel
from exporter.dashboards.render.data import PanelData, PrometheusClient, QueryResult, Series, Window
from exporter.incidents.journal import Journal, sqlite_url
from exporter.incidents.model import AlertNotice
from exporter.reports.build import ReportInputs
from exporter.reports.cli import Progress, write_report
from exporter.reports.config import ReportsConfig, ScheduledReport
from exporter.reports.html import render_html
from exporter.reports.incident import alert_expression, build_incident_report
from exporter.reports.model import Chart, Column, Figure, Report, ReportWindow, Section, Table
from exporter.reports.schedule import ReportSchedule, ScheduleSettings, directory_label, prune
from tests.helpers import StartExporter, free_port, require_binary, wait_until
from tests.prometheus_server import PrometheusServer, create_blocks, running_prometheus

HOSTILE = '<script>alert("x")</script><img src="http://evil.invalid/p.png">'
LINE_GREEN = PALETTE[0]  # the first series of a chart
DAY = ReportWindow(1764975600, 1765062000, "Sunday 6 December 2026")
BEFORE = ReportWindow(1764889200, 1764975600, "Saturday 5 December 2026")


# ---------------------------------------------------------------------------------------- reading pictures


def pixels(png: bytes) -> NDArray[np.float32]:
    array: NDArray[np.float32] = image.imread(io.BytesIO(png), format="png")[:, :, :3]
    return array


def near(area: NDArray[np.float32], hex_colour: str, tolerance: float = 0.08) -> int:
    colour = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)], dtype=np.float32)
    return int(np.all(np.abs(area - colour) <= tolerance, axis=-1).sum())


def non_white(area: NDArray[np.float32]) -> float:
    return float((area.min(axis=-1) < 0.9).mean())


def assert_a_chart(area: NDArray[np.float32], what: str) -> None:
    """Not blank, not flat: many colours (lines, antialiasing, labels) and real contrast."""
    colours = len(np.unique((area * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert colours > 40, f"{what}: {colours} colours, a blank or flat picture"
    assert float(area.std()) > 0.03, f"{what}: almost uniform"


# ------------------------------------------------------------------------------------------- the report


def drawn_chart(title: str, unit: str, waves: list[tuple[str, float]]) -> Chart:
    """A chart as sections make them: a panel drawn by the dashboards' code (here from data made up)."""
    span = Window(int(DAY.start), int(DAY.end), 300)
    times = tuple(span.times())
    series = tuple(
        Series(name, {"service": name}, times,
               tuple(base * (1 + 0.3 * math.sin(i / 20 + k)) for i in range(len(times))))
        for k, (name, base) in enumerate(waves)
    )  # fmt: skip
    panel = Panel(title, "", unit, (Query("x"),))
    canvas = Canvas(1000, 300)
    draw_panel(canvas, PanelData(panel, span, (QueryResult(panel.queries[0], "x", series),)), Box(0, 0, 1000, 300))
    return Chart(title, "overview", title, canvas.png(), True)


WIDE = Table("Capacity by host", (  # more columns with long headings than A4's width holds unwrapped
    Column("Instance"), Column("Used a month before", "bytes"), Column("Growth, previous period", "percentunit"),
    Column("Time until full", "s"), Column("Peak memory used", "bytes"), Column("Peak CPU busy", "percentunit"),
    Column("Disk read per second", "Bps"), Column("Disk written per second", "Bps"),
), (("db-primary.internal:9100", 3.2e11, 0.042, 86400 * 40, 6.1e10, 0.83, 1.2e7, 3.4e7),))  # fmt: skip


def sample_report() -> Report:
    charts = (
        drawn_chart("Availability by service", "percentunit", [("shop", 0.99), ("api", 0.995)]),
        drawn_chart("Response time p95", "s", [("checkout", 0.4), ("search", 0.2), ("home", 0.05)]),
        drawn_chart("Requests", "reqps", [("all", 120.0)]),
    )
    return Report("Daily report", "day", DAY, BEFORE, "Europe/Paris", 1765090000.0, (
        Section("uptime", "Uptime and SLA", figures=(
            Figure("uptime_shop", "Uptime: Online shop", 0.9987, "percentunit", 0.9995, "higher", 0.999),
            Figure("uptime_api", "Uptime: API", 0.99995, "percentunit", 0.9999, "higher", 0.999),
        ), charts=charts[:1]),
        Section("performance", "Response times and errors", figures=(
            Figure("p95", "Response time p95", 0.412, "s", 0.35, "lower"),
            Figure("errors", "Error rate", 0.0123, "percentunit", 0.02, "lower"),
        ), tables=(Table("Slowest endpoints", (Column("Endpoint"), Column("p95", "s")),
                         (("/checkout", 1.2), ("/search?q=" + HOSTILE, 0.8), ("/none", None))),),
           charts=charts[1:]),
        Section("incidents", "Incidents", figures=(Figure("mttr", "MTTR", 1260.0, "s", 600.0, "lower"),),
                tables=(Table("Incidents", (Column("Alert"), Column("Cause")),
                              ((HOSTILE, "disk full & " + HOSTILE),)), WIDE)),
        Section("business", "Transactions", figures=(Figure("orders", "Orders", None, "short"),),
                notes=("No data for transactions: no business_orders_total series over this period.",)),
        Section("jobs", "Backups and jobs", tables=(Table("Failed jobs", (Column("Job"),), ()),)),
    ))  # fmt: skip


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


@pytest.fixture(scope="module")
def written(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert write_report(report, out) == [out / "report.html", out / "report.pdf", out / "report.json"]
    return out


@pytest.fixture(scope="module")
def screenshot(written: Path) -> NDArray[np.float32]:
    chromium = require_binary("chromium", "chromium-browser")
    picture = written / "screen.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={picture}",
         "--window-size=1200,3000", (written / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return pixels(picture.read_bytes())


@pytest.fixture(scope="module")
def pages(written: Path) -> list[NDArray[np.float32]]:
    pdftoppm = require_binary("pdftoppm")
    subprocess.run([pdftoppm, "-r", "50", "-png", str(written / "report.pdf"), str(written / "page")], check=True)
    return [pixels(path.read_bytes()) for path in sorted(written.glob("page-*.png"))]


def pdf_text(pdf: Path, page: int | None = None) -> str:
    pdftotext = require_binary("pdftotext")
    which = [] if page is None else ["-f", str(page), "-l", str(page)]
    return subprocess.run([pdftotext, *which, str(pdf), "-"], capture_output=True, text=True, check=True).stdout


# ---------------------------------------------------------------------------------------------- the HTML


def test_every_chart_is_embedded_as_a_picture_that_is_not_blank(report: Report, written: Path) -> None:
    page = (written / "report.html").read_text()
    sources = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(sources) == sum(len(section.charts) for section in report.sections) == 3
    for number, source in enumerate(sources):
        assert_a_chart(pixels(base64.b64decode(source)), f"chart {number}")


def test_the_document_fetches_nothing(written: Path) -> None:
    page = (written / "report.html").read_text()
    sources = re.findall(r'\s(?:src|action|poster|data)="([^"]*)"', page)
    assert sources
    assert all(value.startswith("data:image/png;base64,") for value in sources), sources
    links = re.findall(r'\shref="([^"]*)"', page)
    assert links == ["#uptime", "#performance", "#incidents", "#business", "#jobs"]  # the contents
    assert "url(" not in page
    assert "@import" not in page
    assert "default-src 'none'" in page  # and the browser is told so


def test_alert_text_is_shown_as_text_never_as_markup(written: Path) -> None:
    page = (written / "report.html").read_text()
    assert "<script" not in page
    assert 'evil.invalid/p.png">' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert HOSTILE in pdf_text(written / "report.pdf")  # the PDF shows it literally


def test_a_section_without_data_says_so(written: Path) -> None:
    page = (written / "report.html").read_text()
    business = page.split('id="business"', 1)[1].split("</section>", 1)[0]
    assert '<p class="note no-data">No data for transactions' in business
    jobs = page.split('id="jobs"', 1)[1].split("</section>", 1)[0]
    assert "No data for backups and jobs in this period." in jobs
    assert "None in this period." in jobs
    text = pdf_text(written / "report.pdf")
    assert "No data for transactions" in text
    assert "No data for backups and jobs" in text


def test_figures_are_formatted_by_unit_with_their_change(written: Path) -> None:
    page = (written / "report.html").read_text()
    assert "99.87%" in page
    assert "412 ms" in page
    assert "21 min" in page
    assert "99.995%" in page  # not rounded up to 100%: an SLA is read to its last digit
    summary = page.split('<section class="summary">', 1)[1].split("</section>", 1)[0]
    assert '<span class="change bad"' in summary
    assert "▲\N{NO-BREAK SPACE}+17.71%" in summary
    assert '<span class="change good"' in summary
    assert "▼\N{NO-BREAK SPACE}-38.5%" in summary
    assert '<span class="missed">missed</span>' in summary
    assert '<span class="met">met</span>' in summary


def test_the_screenshot_shows_the_title_and_every_chart(report: Report, screenshot: NDArray[np.float32]) -> None:
    assert screenshot.shape[1] == 1200
    assert non_white(screenshot[:200]) > 0.01, "no title block at the top"
    # The charts are shown at about their own size: the screen has (nearly) all of their lines' pixels.
    expected = sum(near(pixels(chart.png), LINE_GREEN) for section in report.sections for chart in section.charts)
    assert near(screenshot, LINE_GREEN) > 0.8 * expected > 1000, "a chart is missing from the page"


# ----------------------------------------------------------------------------------------------- the PDF


def test_the_pdf_puts_each_section_on_its_own_pages_with_every_chart_whole(
    report: Report, written: Path, pages: list[NDArray[np.float32]]
) -> None:
    assert len(pages) == 1 + len(report.sections)  # the summary, then one page per (short) section
    pdfimages = require_binary("pdfimages")
    listing = subprocess.run([pdfimages, "-list", str(written / "report.pdf")], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    images = [line.split() for line in listing.splitlines()[2:] if line.split()[2] == "image"]
    # A chart cut across two pages would be placed twice: each is placed once, whole.
    assert [(int(row[0]), int(row[3]), int(row[4])) for row in images] == [
        (2, 1000, 300),
        (3, 1000, 300),
        (3, 1000, 300),
    ]
    for number, picture in enumerate(pages, start=1):
        charts = sum(1 for row in images if int(row[0]) == number)
        green = near(picture, LINE_GREEN)  # at 50 dpi a chart's lines are some 60 pixels or more
        assert (green > 60 * charts) if charts else green < 20, f"page {number}: {green} green pixels, {charts} charts"
        assert non_white(picture) > 0.005, f"page {number} is blank"
    first = " ".join(pdf_text(written / "report.pdf", 1).split())
    assert "Summary" in first
    assert re.search(r"Transactions \(no data\)[ .]+5 ", first), first  # the contents, with page numbers
    assert "page 1 of 6" in pdf_text(written / "report.pdf", 1)


def test_every_word_of_the_pdf_is_within_the_page(written: Path) -> None:
    pdftotext = require_binary("pdftotext")
    boxes = subprocess.run([pdftotext, "-bbox", str(written / "report.pdf"), "-"], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    width = float(re.search(r'<page width="([0-9.]+)"', boxes).group(1))  # type: ignore[union-attr]
    right = max(float(x) for x in re.findall(r'xMax="([0-9.]+)"', boxes))
    assert right <= width - 12 / 25.4 * 72 + 1, (
        f"a word ends at {right:.0f} pt, past the right margin (the page is {width:.0f} pt wide)"
    )
    assert "Time" in boxes  # the wide table's last heading is there, wrapped


def test_the_json_has_the_same_figures(written: Path) -> None:
    data = json.loads((written / "report.json").read_text())
    uptime = data["sections"][0]["figures"]["uptime_shop"]
    assert uptime["value"] == 0.9987
    assert uptime["met"] is False
    assert data["label"] == "Sunday 6 December 2026"
    assert data["sections"][3]["has_data"] is False


# ----------------------------------------------------------------------------------------------- progress


def test_progress_redraws_one_line_on_a_terminal_and_prints_lines_otherwise() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        progress = Progress(terminal)
        progress("uptime 1/4")
        progress("incidents\x1b[2J 4/4")  # a title with a control sequence prints it as text
        progress.finish()
    drawn = b""
    while True:  # all that was written, up to the end the closed terminal gives
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    text = drawn.decode()
    assert text.count("\r\x1b[K") == 3
    assert "\n" not in text
    assert "[#####...............] 1 steps" in text
    assert "[####################] 2 steps" in text
    assert "\x1b[2J" not in text
    plain = io.StringIO()
    Progress(plain)("uptime")
    assert plain.getvalue() == "pulse-exporter report: uptime\n"


# --------------------------------------------------------------------------- the command, the incident report

NOW = int(time.time()) // 60 * 60
STARTED = NOW - 3600
RESOLVED = NOW - 1800
EXPR = 'test_queue_depth{queue="orders"} > 100'


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Two hours of a queue's depth: over 100 during the incident's half hour, low around it."""
    directory = tmp_path_factory.mktemp("prometheus")
    lines = ["# TYPE test_queue_depth gauge"]
    for at in range(NOW - 7200, NOW + 1, 60):
        depth = 150 + 20 * math.sin(at / 300) if STARTED <= at < RESOLVED else 40 + 10 * math.sin(at / 300)
        lines.append(f'test_queue_depth{{queue="orders"}} {depth:.1f} {at}')
    (directory / "history.om").write_text("\n".join([*lines, "# EOF", ""]))
    create_blocks(directory / "history.om", directory / "data")
    config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
    with running_prometheus(directory, config, data_dir=directory / "data", retention="30d") as server:
        yield server


@pytest.fixture(scope="module")
def journal_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = sqlite_url(tmp_path_factory.mktemp("journal") / "incidents.db")
    link = f"http://prometheus.invalid:9090/graph?g0.expr={quote(EXPR)}&g0.tab=1"
    labels = {"alertname": "OrdersQueueBacklog", "service": "shop", "severity": "critical"}
    annotations = {"summary": "Orders queue backlog " + HOSTILE}
    with Journal(url) as journal:
        firing = AlertNotice("f00d", "firing", labels, annotations, STARTED, None, link)
        [incident] = journal.record([firing], received_at=STARTED + 75)
        journal.acknowledge(incident, "alice", STARTED + 600)
        journal.record([AlertNotice("f00d", "resolved", labels, annotations, STARTED, RESOLVED, link)], RESOLVED + 20)
        journal.annotate(incident, cause="the payment provider was slow", resolution="switched to the backup provider")
    return url


def pulse_yml(tmp_path: Path, prometheus_url: str, journal_url: str | None) -> Path:
    path = tmp_path / "pulse.yml"
    incidents = f"incidents: {{enabled: true, database: '{journal_url}'}}\n" if journal_url else ""
    path.write_text(
        f"prometheus: {{url: '{prometheus_url}'}}\n{incidents}"
        "services: {shop: {title: Online shop, sla: 99.9}}\nreports: {timezone: Europe/Paris}\n"
    )
    return path


def test_an_incident_report_from_the_journal_and_prometheus(
    prometheus: PrometheusServer, journal_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = pulse_yml(tmp_path, prometheus.url, journal_url)
    out = tmp_path / "out"
    assert cli_main(["report", "incident", "1", "--config.file", str(config), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "querying the alert's expression" in captured.err
    assert "wrote report.html" in captured.out
    data = json.loads((out / "report.json").read_text())
    assert data["title"] == "Incident 1"
    assert data["label"] == "OrdersQueueBacklog on shop"
    happened, sla, expression = data["sections"]
    figures = {key: figure["value"] for key, figure in happened["figures"].items()}
    assert figures == {"time_to_detect": 75, "time_to_acknowledge": 600, "time_to_resolve": 1800, "duration": 1800}
    assert sla["figures"]["downtime"]["value"] == 1800
    assert sla["figures"]["budget_used"]["value"] == pytest.approx(1800 / (0.001 * 30 * 86400))
    assert expression["charts"] == [
        {
            "title": "OrdersQueueBacklog: its expression",
            "board": "",
            "panel": "the alert's expression",
            "has_data": True,
        }
    ]
    page = (out / "report.html").read_text()
    assert "the payment provider was slow" in page
    assert "alice" in page
    assert "<script" not in page
    [source] = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    chart = pixels(base64.b64decode(source))
    assert_a_chart(chart, "the alert's expression")
    assert near(chart, LINE_GREEN) > 100, "the expression's line is missing"
    assert near(chart, FAILED, 0.1) > 100, "the incident's start and end are not marked"


def test_without_pango_the_pdf_is_one_clear_line_and_the_rest_is_written(
    prometheus: PrometheusServer, journal_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "lib"  # found first by the dynamic loader: pango that cannot be loaded
    broken.mkdir()
    (broken / "libpango-1.0.so.0").write_text("not a library")
    config = pulse_yml(tmp_path, prometheus.url, journal_url)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "report", "incident", "1", "--config.file", str(config),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "LD_LIBRARY_PATH": str(broken)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pulse-exporter report: cannot write the PDF: WeasyPrint cannot load"), last
    assert "apt-get install libpangoft2-1.0-0" in last
    assert "(report.html and report.json were written)" in last
    assert result.stdout == ""  # nor WeasyPrint's own banner
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["report.html", "report.json"]


def test_incident_expressions_are_read_from_prometheus_links() -> None:
    assert alert_expression(f"http://p:9090/graph?g0.expr={quote(EXPR)}&g0.tab=1") == EXPR
    assert alert_expression("http://p:9090/graph?g0.tab=1") is None
    assert alert_expression("") is None


def test_an_unknown_incident_is_one_clear_line(
    prometheus: PrometheusServer, journal_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = pulse_yml(tmp_path, prometheus.url, journal_url)
    assert cli_main(["report", "incident", "99", "--config.file", str(config), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pulse-exporter report: no incident 99 in sqlite:///"), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("what", ["prometheus", "journal"])
def test_what_cannot_be_reached_is_one_clear_line_and_no_file(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    if what == "prometheus":
        config = pulse_yml(tmp_path, f"http://127.0.0.1:{free_port()}", None)
        expected = "pulse-exporter report: cannot reach Prometheus at http://127.0.0.1:"
    else:
        config = pulse_yml(tmp_path, f"http://127.0.0.1:{free_port()}", f"sqlite:///{blocked}/journal.db")
        expected = "pulse-exporter report: "
    out = tmp_path / "out"
    assert cli_main(["report", "--period", "day", "--config.file", str(config), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(expected), err
    assert "Traceback" not in err
    assert not out.exists()
    if what == "journal":
        assert "cannot open the incident journal" in err.splitlines()[-1], err


def test_the_command_runs_as_a_process_and_fails_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "report", "--period", "week", "--prometheus",
         f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("pulse-exporter report: cannot reach Prometheus")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- schedule


def schedule(tmp_path: Path, config: Path, keep: int = 2) -> ReportSchedule:
    reports = ReportsConfig(
        directory=str(tmp_path / "reports"), keep=keep, timezone="Europe/Paris",
        schedule=[ScheduledReport(period="day", cron="* * * * *"), ScheduledReport(period="month", cron="0 7 1 1 *")],
    )  # fmt: skip
    return ReportSchedule(ScheduleSettings(reports, str(config)), since=time.time() - 120)


def test_a_scheduled_report_that_fails_is_counted_and_leaves_nothing(tmp_path: Path) -> None:
    config = pulse_yml(tmp_path, f"http://127.0.0.1:{free_port()}", None)
    scheduled = schedule(tmp_path, config)
    now = time.time()
    assert [entry.period for _, entry, _ in scheduled.due(now)] == ["day"]  # the cron due now
    assert asyncio.run(scheduled.run_due(now)) == [False]
    assert scheduled.due(now) == []  # dealt with: not run twice for the same minute
    families = {family.name: family for family in asyncio.run(scheduled.collect())}
    assert [(s.labels, s.value) for s in families["pulse_report_failures"].samples if s.name.endswith("_total")] == [
        ({"period": "day"}, 1.0), ({"period": "month"}, 0.0)
    ]  # fmt: skip
    assert families["pulse_report_last_success_timestamp_seconds"].samples == []
    assert [path.name for path in (tmp_path / "reports" / "day").iterdir()] == []
    [table] = scheduled.status_tables()  # the landing page says what failed and why
    day, month = table.rows
    assert day[3].style == "error"
    assert "cannot reach Prometheus" in day[3].text
    assert (month[3].text, month[3].style) == ("not run yet", "none")


def test_a_scheduled_report_is_written_into_its_period_and_label(prometheus: PrometheusServer, tmp_path: Path) -> None:
    config = pulse_yml(tmp_path, prometheus.url, None)
    scheduled = schedule(tmp_path, config, keep=2)
    day = tmp_path / "reports" / "day"
    day.mkdir(parents=True)
    for old in ("2020-01-01", "2020-01-02", ".running-killed"):
        (day / old).mkdir()
    assert asyncio.run(scheduled.run_due(time.time())) == [True]
    label = directory_label("day", time.time() - 86400, "Europe/Paris")
    assert sorted(path.name for path in day.iterdir()) == ["2020-01-02", label]
    assert sorted(path.name for path in (day / label).iterdir()) == ["report.html", "report.json", "report.pdf"]
    families = {family.name: family for family in asyncio.run(scheduled.collect())}
    [success] = families["pulse_report_last_success_timestamp_seconds"].samples
    assert success.labels == {"period": "day"}
    assert time.time() - success.value < 120
    [duration] = families["pulse_report_last_duration_seconds"].samples
    assert 0 < duration.value < 120


def catch_up_schedule(tmp_path: Path, *crons: tuple[str, str]) -> ReportSchedule:
    entries = [ScheduledReport(period=period, cron=cron) for period, cron in crons]
    reports = ReportsConfig(directory=str(tmp_path / "reports"), timezone="Europe/Paris", schedule=entries)
    return ReportSchedule(ScheduleSettings(reports, None))


def reports_written(tmp_path: Path, period: str, *labels: str) -> None:
    for label in labels:
        (tmp_path / "reports" / period / label).mkdir(parents=True)


# Monday 7 December 2026, 09:00 in Paris: today's 07:00 report (of Sunday 6th) was due two hours ago.
MONDAY_9AM = 1796630400.0
DAILY = ("day", "0 7 * * *")


def test_a_report_missed_while_pulse_was_down_is_made_up_at_start(tmp_path: Path) -> None:
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(MONDAY_9AM)) == "2026-12-07 08:00"  # 09:00 in Paris
    reports_written(tmp_path, "day", "2026-12-04", "2026-12-05")
    reports_written(tmp_path, "month", "2026-10")  # November's, due on the 1st at 07:00, is missing too
    schedule = catch_up_schedule(tmp_path, DAILY, ("day", "0 19 * * *"), ("month", "0 7 1 * *"))
    assert schedule.missed(MONDAY_9AM) == [0, 2]  # the second daily cron would write the same report


def test_nothing_is_made_up_when_written_for_a_new_schedule_or_no_longer_the_last_period(tmp_path: Path) -> None:
    schedule = catch_up_schedule(tmp_path, DAILY)
    assert schedule.missed(MONDAY_9AM) == []  # no directory: a new schedule waits for its first time
    (tmp_path / "reports" / "day" / ".running-killed").mkdir(parents=True)
    assert schedule.missed(MONDAY_9AM) == []  # only the leftover of a killed run: still nothing written
    reports_written(tmp_path, "day", "2026-12-05")
    # At 06:00 the latest time (Sunday 07:00) wrote Saturday's report; a run now would write Sunday's,
    # which is 07:00's to write: Saturday's is an older miss, left to `report --end`.
    assert schedule.missed(MONDAY_9AM - 3 * 3600) == []
    assert schedule.missed(MONDAY_9AM) == [0]
    reports_written(tmp_path, "day", "2026-12-06")
    assert schedule.missed(MONDAY_9AM) == []


def test_the_catch_up_runs_when_the_schedule_starts_and_not_on_a_reload(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    # Daily at midnight: the latest time always wrote yesterday's report, which a run now writes too.
    reports = ReportsConfig(directory=str(tmp_path / "reports"), timezone="Europe/Paris",
                            schedule=[ScheduledReport(period="day", cron="0 0 * * *")])  # fmt: skip
    settings = ScheduleSettings(reports, str(pulse_yml(tmp_path, prometheus.url, None)))
    reports_written(tmp_path, "day", "2020-01-01")
    yesterday = tmp_path / "reports" / "day" / directory_label("day", time.time() - 86400, "Europe/Paris")

    with asyncio.Runner() as runner:
        started = ReportSchedule(settings)
        assert started.missed(time.time()) == [0]
        runner.run(started.start())
        what = lambda: f"the catch-up report; outcomes: {started.last_outcome}"  # noqa: E731
        sleep = lambda pause: runner.run(asyncio.sleep(pause))  # noqa: E731
        wait_until(lambda: started.last_outcome.get("day"), 120, what, interval=0.2, sleep=sleep)
        assert started.last_outcome["day"][1] == ""
        assert (yesterday / "report.pdf").is_file()

        shutil.rmtree(yesterday)  # missing again, but a reload is no start: the schedule was running
        reloaded = ReportSchedule(settings)
        runner.run(started.close())
        runner.run(reloaded.start(started))
        assert reloaded.due(time.time()) == []
        runner.run(reloaded.close())


def test_labels_sort_by_time_and_prune_keeps_the_newest(tmp_path: Path) -> None:
    paris = "Europe/Paris"
    assert directory_label("day", 1764975600, paris) == "2025-12-06"
    assert directory_label("week", 1764975600, paris) == "2025-W49"
    assert directory_label("month", 1764975600, paris) == "2025-12"
    for name in ("2025-W47", "2025-W48", "2025-W49", ".running-abc"):
        (tmp_path / name).mkdir()
    assert sorted(path.name for path in prune(tmp_path, 2)) == [".running-abc", "2025-W47"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2025-W48", "2025-W49"]


def test_the_exporter_runs_the_schedule_and_exposes_its_metrics(
    start_exporter: StartExporter, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    config = (
        f"prometheus: {{url: '{prometheus.url}'}}\n"
        f"reports: {{directory: '{tmp_path / 'reports'}', schedule: [{{period: month, cron: '0 7 1 * *'}}]}}\n"
    )
    exporter = start_exporter(config)
    samples = exporter.wait_for_samples(lambda s: 'pulse_report_failures_total{period="month"}' in s, "the schedule")
    assert samples['pulse_report_failures_total{period="month"}'] == 0
    assert 'pulse_exporter_collector_success{collector="reports"}' in samples
    page = exporter.get("/").text
    assert "Scheduled reports" in page
    assert "0 7 1 * *" in page


def test_an_exporter_with_a_schedule_never_loads_the_drawing_or_the_pdf(tmp_path: Path) -> None:
    config = tmp_path / "pulse.yml"
    config.write_text(
        "prometheus: {url: 'http://127.0.0.1:9090'}\n"
        f"reports: {{directory: '{tmp_path}', schedule: [{{period: day, cron: '0 7 * * *'}}]}}\n"
    )
    script = (
        "import asyncio, sys\nfrom pathlib import Path\nfrom exporter.registry import build_collectors, load_config\n"
        f"path = Path({str(config)!r})\n"
        "schedule = next(c for c in build_collectors(load_config(path), path) if c.name == 'reports')\n"
        "asyncio.run(schedule.collect())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'weasyprint', 'sqlalchemy'}))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]", loaded.stderr


def test_the_inputs_contract_is_what_the_command_passes(prometheus: PrometheusServer) -> None:
    with PrometheusClient(prometheus.url) as client:
        inputs = ReportInputs(client, None, {"shop": ServiceConfig(title="Shop", sla=99.9)}, "UTC")
        with pytest.raises(Exception, match="enable `incidents:`"):
            build_incident_report(1, inputs)
    assert render_html(sample_report()).startswith("<!DOCTYPE html>")
