"""Numbers for humans: currency with thousands separators, counts, percentages."""

from __future__ import annotations

import math

import pandas as pd

__all__ = [
    "currency_symbol",
    "fmt_count",
    "fmt_date",
    "fmt_money",
    "fmt_pct",
    "fmt_ratio",
    "model_label",
]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$"}

_MODEL_LABELS = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "last_non_direct": "Last non-direct",
    "linear": "Linear",
    "position_based": "Position-based",
    "u_shaped": "U-shaped",
    "w_shaped": "W-shaped",
    "full_path": "Full path",
    "time_decay": "Time decay",
    "j_shaped": "J-shaped",
    "inverse_j_shaped": "Inverse J",
    "markov": "Markov",
    "shapley": "Shapley",
}

DASH = "–"


def _missing(x: object) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def currency_symbol(currency: str) -> str:
    """``"$"`` for USD, ``"€"`` for EUR...; other codes are followed by a space (``"CHF "``)."""
    return _SYMBOLS.get(currency.upper(), currency.upper() + " ")


def model_label(name: str) -> str:
    """A reader's name for a model's lookup name.

    Examples
    --------
    >>> model_label("first_touch"), model_label("my_model")
    ('First touch', 'My model')
    """
    return _MODEL_LABELS.get(name, name.replace("_", " ").capitalize())


def fmt_money(x: object, currency: str = "USD", *, compact: bool = False) -> str:
    """Currency with thousands separators; cents only under 100.

    Examples
    --------
    >>> fmt_money(1234567.8), fmt_money(42.5, "EUR"), fmt_money(None)
    ('$1,234,568', '€42.50', '–')
    >>> fmt_money(1234567.8, compact=True), fmt_money(-2500, "CHF", compact=True)
    ('$1.2M', '-CHF 2.5k')
    """
    if _missing(x):
        return DASH
    v = float(x)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return DASH
    sign, v = ("-" if v < 0 else ""), abs(v)
    sym = currency_symbol(currency)
    if compact:
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if v >= div:
                return f"{sign}{sym}{v / div:.1f}{suffix}"
        return f"{sign}{sym}{v:,.0f}"
    body = f"{v:,.2f}" if 0 < v < 100 else f"{v:,.0f}"
    return f"{sign}{sym}{body}"


def fmt_count(x: object) -> str:
    """A count with thousands separators; one decimal when credit made it fractional.

    Examples
    --------
    >>> fmt_count(12345), fmt_count(2.5), fmt_count(2.0000000001), fmt_count(float("nan"))
    ('12,345', '2.5', '2', '–')
    """
    if _missing(x):
        return DASH
    v = float(x)  # type: ignore[arg-type]
    if abs(v - round(v)) < 1e-6:
        return f"{round(v):,}"
    return f"{v:,.1f}"


def fmt_pct(x: object, digits: int = 1) -> str:
    """A share (0.123) as a percentage (``"12.3%"``).

    Examples
    --------
    >>> fmt_pct(0.1234), fmt_pct(1), fmt_pct(None)
    ('12.3%', '100.0%', '–')
    """
    if _missing(x):
        return DASH
    v = float(x)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return DASH
    return f"{v * 100:.{digits}f}%"


def fmt_ratio(x: object) -> str:
    """A ratio such as ROAS (``"3.4×"``).

    Examples
    --------
    >>> fmt_ratio(3.4567), fmt_ratio(None)
    ('3.46×', '–')
    """
    if _missing(x):
        return DASH
    v = float(x)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return DASH
    return f"{v:,.2f}×"


def fmt_date(x: object) -> str:
    """A timestamp as ``2024-03-01`` (``–`` if missing)."""
    if _missing(x):
        return DASH
    return pd.Timestamp(x).strftime("%Y-%m-%d")  # type: ignore[arg-type]
