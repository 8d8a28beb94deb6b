"""What a rule-set module declares, as `RULE_SET = RuleSet(...)`: its name, its tunable values, and the
function that builds its rules from them.

The name is everything's key: the section of prometheus/settings.yml, the file prometheus/rules/<name>.yml,
the runbooks docs/runbooks/<name>.md and the unit tests prometheus/tests/<name>.test.yml.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

import pydantic

from exporter.bundle.rules import Group
from exporter.config.types import StrictModel

# A Prometheus duration as rule files write it ("5m", "1h30m"): kept as text, so the rules show what was set.
PromDuration = Annotated[str, pydantic.StringConstraints(pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$")]


class Selectors(StrictModel):
    """Label matchers that find the series the rules read (Pulse's, Prometheus' and Alertmanager's own),
    as the scrape config names its jobs (prometheus.yml)."""

    pulse: str = 'job="pulse"'  # Pulse's /metrics: host, KPIs, access logs, jobs, its own health
    probes: str = 'job="pulse-probes"'  # /probe results, one series set per target and module
    prometheus: str = 'job="prometheus"'  # Prometheus' own /metrics
    alertmanager: str = 'job="alertmanager"'  # Alertmanager's /metrics


class RuleSetSettings(StrictModel):
    """What every set's section has; a set's own model adds its thresholds, each with a default."""

    enabled: bool = True  # false: the set's file is not generated (and is removed)
    disabled_alerts: list[str] = pydantic.Field(default_factory=list)  # alert names to leave out


SettingsT = TypeVar("SettingsT", bound=RuleSetSettings)


@dataclass(frozen=True)
class RuleSet(Generic[SettingsT]):
    name: str
    title: str  # the first line of the generated file and of its runbook
    settings: type[SettingsT]
    build: Callable[[SettingsT, Selectors], Sequence[Group]]
