"""The host collector: node_exporter-compatible machine metrics plus named process groups.

Each subsystem is its own collector (`host.cpu`, `host.filesystem`, ...), switchable in the config and
reported separately in `pulse_exporter_collector_success`, so one failing subsystem hides nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.collectors.base import Collector, CollectorType
from exporter.collectors.host.config import HostConfig
from exporter.collectors.host.cpu import CpuCollector
from exporter.collectors.host.disk import DiskCollector
from exporter.collectors.host.filesystem import FilesystemCollector
from exporter.collectors.host.loadavg import LoadavgCollector
from exporter.collectors.host.memory import MemoryCollector
from exporter.collectors.host.network import NetworkCollector
from exporter.collectors.host.processes import ProcessGroupsCollector
from exporter.collectors.host.system import SystemCollector
from exporter.collectors.host.timex import TimexCollector
from exporter.collectors.host.vmstat import VmstatCollector


def build(config: HostConfig) -> list[Collector]:
    if not config.enabled:
        return []
    factories: list[tuple[bool, Callable[[], Collector]]] = [
        (config.cpu.enabled, lambda: CpuCollector(config.cpu)),
        (config.memory.enabled, lambda: MemoryCollector(config.memory)),
        (config.loadavg.enabled, lambda: LoadavgCollector(config.loadavg)),
        (config.system.enabled, lambda: SystemCollector(config.system)),
        (config.vmstat.enabled, lambda: VmstatCollector(config.vmstat)),
        (config.timex.enabled, lambda: TimexCollector(config.timex)),
        (config.filesystem.enabled, lambda: FilesystemCollector(config.filesystem)),
        (config.disk.enabled, lambda: DiskCollector(config.disk)),
        (config.network.enabled, lambda: NetworkCollector(config.network)),
        (bool(config.processes), lambda: ProcessGroupsCollector(config.processes)),
    ]
    return [factory() for enabled, factory in factories if enabled]


HOST = CollectorType(name="host", config_model=HostConfig, build=build)
