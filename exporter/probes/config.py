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

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from exporter.config.loader import (
    ConfigError,
    UnreadableFile,
    describe_validation_errors,
    parse_yaml,
    read_text_file,
)
from exporter.config.scope import ValidationScope
from exporter.config.types import Duration, Regex, StrictModel, registered
from exporter.probes import PROBERS
from exporter.scrape_timeout import TIMEOUT_OFFSET

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
        return registered(value, PROBERS, "prober")

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

    @pydantic.field_validator("module")
    @classmethod
    def _defined_module(cls, value: str) -> str:
        state = _VALIDATING.get()
        if state is not None and state.modules is not None and value not in state.modules:
            close = difflib.get_close_matches(value, state.modules, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"defined: {', '.join(sorted(state.modules)) or 'none'}"
            raise ValueError(f"{value!r} is not a defined module ({hint})")
        return value

    @pydantic.model_validator(mode="after")
    def _listed_once(self) -> ProbeTarget:
        state = _VALIDATING.get()
        if state is not None:
            if (self.target, self.module) in state.targets_seen:
                raise ValueError(f"{self.target} with module {self.module} is listed twice")
            state.targets_seen.add((self.target, self.module))
        return self

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
        text = read_text_file(path)
    except UnreadableFile as err:
        raise ValueError(f"modules_file: cannot read {name}: {err}") from None
    try:
        data, lines = parse_yaml(name, text)
    except ConfigError as err:
        raise ValueError("modules_file: " + "; ".join(err.problems)) from None
    try:
        # Secret files (bearer_token_file, ...) are relative to the modules file, as blackbox reads them.
        parsed = BlackboxFile.model_validate(data if data is not None else {}, context={"base_dir": path.parent})
    except pydantic.ValidationError as err:
        problems = describe_validation_errors(name, BlackboxFile, err, lines)
        raise ValueError("modules_file: " + "; ".join(problems)) from None
    return parsed.modules


@dataclass
class _Validating:
    """What a ProbesConfig being validated tells its fields, so that a target naming an unknown module
    is reported at its own line in the same pass as every other problem, not in a second round."""

    modules: frozenset[str] | None  # None: unknown (modules_file unreadable), so targets are not checked
    modules_file: Path | None = None
    modules_file_problem: str | None = None
    defined_twice: tuple[str, ...] = ()
    targets_seen: set[tuple[str, str]] = field(default_factory=set)


_VALIDATING: ValidationScope[_Validating] = ValidationScope("probes_config")


class ProbesConfig(StrictModel):
    modules_file: str | None = None
    modules: dict[str, ProbeModule] = {}
    targets: list[ProbeTarget] = []
    allow: list[Regex] = []
    # Subtracted from Prometheus' scrape timeout to leave time for the answer (blackbox's --timeout-offset).
    timeout_offset: Duration = TIMEOUT_OFFSET

    _listed: frozenset[tuple[str, str]] = pydantic.PrivateAttr(default=frozenset())

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _with_modules_known(
        cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler, info: pydantic.ValidationInfo
    ) -> Any:
        """Reads modules_file and merges its modules, then validates every field knowing the module names."""
        if not isinstance(data, dict):
            return handler(data)
        inline = data.get("modules")
        inline_names = frozenset(str(n) for n in inline) if isinstance(inline, dict) else frozenset()
        state = _Validating(modules=inline_names)
        if data.get("modules_file"):
            path = Path(str(data["modules_file"]))
            base_dir = (info.context or {}).get("base_dir")
            if not path.is_absolute() and base_dir is not None:
                path = Path(base_dir) / path
            try:
                from_file = load_modules_file(path)
            except ValueError as err:
                state = _Validating(modules=None, modules_file_problem=str(err).removeprefix("modules_file: "))
            else:
                state.modules = inline_names | frozenset(from_file)
                state.defined_twice = tuple(sorted(inline_names & set(from_file)))
                state.modules_file = path
                if isinstance(inline, dict) or inline is None:
                    # Already validated models pass through field validation as they are.
                    data = {**data, "modules": {**from_file, **(inline or {})}}
        return _VALIDATING.validate_within(state, handler, data)

    @pydantic.field_validator("modules_file")
    @classmethod
    def _modules_file_readable(cls, value: str | None) -> str | None:
        state = _VALIDATING.get()
        if state is not None and state.modules_file_problem is not None:
            raise ValueError(state.modules_file_problem)
        return value

    @pydantic.field_validator("modules")
    @classmethod
    def _defined_once(cls, value: dict[str, ProbeModule]) -> dict[str, ProbeModule]:
        state = _VALIDATING.get()
        if state is not None and state.defined_twice:
            raise ValueError(
                f"{', '.join(state.defined_twice)} defined both here and in modules_file {state.modules_file}"
            )
        return value

    @pydantic.model_validator(mode="after")
    def _remember_listed(self) -> ProbesConfig:
        self._listed = frozenset((target.target, target.module) for target in self.targets)
        return self

    def allows(self, target: str, module: str) -> bool:
        """Whether /probe may probe `target` with `module`: listed with that module in `targets`, or
        matching one of the `allow` regular expressions as a whole (anchored, like Prometheus' regexes)."""
        return (target, module) in self._listed or any(pattern.fullmatch(target) for pattern in self.allow)

    def lists(self, target: str, module: str) -> bool:
        """Whether `target` is listed in `targets` with `module` (not merely allowed)."""
        return (target, module) in self._listed
