"""The host collector: node_exporter-compatible machine metrics plus named process groups.

Each subsystem is its own collector (`host.cpu`, `host.filesystem`, ...), switchable in the config and
reported separately in `pulse_exporter_collector_success`, so one failing subsystem hides nothing else.
Each module declares its collector as `COLLECTOR` (see kind.py); KINDS lists them, and `HostConfig`
(`collectors.host` in pulse.yml) gets one key per kind, in this order. Adding one: write the module and
add its line to KINDS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from exporter.collectors.base import Collector
from exporter.collectors.host import (
    cpu,
    disk,
    entropy,
    filesystem,
    loadavg,
    mdstat,
    memory,
    netstat,
    network,
    pressure,
    processes,
    sockstat,
    softnet,
    system,
    textfile,
    timex,
    vmstat,
)
from exporter.collectors.host.kind import HostCollectorKind
from exporter.config.types import StrictModel

SettingsT = TypeVar("SettingsT")

KINDS: tuple[HostCollectorKind[Any], ...] = (
    cpu.COLLECTOR,
    memory.COLLECTOR,
    loadavg.COLLECTOR,
    system.COLLECTOR,
    vmstat.COLLECTOR,
    timex.COLLECTOR,
    filesystem.COLLECTOR,
    disk.COLLECTOR,
    network.COLLECTOR,
    netstat.COLLECTOR,
    sockstat.COLLECTOR,
    softnet.COLLECTOR,
    pressure.COLLECTOR,
    entropy.COLLECTOR,
    mdstat.COLLECTOR,
    processes.COLLECTOR,
    textfile.COLLECTOR,
)


class HostBase(StrictModel):
    """What `collectors.host` has besides one key per kind, which HostConfig adds from KINDS."""

    enabled: bool = True

    def settings(self, kind: HostCollectorKind[SettingsT]) -> SettingsT:
        """One collector's settings, typed: `config.collectors.host.settings(cpu.COLLECTOR).enabled`."""
        settings: SettingsT = getattr(self, kind.name)
        return settings


if TYPE_CHECKING:
    HostConfig = HostBase
else:
    HostConfig = pydantic.create_model(
        "HostConfig", __base__=HostBase, **{kind.name: (kind.config, kind.default) for kind in KINDS}
    )


def build(config: HostConfig) -> list[Collector]:
    if not config.enabled:
        return []
    return [kind.build(config.settings(kind)) for kind in KINDS if kind.wanted(config.settings(kind))]
