"""A Board as Grafana's dashboard JSON (the v1 model, schemaVersion 39: Grafana 10.4 and later).

What every board gets here, so that no board can forget it (tests/test_dashboards.py checks it as
grafana/dashboard-linter does): a `datasource` variable that every panel and query uses (provisioned
dashboards cannot use `${DS_...}` import inputs), a stable uid, links to the other Pulse boards (tag
`pulse`), a unit and a description on every panel, and `editable: false` (provisioned boards are code).
"""

from __future__ import annotations

import json
from typing import Any

from exporter.bundle.rules import DASHBOARDS
from exporter.dashboards.model import ALL, Board, Panel, Query, Variable

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24


def dashboard_json(board: Board) -> str:
    """The board's JSON text: stable (sorted keys, fixed ids), so a regeneration diff means a change."""
    return json.dumps(_dashboard(board), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _dashboard(board: Board) -> dict[str, Any]:
    return {
        "uid": DASHBOARDS[board.key],
        "title": board.title,
        "description": board.description,
        "tags": ["pulse", *board.tags],
        "editable": False,
        "graphTooltip": 1,  # a shared crosshair: one moment across every panel
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": board.time_from, "to": "now"},
        "refresh": board.refresh,
        "timezone": "browser",
        "links": [
            {
                "type": "dashboards",
                "tags": ["pulse"],
                "asDropdown": True,
                "title": "Pulse",
                "includeVars": True,
                "keepTime": True,
            },
        ],
        "templating": {"list": [_datasource_variable(), *(_variable(v) for v in board.variables)]},
        "panels": _layout(board),
        "annotations": {"list": []},
        "version": 1,
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": f"label_values({variable.metric}, {variable.source_label})", "refId": variable.name},
        "definition": f"label_values({variable.metric}, {variable.source_label})",
        "refresh": 2,  # on time range change: new services and instances appear
        "includeAll": True,
        "allValue": ALL,
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def _layout(board: Board) -> list[dict[str, Any]]:
    """Rows one under another; panels left to right, wrapping at 24 columns. Ids are positions.

    A collapsed row holds its panels in its own "panels" list (Grafana's format: at top level they would
    show under the closed row), placed as if open, and the next row follows it directly."""
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for row in board.rows:
        row_json: dict[str, Any] = {"type": "row", "title": row.title, "collapsed": row.collapsed, "id": next_id,
                                    "panels": [], "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y}}  # fmt: skip
        panels.append(row_json)
        next_id += 1
        row_y = y
        y += 1
        x, row_height = 0, 0
        for panel in row.panels:
            if x + panel.width > GRID_COLUMNS:
                x, y, row_height = 0, y + row_height, 0
            placed = _panel(panel, next_id, {"h": panel.height, "w": panel.width, "x": x, "y": y})
            (row_json["panels"] if row.collapsed else panels).append(placed)
            next_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y = row_y + 1 if row.collapsed else y + row_height
    return panels


def _panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": panel.base_color, "value": None}]
            + [{"color": step.color, "value": step.value} for step in panel.thresholds],
        },
    }
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.kind == "timeseries":
        defaults["custom"] = {"fillOpacity": 10, "showPoints": "never", "spanNulls": False,
                              "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"}}  # fmt: skip
    options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                               "tooltip": {"mode": "multi", "sort": "desc"}}  # fmt: skip
    if panel.kind in ("stat", "gauge", "bargauge"):
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "value", "graphMode": "none", "textMode": "auto"}  # fmt: skip
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [_target(query, index, panel.kind == "table") for index, query in enumerate(panel.queries)],
    }


def _target(query: Query, index: int, as_table: bool) -> dict[str, Any]:
    return {
        "refId": chr(ord("A") + index),
        "datasource": DATASOURCE,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "instant": query.instant,
        "range": not query.instant,
        **({"format": "table"} if as_table else {}),
    }
