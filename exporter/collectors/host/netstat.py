"""Network protocol counters from /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6, as node_exporter's
netstat collector: `node_netstat_<Protocol>_<Field>`, untyped, for the fields `fields` selects.

The default selection is node_exporter's `--collector.netstat.fields` default (TCP retransmits, resets,
listen drops and overflows, SYN cookies, UDP buffer errors, ...: what node-mixin's network panels use).
The first two files hold pairs of lines, a header of field names and a line of values; snmp6 holds one
`<Protocol>6<Field> <value>` per line. /proc/net/snmp6 is absent when IPv6 is off, and then skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic
from prometheus_client.core import UnknownMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import BlockingCollector
from exporter.collectors.host.kind import HostCollectorKind
from exporter.collectors.host.procfs import MalformedFileError, SteadyFamilies, name_part, read_text
from exporter.config.types import Regex, StrictModel

DEFAULT_FIELDS = (
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)
# Each distinct header line is parsed once; a kernel has a handful. The bound keeps hostile files in check.
MAX_CACHED_HEADERS = 64
MAX_CACHED_KEYS = 1024  # snmp6 has about 100

# For one header line: the selected (column, metric name, help).
Selection = tuple[tuple[int, str, str], ...]


class NetstatConfig(StrictModel):
    enabled: bool = True
    # Which `<Protocol>_<Field>` keys to export; searched anywhere, as node_exporter's regex is.
    fields: Regex = pydantic.Field(default=DEFAULT_FIELDS, validate_default=True)


class NetstatCollector(BlockingCollector):
    def __init__(self, config: NetstatConfig, proc_path: str = "/proc") -> None:
        super().__init__("host.netstat", config)
        self.settings = config
        self.paired_paths = (f"{proc_path}/net/netstat", f"{proc_path}/net/snmp")
        self.snmp6_path = f"{proc_path}/net/snmp6"
        self._families = SteadyFamilies(UnknownMetricFamily)
        self._selections: dict[str, tuple[int, Selection]] = {}  # header -> (its field count, selection)
        self._wanted: dict[str, tuple[str, str] | None] = {}  # snmp6 key -> (name, help), None: not selected
        self._selected6: dict[str, tuple[str, str]] = {}  # the selected ones alone, in the file's order

    def collect_blocking(self) -> Sequence[Metric]:
        families: list[Metric] = []
        for path in self.paired_paths:
            self._paired(path, families)
        try:
            text = read_text(self.snmp6_path)
        except FileNotFoundError:
            return families  # IPv6 is off
        self._snmp6(text, families)
        return families

    def _paired(self, path: str, families: list[Metric]) -> None:
        lines = read_text(path).splitlines()
        if len(lines) % 2:
            raise MalformedFileError(path, len(lines), "a header line without its line of values")
        for index in range(0, len(lines), 2):
            header, values = lines[index], lines[index + 1].split()
            cached = self._selections.get(header)
            width, selection = cached if cached is not None else self._select(header, path, index + 1)
            if len(values) != width:
                raise MalformedFileError(path, index + 2, "the values do not match the header's field count")
            for column, name, help_text in selection:
                families.append(self._families.get(name, help_text, _number(values[column], path, index + 2)))

    def _select(self, header: str, path: str, line_number: int) -> tuple[int, Selection]:
        protocol, *fields = header.split()
        if not protocol.endswith(":"):
            raise MalformedFileError(path, line_number, f"expected '<Protocol>: <fields>', got {header[:80]!r}")
        protocol = name_part(protocol[:-1], path, line_number)
        selection = tuple(
            (column, f"node_netstat_{protocol}_{field}", f"Statistic {protocol}{field}.")
            for column, field in enumerate(fields, 1)
            if self.settings.fields.search(f"{protocol}_{name_part(field, path, line_number)}")
        )
        if len(self._selections) < MAX_CACHED_HEADERS:
            self._selections[header] = (len(fields) + 1, selection)
        return len(fields) + 1, selection

    def _snmp6(self, text: str, families: list[Metric]) -> None:
        tokens = text.split()
        if len(tokens) != 2 * text.count("\n"):  # not one `<key> <value>` per line: the careful way
            self._snmp6_by_line(text, families)
            return
        values = dict(zip(tokens[::2], tokens[1::2], strict=True))
        for key in values.keys() - self._wanted.keys():  # keys not seen before: decide once
            self._snmp6_wanted(key, 0)
        if len(self._wanted) >= MAX_CACHED_KEYS:  # a file unlike the kernel's: some keys stay undecided
            self._snmp6_by_line(text, families)
            return
        for key, wanted in self._selected6.items():
            value = values.get(key)
            if value is not None:
                families.append(self._families.get(*wanted, _number(value, self.snmp6_path, 0)))

    def _snmp6_by_line(self, text: str, families: list[Metric]) -> None:
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if len(fields) < 2:
                continue
            key, value = fields[0], fields[1]
            wanted = self._wanted[key] if key in self._wanted else self._snmp6_wanted(key, number)
            if wanted is not None:
                families.append(self._families.get(*wanted, _number(value, self.snmp6_path, number)))

    def _snmp6_wanted(self, key: str, line_number: int) -> tuple[str, str] | None:
        six = key.find("6")
        if six < 0:
            return None  # node_exporter skips keys without the '6' that ends the protocol
        protocol, field = name_part(key, self.snmp6_path, line_number)[: six + 1], key[six + 1 :]
        wanted = None
        if self.settings.fields.search(f"{protocol}_{field}"):
            wanted = (f"node_netstat_{protocol}_{field}", f"Statistic {protocol}{field}.")
        if len(self._wanted) < MAX_CACHED_KEYS:
            self._wanted[key] = wanted
            if wanted is not None:
                self._selected6[key] = wanted
        return wanted


def _number(text: str, path: str, line_number: int) -> float:
    try:
        return float(int(text))
    except ValueError:
        raise MalformedFileError(path, line_number, f"{text[:40]!r} is not a number") from None


COLLECTOR = HostCollectorKind(name="netstat", config=NetstatConfig, default=NetstatConfig(), build=NetstatCollector)
