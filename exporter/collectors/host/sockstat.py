"""Socket counts and memory from /proc/net/sockstat and /proc/net/sockstat6, as node_exporter's sockstat
collector: `node_sockstat_sockets_used`, and `node_sockstat_<PROTOCOL>_<field>` for each protocol line
(TCP, UDP, UDPLITE, RAW, FRAG and their IPv6 twins), with `<PROTOCOL>_mem_bytes` for the `mem` pages
in bytes. A file that is absent (IPv4 or IPv6 off) is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.config import Toggle
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, SteadyFamilies, name_part, read_text

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# The fields node_exporter exports, in its order; others a kernel may add are left out, as there.
FIELDS = ("inuse", "orphan", "tw", "alloc", "mem", "memory")


class SockstatCollector(BlockingCollector):
    def __init__(self, config: Toggle, proc_path: str = "/proc") -> None:
        super().__init__("host.sockstat", config)
        self.paths = (f"{proc_path}/net/sockstat", f"{proc_path}/net/sockstat6")
        self._families = SteadyFamilies(GaugeMetricFamily)

    def collect_blocking(self) -> Sequence[Metric]:
        families: list[Metric] = []
        for ipv6, path in enumerate(self.paths):
            try:
                text = read_text(path)
            except FileNotFoundError:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                self._line(line, bool(ipv6), path, number, families)
        return families

    def _line(self, line: str, ipv6: bool, path: str, number: int, families: list[Metric]) -> None:
        protocol, *pairs = line.split() or [""]
        if not pairs or len(pairs) % 2 or not protocol.endswith(":"):
            raise MalformedFileError(path, number, f"expected '<PROTOCOL>: <key> <value> ...', got {line[:80]!r}")
        try:
            values = {pairs[i]: int(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        except ValueError:
            raise MalformedFileError(path, number, f"a value is not a number in {line[:80]!r}") from None
        protocol = name_part(protocol[:-1], path, number)
        if protocol == "sockets":
            if not ipv6:  # node_exporter reports only the IPv4 file's count
                families.append(
                    self._families.get(
                        "node_sockstat_sockets_used", "Number of IPv4 sockets in use.", values.get("used", 0)
                    )
                )
            return
        if "mem" in values:
            values["mem_bytes"] = values["mem"] * PAGE_SIZE
        for field in (*FIELDS, "mem_bytes"):
            if field in values or field == "inuse":  # node_exporter always has inuse (0 when absent)
                families.append(
                    self._families.get(
                        f"node_sockstat_{protocol}_{field}",
                        f"Number of {protocol} sockets in state {field}.",
                        values.get(field, 0),
                    )
                )


COLLECTOR = HostCollectorKind(name="sockstat", config=Toggle, default=Toggle(), build=SockstatCollector)
