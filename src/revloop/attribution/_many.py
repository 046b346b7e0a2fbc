"""Run many models over one set of paths, and roll credits up by channel or campaign."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution._base import AttributionModel, credits_select, path_weight
from revloop.attribution._paths import UNATTRIBUTED, build_paths
from revloop.exceptions import ConfigError

__all__ = ["credit_many", "summarize", "summarize_many"]


def _path_key(m: AttributionModel) -> tuple[object, ...]:
    return (m.lookback_days, m.lookback_from, m.lookback_steps, m.transforms_)


def _fitted(models: Sequence[AttributionModel], touchpoints: ir.Table) -> list[AttributionModel]:
    if not models:
        raise ConfigError(
            "no models given; pass e.g. [get_model('linear'), get_model('first_touch')]."
        )
    names = [m.lookup_name for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"models {dupes} appear more than once; credits are keyed by model name, so "
            "run differently-parametrised copies of a model in separate calls."
        )
    return [m.fit(touchpoints) for m in models]


def _wide(
    models: Sequence[AttributionModel], touchpoints: ir.Table, conversions: ir.Table
) -> list[tuple[ir.Table, list[AttributionModel]]]:
    """For each distinct path definition: the paths with one weight column per model."""
    groups: dict[tuple[object, ...], list[AttributionModel]] = {}
    for m in _fitted(models, touchpoints):
        groups.setdefault(_path_key(m), []).append(m)
    out = []
    for ms in groups.values():
        first = ms[0]
        p = build_paths(
            touchpoints,
            conversions,
            lookback_days=first.lookback_days,
            lookback_from=first.lookback_from,
            lookback_steps=first.lookback_steps,
            transforms=first.transforms_,
        )
        weights = {f"__w_{m.lookup_name}": path_weight(m, p) for m in ms}
        out.append((p.mutate(**weights), ms))
    return out


def credit_many(
    models: Sequence[AttributionModel], touchpoints: ir.Table, conversions: ir.Table
) -> ir.Table:
    """Credits of several models at once, sharing the path building.

    Models with the same lookback and transforms share one set of paths, and all
    their weights are computed in one pass over it.

    Returns
    -------
    ibis.Table
        The union of each model's :meth:`~AttributionModel.credit` output (same columns).

    Examples
    --------
    >>> from revloop.attribution import get_model
    >>> tp = ibis.memtable({"person_id": ["p", "p"], "channel": ["Email", "Direct"],
    ...     "occurred_at": [ibis.timestamp("2024-01-01"), ibis.timestamp("2024-01-02")]})
    >>> cv = ibis.memtable({"conversion_id": ["c"], "person_id": ["p"], "value": [100.0],
    ...     "occurred_at": [ibis.timestamp("2024-01-03")]}) # doctest: +SKIP
    """
    parts: list[ir.Table] = []
    for wide, ms in _wide(models, touchpoints, conversions):
        cols = [f"__w_{m.lookup_name}" for m in ms]
        long = wide.pivot_longer(cols, names_to="__model", values_to="__weight")
        parts.append(credits_select(long, long.__model.replace("__w_", ""), "__weight"))
    return parts[0] if len(parts) == 1 else ibis.union(*parts)


def summarize(credits: ir.Table, by: str | Sequence[str] = "channel") -> ir.Table:
    """Credited conversions and value per model (and kind, if present) and ``by``.

    Returns model[, kind], *by, conversions (sum of weights), value (sum of credited value).
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in credits.columns]
    if missing:
        raise ConfigError(
            f"cannot summarise credits by {missing}: the credits table has {list(credits.columns)}."
        )
    group = ["model"] + (["kind"] if "kind" in credits.columns else []) + keys
    return (
        credits.group_by(group)
        .aggregate(conversions=credits.weight.sum(), value=credits.value.sum())
        .order_by([*group])
    )


def summarize_many(
    models: Sequence[AttributionModel],
    touchpoints: ir.Table,
    conversions: ir.Table,
    by: str | Sequence[str] = "channel",
) -> ir.Table:
    """Same result as ``summarize(credit_many(...), by)``, computed in one aggregate.

    Per-touch credits are never materialised: every model's weight is summed per
    ``by`` group in a single pass over the paths, then the small result is
    reshaped to one row per model and group. This is the fast route to
    revenue-by-channel tables.
    """
    keys = [by] if isinstance(by, str) else list(by)
    allowed = {"channel", "campaign", "kind"}
    bad = [k for k in keys if k not in allowed]
    if bad:
        raise ConfigError(f"summarize_many groups by {sorted(allowed)}, not {bad}.")
    parts: list[ir.Table] = []
    for wide, ms in _wide(models, touchpoints, conversions):
        t = wide.mutate(
            channel=ibis.cases((wide.n > 0, wide.channel), else_=ibis.literal(UNATTRIBUTED))
        )
        group = (["kind"] if "kind" not in keys else []) + keys
        aggs: dict[str, ir.Value] = {}
        for m in ms:
            w = t[f"__w_{m.lookup_name}"]
            aggs[f"c__{m.lookup_name}"] = w.sum()
            aggs[f"v__{m.lookup_name}"] = (w * t.conv_value).sum()
        agg = t.group_by(group).aggregate(**aggs)
        for m in ms:
            parts.append(
                agg.select(
                    ibis.literal(m.lookup_name, type=dt.string).name("model"),
                    *group,
                    conversions=agg[f"c__{m.lookup_name}"],
                    value=agg[f"v__{m.lookup_name}"],
                )
            )
    out = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return out.order_by(["model", *(["kind"] if "kind" not in keys else []), *keys])
