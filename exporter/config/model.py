"""The schema of pulse.yml, the exporter's one config file.

`collectors:` is assembled from exporter.collectors.COLLECTOR_TYPES and the top-level sections
(`probes:`, `kpis:`) from exporter.collectors.SECTIONS, so a new collector brings its own config
section with it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic

from exporter.collectors import COLLECTOR_TYPES, SECTIONS
from exporter.config.loader import load_model
from exporter.config.types import StrictModel

DEFAULT_CONFIG_NAME = "<embedded default config>"

if TYPE_CHECKING:
    CollectorsConfig = StrictModel

    from exporter.kpis.section import KpisConfig
    from exporter.probes.collector import ProbesConfig

    class PulseConfig(StrictModel):
        collectors: CollectorsConfig
        probes: ProbesConfig
        kpis: KpisConfig

else:
    CollectorsConfig = pydantic.create_model(
        "CollectorsConfig",
        __base__=StrictModel,
        **{kind.name: (kind.config_model, kind.config_model()) for kind in COLLECTOR_TYPES},
    )
    PulseConfig = pydantic.create_model(
        "PulseConfig",
        __base__=StrictModel,
        collectors=(CollectorsConfig, pydantic.Field(default_factory=CollectorsConfig)),
        **{kind.name: (kind.config_model, pydantic.Field(default_factory=kind.config_model)) for kind in SECTIONS},
    )


def default_config_text() -> str:
    return resources.files("exporter.config").joinpath("default.yml").read_text(encoding="utf-8")


def load_config(path: Path | None) -> PulseConfig:
    """Load pulse.yml from `path`, or the embedded default when there is none."""
    if path is None:
        return load_model(PulseConfig, DEFAULT_CONFIG_NAME, default_config_text())
    return load_model(PulseConfig, path)
