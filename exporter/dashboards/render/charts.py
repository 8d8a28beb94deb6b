"""Panels drawn with matplotlib, as Grafana shows them: a time series as lines (stacked if the panel
says so), a stat as big numbers coloured by the thresholds, a bar gauge (and a gauge) as horizontal
bars, a table as a table. A panel without data is an explicit "No data" box, never an empty frame.

Everything is placed in pixels on a figure of a known size (100 dpi), so a panel looks the same on a
board picture and alone in a report: `draw_panel(canvas, data, box)` draws one panel in its box.

Readable at a README's width: a 1600 px picture is shown at about half its size, so no text is
smaller than 10 pt (14 px), and at most ten series get a colour and a legend entry; the others are
summed into "others" when the panel is stacked, else drawn as thin grey lines, and the legend says how
many there are.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Literal

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from exporter.dashboards.model import Panel, Threshold
from exporter.dashboards.render.data import PanelData, Series
from exporter.dashboards.render.units import axis_scale, format_value

DPI = 100
FONT = "DejaVu Sans"  # matplotlib's own fonts: the same pictures on every machine
MONOSPACE = "DejaVu Sans Mono"
TITLE_PT = 13
TEXT_PT = 11
SMALL_PT = 10
INK = "#1F2328"
MUTED = "#6E7781"
FRAME = "#D0D7DE"
GRID = "#E8EAED"
PANEL_BACKGROUND = "#FFFFFF"
NO_DATA = "#8C959F"
FAILED = "#C4162A"
OTHERS = "#A0A7AF"
OTHER_LINES = "#C5CAD0"  # the series without a colour of their own: thin, under the named ones
# Grafana's classic palette, in its order: the colours a user sees on the same panel in Grafana.
PALETTE = ("#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0", "#508642", "#CCA300")
# Grafana's threshold colour names, in the shades its light theme uses for text on white.
THRESHOLD_COLOURS = {
    "green": "#37872D",
    "yellow": "#C69700",
    "orange": "#E55B00",
    "red": "#C4162A",
    "blue": "#1F60C4",
    "purple": "#8F3BB8",
    "text": INK,
    "transparent": MUTED,
}
MAX_COLOURED = len(PALETTE)
TITLE_BAND = 34  # px: a panel's title line
PADDING = 10
LEGEND_ROW = 20
MIN_LEGEND_COLUMN = 150  # px
MAX_LEGEND_COLUMNS = 6
WIDE_LEGEND_COLUMN = 300  # px: long names are cut to this rather than take a line each
MIN_STAT_CELL = (150, 64)
LineStyle = Literal["-", ":"]
DETAIL_LINES = 4  # of a failed query's error, or of the query that found nothing


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels of the picture, from its top-left corner."""

    left: float
    top: float
    width: float
    height: float

    def inset(self, left: float, top: float, right: float, bottom: float) -> Box:
        return Box(self.left + left, self.top + top, self.width - left - right, self.height - top - bottom)


@dataclass(frozen=True)
class Drawn:
    """What was drawn for one panel: what a caller reports, and what a test checks."""

    title: str
    kind: str
    box: Box  # the panel's frame
    plot: Box  # where its data is: the axes of a time series, the numbers of a stat, the rows of a table
    series: int  # how many series the queries returned
    shown: tuple[str, ...]  # the names with a colour or a row of their own, in order
    hidden: int  # series drawn without a name (grey) or summed into "others", or left out of a stat/table
    status: str  # "ok", "no data", or "query failed: <Prometheus' error>"


class Canvas:
    """A figure of `width` x `height` pixels, and the means to measure text on it."""

    def __init__(self, width: int, height: int, background: str = PANEL_BACKGROUND) -> None:
        self.width, self.height = width, height
        self.figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor=background)
        self.agg = FigureCanvasAgg(self.figure)
        self.renderer: RendererAgg = self.agg.get_renderer()  # type: ignore[no-untyped-call]

    def x(self, px: float) -> float:
        return px / self.width

    def y(self, px: float) -> float:
        """From the top in pixels to matplotlib's figure fraction from the bottom."""
        return 1 - px / self.height

    def rect(self, box: Box) -> tuple[float, float, float, float]:
        return (self.x(box.left), self.y(box.top + box.height), box.width / self.width, box.height / self.height)

    def text(
        self, left: float, top: float, text: str, size: float, max_width: float | None = None, **style: object
    ) -> Text:
        """Text whose anchor is at (left, top) px; cut with "…" to `max_width` px if given."""
        style.setdefault("va", "top")
        style.setdefault("color", INK)
        style.setdefault("family", FONT)
        style.setdefault("parse_math", False)  # a query's `$job` is text, not TeX
        artist = self.figure.text(self.x(left), self.y(top), text, fontsize=size, **style)  # type: ignore[arg-type]
        if max_width is not None:
            self.fit(artist, max_width)
        return artist

    def text_width(self, artist: Text) -> float:
        return float(artist.get_window_extent(self.renderer).width)

    def fit(self, artist: Text, max_width: float) -> None:
        full = artist.get_text()
        if self.text_width(artist) <= max_width:
            return
        keep, longest = 0, len(full)  # the longest prefix that fits with its ellipsis: a binary search
        while keep < longest:
            middle = (keep + longest + 1) // 2
            artist.set_text(full[:middle].rstrip() + "…")
            if self.text_width(artist) <= max_width:
                keep = middle
            else:
                longest = middle - 1
        artist.set_text(full[:keep].rstrip() + "…")

    def measure(self, text: str, size: float, **style: object) -> float:
        style.setdefault("family", FONT)
        style.setdefault("parse_math", False)
        probe = self.figure.text(0, 0, text, fontsize=size, **style)  # type: ignore[arg-type]
        width = self.text_width(probe)
        probe.remove()
        return width

    def frame(
        self, box: Box, face: str = PANEL_BACKGROUND, edge: str = FRAME, style: str = "solid", zorder: float = -1
    ) -> None:
        """A rounded rectangle; by default under the axes (zorder 0), which the figure draws after it."""
        self.figure.add_artist(
            FancyBboxPatch(
                (self.x(box.left), self.y(box.top + box.height)),
                box.width / self.width,
                box.height / self.height,
                boxstyle="round,pad=0,rounding_size=0.004",
                transform=self.figure.transFigure,
                facecolor=face,
                edgecolor=edge,
                linewidth=1,
                linestyle=style,
                zorder=zorder,
            )
        )

    def png(self) -> bytes:
        out = io.BytesIO()
        self.figure.savefig(out, format="png", dpi=DPI, facecolor=self.figure.get_facecolor())
        return out.getvalue()


def threshold_colour(thresholds: Sequence[Threshold], value: float, base: str = "green") -> str:
    """Grafana's rule: the colour of the highest step at or below the value; below them all, the base."""
    name = base
    for step in sorted(thresholds, key=lambda step: step.value):
        if value >= step.value:
            name = step.color
    return THRESHOLD_COLOURS.get(name, name if name.startswith("#") else MUTED)


def draw_panel(canvas: Canvas, data: PanelData, box: Box, tz: tzinfo | None = None) -> Drawn:
    """The panel in its box: frame, title, then its data, or what stands for the data's absence."""
    panel = data.panel
    canvas.frame(box)
    canvas.text(box.left + PADDING, box.top + 9, panel.title, TITLE_PT, box.width - 2 * PADDING, weight="bold")
    inner = box.inset(PADDING, TITLE_BAND, PADDING, PADDING)
    count = len(data.series)
    errors = data.errors
    if not data.has_data:
        _empty(canvas, data, inner)
        status = f"query failed: {errors[0]}" if errors else "no data"
        return Drawn(panel.title, panel.kind, box, inner, count, (), 0, status)
    if panel.kind == "timeseries":
        plot, shown, hidden = _timeseries(canvas, data, inner, tz)
    elif panel.kind == "stat":
        plot, shown, hidden = _stat(canvas, data, inner)
    elif panel.kind in ("bargauge", "gauge"):
        plot, shown, hidden = _bars(canvas, data, inner)
    else:
        plot, shown, hidden = _table(canvas, data, inner)
    if errors:  # some queries answered, one did not: say so where the title is
        canvas.text(
            box.left + box.width - PADDING,
            box.top + 11,
            f"⚠ {len(errors)} query failed",
            SMALL_PT,
            color=FAILED,
            ha="right",
        )
    return Drawn(
        panel.title, panel.kind, box, plot, count, shown, hidden, f"query failed: {errors[0]}" if errors else "ok"
    )


def _empty(canvas: Canvas, data: PanelData, inner: Box) -> None:
    """A dashed box saying "No data" (or the query's error) and what was asked: visibly not a chart."""
    errors = data.errors
    canvas.frame(inner, face="#F6F8FA", edge=FAILED if errors else NO_DATA, style="dashed")
    middle = inner.top + inner.height / 2
    headline = "Query failed" if errors else "No data"
    canvas.text(
        inner.left + inner.width / 2,
        middle - 4,
        headline,
        TITLE_PT + 3,
        weight="bold",
        ha="center",
        va="bottom",
        color=FAILED if errors else NO_DATA,
    )
    detail = errors[0] if errors else data.results[0].promql if data.results else ""
    room = inner.width - 2 * PADDING
    per_line = max(8, int(room / canvas.measure("x", SMALL_PT, family=MONOSPACE)))
    lines = textwrap.wrap(detail, per_line, break_on_hyphens=False)
    for number, line in enumerate(lines[:DETAIL_LINES]):
        last = number == DETAIL_LINES - 1 and len(lines) > DETAIL_LINES
        canvas.text(
            inner.left + inner.width / 2,
            middle + 6 + number * LEGEND_ROW,
            line + (" …" if last else ""),
            SMALL_PT,
            room,
            ha="center",
            color=MUTED,
            family=MONOSPACE,
        )


# ------------------------------------------------------------------------------------------ time series


def _visible(series: Series) -> bool:
    return any(not math.isnan(value) for value in series.values)


def _legend_capacity(canvas: Canvas, inner: Box, names: list[str]) -> tuple[int, int]:
    """Columns (as many as the longest of these names allows, the shortest LEGEND_COLUMN wide), and the
    rows the legend may take (at most a third of the panel)."""
    longest = max((canvas.measure(name, SMALL_PT) for name in names), default=0.0) + 40
    fitting = int(inner.width // max(longest, MIN_LEGEND_COLUMN))
    columns = max(1, int(inner.width // WIDE_LEGEND_COLUMN), min(fitting, MAX_LEGEND_COLUMNS))
    rows = max(1, int(inner.height * 0.34 // LEGEND_ROW))
    return columns, rows


def _timeseries(canvas: Canvas, data: PanelData, inner: Box, tz: tzinfo | None) -> tuple[Box, tuple[str, ...], int]:
    panel = data.panel
    series = [item for item in data.series if _visible(item)]
    # Few enough to colour them all: in the queries' order, so that "now" and "a week before" keep their
    # colours from panel to panel. More: the highest peaks get the colours.
    fits = len(series) <= MAX_COLOURED
    ranked = series if fits else sorted(series, key=lambda item: (-item.peak, item.name))
    others = f"others ({len(ranked)} series)" if panel.stacked else f"+{len(ranked)} more series"  # the longest
    columns, max_rows = _legend_capacity(canvas, inner, [item.name for item in ranked[:MAX_COLOURED]] + [others])
    slots = columns * max_rows
    coloured = ranked if len(ranked) <= min(MAX_COLOURED, slots) else ranked[: min(MAX_COLOURED, slots - 1)]
    rest = ranked[len(coloured) :]
    one_unnamed = len(series) == 1 and series[0].name == panel.title
    entries: list[tuple[str, str, LineStyle]] = (
        [] if one_unnamed else [(item.name, colour, "-") for item, colour in zip(coloured, PALETTE, strict=False)]
    )
    if rest:
        others = f"others ({len(rest)} series)" if panel.stacked else f"+{len(rest)} more series"
        entries.append((others, OTHERS, "-" if panel.stacked else ":"))
    legend_rows = math.ceil(len(entries) / columns) if entries else 0
    legend_height = legend_rows * LEGEND_ROW + (6 if entries else 0)
    x_labels = 24
    plot = inner.inset(0, 4, 8, x_labels + legend_height)
    axes = canvas.figure.add_axes(canvas.rect(plot))
    times = [at / 86400 for at in data.window.times()]  # matplotlib's dates: days since 1970 (UTC)
    colours = list(PALETTE)
    if panel.stacked:
        stack = [_zeros(item.values) for item in coloured]
        if rest:
            stack.append([sum(values) for values in zip(*(_zeros(item.values) for item in rest), strict=True)])
        axes.stackplot(times, *stack, colors=[*colours[: len(coloured)], OTHERS], edgecolor="white", linewidth=0.5)
    else:
        for item in rest:
            axes.plot(times, item.values, color=OTHER_LINES, linewidth=0.8, zorder=1)
        for item, colour in zip(coloured, colours, strict=False):
            axes.plot(times, item.values, color=colour, linewidth=1.8, zorder=3)
    _limits(axes, panel)
    if not panel.stacked and len(coloured) <= 4:  # Grafana's 10% fill, where it does not muddy the lines
        bottom = axes.get_ylim()[0]
        for item, colour in zip(coloured, colours, strict=False):
            axes.fill_between(times, bottom, item.values, color=colour, alpha=0.1, linewidth=0, zorder=2)
        axes.set_ylim(bottom=bottom)
    plot = _style_axes(canvas, axes, panel.unit, plot, tz)
    axes.set_xlim(times[0], times[-1])
    if entries:
        legend = Box(inner.left, plot.top + plot.height + x_labels, inner.width, legend_height)
        _legend(canvas, entries, legend, columns)
    return plot, tuple(item.name for item in coloured), len(rest)


def _zeros(values: Sequence[float]) -> list[float]:
    return [0.0 if math.isnan(value) else value for value in values]


def _limits(axes: Axes, panel: Panel) -> None:
    low, high = axes.get_ylim()
    if panel.minimum is not None:
        low = panel.minimum
    if panel.maximum is not None:
        high = panel.maximum
    if low == high:
        low, high = low - 1, high + 1
    axes.set_ylim(low, high)


def _style_axes(canvas: Canvas, axes: Axes, unit: str, plot: Box, tz: tzinfo | None) -> Box:
    """Grafana's look: no frame, light horizontal grid, the unit on the y axis, concise times on x; the
    axes moved right by the width of its widest y label, measured."""
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(FRAME)
    axes.grid(axis="y", color=GRID, linewidth=0.8)
    axes.grid(axis="x", color=GRID, linewidth=0.5, alpha=0.6)
    axes.set_axisbelow(True)
    axes.tick_params(labelsize=SMALL_PT, colors=MUTED, length=0, pad=4)
    low, high = axes.get_ylim()
    scale = axis_scale(unit, max(abs(low), abs(high)))
    steps = MaxNLocator(nbins=max(2, int(plot.height // 38)), min_n_ticks=2, steps=[1, 2, 2.5, 5, 10])
    axes.yaxis.set_major_locator(FixedLocator([tick * scale for tick in steps.tick_values(low / scale, high / scale)]))
    axes.set_ylim(low, high)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_value(value, unit)))
    locator = mdates.AutoDateLocator(tz=tz, minticks=3, maxticks=max(4, int(plot.width // 110)))  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=tz, show_offset=False)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    labels = [format_value(tick, unit) for tick in axes.get_yticks() if low <= tick <= high]
    widest = max((canvas.measure(label, SMALL_PT) for label in labels), default=0.0) + 8
    moved = plot.inset(widest, 0, 0, 0)
    axes.set_position(canvas.rect(moved))
    return moved


def _legend(canvas: Canvas, entries: list[tuple[str, str, LineStyle]], box: Box, columns: int) -> None:
    """Entries left to right in equal columns, each a short line in its colour and its name, cut to fit."""
    column_width = box.width / columns
    for index, (name, colour, style) in enumerate(entries):
        left = box.left + (index % columns) * column_width
        middle = box.top + 6 + (index // columns) * LEGEND_ROW + LEGEND_ROW / 2
        canvas.figure.add_artist(
            Line2D(
                [canvas.x(left + 2), canvas.x(left + 20)],
                [canvas.y(middle)] * 2,
                color=colour,
                linewidth=3,
                linestyle=style,
                transform=canvas.figure.transFigure,
            )
        )
        canvas.text(left + 26, middle, name, SMALL_PT, column_width - 34, va="center")


# ------------------------------------------------------------------------------------------------ stats


def _latest(data: PanelData) -> list[tuple[str, float]]:
    return [(item.name, item.last) for item in data.series if not math.isnan(item.last)]


def _grid(count: int, box: Box, longest: int, name_width: float) -> tuple[int, int]:
    """Columns and rows for `count` cells in the box: the layout with the largest numbers among those
    where the names (`name_width` px, 0 for none) are not cut, or, if there is none, among them all."""
    best, best_size = (1, count), -1.0
    for needs_names in (True, False):
        for columns in range(1, count + 1):
            rows = math.ceil(count / columns)
            width, height = box.width / columns, box.height / rows
            size = min(height * 0.45, width * 0.85 / (0.62 * max(longest, 1)))
            if size > best_size and (not needs_names or width >= name_width + 8):
                best, best_size = (columns, rows), size
        if best_size > 0:
            break
    return best


def _stat(canvas: Canvas, data: PanelData, inner: Box) -> tuple[Box, tuple[str, ...], int]:
    panel = data.panel
    values = _latest(data)
    most = max(1, int(inner.width // MIN_STAT_CELL[0]) * int(inner.height // MIN_STAT_CELL[1]))
    shown = values if len(values) <= most else values[: max(most - 1, 1)]  # at least one value, then "+N more"
    hidden = len(values) - len(shown)
    texts = [format_value(value, panel.unit) for _, value in shown]
    cells = len(shown) + (1 if hidden else 0)
    named = len(values) > 1 or (bool(values) and values[0][0] != panel.title)
    name_width = max((canvas.measure(name, SMALL_PT) for name, _ in shown), default=0.0) if named else 0.0
    columns, rows = _grid(cells, inner, max((len(text) for text in texts), default=1), min(name_width, 140.0))
    width, height = inner.width / columns, inner.height / rows
    for index in range(cells):
        cell = Box(inner.left + (index % columns) * width, inner.top + (index // columns) * height, width, height)
        if index == len(shown):
            canvas.text(
                cell.left + width / 2,
                cell.top + height / 2,
                f"+{hidden} more",
                TEXT_PT + 2,
                color=MUTED,
                ha="center",
                va="center",
            )
            continue
        name, value = shown[index]
        label_band = 22 if named else 0
        if named:
            canvas.text(cell.left + width / 2, cell.top + 2, name, SMALL_PT, width - 8, ha="center", color=MUTED)
        room = cell.inset(4, label_band, 4, 2)
        size_px = min(room.height * 0.8, 90.0)
        artist = canvas.text(
            room.left + room.width / 2,
            room.top + room.height / 2,
            texts[index],
            size_px * 72 / DPI,
            ha="center",
            va="center",
            weight="bold",
            color=threshold_colour(panel.thresholds, value, panel.base_color),
        )
        overflow = canvas.text_width(artist) / max(room.width, 1)
        if overflow > 1:  # shrink a long value to its cell rather than cut a number
            artist.set_fontsize(float(artist.get_fontsize()) / overflow)
    return inner, tuple(name for name, _ in shown), hidden


# ------------------------------------------------------------------------------------------- bar gauges


def _bar_scale(panel: Panel, values: list[float]) -> tuple[float, float]:
    low = panel.minimum if panel.minimum is not None else min(0.0, *values)
    if panel.maximum is not None:
        high = panel.maximum
    elif panel.unit == "percentunit" and max(values) <= 1:
        high = 1.0
    elif panel.unit == "percent" and max(values) <= 100:
        high = 100.0
    else:
        high = max(values)
    return low, high if high > low else low + 1


def _bars(canvas: Canvas, data: PanelData, inner: Box) -> tuple[Box, tuple[str, ...], int]:
    panel = data.panel
    values = _latest(data)
    row = min(40.0, max(24.0, inner.height / max(len(values), 1)))
    most = max(1, int(inner.height // row))
    shown = values if len(values) <= most else values[: max(most - 1, 1)]  # at least one value, then "+N more"
    hidden = len(values) - len(shown)
    low, high = _bar_scale(panel, [value for _, value in values])
    name_width = min(inner.width * 0.35, max(canvas.measure(name, SMALL_PT) for name, _ in shown) + 12)
    texts = [format_value(value, panel.unit) for _, value in shown]
    value_width = max(canvas.measure(text, TEXT_PT, weight="bold") for text in texts) + 12
    track_width = inner.width - name_width - value_width
    for index, (name, value) in enumerate(shown):
        top = inner.top + index * row
        middle = top + row / 2
        canvas.text(inner.left, middle, name, SMALL_PT, name_width - 10, va="center", color=INK)
        track = Box(inner.left + name_width, top + row * 0.18, track_width, row * 0.64)
        canvas.frame(track, face="#EEF0F2", edge="#EEF0F2")
        share = min(max((value - low) / (high - low), 0.0), 1.0)
        colour = threshold_colour(panel.thresholds, value, panel.base_color)
        if share > 0:
            canvas.figure.add_artist(
                Rectangle(
                    (canvas.x(track.left), canvas.y(track.top + track.height)),
                    track.width * share / canvas.width,
                    track.height / canvas.height,
                    transform=canvas.figure.transFigure,
                    facecolor=colour,
                    edgecolor="none",
                )
            )
        canvas.text(
            inner.left + inner.width,
            middle,
            texts[index],
            TEXT_PT,
            va="center",
            ha="right",
            weight="bold",
            color=colour,
        )
    if hidden:
        canvas.text(
            inner.left, inner.top + len(shown) * row + row / 2, f"+{hidden} more", SMALL_PT, color=MUTED, va="center"
        )
    return inner, tuple(name for name, _ in shown), hidden


# ------------------------------------------------------------------------------------------------ tables


def table_rows(data: PanelData) -> tuple[list[str], list[list[str]]]:
    """Grafana's table of instant queries, merged: one row per label set, a column per label that varies
    (all of them for a single row) and one value column per query (its legend, or "Value")."""
    panel = data.panel
    value_columns = [query.legend if query.legend and "{{" not in query.legend else "Value" for query in panel.queries]
    if len(set(value_columns)) < len(value_columns):
        value_columns = [f"Value #{chr(ord('A') + index)}" for index in range(len(panel.queries))]
    merged: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for index, result in enumerate(data.results):
        for item in result.series:
            key = tuple(sorted((k, v) for k, v in item.labels.items() if k != "__name__"))
            merged.setdefault(key, [""] * len(panel.queries))[index] = format_value(item.last, panel.unit)
    keys = sorted({label for key in merged for label, _ in key})
    if len(merged) > 1:
        keys = [label for label in keys if len({dict(key).get(label) for key in merged}) > 1]
    header = [*keys, *value_columns]
    rows = [[dict(key).get(label, "") for label in keys] + values for key, values in merged.items()]
    return header, rows


def _table(canvas: Canvas, data: PanelData, inner: Box) -> tuple[Box, tuple[str, ...], int]:
    header, rows = table_rows(data)
    row_height = 24.0
    most = max(1, int(inner.height // row_height) - 1)
    shown = rows if len(rows) <= most else rows[: most - 1]
    hidden = len(rows) - len(shown)
    widths = [max([len(name), *(len(row[index]) for row in shown)]) + 2 for index, name in enumerate(header)]
    scale = inner.width / sum(widths)
    lefts = [inner.left + sum(widths[:index]) * scale for index in range(len(widths))]
    canvas.frame(Box(inner.left, inner.top, inner.width, row_height), face="#F0F2F4", edge="#F0F2F4")
    for index, name in enumerate(header):
        canvas.text(
            lefts[index] + 6,
            inner.top + row_height / 2,
            name,
            SMALL_PT,
            widths[index] * scale - 10,
            va="center",
            weight="bold",
        )
    for number, row in enumerate(shown, start=1):
        top = inner.top + number * row_height
        if number % 2 == 0:
            canvas.frame(Box(inner.left, top, inner.width, row_height), face="#F8F9FA", edge="#F8F9FA")
        for index, cell in enumerate(row):
            canvas.text(lefts[index] + 6, top + row_height / 2, cell, SMALL_PT, widths[index] * scale - 10, va="center")
    if hidden:
        canvas.text(
            inner.left + 6,
            inner.top + (len(shown) + 1.5) * row_height,
            f"+{hidden} more rows",
            SMALL_PT,
            color=MUTED,
            va="center",
        )
    return inner, tuple(" ".join(row) for row in shown), hidden
