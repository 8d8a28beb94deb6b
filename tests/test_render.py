"""Pictures of the boards (exporter/dashboards/render/), drawn from a real Prometheus.

A small history is written as OpenMetrics (three SLOs with the series prometheus/rules/slos.yml records,
and test series of every shape a panel meets: one series, thirty, bytes, latencies, a missing metric),
turned into blocks by real promtool and served by a real Prometheus. The SLO board and a test board of
every panel kind are drawn from it, and the PNGs are read back: their size, and in each panel's box the
colours a chart has (a line in its palette colour, a number in its threshold colour), or the grey of a
"No data" box, so a blank or flat picture fails. Units, legends and steps are checked as functions.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image
from numpy.typing import NDArray

from exporter.dashboards import generate
from exporter.dashboards.boards import slos
from exporter.dashboards.model import Board, Panel, Query, Row, Threshold
from exporter.dashboards.render.board import BoardPicture, main_rows, render_board
from exporter.dashboards.render.charts import (
    OTHER_LINES,
    OTHERS,
    PALETTE,
    THRESHOLD_COLOURS,
    Box,
    Canvas,
    Drawn,
    draw_panel,
    threshold_colour,
)
from exporter.dashboards.render.data import (
    PanelData,
    Points,
    PrometheusClient,
    QueryResult,
    Series,
    Window,
    legend_name,
    named,
    parse_duration,
    promql,
    step_for,
    window,
)
from exporter.dashboards.render.units import format_value
from tests.helpers import free_port
from tests.prometheus_server import PrometheusServer, create_blocks, running_prometheus

ROOT = Path(__file__).resolve().parent.parent
STEP = 60
HOURS = 3
SLOS = (  # service, slo, budget left (period), budget left (month), objective, error ratio
    ("checkout", "availability", 0.8, 0.7, 0.999, 0.0002),
    ("search", "latency", 0.1, 0.3, 0.99, 0.004),
    ("shop", "probes", -0.2, -0.1, 0.995, 0.012),
)
SERVICES = 30  # the many-series panel


# ------------------------------------------------------------------------------------------- the history


def openmetrics_history(end: int) -> str:
    """Three hours up to `end`, every minute: gauges only (what a recording rule's series looks like)."""
    times = range(end - HOURS * 3600, end + 1, STEP)
    families: dict[str, list[tuple[str, list[float]]]] = {}

    def add(name: str, labels: str, values: list[float]) -> None:
        families.setdefault(name, []).append((labels, values))

    for index, (service, slo, period, month, objective, errors) in enumerate(SLOS):
        labels = f'sloth_id="{service}-{slo}",sloth_service="{service}",sloth_slo="{slo}"'
        add("slo:period_error_budget_remaining:ratio", labels, [period] * len(times))
        add("slo:month_error_budget_remaining:ratio", labels, [month] * len(times))
        add("slo:objective:ratio", labels, [objective] * len(times))
        add("slo:error_budget:ratio", labels, [round(1 - objective, 6)] * len(times))
        for window_index, window_name in enumerate(("5m", "1h", "6h", "1d")):
            wave = [errors * (1 + 0.6 * math.sin(i / (6 + window_index * 5) + index)) for i in range(len(times))]
            add(f"slo:sli_error:ratio_rate{window_name}", labels, wave)
    for number in range(SERVICES):
        add(
            "test_requests:rate",
            f'service="s{number:02d}"',
            [(number + 1) * (10 + 4 * math.sin(i / 9 + number)) for i in range(len(times))],
        )
    for quantile in ("0.5", "0.9", "0.99"):
        scale = {"0.5": 0.04, "0.9": 0.2, "0.99": 0.9}[quantile]
        add(
            "test_latency_seconds",
            f'quantile="{quantile}"',
            [scale * (1 + 0.3 * math.cos(i / 7)) for i in range(len(times))],
        )
    for mount, used in (("/", 0.42), ("/var", 0.93), ("/data", 0.71), ("/boot", 0.12)):
        add("test_filesystem_used:ratio", f'mountpoint="{mount}"', [used] * len(times))
        add("test_filesystem_size_bytes", f'mountpoint="{mount}"', [used * 3 * 1024**3] * len(times))
    add("test_queue_bytes", "", [1024 * 1024 * (5 + 2 * math.sin(i / 11)) for i in range(len(times))])
    lines = []
    for name, series in families.items():
        lines.append(f"# TYPE {name} gauge")
        for labels, values in series:
            selector = f"{name}{{{labels}}}" if labels else name
            lines.extend(f"{selector} {value!r} {at}" for at, value in zip(times, values, strict=True))
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def history_end() -> int:
    now = int(time.time()) - 60
    return now - now % STEP


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, history_end: int) -> Iterator[PrometheusServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    history = directory / "history.om"
    history.write_text(openmetrics_history(history_end))
    create_blocks(history, directory / "data")
    config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
    with running_prometheus(directory, config, data_dir=directory / "data", retention="30d") as server:
        yield server


@pytest.fixture
def client(prometheus: PrometheusServer) -> Iterator[PrometheusClient]:
    with PrometheusClient(prometheus.url) as connected:
        yield connected


# ------------------------------------------------------------------------------------- reading a picture


def pixels(png: bytes) -> NDArray[np.float32]:
    """The picture as rows of RGB values between 0 and 1 (alpha dropped: the pictures are opaque)."""
    array: NDArray[np.float32] = image.imread(io.BytesIO(png), format="png")[:, :, :3]
    return array


def crop(picture: NDArray[np.float32], box: Box) -> NDArray[np.float32]:
    return picture[int(box.top) : int(box.top + box.height), int(box.left) : int(box.left + box.width)]


def rgb(hex_colour: str) -> NDArray[np.float32]:
    return np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)], dtype=np.float32)


def count_colour(area: NDArray[np.float32], hex_colour: str, tolerance: float = 0.06) -> int:
    """Pixels within `tolerance` of the colour on each channel (antialiasing blends the edges)."""
    return int(np.all(np.abs(area - rgb(hex_colour)) <= tolerance, axis=-1).sum())


def distinct_colours(area: NDArray[np.float32]) -> int:
    return len(np.unique((area * 255).astype(np.uint8).reshape(-1, 3), axis=0))


def drawn(picture: BoardPicture, title: str) -> Drawn:
    return next(item for item in picture.panels if item.title == title)


def assert_a_chart(area: NDArray[np.float32], what: str) -> None:
    """Not blank, not flat: many colours (lines, antialiasing, labels) and real contrast."""
    assert distinct_colours(area) > 40, f"{what}: {distinct_colours(area)} colours, a blank or flat picture"
    assert float(area.std()) > 0.03, f"{what}: almost uniform (std {float(area.std()):.3f})"


# ----------------------------------------------------------------------------------------- the SLO board


def test_the_slo_board_is_drawn_from_its_own_queries(client: PrometheusClient, history_end: int) -> None:
    picture = render_board(client, slos.BOARD, history_end, HOURS * 3600)
    canvas = pixels(picture.png)

    assert canvas.shape[:2] == (picture.height, 1600)
    assert [item.title for item in picture.panels] == [panel.title for panel in slos.BOARD.panels()]
    assert picture.problems() == []
    names = tuple(f"{service} / {slo}" for service, slo, *_ in SLOS)
    budget = drawn(picture, "Budget left, rolling period")
    assert budget.shown == names
    # The board's own steps: red below 0 (the objective missed), yellow from 0, green from 0.25.
    budget_panel = slos.BOARD.panels()[0]
    expected = {0.8: "green", 0.1: "yellow", -0.2: "red"}
    for (*_, period, _month, _objective, _errors), name in zip(SLOS, names, strict=True):
        colour = threshold_colour(budget_panel.thresholds, period, budget_panel.base_color)
        assert colour == THRESHOLD_COLOURS[expected[period]], name
    stat_area = crop(canvas, budget.plot)
    for colour in ("yellow", "red", "green"):
        assert count_colour(stat_area, THRESHOLD_COLOURS[colour]) > 200, f"no big number in {colour}"

    # 3 SLOs x 4 windows: ten get a colour and a legend entry, the legend names the other two.
    burn = drawn(picture, "Burn rate over the alert windows")
    assert burn.series == 12
    assert len(burn.shown) == 10
    assert burn.hidden == 2
    assert all(name.startswith(names) and name.endswith(("5m", "1h", "6h", "1d")) for name in burn.shown)
    burn_area = crop(canvas, burn.plot)
    assert_a_chart(burn_area, "burn rate")
    for colour in PALETTE[:3]:
        assert count_colour(burn_area, colour) > 50, f"no line in {colour}"


# ---------------------------------------------------------------------------------- every kind of panel

MANY = Panel(
    "Requests by service",
    "Thirty series: ten named, twenty grey.",
    "reqps",
    (Query("test_requests:rate", "{{service}}"),),
)
STACKED = Panel(
    "Requests, stacked, with an unusually long title that cannot fit in half a board's width at all",
    "Stacked: the twenty below the top ten summed into others.",
    "reqps",
    (Query('test_requests:rate{service=~"$service"}', "{{service}}"),),
    stacked=True,
)
LATENCY = Panel("Latency", "Durations on the axis.", "s", (Query("test_latency_seconds", "p{{quantile}}"),), width=8)
QUEUE = Panel("Queue size", "One unnamed series: no legend.", "bytes", (Query("test_queue_bytes"),), width=8)
USED = Panel(
    "Disk used",
    "Bars coloured by thresholds.",
    "percentunit",
    (Query("test_filesystem_used:ratio", "{{mountpoint}}", instant=True),),
    kind="bargauge",
    width=8,
    thresholds=(Threshold(0.8, "orange"), Threshold(0.9, "red")),
)
FULLEST = Panel(
    "Fullest disk",
    "A single big number.",
    "percentunit",
    (Query("max(test_filesystem_used:ratio)", instant=True),),
    kind="stat",
    width=6,
    thresholds=(Threshold(0.9, "red"),),
)
SIZES = Panel(
    "Filesystems",
    "Two queries merged by their labels.",
    "bytes",
    (
        Query("test_filesystem_size_bytes", "Size", instant=True),
        Query("test_filesystem_size_bytes * 0 + 1024", "Reserved", instant=True),
    ),
    kind="table",
    width=10,
)
MISSING = Panel("Nothing here", "A metric nobody exports.", "short", (Query("test_not_exported_anywhere"),), width=4)
BROKEN = Panel(
    "Broken", "Not PromQL.", "short", (Query("rate(test_requests:rate[", instant=True),), kind="stat", width=4
)
TEST_BOARD = Board(
    "test",
    "Test / every kind of panel",
    "Panels of every kind and shape.",
    (
        Row("Series", (MANY, STACKED)),
        Row("Shapes", (LATENCY, QUEUE, USED)),
        Row("Numbers", (FULLEST, SIZES, MISSING, BROKEN)),
        Row("Not main", (QUEUE,)),
    ),
)


@pytest.fixture(scope="module")
def test_picture(prometheus: PrometheusServer, history_end: int) -> BoardPicture:
    with PrometheusClient(prometheus.url) as client:
        return render_board(client, TEST_BOARD, history_end, HOURS * 3600, limit=9)


def test_a_board_of_every_kind_is_a_grid_of_real_charts(test_picture: BoardPicture) -> None:
    canvas = pixels(test_picture.png)
    assert [item.title for item in test_picture.panels] == [
        panel.title for row in TEST_BOARD.rows[:3] for panel in row.panels
    ]
    assert test_picture.left_out == 1
    for item in test_picture.panels:
        if item.title not in (MISSING.title, BROKEN.title):
            assert item.status == "ok", item
            assert_a_chart(crop(canvas, item.box), item.title)
    # Panels do not overlap, and sit inside the picture.
    boxes = [item.box for item in test_picture.panels]
    for first in boxes:
        assert first.left >= 0
        assert first.left + first.width <= test_picture.width
        assert first.top + first.height <= test_picture.height
        for second in boxes:
            if first is not second:
                apart_across = first.left + first.width <= second.left or second.left + second.width <= first.left
                apart_down = first.top + first.height <= second.top or second.top + second.height <= first.top
                assert apart_across or apart_down, (first, second)


def test_many_series_name_ten_and_say_how_many_more(test_picture: BoardPicture) -> None:
    canvas = pixels(test_picture.png)
    many = drawn(test_picture, MANY.title)
    # Ranked by their peak: the busiest ten are s29 down to s20.
    assert many.shown == tuple(f"s{number:02d}" for number in range(29, 19, -1))
    assert (many.series, many.hidden) == (SERVICES, SERVICES - 10)
    assert count_colour(crop(canvas, many.plot), OTHER_LINES, tolerance=0.03) > 500, "the twenty grey lines"
    stacked = drawn(test_picture, STACKED.title)
    assert stacked.hidden == SERVICES - 10
    assert count_colour(crop(canvas, stacked.plot), OTHERS, tolerance=0.04) > 2000, "an 'others' band"


def test_bars_and_numbers_take_their_threshold_colours(test_picture: BoardPicture) -> None:
    canvas = pixels(test_picture.png)
    used = drawn(test_picture, USED.title)
    assert set(used.shown) == {"/", "/var", "/data", "/boot"}
    area = crop(canvas, used.plot)
    assert count_colour(area, THRESHOLD_COLOURS["red"]) > 500  # /var at 93%
    assert count_colour(area, THRESHOLD_COLOURS["green"]) > 500  # / and /boot
    fullest = drawn(test_picture, FULLEST.title)
    assert count_colour(crop(canvas, fullest.plot), THRESHOLD_COLOURS["red"]) > 1000  # 93%, big


def test_a_panel_without_data_is_an_explicit_box_and_a_failed_query_says_why(test_picture: BoardPicture) -> None:
    canvas = pixels(test_picture.png)
    missing = drawn(test_picture, MISSING.title)
    broken = drawn(test_picture, BROKEN.title)
    assert missing.status == "no data"
    assert broken.status.startswith("query failed: ")
    assert "parse error" in broken.status
    assert [line.split(": ", 1)[1] for line in test_picture.problems()] == [
        f"{MISSING.title!r}: no data",
        f"{BROKEN.title!r}: {broken.status}",
    ]
    no_data = crop(canvas, missing.plot)
    assert all(count_colour(no_data, colour) == 0 for colour in PALETTE), "a line in a panel without data"
    assert count_colour(no_data, "#8C959F", tolerance=0.02) > 100, "the dashed frame and its 'No data'"
    assert count_colour(crop(canvas, broken.plot), THRESHOLD_COLOURS["red"], tolerance=0.02) > 100


def test_a_table_merges_its_queries_by_labels(test_picture: BoardPicture) -> None:
    sizes = drawn(test_picture, SIZES.title)
    assert sizes.shown == ("/ 1.26 GiB 1 KiB", "/boot 368.6 MiB 1 KiB", "/data 2.13 GiB 1 KiB", "/var 2.79 GiB 1 KiB")


# ------------------------------------------------------------------------------------------------ the CLI


def test_the_command_writes_a_picture_per_board(
    prometheus: PrometheusServer, history_end: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "render",
        "--prometheus",
        prometheus.url,
        "--out",
        str(tmp_path),
        "--board",
        "slos",
        "--range",
        "3h",
        "--end",
        str(history_end),
    ]
    assert generate.main(args) == 0
    out, err = capsys.readouterr()
    assert f"wrote {tmp_path / 'slos.png'} (4 panels, 1600x" in out
    assert err == ""
    picture = pixels((tmp_path / "slos.png").read_bytes())
    assert picture.shape[1] == 1600
    assert_a_chart(picture, "slos.png")


def test_the_command_reports_panels_without_data(
    prometheus: PrometheusServer, history_end: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "render",
        "--prometheus",
        prometheus.url,
        "--out",
        str(tmp_path),
        "--board",
        "slos",
        "--end",
        str(history_end),
        "--var",
        "service=nobody",
    ]
    assert generate.main(args) == 0
    err = capsys.readouterr().err
    assert err.count(": no data") == 4, err
    assert "slos: 'Objective': no data" in err
    assert (tmp_path / "slos.png").stat().st_size > 10_000
    assert generate.main([*args, "--strict"]) == 1


@pytest.mark.parametrize("where", ["nothing listens", "not the API"])
def test_a_prometheus_that_cannot_be_used_is_one_clear_line(
    where: str, prometheus: PrometheusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}" if where == "nothing listens" else f"{prometheus.url}/graph"
    assert generate.main(["render", "--prometheus", url, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    expected = "cannot reach Prometheus at" if where == "nothing listens" else "not Prometheus' API"
    assert err.startswith("pulse-exporter dashboards render: "), err
    assert expected in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.glob("*.png")) == []


def test_generating_the_dashboards_never_loads_matplotlib(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom exporter.dashboards.generate import main\n"
        f"main(['generate', '--out', {str(tmp_path)!r}])\n"
        "print('matplotlib' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


# ------------------------------------------------------------------------------------ functions, no server


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.995, "percentunit", "99.5%"),
        (0.9995, "percentunit", "99.95%"),
        (1, "percentunit", "100%"),
        (0.30000000000000004, "percentunit", "30%"),
        (-0.2, "percentunit", "-20%"),
        (42.5, "percent", "42.5%"),
        (0.25, "s", "250 ms"),
        (0.0000123, "s", "12.3 µs"),
        (1.5, "s", "1.5 s"),
        (90, "s", "1.5 min"),
        (7200, "s", "2 h"),
        (172800, "s", "2 d"),
        (0, "s", "0 s"),
        (250, "ms", "250 ms"),
        (1500, "ms", "1.5 s"),
        (512, "bytes", "512 B"),
        (1536, "bytes", "1.5 KiB"),
        (3 * 1024**2, "bytes", "3 MiB"),
        (5.25 * 1024**3, "bytes", "5.25 GiB"),
        (1500, "decbytes", "1.5 kB"),
        (2048, "binBps", "2 KiB/s"),
        (950, "short", "950"),
        (1234, "short", "1.234k"),
        (2_500_000, "short", "2.5M"),
        (0.123456, "short", "0.123"),
        (12.5, "reqps", "12.5 req/s"),
        (1200, "ops", "1.2k ops/s"),
        (1234.5, "currencyEUR", "€1.23k"),
        (12.5, "currencyEUR", "€12.50"),
        (-3, "currencyUSD", "-$3.00"),
        (12.5, "currencySEK", "12.50 SEK"),
        (7, "none", "7"),
        (3, "widgets", "3 widgets"),
        (math.nan, "s", "NaN"),
    ],
)
def test_units_are_formatted_as_grafana_shows_them(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_a_timestamp_unit_is_relative_to_now() -> None:
    now = time.time()
    assert format_value(now - 3 * 3600 - 5, "dateTimeFromNow") == "3 h ago"
    assert format_value(now + 12 * 86400 + 30, "dateTimeFromNow") == "in 12 d"


def test_legend_templates_are_filled_as_grafana_fills_them() -> None:
    labels = {"__name__": "up", "job": "pulse", "instance": "a:1"}
    assert legend_name("{{job}} on {{ instance }}", labels, "T") == "pulse on a:1"
    assert legend_name("{{job}} {{missing}}", labels, "T") == "pulse"
    assert legend_name("", labels, "T") == 'up{instance="a:1", job="pulse"}'
    assert legend_name("__auto", {"job": "pulse"}, "T") == '{job="pulse"}'
    assert legend_name("", {}, "The panel") == "The panel"
    assert legend_name("{{missing}}", {}, "The panel") == "The panel"


def test_steps_fit_the_width_and_windows_end_on_a_step() -> None:
    assert step_for(6 * 3600, 380) == 60
    assert step_for(3600, 1000) == 15
    assert step_for(7 * 86400, 380) == 1800
    assert step_for(400 * 86400, 100) == 4 * 86400
    span = window(1_000_000_123.4, 6 * 3600, 380)
    assert (span.step, span.end % 60, span.seconds) == (60, 0, 6 * 3600)
    assert (span.times()[0], span.times()[-1]) == (span.start, span.end)
    assert (parse_duration("6h"), parse_duration("1d12h"), parse_duration("90m")) == (21600, 129600, 5400)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("6 hours")


def test_grafanas_variables_become_plain_promql() -> None:
    query = Query('sum(rate(x_total{job=~"$job"}[$__rate_interval])) / $__range_value + increase(y[$__range])')
    text = promql(query, Window(0, 3600, 60), {"job": "pulse"})
    assert text == 'sum(rate(x_total{job=~"pulse"}[75s])) / .+ + increase(y[3600s])'
    assert promql(Query("rate(x[$__rate_interval])"), Window(0, 3600, 15)) == "rate(x[60s])"


def test_thresholds_follow_grafanas_rule() -> None:
    steps = (Threshold(0.9, "red"), Threshold(0.8, "orange"))
    assert threshold_colour(steps, 0.5) == THRESHOLD_COLOURS["green"]
    assert threshold_colour(steps, 0.8) == THRESHOLD_COLOURS["orange"]
    assert threshold_colour(steps, 0.95) == THRESHOLD_COLOURS["red"]
    assert threshold_colour((Threshold(1, "#123456"),), 2) == "#123456"
    assert threshold_colour((Threshold(0, "yellow"),), -0.5, base="red") == THRESHOLD_COLOURS["red"]


def test_main_panels_are_the_first_whole_rows() -> None:
    def row(title: str, count: int, collapsed: bool = False) -> Row:
        return Row(title, tuple(MISSING for _ in range(count)), collapsed)

    board = Board("b", "B", "", (row("a", 3), row("hidden", 2, collapsed=True), row("b", 4), row("c", 2)))
    assert [r.title for r in main_rows(board, 8)] == ["a", "b"]
    assert [r.title for r in main_rows(board, 9)] == ["a", "b", "c"]
    assert [(r.title, len(r.panels)) for r in main_rows(board, 2)] == [("a", 2)]


def test_a_series_value_is_its_last_number() -> None:
    series = Series("x", {}, (1, 2, 3), (1.0, 2.0, math.nan))
    assert (series.last, series.peak) == (2.0, 2.0)
    query = MISSING.queries[0]
    assert PanelData(MISSING, Window(0, 120, 60), (QueryResult(query, "x", (series,)),)).has_data
    gap = Series("x", {}, (1,), (math.nan,))
    assert not PanelData(MISSING, Window(0, 120, 60), (QueryResult(query, "x", (gap,)),)).has_data


def test_auto_legends_leave_out_the_labels_every_series_shares() -> None:
    found: list[Points] = [
        ({"__name__": "up", "job": "pulse", "instance": f"host-{n}:9100"}, (0,), (1.0,)) for n in range(3)
    ]
    assert [s.name for s in named(found, "", "T")] == [f'up{{instance="host-{n}:9100"}}' for n in range(3)]
    assert [s.name for s in named(found[:1], "", "T")] == ['up{instance="host-0:9100", job="pulse"}']
    assert [s.name for s in named(found, "{{job}}", "T")] == ["pulse"] * 3
    assert named(found, "", "T")[0].labels == found[0][0]  # the labels themselves are kept


def test_hundreds_of_series_draw_ten_and_name_the_rest_by_count() -> None:
    """A panel drawn alone, from data made here (what a report does): 300 series, 10 named."""
    span = Window(0, 3600, 60)
    times = tuple(span.times())
    series = tuple(
        Series(f"series {n:03d}", {"n": str(n)}, times, tuple(n + math.sin(t / 600) for t in times)) for n in range(300)
    )
    panel = Panel("Three hundred", "Many.", "short", (Query("x", "series {{n}}"),))
    canvas = Canvas(800, 400)
    result = draw_panel(
        canvas, PanelData(panel, span, (QueryResult(panel.queries[0], "x", series),)), Box(0, 0, 800, 400)
    )
    assert result.shown == tuple(f"series {n:03d}" for n in range(299, 289, -1))
    assert (result.series, result.hidden, result.status) == (300, 290, "ok")
    area = crop(pixels(canvas.png()), result.plot)
    assert_a_chart(area, "three hundred series")
    assert count_colour(area, OTHER_LINES, tolerance=0.03) > 2000


def test_stats_show_the_requested_instant_while_charts_end_on_a_whole_step() -> None:
    """A 24-hour picture steps every few minutes; its stats must still read the latest values (a series
    recorded since just now is there), as Grafana's instant queries do."""
    span = window(1_000_000_123.4, 24 * 3600, 400)
    assert span.end % span.step == 0
    assert span.end <= 1_000_000_123
    assert span.instant == 1_000_000_123


def test_a_stat_with_more_values_than_its_box_holds_shows_one_and_counts_the_rest() -> None:
    """Seen on the demo's system board: a small stat box with several values drew nothing and failed."""
    span = Window(0, 600, 60)
    times = tuple(span.times())
    series = tuple(Series(f"cpu {n}", {"n": str(n)}, times, tuple(0.5 for _ in times)) for n in range(6))
    query = Query("x", "cpu {{n}}", instant=True)
    panel = Panel("CPU busy", "Busy share per CPU.", "percentunit", (query,), kind="stat")
    canvas = Canvas(200, 120)
    result = draw_panel(
        canvas, PanelData(panel, span, (QueryResult(panel.queries[0], "x", series),)), Box(0, 0, 200, 120)
    )
    assert result.shown == ("cpu 0",)
    assert result.hidden == 5
