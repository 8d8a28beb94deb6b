"""Config pieces shared by the host collectors' own models (each module under collectors/host/ declares its
settings, see kind.py): an on/off switch, include/exclude regexes over device names, and their test.

Defaults follow Debian's node_exporter 1.5, so the same filesystems and devices show up.
An `include_*` regex given without its `exclude_*` twin drops that default exclude, as node_exporter's
mutually exclusive flags do: asking for `/run` explicitly must not be silently overruled.
Regexes search anywhere in the value (write `^...$` to anchor), like node_exporter's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import pydantic

from exporter.config.types import Regex, StrictModel


def drop_default_excludes(data: Any, *pairs: tuple[str, str]) -> Any:
    """For a `mode="before"` validator: each (include, exclude) pair whose include is given alone gets no
    default exclude."""
    if isinstance(data, dict):
        for include, exclude in pairs:
            if data.get(include) is not None and exclude not in data:
                data = {**data, exclude: None}
    return data


class Toggle(StrictModel):
    enabled: bool = True


class DeviceFilter(StrictModel):
    """A collector of per-device figures, and which devices it reports (subclasses set the default exclude)."""

    enabled: bool = True
    include_devices: Regex | None = None
    exclude_devices: Regex | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _include_replaces_default(cls, data: Any) -> Any:
        return drop_default_excludes(data, ("include_devices", "exclude_devices"))

    def allows(self, device: str) -> bool:
        return allowed(device, self.include_devices, self.exclude_devices)


def allowed(value: str, include: Regex | None, exclude: Regex | None) -> bool:
    if include is not None and not include.search(value):
        return False
    return exclude is None or not exclude.search(value)


KeyT = TypeVar("KeyT", bound=Hashable)


class Verdicts(Generic[KeyT]):
    """A filter's verdicts, kept per key: the same devices and mount points come back every scrape, and
    the RE2 searches behind a verdict cost more than a dict lookup (a third of the filesystem
    collector's time, measured). Bounded: past `limit` keys, new ones are tested each time."""

    def __init__(self, test: Callable[[KeyT], bool], limit: int = 4096) -> None:
        self.test, self.limit = test, limit
        self.known: dict[KeyT, bool] = {}

    def __call__(self, key: KeyT) -> bool:
        verdict = self.known.get(key)
        if verdict is None:
            verdict = self.test(key)
            if len(self.known) < self.limit:
                self.known[key] = verdict
        return verdict
