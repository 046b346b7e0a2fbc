"""Typed options with documented defaults. Nothing is read at import time."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings"]


class Settings(BaseModel):
    """Project-wide options.

    Attributes
    ----------
    database
        Where the canonical tables live: ``None`` for in-memory DuckDB, a file path,
        or an Ibis URL.
    reporting_currency
        ISO 4217 code that money is reported in; amounts in other currencies are
        converted with ``fx_rates``.
    lookback_days
        Attribution lookback window; 90 days matches GA4's default for key events
        other than first visit (``otherConversionEventLookbackWindow``; reference
        ``attribution.md`` §3.3).
    session_timeout_minutes
        Inactivity that ends a web session; 30 minutes as GA4 and Snowplow.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    database: str | None = None
    reporting_currency: str = Field(default="USD", min_length=3, max_length=3)
    lookback_days: int = Field(default=90, gt=0)
    session_timeout_minutes: int = Field(default=30, gt=0)
