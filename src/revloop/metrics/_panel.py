"""The full metric panel: every registered metric, as one figure and as a monthly trend.

:func:`panel` lists the :class:`~revloop.metrics.Request` objects a RevOps review
computes (the report's RevOps section and ``benches/bench_metrics.py`` both use it);
``revloop.engine.compute_metrics`` runs them, building the MRR ledger once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from revloop.metrics._registry import DateLike, Period, Request, get_metric, list_metrics

__all__ = ["Panel", "panel"]

#: Metrics whose figure is a table of rows even without a period (per stage, per
#: cohort, per response-time bucket, per period of a bridge): they get no trend request.
ROW_METRICS = frozenset(
    {
        "cohort_retention",
        "conversion_by_response_time",
        "pipeline_waterfall",
        "stage_conversion",
        "time_in_stage",
    }
)


@dataclass(frozen=True)
class Panel:
    """The requests of a panel and the metrics left out, each with the reason."""

    requests: tuple[Request, ...]
    skipped: Mapping[str, str]


def panel(
    available: Collection[str],
    *,
    period: Period = "month",
    start: DateLike | None = None,
    end: DateLike | None = None,
    as_of: DateLike | None = None,
    target: float | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    names: Collection[str] | None = None,
) -> Panel:
    """Every metric the tables allow: its headline figure and its trend per ``period``.

    Parameters
    ----------
    available
        Names of the canonical tables at hand; a metric whose tables are missing is
        skipped with the reason.
    period
        Calendar period of the trends.
    start, end, as_of
        The window (half-open) and the instant the figures are known at.
        ``pipeline_waterfall`` needs ``start`` and ``end``.
    target
        Revenue target per ``period`` (reporting currency) for ``pipeline_coverage``;
        without one coverage is skipped.
    params
        Policies per metric name (``{"win_rate": {"basis": "amount"}}``); defaults
        otherwise.
    names
        Only these metrics (default: every registered one).

    Examples
    --------
    >>> p = panel({"opportunities"}, names=["win_rate", "mrr"])
    >>> [(r.name, r.period) for r in p.requests]
    [('win_rate', None), ('win_rate', 'month')]
    >>> dict(p.skipped)
    {'mrr': 'needs the table(s) subscriptions'}
    """
    params = params or {}
    chosen = sorted(names) if names is not None else list_metrics()
    requests: list[Request] = []
    skipped: dict[str, str] = {}

    def req(name: str, kw: Mapping[str, Any], per: Period | None) -> Request:
        return Request(name, kw, period=per, start=start, end=end, as_of=as_of)

    for name in chosen:
        definition = get_metric(name)
        missing = [t for t in definition.tables if t not in available]
        if missing:
            skipped[name] = f"needs the table(s) {', '.join(missing)}"
            continue
        kw = dict(params.get(name, {}))
        if name == "pipeline_coverage":
            if target is None and "target" not in kw:
                skipped[name] = "needs a revenue target per period"
                continue
            kw.setdefault("target", target)
        if name == "pipeline_waterfall":
            if start is None or end is None:
                skipped[name] = "needs a window (start and end)"
                continue
            requests.append(req(name, kw, period))
            continue
        requests.append(req(name, kw, None))
        if name not in ROW_METRICS:
            requests.append(req(name, kw, period))
    return Panel(requests=tuple(requests), skipped=skipped)
