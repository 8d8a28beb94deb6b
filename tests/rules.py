"""Shared by the rule tests: the shipped rule files and their promtool unit tests, as data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.bundle.sets import RULE_SETS

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
UNIT_TESTS_DIR = PROMETHEUS_DIR / "tests"
SETTINGS_FILE = PROMETHEUS_DIR / "settings.yml"
RUNBOOKS_DIR = ROOT / "docs" / "runbooks"
SET_NAMES = tuple(rule_set.name for rule_set in RULE_SETS)


@dataclass(frozen=True)
class ShippedRule:
    file: Path
    group: str
    rule: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.rule.get("alert") or self.rule["record"])

    @property
    def is_alert(self) -> bool:
        return "alert" in self.rule


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def shipped_rules() -> Iterator[ShippedRule]:
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield ShippedRule(path, group["name"], rule)


def shipped_alerts() -> list[ShippedRule]:
    return [rule for rule in shipped_rules() if rule.is_alert]


def unit_test_files() -> list[Path]:
    return sorted(UNIT_TESTS_DIR.glob("*.test.yml"))


def alert_rule_tests() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every `alert_rule_test` entry of every unit test file: {eval_time, alertname, exp_alerts}."""
    for path in unit_test_files():
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            for case in test.get("alert_rule_test", []):
                yield path, case


# PromQL words that look like metric names in an expression but are not.
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
                 "bool", "inf", "nan"}  # fmt: skip


def metric_names_in(expr: str) -> set[str]:
    """The metric names an expression selects. A small lexer, enough for the shipped rules: strings,
    label matchers, label lists after by/on/..., and range/subquery brackets are blanked first; what is
    left that looks like a name and is not a function call or a PromQL word is a metric."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    found = re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {match.group(1) for match in found if match.group(1).lower() not in _PROMQL_WORDS}


def runbook_headings(set_name: str) -> set[str]:
    path = RUNBOOKS_DIR / f"{set_name}.md"
    if not path.exists():
        return set()
    return {match.group(1).strip() for match in re.finditer(r"^## (.+)$", path.read_text(), re.MULTILINE)}
