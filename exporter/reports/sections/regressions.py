"""The biggest regressions: the figures of the sections above whose change against the previous period
goes furthest in the bad direction (Figure.better), largest first."""

from __future__ import annotations

from exporter.dashboards.render.units import format_value
from exporter.reports.model import Column, Figure, Section, Table
from exporter.reports.sections.context import Context, SectionSpec

TOP = 10


def badness(figure: Figure) -> float | None:
    """How much worse the figure got, relative to its previous value (0.25: 25 % worse); None if it has no
    direction or no change."""
    change = figure.change
    if change is None or figure.better == "neither":
        return None
    return change if figure.better == "lower" else -change


def shown(value: float | None, unit: str) -> str:
    """The value as its figure's unit shows it: the rows mix units, so the cells are text."""
    return "no data" if value is None else format_value(value, unit)


def build(ctx: Context) -> Section:
    worse = [
        (section.title, figure, bad)
        for section in ctx.done
        for figure in section.figures
        if (bad := badness(figure)) is not None and bad > 0
    ]
    worse.sort(key=lambda item: -item[2])
    rows = tuple(
        (title, figure.label, shown(figure.previous, figure.unit), shown(figure.value, figure.unit), figure.change)
        for title, figure, _ in worse[:TOP]
    )
    table = Table(
        "Figures that got worse against the previous period",
        (Column("Section"), Column("Figure"), Column("Previous"), Column("Now"), Column("Change", "percentunit")),
        rows,
    )  # fmt: skip
    notes = () if rows else ("No figure got worse against the previous period.",)
    return Section("regressions", "Biggest regressions", tables=(table,), notes=notes)


SECTION = SectionSpec("regressions", "Biggest regressions", build)
