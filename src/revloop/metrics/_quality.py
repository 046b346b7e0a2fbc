"""The columns of metric outputs that count what a figure leaves out (compute layer).

A metric never drops a row silently: when a row cannot count (a won deal without an
amount, a lead touched before it was created, a subscription of unknown interval), the
output counts it in a column named here. The CLI and the report warn when one is not 0,
with the meaning given here (:func:`left_out`, over a computed result), so both say the
same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["GROUP_LEVEL", "LEFT_OUT_COLUMNS", "left_out"]

#: Column → what a non-zero count means for the figures.
LEFT_OUT_COLUMNS: Mapping[str, str] = {
    "won_without_amount": "won deals without an amount (or FX rate) are left out of the amounts",
    "lost_without_amount": "lost deals without an amount are left out of the amounts",
    "open_without_amount": "open deals without an amount are left out of the pipeline",
    "end_without_amount": "deals without an amount are left out of the bridge",
    "contacted_before_created": "leads touched before their creation date are left out",
    "unknown_interval": "subscription rows with an unknown billing interval make MRR null",
    "missing_rate": (
        "subscription rows in a currency without an exchange rate by their service "
        "period's start make MRR null (add their rates to fx_rates)"
    ),
}

#: Metrics whose rows are finer than their groups (one per bucket) and repeat the
#: group's counts on each row: a total counts each group once.
GROUP_LEVEL: Mapping[str, tuple[str, ...]] = {
    "conversion_by_response_time": ("immature_leads", "contacted_before_created"),
}


def left_out(
    metric: str, frame: pd.DataFrame, keys: Sequence[str] = ()
) -> list[tuple[str, int, str]]:
    """``(column, rows, meaning)`` for each column of ``frame`` that counts rows a figure of
    ``metric`` left out (:data:`LEFT_OUT_COLUMNS`) and is not 0.

    A count the metric repeats on each row of a group (``GROUP_LEVEL``) is taken once per
    group of ``keys`` (the ``by`` and ``period`` columns present).
    """
    out = []
    for col, text in LEFT_OUT_COLUMNS.items():
        if col not in frame.columns:
            continue
        values = frame
        if col in GROUP_LEVEL.get(metric, ()):
            group = [k for k in keys if k in frame.columns]
            values = frame.drop_duplicates(subset=group) if group else frame.head(1)
        n = int(pd.to_numeric(values[col], errors="coerce").fillna(0).sum())
        if n > 0:
            out.append((col, n, text))
    return out
