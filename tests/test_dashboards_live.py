"""No dashboard panel shows "No data" on the demo: every query of every board (exporter/dashboards/boards,
whichever boards exist) returns at least one series from a real Prometheus running the shipped config
and rules over the live demo, with last week's history backfilled for the week-over-week panels.

The stack is tests/stack.py's (the one the alert pipeline's end-to-end test runs), with the committed
rules (prometheus/rules/*.yml, unshortened: the boards read the series they record), the shop's
simulated visitors (2xx, 4xx and 5xx in its access log), and the probe target where nothing listens
(a failing probe). Queries are the boards' own, made plain by model.resolved ($__rate_interval = 1m,
every variable All), asked as instant queries: what the last point of each Grafana panel shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from exporter.dashboards.boards import BOARDS
from exporter.dashboards.model import Board, resolved
from tests.dashboards import PanelQuery, panel_queries
from tests.helpers import wait_until
from tests.rules import metric_names_in
from tests.stack import PROMETHEUS_OWN, Stack, StackOptions, running_stack, shipped_rules

pytestmark = pytest.mark.integration

# Last week's slice: the week-over-week panels and rules look at `offset 1w` over windows up to 1h
# (rates, the business comparisons) or 1d (increase over a day needs two samples in it, not a full
# day). So: history from 2 hours before last week's instant (the generator's first ~25 minutes are
# not steady: sessions in progress build up), backfilled from 90 minutes before it (a full hour
# window, plus a margin), to 20 minutes after (more than this module takes), every 15 s (four
# samples in a 1m $__rate_interval).
OPTIONS = StackOptions(
    rule_files=shipped_rules,
    sessions_per_second=2.0,
    history_before=timedelta(hours=2),
    history_after=timedelta(minutes=20),
    backfill_before=timedelta(minutes=90),
    backfill_step="15s",
    visitors=5,
    keep_failing_target=True,
)
# Until every query of a board answers: rate() needs two scrapes, the SLO rules a few evaluations (their
# 30-day ratios are made from the 5-minute ones). Generous: the test machine is shared and often loaded.
DATA_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dashboards"), OPTIONS) as stack:
        for job in ("pulse", "pulse-probes"):  # rate() and friends see data from the third scrape
            query = f'count_over_time(up{{job="{job}"}}[1m]) >= 3'
            stack.prometheus.wait_for_samples(query, f"three scrapes of {job}")
        # The incident the stack seeded, acknowledged and resolved now that Prometheus has seen it open: the
        # Incidents row's mean times have an incident of the range to show.
        stack.close_seeded_incident()
        for _ in range(3):  # recording rules built on recording rules: a few rounds
            stack.prometheus.wait_for_rules_evaluated_after(time.time())
        yield stack


def queries_of(board: Board) -> list[PanelQuery]:
    return [query for query in panel_queries() if query.board is board]


@pytest.mark.parametrize("board", BOARDS, ids=[board.key for board in BOARDS])
def test_every_panel_query_of_the_board_returns_data(stack: Stack, board: Board) -> None:
    queries = queries_of(board)
    assert queries, f"{board.key} has no panel queries"
    empty: list[PanelQuery] = []

    def all_answer() -> bool:
        nonlocal empty
        empty = [query for query in queries if not stack.prometheus.query(query.promql)]
        return not empty

    try:
        wait_until(all_answer, DATA_TIMEOUT, "every panel query answering", interval=1.0)
    except AssertionError:
        pytest.fail("panels showing No data on the demo:\n" + "\n".join(map(str, empty)))


@pytest.mark.parametrize("board", BOARDS, ids=[board.key for board in BOARDS])
def test_every_metric_a_panel_or_variable_uses_exists_or_is_recorded(stack: Stack, board: Board) -> None:
    """A misspelt metric is a panel that is empty forever: every name a panel's query or a variable
    selects is among the series Prometheus holds, or is a recording rule's."""
    records = {rule["record"] for rule in stack.rules() if "record" in rule}
    held = set(stack.prometheus.api("label/__name__/values"))
    used = {(str(query), name) for query in queries_of(board) for name in metric_names_in(query.promql)} | {
        (f"{board.title} / variable {variable.name}: {variable.metric}", name)
        for variable in board.variables
        for name in metric_names_in(resolved(variable.metric))
    }
    unknown = sorted((where, name) for where, name in used if name not in held | records | PROMETHEUS_OWN)
    assert unknown == []


@pytest.mark.parametrize("board", BOARDS, ids=[board.key for board in BOARDS])
def test_every_variable_has_values(stack: Stack, board: Board) -> None:
    """A variable lists `label_values(metric, label)`: with none, Grafana has nothing to choose."""
    for variable in board.variables:
        result = stack.prometheus.query(f"group by ({variable.source_label}) ({resolved(variable.metric)})")
        values = [row["metric"].get(variable.source_label) for row in result]
        assert any(values), f"{board.title}: variable {variable.name} has no values ({variable.metric})"
