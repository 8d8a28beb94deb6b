"""Config of the host collector: `collectors.host` in pulse.yml.

Defaults follow Debian's node_exporter 1.5, so the same filesystems and devices show up.
An `include_*` regex given without its `exclude_*` twin drops that default exclude, as node_exporter's
mutually exclusive flags do: asking for `/run` explicitly must not be silently overruled.
Regexes search anywhere in the value (write `^...$` to anchor), like node_exporter's.
"""

from __future__ import annotations

from typing import Any

import pydantic

from exporter.config.types import Regex, StrictModel

DEFAULT_MOUNTPOINTS_EXCLUDE = r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
DEFAULT_FSTYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue"
    r"|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$"
)
DEFAULT_DISKS_EXCLUDE = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
DEFAULT_NETWORK_EXCLUDE = r"^lo$"


def _drop_default_excludes(data: Any, *pairs: tuple[str, str]) -> Any:
    if isinstance(data, dict):
        for include, exclude in pairs:
            if data.get(include) is not None and exclude not in data:
                data = {**data, exclude: None}
    return data


class Toggle(StrictModel):
    enabled: bool = True


class FilesystemConfig(StrictModel):
    enabled: bool = True
    include_mountpoints: Regex | None = None
    exclude_mountpoints: Regex | None = pydantic.Field(default=DEFAULT_MOUNTPOINTS_EXCLUDE, validate_default=True)
    include_fstypes: Regex | None = None
    exclude_fstypes: Regex | None = pydantic.Field(default=DEFAULT_FSTYPES_EXCLUDE, validate_default=True)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _include_replaces_default(cls, data: Any) -> Any:
        return _drop_default_excludes(
            data, ("include_mountpoints", "exclude_mountpoints"), ("include_fstypes", "exclude_fstypes")
        )


class DeviceFilter(StrictModel):
    enabled: bool = True
    include_devices: Regex | None = None
    exclude_devices: Regex | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _include_replaces_default(cls, data: Any) -> Any:
        return _drop_default_excludes(data, ("include_devices", "exclude_devices"))


class DiskConfig(DeviceFilter):
    exclude_devices: Regex | None = pydantic.Field(default=DEFAULT_DISKS_EXCLUDE, validate_default=True)


class NetworkConfig(DeviceFilter):
    exclude_devices: Regex | None = pydantic.Field(default=DEFAULT_NETWORK_EXCLUDE, validate_default=True)


class ProcessMatch(StrictModel):
    """Which processes belong to a group; every matcher given must match."""

    name: Regex | None = None  # the kernel's process name (comm, at most 15 characters)
    cmdline: Regex | None = None  # the command line, arguments joined by spaces
    exe: Regex | None = None  # the path of the executable

    @pydantic.model_validator(mode="after")
    def _needs_one(self) -> ProcessMatch:
        if self.name is None and self.cmdline is None and self.exe is None:
            raise ValueError("give at least one of name, cmdline, exe")
        return self


class ProcessGroup(StrictModel):
    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    match: ProcessMatch


class HostConfig(StrictModel):
    enabled: bool = True
    cpu: Toggle = Toggle()
    memory: Toggle = Toggle()
    loadavg: Toggle = Toggle()
    system: Toggle = Toggle()  # boot time, clock, procs, context switches, uname, file handles, conntrack
    vmstat: Toggle = Toggle()  # paging, swapping, page faults, OOM kills
    timex: Toggle = Toggle()  # clock synchronisation (adjtimex)
    filesystem: FilesystemConfig = FilesystemConfig()
    disk: DiskConfig = DiskConfig()
    network: NetworkConfig = NetworkConfig()
    processes: list[ProcessGroup] = []

    @pydantic.field_validator("processes")
    @classmethod
    def _unique_names(cls, groups: list[ProcessGroup]) -> list[ProcessGroup]:
        names = [group.name for group in groups]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"process group names must be unique; repeated: {', '.join(duplicates)}")
        return groups


def allowed(value: str, include: Regex | None, exclude: Regex | None) -> bool:
    if include is not None and not include.search(value):
        return False
    return exclude is None or not exclude.search(value)
