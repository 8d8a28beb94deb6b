"""Shared by the dashboard tests (and handy by hand): the boards' queries as plain PromQL, and which of
them return nothing from a given Prometheus.

    .venv/bin/python -m tests.dashboards http://127.0.0.1:9090     # lists every panel query with no data
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from exporter.dashboards.boards import BOARDS
from exporter.dashboards.model import Board, Panel, Query, resolved


@dataclass(frozen=True)
class PanelQuery:
    board: Board
    panel: Panel
    query: Query

    @property
    def promql(self) -> str:
        return resolved(self.query.expr)

    def __str__(self) -> str:
        return f"{self.board.title} / {self.panel.title}: {self.promql}"


def panel_queries() -> Iterator[PanelQuery]:
    for board in BOARDS:
        for panel in board.panels():
            for query in panel.queries:
                yield PanelQuery(board, panel, query)


def answer(prometheus_url: str, promql: str) -> list[object]:
    """The query's result now (an instant query; a range query's last step is the same expression)."""
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=30)
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{promql}: {body.get('error')}")
    result: list[object] = body["data"]["result"]
    return result


def without_data(prometheus_url: str) -> list[PanelQuery]:
    return [query for query in panel_queries() if not answer(prometheus_url, query.promql)]


if __name__ == "__main__":
    empty = without_data(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9090")
    print("\n".join(map(str, empty)) or "every panel query returns data")
    sys.exit(1 if empty else 0)
