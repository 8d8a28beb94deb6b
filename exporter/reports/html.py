"""A Report as one self-contained HTML document: what a manager opens in a browser, prints, or gets as PDF
(pdf.py renders this same document).

Self-contained: the style is inline and the charts are PNG `data:` URIs, so the file can be mailed or
archived and opens offline; nothing in it makes a request of any kind (no font, script, image or link to
fetch). Every text is escaped: labels, annotations, causes and table cells come from alerts and people.

Printed (A4): the summary and the contents (with page numbers) stay on the first page, each section
starts a page, and no chart, figure table or table row is cut across two pages. The only links are to
the document's own sections.
"""

from __future__ import annotations

import base64
import math
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, tzinfo
from html import escape

from exporter.dashboards.render.units import format_value, number
from exporter.reports.model import Chart, Figure, Report, ReportWindow, Section, Table, Value

NO_VALUE = "\N{EN DASH}"  # a figure without data: never shown as 0
SUMMARY_PER_SECTION = 2  # key figures each section gives the summary (those with a target first)
SUMMARY_MAX = 12

STYLE = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm;
  @bottom-left { content: string(report-title); font: 8pt "DejaVu Sans", sans-serif; color: #6e7781; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font: 8pt "DejaVu Sans", sans-serif;
    color: #6e7781; } }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10.5pt; line-height: 1.4;
  color: #1f2328; background: #fff; margin: 0 auto; max-width: 1060px; padding: 24px 28px 48px; }
h1 { font-size: 22pt; margin: 0 0 2px; string-set: report-title content(); }
h2 { font-size: 15pt; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid #1f60c4; }
h3 { font-size: 11pt; margin: 16px 0 6px; }
.title-block { border-bottom: 1px solid #d0d7de; padding-bottom: 12px; margin-bottom: 18px; }
.title-block .period { font-size: 14pt; color: #1f60c4; margin: 0 0 8px; }
.title-block dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0;
  font-size: 9.5pt; }
.title-block dt { color: #6e7781; }
.title-block dd { margin: 0; }
.cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; margin: 0; padding: 0; list-style: none; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px; break-inside: avoid; }
.card .label { font-size: 9pt; color: #6e7781; }
.card .value { font-size: 17pt; font-weight: bold; margin: 2px 0; }
.card .card-change { font-size: 11pt; font-weight: bold; white-space: nowrap; }
.card .from { font-size: 8.5pt; color: #6e7781; }
.good { color: #1a7f37; }
.bad { color: #c4162a; }
.same { color: #6e7781; }
.met { color: #1a7f37; font-weight: bold; }
.missed { color: #c4162a; font-weight: bold; }
section.report-section { break-before: page; margin-top: 30px; }
.note { border-left: 4px solid #1f60c4; background: #eef6ff; padding: 6px 10px; margin: 0 0 10px;
  break-inside: avoid; }
.note.warning { border-left-color: #bf8700; background: #fff8c5; }
.note.no-data { border-left-color: #8c959f; background: #f6f8fa; font-weight: bold; color: #57606a; }
table { border-collapse: collapse; width: 100%; margin: 0 0 12px; font-size: 9.5pt; }
caption { text-align: left; font-weight: bold; padding: 4px 0; caption-side: top; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e8eaed; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }  /* a long URL or text wraps instead of running off the page */
td:first-child { overflow-wrap: break-word; }  /* the row's label keeps its width: "db-1:9100" whole */
th { background: #f6f8fa; border-bottom: 1px solid #d0d7de; font-weight: bold; }  /* wraps between words only */
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }  /* "1.25 min" on one line; a heading may wrap */
thead { display: table-header-group; }
tr { break-inside: avoid; }
table.figures { break-inside: avoid; }
figure.chart { margin: 0 0 14px; break-inside: avoid; }
figure.chart img { display: block; width: 100%; height: auto; border: 1px solid #e8eaed; }
figcaption { font-size: 8.5pt; color: #6e7781; margin-top: 2px; }
.empty { color: #6e7781; font-style: italic; }
.contents { margin-top: 22px; break-inside: avoid; }
.contents ol { margin: 0; padding-left: 22px; columns: 2; column-gap: 28px; }
.contents li { padding: 2px 0; break-inside: avoid; }
.contents a { color: #1f60c4; text-decoration: none; }
footer { margin-top: 28px; font-size: 8.5pt; color: #6e7781; }
@media (max-width: 720px) { .cards { grid-template-columns: 1fr 1fr; } body { padding: 12px; } }
@media print { body { padding: 0; max-width: none; } section.report-section { margin-top: 0; }
  .contents ol { columns: 1; }
  .contents a { color: #1f2328; }
  .contents a::after { content: leader(". ") target-counter(attr(href), page); color: #6e7781; } }
"""


def render_html(report: Report) -> str:
    """The report as an HTML document (a str: write it as UTF-8)."""
    zone = _zone(report.timezone)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No request of any kind, even if an escaped text were ever mistaken for markup.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_text(report.title)} — {_text(report.window.label)}</title>",
        f"<style>{STYLE}</style></head><body>",
        _title_block(report, zone),
        _summary(report),
        _contents(report),
        *(_section(section) for section in report.sections),
        "<footer>Written by Pulse from Prometheus and the incident journal, "
        f"{_text(_moment(report.generated_at, zone))} ({_text(report.timezone)}). "
        "The figures are also in report.json.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------------- the title block


def _title_block(report: Report, zone: tzinfo) -> str:
    rows = [("Period", _span(report.window, zone))]
    if report.previous is not None:
        rows.append(("Compared with", f"{report.previous.label} ({_span(report.previous, zone)})"))
    rows += [("Time zone", report.timezone), ("Generated", _moment(report.generated_at, zone))]
    items = "".join(f"<dt>{_text(name)}</dt><dd>{_text(value)}</dd>" for name, value in rows)
    return (
        f'<header class="title-block"><h1>{_text(report.title)}</h1>'
        f'<p class="period">{_text(report.window.label)}</p><dl>{items}</dl></header>'
    )


def _span(window: ReportWindow, zone: tzinfo) -> str:
    return f"{_moment(window.start, zone, seconds=False)} to {_moment(window.end, zone, seconds=False)}"


def _moment(timestamp: float, zone: tzinfo, *, seconds: bool = True) -> str:
    moment = datetime.fromtimestamp(timestamp, zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


# ----------------------------------------------------------------------------------------------- summary


def key_figures(report: Report) -> list[Figure]:
    """What the summary shows: from each section with data, its figures with a target first, then the
    others, SUMMARY_PER_SECTION each, SUMMARY_MAX in all."""
    chosen: list[Figure] = []
    for section in report.sections:
        known = [figure for figure in section.figures if figure.value is not None]
        known.sort(key=lambda figure: figure.target is None)  # stable: the section's order otherwise
        chosen.extend(known[:SUMMARY_PER_SECTION])
    return chosen[:SUMMARY_MAX]


def _summary(report: Report) -> str:
    figures = key_figures(report)
    if not figures:
        body = '<p class="note no-data">No data for this period: no section found any figure.</p>'
    else:
        body = '<ul class="cards">' + "".join(_card(figure) for figure in figures) + "</ul>"
    return f'<section class="summary"><h2>Summary</h2>{body}</section>'


def _card(figure: Figure) -> str:
    previous = "" if figure.previous is None else f"previous period {_value(figure.previous, figure.unit)}"
    target = "" if figure.target is None else f" · target {_target(figure)}"
    return (
        f'<li class="card"><div class="label">{_text(figure.label)}</div>'
        f'<div class="value">{_text(_value(figure.value, figure.unit))}</div>'
        f'<div class="card-change">{_change(figure) or "&nbsp;"}</div>'
        f'<div class="from">{_text(previous)}{target}</div></li>'
    )


def verdict(figure: Figure) -> str:
    """ "good", "bad" or "same": the colour of a figure's change, by which way is better."""
    change = figure.change
    if change is None or change == 0 or figure.better == "neither":
        return "same"
    return "good" if (change > 0) == (figure.better == "higher") else "bad"


def change_text(figure: Figure) -> str:
    change = figure.change
    if change is None:
        return ""
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    sign = "+" if change > 0 else ""
    return f"{arrow}\N{NO-BREAK SPACE}{sign}{number(change * 100)}%"


def _change(figure: Figure) -> str:
    text = change_text(figure)
    if not text:
        return ""
    meaning = {"good": "better", "bad": "worse", "same": "change"}[verdict(figure)]
    return f'<span class="change {verdict(figure)}" title="{meaning} than the previous period">{_text(text)}</span>'


def _contents(report: Report) -> str:
    """The sections, linked (in the PDF with their page numbers), those without data said so."""
    items = "".join(
        f'<li><a href="#{_text(section.key)}">{_text(section.title)}'
        + ("" if section.has_data else ' <span class="empty">(no data)</span>')
        + "</a></li>"
        for section in report.sections
    )
    return f'<nav class="contents"><h2>Contents</h2><ol>{items}</ol></nav>'


# ---------------------------------------------------------------------------------------------- sections


def _section(section: Section) -> str:
    parts = [f'<section class="report-section" id="{_text(section.key)}"><h2>{_text(section.title)}</h2>']
    for note in section.notes:
        kind = "note no-data" if note.lower().startswith("no data") else "note warning" if "fail" in note else "note"
        parts.append(f'<p class="{kind}">{_text(note)}</p>')
    if not section.has_data and not any(note.lower().startswith("no data") for note in section.notes):
        parts.append(f'<p class="note no-data">No data for {_text(section.title.lower())} in this period.</p>')
    if section.figures:
        parts.append(_figures(section.figures))
    parts.extend(_table(table) for table in section.tables)
    parts.extend(_chart(chart) for chart in section.charts)
    parts.append("</section>")
    return "".join(parts)


def _figures(figures: Sequence[Figure]) -> str:
    """The section's figures; the previous period, change and target columns only when some figure has one."""
    compared = any(figure.previous is not None for figure in figures)
    targets = any(figure.target is not None for figure in figures)
    head = f'<th>Figure</th><th class="num">{"This period" if compared else "Value"}</th>'
    if compared:
        head += '<th class="num">Previous period</th><th class="num">Change</th>'
    if targets:
        head += '<th class="num">Target</th>'
    rows = []
    for figure in figures:
        cells = f'<td>{_text(figure.label)}</td><td class="num"><b>{_text(_value(figure.value, figure.unit))}</b></td>'
        if compared:
            cells += f'<td class="num">{_text(_value(figure.previous, figure.unit))}</td>'
            cells += f'<td class="num">{_change(figure) or NO_VALUE}</td>'
        if targets:
            cells += f'<td class="num">{_target(figure)}</td>'
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="figures"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    met = figure.met
    status = "" if met is None else f' <span class="{"met" if met else "missed"}">{"met" if met else "missed"}</span>'
    return f"{_text(_value(figure.target, figure.unit))}{status}"


def _table(table: Table) -> str:
    numeric = [bool(column.unit) for column in table.columns]
    head = "".join(
        f"<th{' class=num' if is_number else ''}>{_text(column.name)}</th>"
        for column, is_number in zip(table.columns, numeric, strict=True)
    )
    if not table.rows:
        body = f'<tr><td class="empty" colspan="{len(table.columns)}">None in this period.</td></tr>'
    else:
        body = "".join(
            "<tr>"
            + "".join(
                f"<td{' class=num' if isinstance(cell, float | int) else ''}>{_text(_cell(cell, column.unit))}</td>"
                for cell, column in zip(row, table.columns, strict=False)
            )
            + "</tr>"
            for row in table.rows
        )
    return f"<table><caption>{_text(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(chart: Chart) -> str:
    source = "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")
    # The picture carries its title: the caption says where it comes from.
    if chart.board:
        origin = f"From the {chart.board} dashboard" + (f", panel {chart.panel}" if chart.panel != chart.title else "")
    else:
        origin = chart.panel[:1].upper() + chart.panel[1:]
    missing = "" if chart.has_data else " — no data in this period"
    return (
        f'<figure class="chart"><img src="{source}" alt="{_text(chart.title)}">'
        f"<figcaption>{_text(origin)}{_text(missing)}.</figcaption></figure>"
    )


# ------------------------------------------------------------------------------------------------ values


def _value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_VALUE
    if unit == "percentunit" and 0.999 <= value < 1:  # 99.995% is not 100%: an SLA is read to the last digit
        return f"{math.floor(value * 100_000) / 1000:.3f}".rstrip("0").rstrip(".") + "%"
    return format_value(value, unit)


def _cell(value: Value, unit: str) -> str:
    if value is None:
        return NO_VALUE
    if isinstance(value, str):
        return value
    return _value(float(value), unit or "none")


def _text(text: str) -> str:
    return escape(text, quote=True)
