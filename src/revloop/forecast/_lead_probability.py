"""The lead probability counter: each open lead's chance to convert soon, given its age (compute layer).

A lead that has waited longer than leads usually take is less likely to convert: the
probability is read off the Kaplan–Meier curve of lead → opportunity time, per segment,
conditional on the lead still being unconverted at its age::

    P(converts within h | unconverted at age a) = (S(a) − S(a + h)) ÷ S(a)

References: Kaplan & Meier (1958); revops.md §2.3 (Implisit: 84 days on average) and
issue 5's "probability counter". User documentation: ``docs/planning.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import ConfigError, SchemaError
from revloop.metrics._lead import _lead_base
from revloop.metrics._registry import DateLike, Scope
from revloop.metrics._scope import as_timestamp
from revloop.metrics._survival import km_curve
from revloop.schema import conform

__all__ = ["DISQUALIFIED_STATUSES", "lead_probability"]

#: Lead statuses that mean "will not convert" (Salesforce 'Unqualified', HubSpot
#: 'Disqualified'/'Unqualified' lead status values).
DISQUALIFIED_STATUSES: tuple[str, ...] = ("Unqualified", "Disqualified")

_DAY = 86400


def lead_probability(
    tables: Mapping[str, ir.Table],
    *,
    as_of: DateLike,
    horizon_days: int = 90,
    by: str | None = "source",
    exclude_statuses: Sequence[str] = DISQUALIFIED_STATUSES,
) -> ir.Table:
    """Every open lead at ``as_of`` with its probability of becoming an opportunity soon.

    The Kaplan–Meier curve S(t) of days from lead creation to its first opportunity is
    estimated per ``by`` segment on every lead created by ``as_of``: a lead converts when
    its first opportunity (as in the ``lead_to_opportunity_rate`` metric: the earliest
    opportunity naming the lead, or the one the lead names) is created, else it is
    censored at its age on ``as_of``. Days are whole days since creation. Each open lead
    of age a days gets ``p_convert`` = (S(a) − S(a + h)) ÷ S(a), h = ``horizon_days``;
    beyond the longest observed time S stays at its last value (so ``p_convert`` is 0
    there).

    Leak-free: only leads and opportunities created by ``as_of`` are read, and a lead
    converted later is open at ``as_of``. The lead ``status`` (for ``exclude_statuses``)
    has no history in the canonical tables: it is today's status, so for a past
    ``as_of`` pass ``exclude_statuses=()``.

    Parameters
    ----------
    tables
        Canonical tables by name: ``leads`` and ``opportunities``.
    as_of
        The instant the probabilities are for (a date, datetime or ISO string).
    horizon_days
        The horizon h in days (default 90: the "usual 90 days" of lead conversion;
        Implisit's average is 84 days, revops.md §2.3).
    by
        A column of ``leads`` to estimate separate curves for (default ``source``);
        ``None`` for one curve. Null values form the segment ``"(none)"``.
    exclude_statuses
        Leads with these statuses are not open (disqualified). They still count in the
        curve (as not converted).

    Returns
    -------
    ibis.Table
        Unexecuted; one row per open lead: [by,] ``lead_id``, ``created_at``,
        ``age_days`` (whole days at ``as_of``), ``p_convert``, ``survival`` (S(a): the
        share of the segment's leads still unconverted at that age), ``segment_leads``
        (leads in the segment's curve). Ordered by [by,] age.

    Examples
    --------
    >>> from revloop.schema import schema
    >>> t = {n: ibis.table(schema(n), name=n) for n in ("leads", "opportunities")}
    >>> lead_probability(t, as_of="2026-10-31").columns
    ('source', 'lead_id', 'created_at', 'age_days', 'p_convert', 'survival', 'segment_leads')

    References
    ----------
    Kaplan, E. L. & Meier, P. (1958), "Nonparametric estimation from incomplete
    observations", JASA 53(282); the lifelines ``KaplanMeierFitter`` conventions.
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise ConfigError(
            f"lead_probability: horizon_days={horizon_days!r}: expected a whole number of "
            "days >= 1, e.g. 90."
        )
    if isinstance(exclude_statuses, str):
        raise ConfigError(
            f"lead_probability: exclude_statuses={exclude_statuses!r}: expected a list of "
            "statuses, e.g. ['Unqualified']."
        )
    for needed in ("leads", "opportunities"):
        if needed not in tables:
            raise SchemaError(
                f"lead_probability needs the {needed} table; got {sorted(tables)}. "
                f"Add {needed}.csv to the folder."
            )
    leads = conform(tables["leads"], "leads")
    if by is not None and by not in leads.columns:
        raise SchemaError(
            f"cannot group leads by {by!r}: leads has {list(leads.columns)}. "
            "Pass one of those as by, or by=None."
        )
    cut = as_timestamp(as_of)
    leads = leads.filter(leads.created_at <= cut)
    base = _lead_base(
        {"leads": leads, "opportunities": tables["opportunities"]}, Scope(as_of=as_of)
    )
    key = "__seg"
    seg = ibis.literal("all") if by is None else base[by].cast(dt.string).fill_null("(none)")
    conv_known = base.converted_at.notnull() & (base.converted_at <= cut)
    conv_at = ibis.coalesce(
        ibis.least(base.conv_at, ibis.ifelse(conv_known, base.converted_at, base.conv_at)),
        base.conv_at,
        ibis.ifelse(conv_known, base.converted_at, ibis.null(dt.timestamp)),
    )
    created = base.created_at.epoch_seconds()
    age = ((cut.epoch_seconds() - created) // _DAY).cast(dt.int64)
    to_conv = ibis.greatest((conv_at.epoch_seconds() - created) // _DAY, 0).cast(dt.int64)
    d = base.mutate(
        **{key: seg},
        __event=conv_at.notnull(),
        __t=ibis.ifelse(conv_at.notnull(), to_conv, age),
        __age=age,
    )
    km = km_curve(d, [key], "__t", d.__event)
    n_seg = d.group_by(key).aggregate(segment_leads=d.count())

    status_ok = (
        d.status.isnull() | ~d.status.isin(list(exclude_statuses))
        if exclude_statuses
        else ibis.literal(True)
    )
    open_ = d.filter(~d.__event & status_ok)
    s_age = _survival_at(km, open_.select(key, __q=open_.__age), key)
    s_end = _survival_at(km, open_.select(key, __q=open_.__age + horizon_days), key)
    out = open_.left_join(s_age, [open_[key] == s_age[key], open_.__age == s_age.__q])
    out = out.drop(f"{key}_right", "__q").rename(__s_age="__s")
    out = out.left_join(s_end, [out[key] == s_end[key], (out.__age + horizon_days) == s_end.__q])
    out = out.drop(f"{key}_right", "__q").rename(__s_end="__s")
    out = out.left_join(n_seg, key).drop(f"{key}_right")
    p = ibis.ifelse(
        out.__s_age > 0, (out.__s_age - out.__s_end) / out.__s_age, ibis.null(dt.float64)
    )
    cols: dict[str, ir.Value] = {}
    if by is not None:
        cols[by] = out[key]
    cols.update(
        lead_id=out.lead_id,
        created_at=out.created_at,
        age_days=out.__age,
        p_convert=p,
        survival=out.__s_age,
        segment_leads=out.segment_leads,
    )
    res = out.select(**cols)
    order = [*([by] if by is not None else []), "age_days", "lead_id"]
    return res.order_by(order)


def _survival_at(km: ir.Table, probes: ir.Table, key: str) -> ir.Table:
    """S at each distinct (``key``, ``__q``) of ``probes``: the curve's value after time ``__q``.

    The latest curve time at or before ``__q`` is found with a running ``max`` over the
    union of curve times and probes sorted by time (no inequality join, as in
    ``attribution.to_reporting_currency``); before the first curve time S is 1.
    Output: ``key``, ``__q``, ``__s``.
    """
    q = probes.distinct()
    known = km.select(key, __d=km.__t, __kt=km.__t, __probe=ibis.literal(0))
    asked = q.select(key, __d=q.__q, __kt=ibis.null(dt.int64), __probe=ibis.literal(1))
    u = known.union(asked)
    w = ibis.window(group_by=key, order_by=[u.__d, u.__probe], rows=(None, 0))
    u = u.mutate(__last=u.__kt.max().over(w))
    hits = u.filter(u.__probe == 1).select(key, __q=u.__d, __last=u.__last)
    curve = km.select(key, __kt2=km.__t, __sv=km.survival)
    j = hits.left_join(curve, [hits[key] == curve[key], hits.__last == curve.__kt2])
    return j.select(j[key], "__q", __s=j.__sv.fill_null(1.0))
