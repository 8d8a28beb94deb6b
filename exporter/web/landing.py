"""The landing page (/): version, config and reload state, links, the status tables each collector
offers (collectors/base.py: StatusTable), and each collector's last scrape.

Plain HTML, one table per section. Every value is escaped: error messages quote what remote servers
and databases said.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence

from exporter import __version__
from exporter.app import Exporter
from exporter.collectors.base import Cell, StatusTable, milliseconds


def landing_page(exporter: Exporter) -> str:
    now = time.time()
    reload_state = "successful" if exporter.reload_successful else "FAILED (running config kept)"
    status_link = '<li><a href="status">Status page</a></li>' if exporter.config.status.enabled else ""
    sections = [
        _table(table, now) for collector in exporter.collectors for table in collector.status_tables() if table.rows
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Pulse exporter</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#1f2328}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{padding:.3em .8em;text-align:left;vertical-align:top;border-bottom:1px solid #d0d7de}}
th{{background:#f6f8fa}}
td{{max-width:46em}} .error{{font-family:monospace;font-size:90%;overflow-wrap:anywhere;word-break:break-word}}
.ok{{color:#1a7f37;font-weight:bold}} .bad{{color:#cf222e;font-weight:bold}} .none{{color:#6e7781}}
.ok,.bad,.none,.when,.links{{white-space:nowrap}}
</style></head>
<body><h1>Pulse exporter</h1>
<p>Version {html.escape(__version__)} &middot; config {html.escape(exporter.config_name)}
&middot; last reload <span class="{"ok" if exporter.reload_successful else "bad"}">{reload_state}</span></p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li><li><a href="sd/probes">Probe targets (http_sd)</a></li>{status_link}</ul>
{"".join(sections)}
{_collector_table(exporter, now)}</body></html>
"""


def _collector_table(exporter: Exporter, now: float) -> str:
    rows = []
    for collector in exporter.collectors:
        outcome = exporter.last_outcomes.get(collector.name)
        if outcome is None:
            cells = [Cell("not scraped yet", "none")]
        elif outcome.success:
            cells = [Cell(f"ok in {milliseconds(outcome.seconds)}", "ok")]
        else:
            cells = [Cell("FAILED", "bad"), Cell(outcome.error, "error")]
        state = " ".join(_cell(cell, now) for cell in cells)
        note = collector.status_note()
        if note is not None:
            state += f" ({_cell(note, now)})"
        rows.append([html.escape(collector.name), state])
    return _html_table("Collectors", ["Collector", "Last scrape"], rows)


def _table(table: StatusTable, now: float) -> str:
    rows = [[_cell(cell, now) for cell in row] for row in table.rows]
    return _html_table(table.title, table.headings, rows, table.note)


def _html_table(title: str, headings: Iterable[str], rows: Iterable[Sequence[str]], note: str = "") -> str:
    """A titled table; `rows` hold HTML already escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    caption = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<h2>{html.escape(title)}</h2>{caption}<table><tr>{head}</tr>\n{body}</table>\n"


def _cell(cell: Cell, now: float) -> str:
    """A cell's HTML; empty text gives an empty cell, whatever its style."""
    if cell.when is not None:
        return f'<span class="when">{html.escape(_when(cell.when, now))}</span>'
    if cell.links:
        links = " ".join(f'<a href="{html.escape(link.href)}">{html.escape(link.label)}</a>' for link in cell.links)
        return f'<span class="links">{links}</span>'
    if not cell.text or cell.style == "text":
        return html.escape(cell.text)
    return f'<span class="{cell.style}">{html.escape(cell.text)}</span>'


def _when(timestamp: float, now: float) -> str:
    """`2025-06-01 12:00:03 UTC (5 s ago)`."""
    moment = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    age = max(0.0, now - timestamp)
    if age < 120:
        ago = f"{age:.0f} s"
    elif age < 7200:
        ago = f"{age / 60:.0f} min"
    else:
        ago = f"{age / 3600:.1f} h"
    return f"{moment} ({ago} ago)"
