"""What a host collector module declares, as `COLLECTOR = HostCollectorKind(...)`: its key under
`collectors.host`, how that key is validated and defaulted, and how its collector is built.

collectors/host/__init__.py lists the kinds and builds `HostConfig` (one key per kind) from the list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from exporter.collectors.base import Collector

SettingsT = TypeVar("SettingsT")


def switched_on(settings: Any) -> bool:
    """The usual test of whether a collector is wanted: its settings' `enabled` key."""
    return bool(settings.enabled)


@dataclass(frozen=True)
class HostCollectorKind(Generic[SettingsT]):
    name: str  # its key under collectors.host; the collector is named host.<name>
    config: object  # what pydantic validates the key with: a model, or a type such as list[ProcessGroup]
    default: SettingsT  # the settings when the key is absent
    build: Callable[[SettingsT], Collector]
    wanted: Callable[[SettingsT], bool] = switched_on  # whether these settings ask for the collector
