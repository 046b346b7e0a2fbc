"""The columns of metric outputs that count what a figure leaves out (compute layer).

A metric never drops a row silently: when a row cannot count (a won deal without an
amount, a lead touched before it was created, a subscription of unknown interval), the
output counts it in a column named here. The CLI and the report warn when one is not 0,
with the meaning given here (:func:`left_out`, over a computed result), so both say the
same thing.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["GROUP_LEVEL", "LEFT_OUT_COLUMNS", "PEAK_COLUMNS", "left_out"]

#: Column → what a non-zero count means for the figures.
LEFT_OUT_COLUMNS: Mapping[str, str] = {
    "won_without_amount": "won deals without an amount (or FX rate) are left out of the amounts",
    "lost_without_amount": "lost deals without an amount are left out of the amounts",
    "open_without_amount": "open deals without an amount are left out of the pipeline",
    "start_without_amount": "deals without an amount (or FX rate) are left out of the bridge",
    "new_without_amount": "new deals without an amount (or FX rate) are left out of the bridge",
    "pulled_in_without_amount": (
        "deals pulled in without an amount (or FX rate) are left out of the bridge"
    ),
    "pushed_without_amount": "deals pushed without an amount (or FX rate) are left out of the bridge",
    "changed_without_amount": (
        "deals whose amount became or stopped being unknown are left out of the bridge's changes"
    ),
    "end_without_amount": "deals without an amount (or FX rate) are left out of the bridge",
    "closed_without_date": (
        "won or lost deals without a closed_at are in no period's figures (add their close dates)"
    ),
    "unlisted": (
        "deals with a stage-history row at a stage missing from the stages list: those rows "
        "are not counted (check the names in --param stages)"
    ),
    "closed_before_created": (
        "won deals closed before they were created are left out of the cycle statistics"
    ),
    "contacted_before_created": "leads touched before their creation date are left out",
    "unknown_interval": "subscription rows with an unknown billing interval make MRR null",
    "missing_rate": (
        "subscription rows in a currency without an exchange rate by their service "
        "period's start make MRR null (add their rates to fx_rates)"
    ),
}

#: Counts a metric repeats on several rows, by metric and column: ``group`` (on each row
#: of a ``by`` and ``period`` group: one per response bucket or stage) or ``by`` (on each
#: row of a ``by`` group, every period alike: deals that no period can hold). A total
#: counts each group once.
GROUP_LEVEL: Mapping[str, Mapping[str, str]] = {
    "conversion_by_response_time": {"contacted_before_created": "group"},
    "stage_conversion": {"unlisted": "group"},
    **{
        name: {"closed_without_date": "by"}
        for name in ("average_deal_size", "win_rate", "sales_cycle", "pipeline_velocity")
    },
}

#: (metric, variant) whose rows each count their own deals, unlike the metric's default
#: (the cohort win rate counts an undated deal in its creation cohort only).
_PER_ROW = frozenset({("win_rate", "cohort")})

#: States rather than events: the same rows are counted again in every period they last
#: (a deal without an amount open at each boundary, a subscription row of unknown interval
#: active every month). A sum would count them once per period: the total is the largest
#: per period (per ``by`` group), stated as such.
PEAK_COLUMNS = frozenset(
    {"start_without_amount", "end_without_amount", "unknown_interval", "missing_rate"}
)


def left_out(
    metric: str,
    frame: pd.DataFrame,
    by: str | None = None,
    policy: Mapping[str, object] | None = None,
) -> list[tuple[str, int, str]]:
    """``(column, rows, meaning)`` for each column of ``frame`` (a computed result of
    ``metric`` with ``policy``, grouped by ``by``) that counts rows a figure left out
    (:data:`LEFT_OUT_COLUMNS`) and is not 0.

    A count the metric repeats on several rows (:data:`GROUP_LEVEL`) is taken once per
    group: per ``by`` and ``period`` value, or per ``by`` value. A state counted in every
    period (:data:`PEAK_COLUMNS`) is the largest of its periods, said so in the meaning.
    """
    variant = (policy or {}).get("variant")
    out = []
    for col, text in LEFT_OUT_COLUMNS.items():
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").fillna(0)
        level = None if (metric, variant) in _PER_ROW else GROUP_LEVEL.get(metric, {}).get(col)
        by_cols = [by] if by is not None and by in frame.columns else []
        if level is not None:
            keys = [*by_cols, "period"] if level == "group" else by_cols
            group = [k for k in keys if k in frame.columns]
            kept = frame.drop_duplicates(subset=group).index if group else frame.index[:1]
            n = int(values.loc[kept].sum())
        elif col in PEAK_COLUMNS and "period" in frame.columns and len(frame) > 1:
            peak = values.groupby([frame[k] for k in by_cols]).max() if by_cols else values.max()
            n = int(peak.sum()) if by_cols else int(peak)
            text = f"{text} (the most in one period)"
        else:
            n = int(values.sum())
        if n > 0:
            out.append((col, n, text))
    return out
