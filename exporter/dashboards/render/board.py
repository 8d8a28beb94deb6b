"""A board's picture: its title, the time range, and its main panels laid out as Grafana lays them (rows
one under another, panels on a 24-column grid), each drawn by charts.py from its own queries.

The main panels are the board's first rows, whole, up to a number of panels (collapsed rows are not
main: Grafana hides them too); a row longer than that number is cut to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from exporter.dashboards.model import Board, Panel, Row
from exporter.dashboards.render.charts import INK, MUTED, SMALL_PT, Box, Canvas, Drawn, draw_panel
from exporter.dashboards.render.data import PanelData, PrometheusClient, Window, fetch_panel, window

WIDTH = 1600  # px: a README shows it at about half, where 10 pt text is still read easily
MAIN_PANELS = 8
GRID_COLUMNS = 24
GRID_UNIT = 40  # px per unit of a panel's height (Grafana's is 30 px; pictures are seen smaller)
MARGIN = 24
GAP = 10
HEADER = 92
ROW_HEADING = 38
BOARD_BACKGROUND = "#F4F5F7"


@dataclass(frozen=True)
class BoardPicture:
    board: Board
    png: bytes
    width: int
    height: int
    panels: tuple[Drawn, ...]  # in the board's order
    left_out: int  # panels of the board not drawn (rows after the main ones, collapsed rows)

    def problems(self) -> list[str]:
        """One line per panel drawn without data or with a failed query."""
        return [f"{self.board.key}: {drawn.title!r}: {drawn.status}" for drawn in self.panels if drawn.status != "ok"]


def main_rows(board: Board, limit: int = MAIN_PANELS) -> list[Row]:
    """The board's first open rows, whole, while they hold no more than `limit` panels together."""
    chosen: list[Row] = []
    count = 0
    for row in board.rows:
        if row.collapsed or not row.panels:
            continue
        if count + len(row.panels) > limit:
            if not chosen:
                chosen.append(Row(row.title, row.panels[:limit]))
            break
        chosen.append(row)
        count += len(row.panels)
    return chosen


def layout(rows: list[Row], width: int) -> tuple[list[tuple[Row, float]], list[tuple[Panel, Box]], int]:
    """Where each row's heading and each panel go, in pixels, and the picture's height: Grafana's grid
    (panels left to right, wrapping at 24 columns) scaled to `width`."""
    column = (width - 2 * MARGIN + GAP) / GRID_COLUMNS
    headings: list[tuple[Row, float]] = []
    boxes: list[tuple[Panel, Box]] = []
    top = float(HEADER)
    for row in rows:
        headings.append((row, top))
        top += ROW_HEADING
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > GRID_COLUMNS:
                top += line_height * GRID_UNIT
                x, line_height = 0, 0
            boxes.append(
                (panel, Box(MARGIN + x * column, top, panel.width * column - GAP, panel.height * GRID_UNIT - GAP))
            )
            x += panel.width
            line_height = max(line_height, panel.height)
        top += line_height * GRID_UNIT
    return headings, boxes, int(top + MARGIN - GAP)


def panel_window(panel: Panel, end: float, range_seconds: int, width: int = WIDTH) -> Window:
    """The window a panel's queries use: a point per four pixels of the panel's width, one per two pixels
    of the picture as a README shows it."""
    pixels = panel.width / GRID_COLUMNS * (width - 2 * MARGIN)
    return window(end, range_seconds, max(int(pixels / 4), 10))


def fetch_board(
    client: PrometheusClient,
    board: Board,
    end: float,
    range_seconds: int,
    *,
    limit: int = MAIN_PANELS,
    values: Mapping[str, str] | None = None,
    width: int = WIDTH,
) -> list[PanelData]:
    """The data of the board's main panels (PrometheusUnreachable if Prometheus does not answer)."""
    return [
        fetch_panel(client, panel, panel_window(panel, end, range_seconds, width), values)
        for row in main_rows(board, limit)
        for panel in row.panels
    ]


def draw_board(
    board: Board,
    panels: list[PanelData],
    range_seconds: int,
    *,
    limit: int = MAIN_PANELS,
    width: int = WIDTH,
    tz: tzinfo | None = None,
) -> BoardPicture:
    """The picture of the board's main panels from their data (fetch_board's, in the same order)."""
    rows = main_rows(board, limit)
    headings, boxes, height = layout(rows, width)
    canvas = Canvas(width, height, background=BOARD_BACKGROUND)
    zone = tz or datetime.now().astimezone().tzinfo
    canvas.text(MARGIN, 18, board.title, 22, width - 2 * MARGIN, weight="bold")
    if panels:
        end = max(data.window.end for data in panels)
        canvas.text(MARGIN, 56, _period(end, range_seconds, zone), SMALL_PT + 1, width / 2, color=MUTED)
    left_out = len(board.panels()) - len(boxes)
    if left_out:
        canvas.text(
            width - MARGIN,
            56,
            f"the first {len(boxes)} of {len(board.panels())} panels",
            SMALL_PT + 1,
            color=MUTED,
            ha="right",
        )
    for row, top in headings:
        canvas.text(MARGIN, top + 10, row.title, 14, width - 2 * MARGIN, weight="bold", color=INK)
    drawn = [draw_panel(canvas, data, box, zone) for data, (_, box) in zip(panels, boxes, strict=True)]
    return BoardPicture(board, canvas.png(), width, height, tuple(drawn), left_out)


def render_board(
    client: PrometheusClient,
    board: Board,
    end: float,
    range_seconds: int,
    *,
    limit: int = MAIN_PANELS,
    values: Mapping[str, str] | None = None,
    width: int = WIDTH,
    tz: tzinfo | None = None,
) -> BoardPicture:
    """fetch_board, then draw_board."""
    data = fetch_board(client, board, end, range_seconds, limit=limit, values=values, width=width)
    return draw_board(board, data, range_seconds, limit=limit, width=width, tz=tz)


def _period(end: int, range_seconds: int, zone: tzinfo | None) -> str:
    start = datetime.fromtimestamp(end - range_seconds, zone)
    last = datetime.fromtimestamp(end, zone)
    same_day = start.date() == last.date()
    return (
        f"{start:%Y-%m-%d %H:%M} to {last:%H:%M}" if same_day else f"{start:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
    ) + f" ({last:%Z})"
