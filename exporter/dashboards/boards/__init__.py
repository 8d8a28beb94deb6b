"""The boards, in the order of the links between them. Adding one: write its module declaring `BOARD`
(see slos.py), give its key a uid in exporter/bundle/rules.py DASHBOARDS, and add its line here."""

from __future__ import annotations

from exporter.dashboards.boards import alerting, behaviour, overview, probes, slos, system, traffic, transactions
from exporter.dashboards.model import Board

BOARDS: tuple[Board, ...] = (
    overview.BOARD,
    probes.BOARD,
    traffic.BOARD,
    system.BOARD,
    behaviour.BOARD,
    transactions.BOARD,
    slos.BOARD,
    alerting.BOARD,
)
