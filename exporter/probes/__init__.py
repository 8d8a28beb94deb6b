"""Synthetic probes: blackbox_exporter-compatible modules, one prober module per protocol.

PROBERS maps a module's `prober:` value to its Prober; adding a protocol is one module plus one line here.
"""

from __future__ import annotations

from exporter.probes.base import Prober
from exporter.probes.dns import PROBER as DNS
from exporter.probes.http import PROBER as HTTP
from exporter.probes.icmp import PROBER as ICMP
from exporter.probes.journey import PROBER as JOURNEY
from exporter.probes.tcp import PROBER as TCP

PROBERS: dict[str, Prober] = {p.name: p for p in (DNS, HTTP, ICMP, JOURNEY, TCP)}  # type: ignore[type-arg]
