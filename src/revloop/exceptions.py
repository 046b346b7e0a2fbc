"""The exceptions revloop raises.

One root, :class:`RevloopError`; each subclass also inherits the built-in
exception it resembles, so ``except ValueError`` keeps working for callers who do
not know revloop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revloop.schema import ValidationReport

__all__ = [
    "ConfigError",
    "EngineError",
    "NotFittedError",
    "RevloopError",
    "SchemaError",
    "UnknownModelError",
]


class RevloopError(Exception):
    """Root of every error revloop raises on purpose."""


class SchemaError(RevloopError, ValueError):
    """Input data does not match a canonical table.

    ``report`` holds every issue found (not only the first), each naming the
    table, the column, how many rows are affected, an example value and the fix.
    """

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class ConfigError(RevloopError, ValueError):
    """An option or model parameter has a value revloop cannot use."""


class UnknownModelError(ConfigError, KeyError):
    """A lookup name that no registry holds."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(RevloopError, AttributeError):
    """A fitted object (attribution model, forecaster) used before ``fit``."""


class EngineError(RevloopError, RuntimeError):
    """The backend could not be reached or could not run a query."""
