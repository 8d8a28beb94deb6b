"""A report's charts: dashboard panels drawn over the report's period, from the panels' own queries and with
the dashboards' own drawing code (exporter/dashboards/render). One source of truth for what a chart means:
a report never writes a query of its own for a picture.

Imported only when a report is built (matplotlib).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo

from exporter.dashboards.boards import BOARDS
from exporter.dashboards.model import Panel
from exporter.dashboards.render.charts import Box, Canvas, draw_panel
from exporter.dashboards.render.data import PrometheusClient, fetch_panel, window
from exporter.reports.model import Chart, ReportWindow

CHART_WIDTH = 1000  # px: a chart spans the report's column (about 17 cm on A4)
CHART_HEIGHT = 300
POINTS = 250  # points per series: a step of about 6 minutes over a day, 3 hours over a month


class UnknownPanel(LookupError):
    pass


def find_panel(board_key: str, title: str) -> Panel:
    """The panel of that title on that board; UnknownPanel (a bug in a section) otherwise."""
    board = next((b for b in BOARDS if b.key == board_key), None)
    if board is None:
        raise UnknownPanel(f"no dashboard {board_key!r}; there are {', '.join(b.key for b in BOARDS)}")
    panel = next((p for p in board.panels() if p.title == title), None)
    if panel is None:
        raise UnknownPanel(f"no panel {title!r} on the {board_key} dashboard")
    return panel


def panel_chart(
    client: PrometheusClient,
    board_key: str,
    title: str,
    period: ReportWindow,
    *,
    values: Mapping[str, str] | None = None,
    tz: tzinfo | None = None,
    width: int = CHART_WIDTH,
    height: int = CHART_HEIGHT,
) -> Chart:
    """The panel drawn over the period, as a PNG (PrometheusUnreachable if Prometheus does not answer; a
    query Prometheus refuses is drawn as the panel's error, as on the dashboards)."""
    panel = find_panel(board_key, title)
    span = window(period.end, int(period.seconds), POINTS)
    data = fetch_panel(client, panel, span, values)
    canvas = Canvas(width, height)
    draw_panel(canvas, data, Box(0, 0, width, height), tz)
    return Chart(title=title, board=board_key, panel=title, png=canvas.png(), has_data=data.has_data)
