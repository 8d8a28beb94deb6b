"""The boards, in the order of the links between them. Adding one: write its module declaring `BOARD`
(see slos.py), give its key a uid in exporter/bundle/rules.py DASHBOARDS, and add its line here."""

from __future__ import annotations

from exporter.dashboards.boards import probes, slos, traffic
from exporter.dashboards.model import Board

BOARDS: tuple[Board, ...] = (probes.BOARD, traffic.BOARD, slos.BOARD)
