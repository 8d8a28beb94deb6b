"""The shipped Grafana dashboards: generated from exporter/dashboards/ and committed, and written to the
rules of grafana/dashboard-linter (the names in the tests below are its rule names) plus Pulse's own:
every panel says what it shows, in which unit, from which data source, with queries that are plain
PromQL once Grafana's variables are filled in."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.bundle.rules import DASHBOARDS
from exporter.dashboards import generate
from exporter.dashboards.boards import BOARDS
from exporter.dashboards.grafana import dashboard_json
from exporter.dashboards.model import VARIABLE, Board, Panel, Query, Row, Threshold, resolved
from tests.dashboards import PanelQuery, panel_queries
from tests.rules import metric_names_in

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
RANGE_FUNCTIONS = ("rate", "irate", "increase", "resets", "changes")


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))]


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too (Grafana keeps them in the row's own "panels")."""
    return [inner for panel in dashboard["panels"] for inner in [panel, *panel.get("panels", [])]]


def test_the_committed_dashboards_are_what_the_boards_generate() -> None:
    assert generate.differences(DASHBOARDS_DIR, generate.generate()) == []
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "dashboards", "generate", "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_board_has_its_uid_and_every_uid_a_board() -> None:
    """Alerts link to these uids (exporter/bundle/rules.py): each must be a board, a board each."""
    assert sorted(board.key for board in BOARDS) == sorted(DASHBOARDS)
    for dashboard in dashboards():
        assert 8 <= len(dashboard["uid"]) <= 40
        assert dashboard["title"]


def test_template_datasource_rule() -> None:
    for dashboard in dashboards():
        (datasource,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert datasource["name"] == "datasource"
        assert datasource["query"] == "prometheus"


def test_panel_datasource_rule_and_panel_title_description_and_units_rules() -> None:
    for dashboard in dashboards():
        for panel in all_panels(dashboard):
            if panel["type"] == "row":
                continue
            where = f"{dashboard['title']} / {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["title"], where
            assert len(panel["description"]) >= 20, where
            assert panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["targets"], f"{where}: panel-no-targets-rule"
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where


def test_a_collapsed_row_carries_its_panels_and_the_next_row_follows_it() -> None:
    """Grafana shows top-level panels whatever the row above them: a collapsed row must hold its own."""

    def panel(title: str) -> Panel:
        return Panel(title, "A panel for the layout test.", "short", (Query("up"),), width=12)

    board = Board(
        key="system",
        title="Layout",
        description="Rows open and collapsed.",
        rows=(
            Row("Open", (panel("a"), panel("b"), panel("c"))),
            Row("Closed", (panel("d"), panel("e"), panel("f")), collapsed=True),
            Row("Open again", (panel("g"),)),
        ),
    )
    top = json.loads(dashboard_json(board))["panels"]
    assert [(p["type"], p["title"]) for p in top] == [
        ("row", "Open"), ("timeseries", "a"), ("timeseries", "b"), ("timeseries", "c"),
        ("row", "Closed"), ("row", "Open again"), ("timeseries", "g"),
    ]  # fmt: skip
    open_row, closed, open_again = (p for p in top if p["type"] == "row")
    assert open_row["collapsed"] is False
    assert open_row["panels"] == []
    assert closed["collapsed"] is True
    assert [p["title"] for p in closed["panels"]] == ["d", "e", "f"]
    # Inside the closed row, panels sit where they will when it opens: under it, wrapping at 24 columns.
    assert [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in closed["panels"]] == [
        (0, closed["gridPos"]["y"] + 1), (12, closed["gridPos"]["y"] + 1), (0, closed["gridPos"]["y"] + 9),
    ]  # fmt: skip
    assert closed["gridPos"]["y"] == 1 + 8 + 8  # under the open row's two lines of panels
    assert open_again["gridPos"]["y"] == closed["gridPos"]["y"] + 1  # the closed row is one line high
    ids = [p["id"] for p in all_panels({"panels": top})]
    assert len(ids) == len(set(ids)) == 10


def test_every_board_panel_is_in_its_dashboard_once() -> None:
    for board in BOARDS:
        dashboard = json.loads(dashboard_json(board))
        titles = [p["title"] for p in all_panels(dashboard) if p["type"] != "row"]
        assert titles == [panel.title for panel in board.panels()], board.title
        for row in dashboard["panels"]:
            if row["type"] == "row":
                assert bool(row["panels"]) == row["collapsed"], (board.title, row["title"])


def test_uneditable_dashboard_and_links_between_the_boards() -> None:
    for dashboard in dashboards():
        assert dashboard["editable"] is False
        assert "pulse" in dashboard["tags"]
        assert any(link["type"] == "dashboards" and link["tags"] == ["pulse"] for link in dashboard["links"])


def test_template_on_time_change_reload_rule_and_variables_are_used() -> None:
    for board in BOARDS:
        exprs = [query.expr for panel in board.panels() for query in panel.queries]
        for variable in board.variables:
            assert any(f"${variable.name}" in expr for expr in exprs), f"{board.title}: ${variable.name} unused"
    for dashboard in dashboards():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["refresh"] == 2, variable["name"]


@pytest.mark.parametrize("query", list(panel_queries()), ids=str)
def test_target_rate_interval_and_counter_agg_rules(query: PanelQuery) -> None:
    """rate() and irate() over `$__rate_interval` (target-rate-interval-rule); a counter (`_total`) only
    inside a range function (target-counter-agg-rule); every variable the board defines, and no other."""
    expr = query.query.expr
    for match in re.finditer(r"\b(rate|irate)\s*\(", expr):
        window = re.search(r"\[([^\]]*)\]", expr[match.end() :])
        assert window is not None, expr
        assert window.group(1) == "$__rate_interval", expr
    for name in metric_names_in(expr):
        if name.endswith("_total"):
            before = expr[: expr.index(name)].rstrip()
            assert before.endswith(tuple(f"{function}(" for function in RANGE_FUNCTIONS)), (name, expr)
    defined = {"datasource", "__rate_interval", "__range", *(variable.name for variable in query.board.variables)}
    assert set(VARIABLE.findall(expr)) <= defined, expr


def test_target_job_and_instance_rules() -> None:
    """A board with a `job` or `instance` variable filters every query by it."""
    for board in BOARDS:
        names = {variable.name for variable in board.variables} & {"job", "instance"}
        for panel in board.panels():
            for query in panel.queries:
                for name in names:
                    assert f"${name}" in query.expr, (board.title, panel.title, query.expr)


def test_provisioning_points_at_the_datasource_and_the_dashboards() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    assert source["isDefault"] is True
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "pulse.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("dashboards")


def test_thresholds_ascend_and_a_higher_is_better_panel_starts_red() -> None:
    """Grafana sorts threshold steps by value: a panel written in another order would colour differently
    from what its author read, so the model refuses it; `base_color` is the colour below the first step."""
    with pytest.raises(ValueError, match="thresholds must ascend"):
        Panel("Budget", "The error budget left.", "percentunit", (Query("x"),),
              thresholds=(Threshold(0.25, "yellow"), Threshold(0, "red")))  # fmt: skip
    for dashboard in dashboards():
        for panel in all_panels(dashboard):
            if panel["type"] == "row":
                continue
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps[0]["value"] is None
            values = [step["value"] for step in steps[1:]]
            assert values == sorted(values), panel["title"]
    slos = json.loads((DASHBOARDS_DIR / "pulse-slos.json").read_text())
    budget = next(panel for panel in all_panels(slos) if panel["title"] == "Budget left, rolling period")
    assert [step["color"] for step in budget["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        "red",
        "yellow",
        "green",
    ]


def test_the_dashboards_range_is_a_day_outside_grafana() -> None:
    """`$__range` (a figure over the dashboard's time range, as MTTR) is the overview's default day for the
    no-data test; the pictures replace it with the range they draw (tests/test_render.py)."""
    assert resolved("increase(x_sum[$__range]) / $__range_s") == "increase(x_sum[1d]) / .+"


def test_a_label_replace_capture_group_is_no_variable() -> None:
    """Grafana leaves `$1` alone (no variable has that name); so do the pictures and the no-data test."""
    expr = 'label_replace(x{job=~"$job"}, "group", "$1", "rule_group", ".*;(.*)")'
    assert resolved(expr) == 'label_replace(x{job=~".+"}, "group", "$1", "rule_group", ".*;(.*)")'
