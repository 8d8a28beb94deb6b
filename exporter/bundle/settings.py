"""prometheus/settings.yml: the one file where a user tunes the generated rules.

Its top level says where the links in alerts point and how to find Pulse's series; then one section per
rule set (sets/__init__.py), each with `enabled`, `disabled_alerts` and the set's thresholds. Every key
has a default, so a missing section means the set as shipped. Errors name the file, line and field, as
pulse.yml's do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from exporter.bundle.sets import RULE_SETS
from exporter.bundle.sets.base import RuleSet, RuleSetSettings, Selectors, SettingsT
from exporter.config.loader import load_model
from exporter.config.types import StrictModel

DEFAULT_RUNBOOK_URL = "https://github.com/pulse-monitoring/pulse/blob/main/docs/runbooks"
DEFAULT_GRAFANA_URL = "http://localhost:3000"


class SettingsBase(StrictModel):
    runbook_url: str = DEFAULT_RUNBOOK_URL  # where your copy of docs/runbooks is served
    grafana_url: str = DEFAULT_GRAFANA_URL  # Grafana's external URL, for the dashboard links
    selectors: Selectors = Selectors()

    def section(self, rule_set: RuleSet[SettingsT]) -> SettingsT:
        """One set's settings, typed."""
        section: SettingsT = getattr(self, rule_set.name)
        return section


if TYPE_CHECKING:
    BundleSettings = SettingsBase
else:
    BundleSettings = pydantic.create_model(
        "BundleSettings",
        __base__=SettingsBase,
        **{rule_set.name: (rule_set.settings, rule_set.settings()) for rule_set in RULE_SETS},
    )


def load(path: Path) -> BundleSettings:
    """The settings file, validated; raises ConfigError naming file, line and field."""
    settings: BundleSettings = load_model(BundleSettings, path)
    return settings


def section_fields(rule_set: RuleSet[Any]) -> list[str]:
    """The keys a set's section may have, in order: the common ones, then its own."""
    common = list(RuleSetSettings.model_fields)
    return common + [name for name in rule_set.settings.model_fields if name not in common]
