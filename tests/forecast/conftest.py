"""Helpers shared by the forecast tests."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest


def truncate_at(frames: dict[str, pd.DataFrame], t: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """What the CRM held at instant t: later rows gone, later closes not yet happened."""
    o = frames["opportunities"]
    o = o[o.created_at <= t].copy()
    later = o.closed_at.notna() & (o.closed_at > t)
    o.loc[later, "closed_at"] = pd.NaT
    o.loc[later, "status"] = "open"
    # today's stage/amount/close_date of a still-open deal are not features: scramble them
    o.loc[later, "amount"] = -1.0
    o.loc[later, "stage"] = "Closed Won"
    h = frames["stage_history"]
    a = frames["activities"]
    ld = frames["leads"]
    fx = frames["fx_rates"]
    return {
        "opportunities": o,
        "stage_history": h[h.changed_at <= t],
        "activities": a[a.occurred_at <= t],
        "leads": ld[ld.created_at <= t],
        "fx_rates": fx[pd.to_datetime(fx.date) <= t],
    }


@pytest.fixture
def truncate() -> Callable[[dict[str, pd.DataFrame], pd.Timestamp], dict[str, pd.DataFrame]]:
    """What the CRM held at an instant (see :func:`truncate_at`)."""
    return truncate_at
