"""What a section model declares, made known to the models nested in it while it validates.

A section often holds names that its own entries refer to (KPI queries name `kpis.sources`, probe
targets name `probes.modules`). Checking a reference inside the entry's own validator reports it at
the entry's line, in the same pass as every other problem; for that, the entry needs to see what its
section declares. The section's wrap validator makes it known for the duration of its own validation:

    SOURCES: ValidationScope[frozenset[str]] = ValidationScope("kpi_sources")

    class Section(StrictModel):
        @pydantic.model_validator(mode="wrap")
        @classmethod
        def _declare(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
            return SOURCES.validate_within(frozenset(data.get("sources", {})), handler, data)

    class Entry(StrictModel):
        @pydantic.field_validator("source")
        @classmethod
        def _declared(cls, value: str) -> str:
            declared = SOURCES.get()  # None: validated on its own, outside a section
            ...

A context variable rather than pydantic's validation context: models are also validated without
one (`Model.model_validate(data)`), and the declaration must not leak into the caller's context.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ValidationScope(Generic[T]):
    """One kind of declaration a section makes to its nested models while it validates."""

    def __init__(self, name: str) -> None:
        self._current: contextvars.ContextVar[T | None] = contextvars.ContextVar(name, default=None)

    def get(self) -> T | None:
        """What the section being validated declared; None outside of a section's validation."""
        return self._current.get()

    def validate_within(self, declared: T, validate: Callable[[Any], R], data: Any) -> R:
        """`validate(data)` (a wrap validator's handler, or a model's model_validate) with `declared`
        known to the models it validates."""
        token = self._current.set(declared)
        try:
            return validate(data)
        finally:
            self._current.reset(token)
