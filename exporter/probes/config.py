"""The `probes:` section of pulse.yml: modules (blackbox_exporter's format), targets and the allowlist.

    probes:
      modules_file: blackbox.yml        # optional: the `modules:` section of an existing blackbox.yml
      modules:                          # and/or inline, same format
        tcp_connect: {prober: tcp, timeout: 5s}
      targets:                          # what /probe accepts and /sd/probes serves
        - {target: "db.example.com:5432", module: tcp_connect, labels: {service: db}}
      allow: []                         # extra allowlist: regular expressions over the whole target

A module is built from the registered probers (exporter.probes.PROBERS): each prober's options sit
under its own name (`tcp: {...}`), as in blackbox.yml, so adding a prober needs no edit here. Models
are strict, so a blackbox option Pulse does not support is an error naming it, never silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from exporter.config.loader import ConfigError, _describe, parse_yaml
from exporter.config.types import Duration, Regex, StrictModel
from exporter.probes import PROBERS

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# /sd/probes sets these itself: `module` (so two modules probing one target stay two series) and the
# `__`-prefixed labels Prometheus reserves (`__param_module` becomes the scrape's module= parameter).
_RESERVED_LABELS = ("module",)


class ModuleBase(StrictModel):
    """What every module has; the per-prober option keys are added from PROBERS below."""

    prober: str
    # None (or 0s) = no module limit: the scrape timeout alone decides, 120 s without one, as blackbox.
    timeout: Duration | None = None

    @pydantic.field_validator("prober")
    @classmethod
    def _known_prober(cls, value: str) -> str:
        if value not in PROBERS:
            raise ValueError(f"unknown prober {value!r}; Pulse supports: {', '.join(sorted(PROBERS)) or 'none'}")
        return value

    @pydantic.model_validator(mode="after")
    def _prober_options_complete(self) -> ModuleBase:
        """A module without its `<prober>:` key uses that prober's defaults; when the prober has required
        options (dns query_name, journey steps) that must fail here, naming them, not at probe time."""
        if getattr(self, self.prober, None) is None:
            try:
                PROBERS[self.prober].config_model()
            except pydantic.ValidationError as err:
                missing = ", ".join(f"{self.prober}." + ".".join(map(str, e["loc"])) for e in err.errors())
                raise ValueError(f"prober {self.prober!r} needs a `{self.prober}:` section with {missing}") from None
        return self

    def settings(self) -> StrictModel:
        """The options of this module's prober: its `<prober>:` key, or that prober's defaults."""
        options: StrictModel | None = getattr(self, self.prober, None)
        return options if options is not None else PROBERS[self.prober].config_model()


if TYPE_CHECKING:
    ProbeModule = ModuleBase
else:
    ProbeModule = pydantic.create_model(
        "ProbeModule",
        __base__=ModuleBase,
        **{name: (prober.config_model | None, None) for name, prober in PROBERS.items()},
    )


class BlackboxFile(StrictModel):
    """A blackbox.yml: only `modules:` (blackbox_exporter's config has nothing else)."""

    modules: dict[str, ProbeModule] = {}


class ProbeTarget(StrictModel):
    target: str
    module: str
    labels: dict[str, str] = {}

    @pydantic.field_validator("target")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a target cannot be empty")
        return value

    @pydantic.field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid Prometheus label name")
            if name.startswith("__") or name in _RESERVED_LABELS:
                raise ValueError(f"label {name!r} is reserved (/sd/probes sets it from the target's module)")
        return labels


def load_modules_file(path: Path) -> dict[str, ProbeModule]:
    """The modules of a blackbox.yml; a problem raises ValueError naming that file, its line and field.

    `${VAR}` is not expanded here: blackbox.yml has no such feature, and `${1}` in a tcp `send`
    is a regex group reference that must reach the prober untouched.
    """
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"modules_file: cannot read {name}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"modules_file: {name} is not UTF-8 text: {err}") from None
    try:
        data, lines = parse_yaml(name, text)
    except ConfigError as err:
        raise ValueError("modules_file: " + "; ".join(err.problems)) from None
    try:
        # Secret files (bearer_token_file, ...) are relative to the modules file, as blackbox reads them.
        parsed = BlackboxFile.model_validate(data if data is not None else {}, context={"base_dir": path.parent})
    except pydantic.ValidationError as err:
        problems = [_describe(name, BlackboxFile, e, lines) for e in err.errors()]
        raise ValueError("modules_file: " + "; ".join(problems)) from None
    return parsed.modules


class ProbesConfig(StrictModel):
    modules_file: str | None = None
    modules: dict[str, ProbeModule] = {}
    targets: list[ProbeTarget] = []
    allow: list[Regex] = []
    # Subtracted from Prometheus' scrape timeout to leave time for the answer (blackbox's --timeout-offset).
    timeout_offset: Duration = 0.5

    _listed: frozenset[tuple[str, str]] = pydantic.PrivateAttr(default=frozenset())

    @pydantic.model_validator(mode="before")
    @classmethod
    def _read_modules_file(cls, data: Any, info: pydantic.ValidationInfo) -> Any:
        if not isinstance(data, dict) or not data.get("modules_file"):
            return data
        path = Path(str(data["modules_file"]))
        base_dir = (info.context or {}).get("base_dir")
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        from_file = load_modules_file(path)
        inline = data.get("modules") or {}
        if not isinstance(inline, dict):
            return data  # the field's own validation reports it
        twice = sorted(set(from_file) & set(inline))
        if twice:
            raise ValueError(f"modules: {', '.join(twice)} defined both here and in modules_file {path}")
        # Already validated models pass through field validation as they are.
        return {**data, "modules": {**from_file, **inline}}

    @pydantic.model_validator(mode="after")
    def _targets_use_known_modules(self) -> ProbesConfig:
        seen: set[tuple[str, str]] = set()
        for index, target in enumerate(self.targets):
            if target.module not in self.modules:
                known = ", ".join(sorted(self.modules)) or "none defined"
                raise ValueError(
                    f"targets: targets[{index}] ({target.target}) uses module {target.module!r}, "
                    f"which is not defined (modules: {known})"
                )
            if (target.target, target.module) in seen:
                raise ValueError(
                    f"targets: targets[{index}]: {target.target} with module {target.module} is listed twice"
                )
            seen.add((target.target, target.module))
        self._listed = frozenset(seen)
        return self

    def allows(self, target: str, module: str) -> bool:
        """Whether /probe may probe `target` with `module`: listed with that module in `targets`, or
        matching one of the `allow` regular expressions as a whole (anchored, like Prometheus' regexes)."""
        return (target, module) in self._listed or any(pattern.fullmatch(target) for pattern in self.allow)

    def lists(self, target: str, module: str) -> bool:
        """Whether `target` is listed in `targets` with `module` (not merely allowed)."""
        return (target, module) in self._listed
