"""The rule sets, in the order of prometheus/settings.yml. Adding one: write its module (see base.py)
and add its line here."""

from __future__ import annotations

from typing import Any

from exporter.bundle.sets import business, host, incidents, jobs, monitoring, probes, pulse, traffic
from exporter.bundle.sets.base import RuleSet

RULE_SETS: tuple[RuleSet[Any], ...] = (
    pulse.RULE_SET,
    monitoring.RULE_SET,
    probes.RULE_SET,
    traffic.RULE_SET,
    jobs.RULE_SET,
    host.RULE_SET,
    business.RULE_SET,
    incidents.RULE_SET,
)
