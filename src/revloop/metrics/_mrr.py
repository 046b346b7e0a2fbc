"""The customer-grain MRR ledger: normalisation, month snapshots, movements, FX impact.

Every subscription metric is read off :func:`customer_ledger`, one row per customer
and calendar month, from the customer's first month to the last month of the data
(or of the scope). Movements follow ChartMogul's vocabulary (``shared/reference/
revops.md`` §1.2) and the identity of §1.9 holds on every row::

    start_mrr + new + expansion + reactivation - contraction - churn + fx = end_mrr

References
----------
ChartMogul, "Data Table and MRR Movements" (help.chartmogul.com/hc/en-us/articles/203299912);
"Churn Recognition" (/203176581); "Currency" (/201520952). Interval factors:
``fivetran/dbt_stripe:models/stripe__subscription_item_mrr_report.sql`` (revops.md §1.1).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
from ibis import _

from revloop.exceptions import ConfigError
from revloop.metrics._registry import (
    DateLike,
    Policy,
    Scope,
    SharedBuild,
    as_datetime,
    null_spelling,
)
from revloop.metrics._scope import period_start
from revloop.schema import conform

__all__ = [
    "LEDGER_POLICIES",
    "MOVEMENTS",
    "NOT_PAYING_STATUSES",
    "TRIAL_STATUSES",
    "aggregate_ledger",
    "aggregate_months",
    "check_month_window",
    "customer_attribute",
    "customer_ledger",
    "customer_months",
    "last_month",
    "last_month_index",
    "ledger_key",
    "ledger_months",
    "month_date",
    "month_index",
    "months_key",
    "normalised_subscriptions",
    "shared_ledger",
    "shared_totals",
    "start_index",
    "totals_key",
]

#: ``status`` values (lower case) that mark a trial; trials never count in MRR.
TRIAL_STATUSES = ("trial", "trialing", "trialling", "in_trial")

#: ``status`` values (lower case) of a row that was not paying: never in MRR. Stripe's
#: MRR counts ``active`` and ``past_due`` subscriptions only: ``unpaid`` is churn,
#: ``incomplete``/``incomplete_expired`` never started, and ``paused`` (a trial ended
#: without a payment method) is $0, as ProfitWell has paused subscriptions (revops.md
#: §1.8, connectors.md Stripe ``status``). ``past_due`` and ``canceled`` rows count for
#: the period they cover.
NOT_PAYING_STATUSES = ("unpaid", "paused", "incomplete", "incomplete_expired")

_EPS = 1e-6


def _check_window(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "give a whole number of months >= 1, or null for any time (ChartMogul)"
    return None


LEDGER_POLICIES: tuple[Policy, ...] = (
    Policy(
        "churn_recognition",
        "end_of_period",
        ("end_of_period", "at_cancel"),
        doc=(
            "When a cancelled subscription stops counting: at ends_at, the end of its paid "
            "service period, or at cancelled_at."
        ),
        sources={
            "end_of_period": "ChartMogul default; ProfitWell (revops.md §1.3)",
            "at_cancel": "Stripe default; ChartMogul option 2 (revops.md §1.3)",
        },
    ),
    Policy(
        "same_period_new_churn",
        "exclude",
        ("exclude", "count_both", "ignore"),
        doc=(
            "A customer who starts and churns inside one month: shown as new and churn in "
            "the ledger but left out of the customer churn rate (exclude), counted in both "
            "numerator and denominator of the churn rate (count_both), or ignored entirely."
        ),
        sources={
            "exclude": "ChartMogul B2B customer churn rate (revops.md §1.4)",
            "count_both": "Stripe subscriber churn; Baremetrics since its churn update (§1.4)",
            "ignore": "ProfitWell/Paddle: neither new nor churned (§1.4)",
        },
    ),
    Policy(
        "discounts",
        "apply",
        ("apply", "ignore"),
        doc=(
            "Subtract the recurring discount (a fraction, 0.15 = 15 %) from MRR, or report "
            "list-price MRR."
        ),
        sources={
            "apply": "ChartMogul (adding a discount = contraction); ProfitWell always (§1.8)",
            "ignore": "Stripe for once/repeating coupons (§1.1); list-price MRR (Lago)",
        },
    ),
    Policy(
        "trials",
        "exclude",
        ("exclude",),
        doc=f"Rows whose status is one of {list(TRIAL_STATUSES)} never count in MRR.",
        sources={"exclude": "ChartMogul (trials are leads), Stripe, Maxio (revops.md §1.8)"},
    ),
    Policy(
        "reactivation_window",
        None,
        doc=(
            "A returning customer is a reactivation when it last had MRR at most this many "
            "months earlier, else new business; null = any time."
        ),
        sources={
            "null": "ChartMogul and ProfitWell: any time (revops.md §1.2)",
            "3": "Maxio: back within 90 days (§1.2)",
        },
        check=_check_window,
        normalise=null_spelling,
    ),
    Policy("reporting_currency", "USD", doc="ISO 4217 code MRR is converted to."),
)
_LEDGER_NAMES = frozenset(p.name for p in LEDGER_POLICIES)


def month_index(ts: ir.Value) -> ir.IntegerValue:
    """Months since year 0: ``year * 12 + month - 1`` (consecutive months differ by 1)."""
    return ts.year() * 12 + ts.month() - 1


def _index_date(idx: ir.IntegerValue) -> ir.DateValue:
    return ibis.date((idx // 12).cast(dt.int32), (idx % 12 + 1).cast(dt.int32), 1)


def month_date(idx: ir.IntegerValue) -> ir.DateValue:
    """The first day of month index ``idx``: the inverse of :func:`month_index`."""
    return _index_date(idx)


def _py_index(value: DateLike) -> tuple[int, bool]:
    """Month index of a Python date-like, and whether it falls on a month's first instant."""
    d = as_datetime(value)
    first = d.day == 1 and d.time() == _dt.time(0)
    return d.year * 12 + d.month - 1, first


def check_month_window(scope: Scope) -> None:
    """Subscription metrics are read off a month ledger: ``start`` and ``end`` must fall on
    a month's first instant (``as_of`` may be any instant: it cuts the data, not the grid).

    A window inside a month cannot be honoured without clipping MRR to a day, so it is an
    error, not a silent widening to whole months.

    >>> check_month_window(Scope(start="2024-02-01", end="2024-04-01", as_of="2024-03-15"))
    >>> check_month_window(Scope(end="2024-03-15"))
    Traceback (most recent call last):
    ...
    revloop.exceptions.ConfigError: subscription metrics are monthly: end=2024-03-15 is not the first day of a month. ...
    """
    for name in ("start", "end"):
        value = getattr(scope, name)
        if value is not None and not _py_index(value)[1]:
            raise ConfigError(
                f"subscription metrics are monthly: {name}={value} is not the first day of a "
                f"month. Pass --{name} as YYYY-MM-01 (the window is half-open, [start, end)); "
                "to cut the data at an instant inside a month, use --as-of."
            )


def start_index(scope: Scope) -> int | None:
    """Month index of the first month in the scope's window, or ``None``."""
    return None if scope.start is None else _py_index(scope.start)[0]


#: Values written as the canonical tables spell them: compared as they are, while any
#: other spelling is lower-cased and stripped of white space first (a costly string
#: function per row when every row needs it).
_STATUSES = (
    "active",
    "past_due",
    "canceled",
    "cancelled",
    "ended",
    *TRIAL_STATUSES,
    *NOT_PAYING_STATUSES,
)
_INTERVALS = ("day", "week", "month", "year")


def _normalised(col: ir.StringValue, canonical: tuple[str, ...]) -> ir.StringValue:
    """``col`` lower-cased and stripped, computed only for values not already canonical."""
    return ibis.cases((col.isin(list(canonical)), col), else_=col.lower().strip())


def normalised_subscriptions(
    subscriptions: ir.Table,
    *,
    churn_recognition: str,
    discounts: str,
    scope: Scope,
) -> ir.Table:
    """Subscription rows with their monthly-normalised MRR and the end that counts.

    Input: the canonical ``subscriptions`` table. Output: its columns plus ``row_id``,
    ``mrr_local`` (MRR in the row's currency; null for an unknown ``interval``),
    ``unknown_interval`` (bool), ``eff_end`` (ends_at, or the earlier cancelled_at
    with ``at_cancel``; null = open-ended), ``start_idx`` and ``end_idx``
    (month indices of starts_at and eff_end). Trials and rows that were not paying
    (:data:`NOT_PAYING_STATUSES`) are dropped.
    """
    s = conform(subscriptions, "subscriptions")
    if scope.as_of is not None:
        as_of = ibis.literal(scope.as_of).cast(dt.Timestamp())
        s = s.filter(s.starts_at <= as_of).mutate(
            cancelled_at=ibis.ifelse(
                s.cancelled_at > as_of, ibis.null(dt.timestamp), s.cancelled_at
            )
        )
    status = _normalised(s.status, _STATUSES)
    s = s.filter(status.isnull() | ~status.isin([*TRIAL_STATUSES, *NOT_PAYING_STATUSES]))
    interval = _normalised(s.interval, _INTERVALS)
    n = s.interval_count.fill_null(1).cast(dt.float64)
    factor = ibis.cases(
        (interval == "day", 365.0 / 12.0 / n),
        (interval == "week", 52.0 / 12.0 / n),
        (interval == "month", 1.0 / n),
        (interval == "year", 1.0 / (12.0 * n)),
        else_=ibis.null(dt.float64),
    )
    gross = s.amount * s.quantity.fill_null(1.0) * factor
    mrr = gross * (1.0 - s.discount.fill_null(0.0)) if discounts == "apply" else gross
    if churn_recognition == "at_cancel":
        eff_end = ibis.cases(
            (
                s.cancelled_at.notnull() & (s.ends_at.isnull() | (s.cancelled_at < s.ends_at)),
                s.cancelled_at,
            ),
            else_=s.ends_at,
        )
    else:
        # end_of_period: a cancelled row without ends_at stops at its cancellation
        eff_end = s.ends_at.coalesce(s.cancelled_at)
    out = s.mutate(
        row_id=ibis.row_number(),
        mrr_local=mrr,
        unknown_interval=factor.isnull(),
        eff_end=eff_end,
        period_months=ibis.cases(
            (interval == "month", s.interval_count.fill_null(1)),
            (interval == "year", s.interval_count.fill_null(1) * 12),
            else_=ibis.null(dt.int64),
        ),
    )
    return out.mutate(start_idx=month_index(out.starts_at), end_idx=month_index(out.eff_end))


def _calendar(rows: ir.Table, scope: Scope) -> tuple[ir.Table, ir.IntegerScalar, int | None]:
    """Month indices from the first start to the last month of the data or scope.

    Without ``end`` or ``as_of`` the last month is that of the latest start or end, but
    an end still ahead of today (a cancellation at the end of a paid term) stops at
    today's month: the figures are today's, not those of the month the last scheduled
    end takes effect. An explicit ``end`` reaches into the scheduled future.
    """
    today, _ = _py_index(_dt.datetime.now(_dt.UTC).replace(tzinfo=None))
    last_end = ibis.least(rows.end_idx.max().fill_null(0), ibis.literal(today))
    bounds = rows.aggregate(
        lo=rows.start_idx.min(),
        hi=ibis.greatest(rows.start_idx.max(), last_end),
    )
    hi: ir.IntegerValue = bounds.hi
    cap: int | None = None
    if scope.end is not None:
        idx, first = _py_index(scope.end)
        cap = idx - 1 if first else idx
    if scope.as_of is not None:
        idx, _ = _py_index(scope.as_of)
        cap = idx if cap is None else min(cap, idx)
    if cap is not None:
        hi = ibis.literal(cap)
    cal = bounds.select(idx=ibis.range(bounds.lo, hi + 1).unnest())
    return cal, bounds.lo, cap


def last_month_index(rows: ir.Table, scope: Scope) -> ir.IntegerScalar:
    """Month index of the ledger's last month for :func:`normalised_subscriptions` rows:
    the latest start or end in the data, or the window's last month (``end``, ``as_of``)."""
    cal, _, _ = _calendar(rows, scope)
    return cal.idx.max()


def daily_rates(fx_rates: ir.Table, until: ir.DateValue) -> ir.Table:
    """The rate of every currency on every day from its first rate to ``until``.

    Output: ``c`` (upper-case currency), ``d`` (date), ``rate``: the latest
    ``rate_to_reporting`` dated on or before ``d`` (the largest of one day's rates), the
    rule of :func:`revloop.attribution.to_reporting_currency` (ChartMogul converts at the
    transaction date, ``shared/reference/revops.md`` §1.8). A currency's days before its
    first rate have no row (no rate). A few thousand rows for years of daily rates, so
    a large table finds its rates by an equality join on (currency, day) against it, not
    by placing its own distinct days among the rate dates once per lookup.
    """
    fx = fx_rates.select(
        c=fx_rates.currency.cast(dt.string).upper(),
        d=fx_rates.date.cast(dt.date),
        rate=fx_rates.rate_to_reporting.cast(dt.float64),
    )
    fx = fx.filter(fx.c.notnull() & fx.d.notnull())
    fx = fx.group_by(["c", "d"]).aggregate(rate=fx.rate.max())
    span = fx.group_by("c").aggregate(lo=fx.d.min())
    span = span.mutate(n=until.delta(span.lo, unit="day") + 1)
    days = span.filter(span.n > 0)
    days = days.select("c", "lo", k=ibis.range(0, days.n).unnest())
    days = days.select("c", d=(days.lo + days.k.as_interval("D")).cast(dt.timestamp).date())
    known = fx.select(kc="c", kd="d", krate="rate")
    grid = days.left_join(known, [days.c == known.kc, days.d == known.kd])
    grid = grid.select("c", "d", has_rate=grid.krate.notnull())
    # the latest rate date on or before each day: a running max over the day's own rate date
    upto = ibis.window(group_by=grid.c, order_by=grid.d, rows=(None, 0))
    grid = grid.select(
        "c", "d", fx_d=ibis.ifelse(grid.has_rate, grid.d, ibis.null(dt.date)).max().over(upto)
    )
    at = fx.select(ac="c", ad="d", arate="rate")
    out = grid.join(at, [grid.c == at.ac, grid.fx_d == at.ad])
    return out.select("c", "d", rate=out.arate)


def _rate_of(
    table: ir.Table,
    rates: ir.Table | None,
    at: ir.TimestampValue,
    currency: ir.StringValue,
    reporting_currency: str,
) -> tuple[ir.Table, str]:
    """``table`` joined to the rate of ``currency`` on the day of ``at``, in a new column
    whose name is returned: 1.0 in the reporting currency (or without a currency), null
    when ``rates`` has none that day (or there are no rates)."""
    n = sum(c.startswith("__rate") for c in table.columns)
    name, key_c, key_d = f"__rate{n}", f"__rc{n}", f"__rd{n}"
    same = currency.isnull() | (currency == reporting_currency.upper())
    if rates is None:
        return table.mutate(**{name: ibis.ifelse(same, 1.0, ibis.null(dt.float64))}), name
    keyed = table.mutate(**{key_c: currency, key_d: at.date()})
    r = rates.select(**{f"{key_c}_r": rates.c, f"{key_d}_r": rates.d, f"{name}_r": rates.rate})
    j = keyed.left_join(r, [keyed[key_c] == r[f"{key_c}_r"], keyed[key_d] == r[f"{key_d}_r"]])
    same = j[key_c].isnull() | (j[key_c] == reporting_currency.upper())
    j = j.mutate(**{name: ibis.ifelse(same, 1.0, j[f"{name}_r"])})
    return j.drop(key_c, key_d, f"{key_c}_r", f"{key_d}_r", f"{name}_r"), name


def customer_ledger(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    churn_recognition: str,
    same_period_new_churn: str,
    discounts: str,
    trials: str,
    reactivation_window: int | None,
    reporting_currency: str,
    history: bool = False,
) -> ir.Table:
    """One row per customer and month with the MRR movements of that month.

    When ``tables`` holds a materialised ledger under :func:`ledger_key` of the same
    policies and window (a runner computing several metrics put it there), it is read
    instead of rebuilt.

    With ``history`` the months before ``scope.start`` are kept (year-over-year metrics
    and trailing averages need them).

    Output columns: ``customer_id``, ``idx`` (month index), ``month`` (its first day),
    ``start_mrr`` (MRR at the end of the previous month), ``new``, ``expansion``,
    ``contraction``, ``churn``, ``reactivation``, ``fx`` (exchange-rate impact on
    continuing rows), ``end_mrr`` (MRR at the month's last instant, in the reporting
    currency), ``new_churn`` (MRR of a customer that started and churned inside the
    month, counted in new/reactivation and churn unless ``ignore``), ``unknown_interval``
    (rows of the customer active in the month whose interval is unknown; their MRR is
    null, so ``end_mrr`` and every total built on it is null), ``missing_rate`` (rows
    whose currency has no exchange rate by their service period's start: null MRR too),
    ``reconciles``.

    A row counts in month M when it is active at M's last instant: ``starts_at`` before
    the first day of M+1 and ``eff_end`` (see :func:`normalised_subscriptions`) null or on
    or after it. MRR is converted at the rate of the service period's start (ChartMogul):
    for month and year intervals the start of the billing period that holds M, for day and
    week intervals the later of ``starts_at`` and M's first day. The change of a continuing
    row's value caused by the rate alone goes to ``fx``, never to a movement.
    """
    policy: dict[str, Any] = {
        "churn_recognition": churn_recognition,
        "same_period_new_churn": same_period_new_churn,
        "discounts": discounts,
        "trials": trials,
        "reactivation_window": reactivation_window,
        "reporting_currency": reporting_currency,
    }
    check_month_window(scope)
    shared = tables.get(ledger_key(scope, policy))
    out = _build_ledger(tables, scope=scope, **policy) if shared is None else shared
    if scope.start is not None and not history:
        idx, _ = _py_index(scope.start)
        out = out.filter(out.idx >= idx)
    return out


def ledger_key(scope: Scope, policy: Mapping[str, Any]) -> str:
    """The name a materialised ledger goes by: every input it depends on, spelled out.

    The whole history is kept (``scope.start`` only filters), so the key holds the
    window's end and ``as_of`` and the ledger policies, not the start.

    >>> ledger_key(Scope(end="2025-01-01"), {"discounts": "apply", "trials": "exclude"})
    'mrr_ledger(end=2025-01-01, as_of=None, discounts=apply, trials=exclude)'
    """
    parts = [f"end={scope.end}", f"as_of={scope.as_of}"]
    parts += [f"{k}={policy[k]}" for k in sorted(policy) if k in _LEDGER_NAMES]
    return f"mrr_ledger({', '.join(parts)})"


def shared_ledger(
    tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any
) -> dict[str, SharedBuild]:
    """``{key: builder}`` for a metric computed with these ledger policies: the ledger
    and its monthly totals per ``scope.by`` (:func:`customer_months`), built from it."""
    check_month_window(scope)
    ledger_policy = {k: policy[k] for k in _LEDGER_NAMES}
    whole = Scope(end=scope.end, as_of=scope.as_of)

    def build(available: Mapping[str, ir.Table]) -> ir.Table:
        return _build_ledger(available, scope=whole, **ledger_policy)

    def build_months(available: Mapping[str, ir.Table]) -> ir.Table:
        months_scope = Scope(by=scope.by, end=scope.end, as_of=scope.as_of)
        return customer_months(available, scope=months_scope, **ledger_policy)

    return {
        ledger_key(scope, ledger_policy): build,
        months_key(scope, ledger_policy): build_months,
    }


def totals_key(scope: Scope, policy: Mapping[str, Any]) -> str:
    """The name the materialised :func:`aggregate_months` of a ledger go by, per ``by``,
    ``period`` and window start (``end`` and ``as_of`` are in the ledger's key).

    >>> totals_key(Scope(period="month", start="2024-01-01"), {"discounts": "apply"})
    'mrr_totals(mrr_months(mrr_ledger(end=None, as_of=None, discounts=apply), by=None), period=month, start=2024-01-01)'
    """
    return f"mrr_totals({months_key(scope, policy)}, period={scope.period}, start={scope.start})"


def shared_totals(
    tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any
) -> dict[str, SharedBuild]:
    """:func:`shared_ledger` and the ledger's totals per ``[by,] period`` of the scope
    (:func:`totals_key`): the few rows that MRR, ARR, movements, ARPA and the other
    metrics of period totals each read a couple of columns of. Materialised once, each
    of those metrics compiles to a select over a handful of rows instead of the whole
    aggregation (a subscription panel asks for nine of them per period)."""
    out = shared_ledger(tables, scope=scope, **policy)
    if scope.period in ("day", "week"):  # refused by aggregate_months, metric by metric
        return out
    ledger_policy = {k: policy[k] for k in _LEDGER_NAMES}
    totals_scope = Scope(
        by=scope.by, period=scope.period, start=scope.start, end=scope.end, as_of=scope.as_of
    )

    def build(available: Mapping[str, ir.Table]) -> ir.Table:
        months = customer_months(available, scope=totals_scope, **ledger_policy)
        return aggregate_months(months, totals_scope)

    out[totals_key(scope, ledger_policy)] = build
    return out


def _build_ledger(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    churn_recognition: str,
    same_period_new_churn: str,
    discounts: str,
    trials: str,
    reactivation_window: int | None,
    reporting_currency: str,
) -> ir.Table:
    """The whole ledger (every month, whatever ``scope.start``) of :func:`customer_ledger`."""
    del trials  # one choice: exclude (applied in normalised_subscriptions)
    rows = normalised_subscriptions(
        tables["subscriptions"],
        churn_recognition=churn_recognition,
        discounts=discounts,
        scope=scope,
    )
    # an integer key per customer: cheaper to group, join and sort by than the id text;
    # only the columns the ledger reads travel through its joins (the row x month table
    # is the largest the ledger builds, and it is read twice for its exchange rates)
    rows = rows.select(
        "customer_id",
        "starts_at",
        "eff_end",
        "start_idx",
        "end_idx",
        "period_months",
        "mrr_local",
        "unknown_interval",
        currency=rows.currency.upper(),
        ck=ibis.dense_rank().over(order_by=rows.customer_id),
    )
    cal, _, cap = _calendar(rows, scope)
    last = ibis.cases((rows.eff_end.isnull(), ibis.literal(10**7)), else_=rows.end_idx - 1)
    spanning = rows.filter(last >= rows.start_idx).mutate(last_idx=last)
    # one row per subscription row and month it is active at the month's end: an unnest
    # of each row's own months, not an inequality join against the calendar (rows
    # starting after the calendar's last month, or an empty calendar, have none)
    # the last month: the window's, known without a query, or the data's (a scalar
    # subquery); a window ending before the first start leaves the calendar empty, and
    # no row starts by its end either
    top = ibis.literal(cap, dt.int64) if cap is not None else cal.idx.max().as_scalar()
    spanning = spanning.filter(spanning.start_idx <= top)
    through = ibis.least(spanning.last_idx, top)
    rm = spanning.mutate(idx=ibis.range(spanning.start_idx, through + 1).unnest())

    def service_start(t: ir.Table, idx: ir.IntegerValue) -> ir.TimestampValue:
        # month and year intervals: the start of the billing period holding month idx;
        # day and week intervals: the later of starts_at and the month's first day
        k = ((idx - t.start_idx) // t.period_months) * t.period_months
        return ibis.cases(
            (t.period_months.notnull(), t.starts_at + k.as_interval("M")),
            else_=ibis.greatest(t.starts_at, _index_date(idx).cast(dt.timestamp)),
        )

    # every rate a row needs falls on or before the last day of the ledger's last month
    fx_rates = tables.get("fx_rates")
    until = (_index_date(top + 1) - ibis.interval(days=1)).cast(dt.date)
    rates = None if fx_rates is None else daily_rates(fx_rates, until)
    # only rows in another currency than the reporting one need a rate: the rest take
    # 1.0 without a join (joins of the row x month table are the ledger's costliest step)
    keep = ["ck", "idx", "mrr_local", "unknown_interval"]
    foreign = rm.currency.notnull() & (rm.currency != reporting_currency.upper())
    home = rm.filter(~foreign).select(*keep, rate=ibis.literal(1.0), fx_row=ibis.literal(0.0))
    away = rm.filter(foreign)
    away = away.select(
        *keep,
        "currency",
        fx_at=service_start(away, away.idx),
        # last month's rate of a row that was active then (the FX line of a continuing row)
        prev_fx_at=ibis.ifelse(
            away.idx > away.start_idx,
            service_start(away, away.idx - 1),
            ibis.null(dt.timestamp),
        ),
    )
    away, rate = _rate_of(away, rates, away.fx_at, away.currency, reporting_currency)
    away, prev_rate = _rate_of(away, rates, away.prev_fx_at, away.currency, reporting_currency)
    away = away.select(
        *keep,
        rate=away[rate],
        fx_row=ibis.ifelse(
            away.prev_fx_at.isnull() | away[prev_rate].isnull(),
            0.0,
            away.mrr_local * (away[rate] - away[prev_rate]),
        ),
    )
    rm = home.union(away)
    rm = rm.mutate(mrr=rm.mrr_local * rm.rate)
    # rows that start and end inside one month: never active at a month's end; their
    # MRR (at the start's rate) is the month's flicker, summed in the same aggregate
    fl = rows.filter((rows.end_idx == rows.start_idx) & (rows.eff_end > rows.starts_at))
    fl, fl_rate = _rate_of(fl, rates, fl.starts_at, fl.currency, reporting_currency)
    fl = fl.mutate(amount_reporting=fl[fl_rate])
    # 32-bit flags: DuckDB sums them in 64 bits (a 64-bit input would sum in 128)
    null_f, null_i = ibis.null(dt.float64), ibis.null(dt.int32)
    parts = rm.select(
        "ck",
        "idx",
        "mrr",
        "fx_row",
        unk=rm.unknown_interval.cast(dt.int32),
        # a row in a currency without an exchange rate by its service-period start
        norate=rm.rate.isnull().cast(dt.int32),
        fl_mrr=null_f,
        fl_unk=null_i,
        is_row=ibis.literal(1, dt.int32),
    ).union(
        fl.select(
            "ck",
            idx=fl.start_idx,
            mrr=null_f,
            fx_row=null_f,
            unk=null_i,
            norate=fl.amount_reporting.isnull().cast(dt.int32),
            fl_mrr=fl.mrr_local * fl.amount_reporting,
            fl_unk=fl.unknown_interval.cast(dt.int32),
            is_row=ibis.literal(0, dt.int32),
        )
    )
    cm = parts.group_by(["ck", "idx"]).aggregate(
        end_sum=parts.mrr.sum(),
        n_rows=parts.is_row.sum(),
        n_known=parts.mrr.count(),
        fx=parts.fx_row.sum(),
        unknown_interval=parts.unk.sum(),
        missing_rate=parts.norate.sum(),
        flicker=parts.fl_mrr.sum(),
        fl_unknown=parts.fl_unk.sum(),
    )
    # the same figures of the month before (the month's start), without a window
    prev = cm.select("ck", idx=cm.idx + 1, p_sum=cm.end_sum, p_rows=cm.n_rows, p_known=cm.n_known)
    first = rows.group_by(["ck", "customer_id"]).aggregate(first_idx=rows.start_idx.min())
    paid_cols = []
    counts_flicker = same_period_new_churn != "ignore"
    if reactivation_window is None:
        first = first.left_join(_first_paid(cm, flickers=counts_flicker), "ck").drop("ck_right")
        paid_cols = ["first_paid"]
    dense = first.join(cal, [cal.idx >= first.first_idx, cal.idx <= top])
    led = dense.select("ck", "customer_id", "idx", "first_idx", *paid_cols)
    for part in (cm, prev):
        led = led.left_join(part, ["ck", "idx"]).drop("ck_right", "idx_right")

    def month_end(
        total: ir.FloatingValue, n_known: ir.IntegerValue, n_rows: ir.IntegerValue
    ) -> ir.FloatingValue:
        # null when a row active at the month's end has an unknown interval
        unknown = n_known.fill_null(0) < n_rows.fill_null(0)
        return ibis.ifelse(unknown, ibis.null(dt.float64), total.fill_null(0.0))

    led = led.mutate(
        end_mrr=month_end(led.end_sum, led.n_known, led.n_rows),
        start_mrr=ibis.ifelse(
            led.idx == led.first_idx, 0.0, month_end(led.p_sum, led.p_known, led.p_rows)
        ),
        fx=led.fx.fill_null(0.0),
        unknown_interval=led.unknown_interval.fill_null(0) + led.fl_unknown.fill_null(0),
        missing_rate=led.missing_rate.fill_null(0),
        flicker=led.flicker.fill_null(0.0),
    )
    was = led.start_mrr > _EPS
    now = led.end_mrr > _EPS
    fl_mrr = (
        ibis.ifelse(~was & ~now & (led.flicker > _EPS), led.flicker, 0.0)
        if counts_flicker
        else ibis.literal(0.0)
    )
    led = led.mutate(new_churn=fl_mrr)
    was = led.start_mrr > _EPS
    now = led.end_mrr > _EPS
    paid_idx = ibis.ifelse(now | (led.new_churn > _EPS), led.idx, ibis.null(dt.int64))
    if reactivation_window is None:
        # paid in some earlier month: the first paid month is earlier (see _first_paid)
        led = led.mutate(
            last_paid=ibis.ifelse(led.first_paid < led.idx, led.first_paid, ibis.null(dt.int64))
        )
    else:  # the latest paid month before this one
        prior = ibis.window(group_by=led.ck, order_by=led.idx, rows=(None, -1))
        led = led.mutate(last_paid=paid_idx.max().over(prior))
    was = led.start_mrr > _EPS
    now = led.end_mrr > _EPS
    returning = ~was & (now | (led.new_churn > _EPS))
    react = returning & led.last_paid.notnull()
    if reactivation_window is not None:
        react = react & (led.idx - led.last_paid <= reactivation_window)
    arriving = led.end_mrr + led.new_churn
    cont = was & now
    diff = led.end_mrr - led.start_mrr - led.fx
    led = led.mutate(
        new=ibis.ifelse(returning & ~react, arriving, 0.0),
        reactivation=ibis.ifelse(react, arriving, 0.0),
        # float leftovers of an FX-only month (1e-13) are no movement
        expansion=ibis.ifelse(cont & (diff > _EPS), diff, 0.0),
        contraction=ibis.ifelse(cont & (diff < -_EPS), -diff, 0.0),
        churn=ibis.ifelse(was & ~now, led.start_mrr, 0.0) + led.new_churn,
        fx=ibis.ifelse(cont, led.fx, 0.0),
        month=_index_date(led.idx),
    )
    total = (
        led.start_mrr
        + led.new
        + led.expansion
        + led.reactivation
        - led.contraction
        - led.churn
        + led.fx
    )
    led = led.mutate(reconciles=(total - led.end_mrr).abs() <= _EPS * (1.0 + led.end_mrr.abs()))
    return led.select(
        "customer_id",
        "idx",
        "month",
        "start_mrr",
        "new",
        "expansion",
        "contraction",
        "churn",
        "reactivation",
        "fx",
        "end_mrr",
        "new_churn",
        "unknown_interval",
        "missing_rate",
        "reconciles",
    )


def _first_paid(cm: ir.Table, *, flickers: bool) -> ir.Table:
    """``ck, first_paid``: each customer's first month with MRR at its end or (with
    ``flickers``, unless ``same_period_new_churn=ignore``) a same-month flicker counted
    as new and churned (``new_churn``), without a window over the whole ledger.

    A month is paid when its end MRR is known and above zero, or when its flicker is
    above zero and the month starts and ends at a known zero. A flicker month earlier
    than the first paid month-end has no positive month-end at it or the month before,
    so it is paid unless one of the two is unknown (a row of unknown interval); a later
    one cannot lower the minimum. Only those rare unknown months are joined.
    """
    known = cm.n_known >= cm.n_rows
    paid = cm.filter(known & (cm.end_sum > _EPS)).select("ck", "idx")
    if not flickers:  # ProfitWell: a flicker is neither new nor churn, so never paid
        return paid.group_by("ck").aggregate(first_paid=paid.idx.min())
    unknown = cm.filter(~known).select("ck", "idx")
    f = cm.filter(cm.flicker > _EPS).select("ck", "idx")
    f = f.anti_join(unknown, ["ck", "idx"])
    f = f.anti_join(unknown.mutate(idx=unknown.idx + 1), ["ck", "idx"])
    months = paid.union(f)
    return months.group_by("ck").aggregate(first_paid=months.idx.min())


MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "fx")
_COUNTS = (
    "customers_start",
    "customers_end",
    "new_customers",
    "churned_customers",
    "new_churned_customers",
    "reactivated_customers",
)


def last_month(ledger: ir.Table) -> ir.Table:
    """The ledger's rows of its last month (the default window of a rate)."""
    return ledger.filter(ledger.idx == ledger.idx.max().as_scalar())


def ledger_months(
    ledger: ir.Table, *, by_name: str | None = None, by: ir.Table | None = None
) -> ir.Table:
    """Totals of the customer ledger per [``by_name``,] month, one row each.

    Output: [by_name,] ``idx``, ``month``, ``start_mrr``, ``end_mrr``, the sums of the
    movements, ``new_churn``, ``react_churn``, the customer counts of
    :func:`aggregate_ledger`, ``unknown_interval``, ``missing_rate``, ``unknown_end`` (a
    customer's MRR at the month's end is unknown: an unknown interval or a missing
    exchange rate), ``unknown_start`` (the same at its start) and ``all_reconcile``. ``by`` maps ``customer_id`` to ``by_name``
    (:func:`customer_attribute`).
    """
    led = ledger
    keys: list[str] = []
    if by_name is not None:
        if by is None:
            raise ConfigError(f"cannot group subscription metrics by {by_name!r}")
        led = led.join(by, "customer_id")
        keys.append(by_name)
    # a customer-month whose MRR cannot be known (a row of unknown interval, or in a
    # currency without an exchange rate: its end or start MRR is null) makes the
    # month's totals unknown, never a silent 0 (aggregate_months nulls them)
    end_unknown = (led.unknown_interval > 0) | (led.missing_rate > 0) | led.end_mrr.isnull()
    return led.group_by([*keys, "idx", "month"]).aggregate(
        start_mrr=led.start_mrr.sum(),
        end_mrr=led.end_mrr.sum(),
        **{m: led[m].sum() for m in MOVEMENTS},
        new_churn=led.new_churn.sum(),
        react_churn=ibis.ifelse(led.end_mrr <= _EPS, led.reactivation, 0.0).sum(),
        customers_start=(led.start_mrr > _EPS).sum(),
        customers_end=(led.end_mrr > _EPS).sum(),
        new_customers=(led.new > _EPS).sum(),
        churned_customers=((led.start_mrr > _EPS) & (led.end_mrr <= _EPS)).sum(),
        new_churned_customers=(led.new_churn > _EPS).sum(),
        reactivated_customers=(led.reactivation > _EPS).sum(),
        unknown_interval=led.unknown_interval.sum(),
        missing_rate=led.missing_rate.sum(),
        unknown_end=end_unknown.any(),
        unknown_start=led.start_mrr.isnull().any(),
        all_reconcile=led.reconciles.fill_null(False).all(),
    )


def months_key(scope: Scope, policy: Mapping[str, Any]) -> str:
    """The name the materialised :func:`ledger_months` of a ledger and a ``by`` go by.

    >>> months_key(Scope(by="plan"), {"discounts": "apply"})
    'mrr_months(mrr_ledger(end=None, as_of=None, discounts=apply), by=plan)'
    """
    return f"mrr_months({ledger_key(scope, policy)}, by={scope.by})"


def customer_months(
    tables: Mapping[str, ir.Table], *, scope: Scope, history: bool = False, **policy: Any
) -> ir.Table:
    """:func:`ledger_months` of the :func:`customer_ledger` of these policies, per ``scope.by``.

    Read from ``tables`` when a runner materialised it (:func:`months_key`). The months
    before ``scope.start`` are dropped unless ``history``.
    """
    check_month_window(scope)
    ledger_policy = {k: policy[k] for k in _LEDGER_NAMES}
    months = tables.get(months_key(scope, ledger_policy))
    if months is None:
        whole = Scope(end=scope.end, as_of=scope.as_of)
        led = customer_ledger(tables, scope=whole, **ledger_policy)
        by = None if scope.by is None else customer_attribute(tables["subscriptions"], scope.by)
        months = ledger_months(led, by_name=scope.by, by=by)
    if scope.start is not None and not history:
        months = months.filter(months.idx >= _py_index(scope.start)[0])
    return months


def aggregate_ledger(ledger: ir.Table, scope: Scope, *, by: ir.Table | None = None) -> ir.Table:
    """Totals of the customer ledger per ``[by,] period`` (or one row for the whole window).

    Output: [by, period,] ``start_mrr`` (of the first month), ``new`` … ``fx`` (sums),
    ``new_churn`` (MRR of customers new and churned inside one month, part of new/
    reactivation and churn), ``react_churn`` (the part of it that was reactivation),
    ``end_mrr`` (of the last month), ``customers_start``, ``customers_end``,
    ``new_customers``, ``churned_customers`` (active at a month's start, gone at its end),
    ``new_churned_customers``, ``reactivated_customers``, ``unknown_interval``,
    ``missing_rate``, ``reconciles`` (every customer-month reconciles and the totals do),
    ``months``, ``period_start`` and ``period_end`` (the first day of the first month the
    row covers and of the month after its last: a period clipped by the window or by the
    data covers fewer months than its calendar label says). What rests on a
    customer-month of unknown MRR is null, never a silent 0: the start (MRR and
    customers) when the first month's start is unknown, the end when the last month's
    end is, the flows and other counts when any month's is.
    """
    _monthly_only(scope)
    return aggregate_months(ledger_months(ledger, by_name=scope.by, by=by), scope)


def _monthly_only(scope: Scope) -> None:
    if scope.period in ("day", "week"):
        raise ConfigError(
            f"subscription metrics are monthly: --period {scope.period!r} is not supported; "
            "use month, quarter or year."
        )


def aggregate_months(monthly: ir.Table, scope: Scope) -> ir.Table:
    """:func:`aggregate_ledger` of the :func:`ledger_months` of a ledger."""
    _monthly_only(scope)
    keys = [] if scope.by is None else [scope.by]
    if scope.period is not None:
        monthly = monthly.mutate(
            period=period_start(monthly.month.cast(dt.timestamp), scope.period)
        )
        gkeys = [*keys, "period"]
    else:
        gkeys = keys
    g = monthly.group_by(gkeys) if gkeys else monthly
    agg = g.aggregate(
        start_mrr=monthly.start_mrr.argmin(monthly.idx),
        **{m: monthly[m].sum() for m in MOVEMENTS},
        new_churn=monthly.new_churn.sum(),
        react_churn=monthly.react_churn.sum(),
        end_mrr=monthly.end_mrr.argmax(monthly.idx),
        customers_start=monthly.customers_start.argmin(monthly.idx),
        customers_end=monthly.customers_end.argmax(monthly.idx),
        new_customers=monthly.new_customers.sum(),
        churned_customers=monthly.churned_customers.sum(),
        new_churned_customers=monthly.new_churned_customers.sum(),
        reactivated_customers=monthly.reactivated_customers.sum(),
        unknown_interval=monthly.unknown_interval.sum(),
        missing_rate=monthly.missing_rate.sum(),
        unknown=(monthly.unknown_start | monthly.unknown_end).any(),
        unknown_start=monthly.unknown_start.argmin(monthly.idx),
        unknown_end=monthly.unknown_end.argmax(monthly.idx),
        all_reconcile=monthly.all_reconcile.all(),
        months=monthly.count(),
        first_idx=monthly.idx.min(),
        last_idx=monthly.idx.max(),
    )
    # what rests on a customer-month of unknown MRR is null: the period's start (its
    # first month's start), its end (its last month's end), and the flows and counts
    # between them when any month of it is unknown
    nul_f, nul_i = ibis.null(dt.float64), ibis.null(dt.int64)
    which = {
        "start_mrr": agg.unknown_start,
        "customers_start": agg.unknown_start,
        "end_mrr": agg.unknown_end,
        "customers_end": agg.unknown_end,
    }
    money = ("start_mrr", "end_mrr", "new_churn", "react_churn", *MOVEMENTS)
    agg = agg.mutate(
        **{c: ibis.ifelse(which.get(c, agg.unknown), nul_f, agg[c]) for c in money},
        **{c: ibis.ifelse(which.get(c, agg.unknown), nul_i, agg[c]) for c in _COUNTS},
    )
    total = (
        agg.start_mrr
        + agg.new
        + agg.expansion
        + agg.reactivation
        - agg.contraction
        - agg.churn
        + agg.fx
    )
    agg = agg.mutate(
        reconciles=agg.all_reconcile
        & ((total - agg.end_mrr).abs() <= _EPS * (1.0 + agg.end_mrr.abs()))
    )
    # the months a row covers, the same for every group of a period: the ledger's months
    # (from the data's first month to the last of the data or of the window) inside the
    # period and the window. A window that does not start or end on the period's
    # boundary clips the period, which keeps its calendar label, as every metric's does
    w = ibis.window(group_by=agg.period) if scope.period is not None else ibis.window()
    agg = agg.mutate(
        period_start=_index_date(agg.first_idx.min().over(w)),
        period_end=_index_date(agg.last_idx.max().over(w) + 1),
    )
    agg = agg.drop(
        "all_reconcile", "unknown", "unknown_start", "unknown_end", "first_idx", "last_idx"
    )
    return agg.order_by(gkeys) if gkeys else agg


def period_churned_customers(
    ledger: ir.Table, scope: Scope, *, by: ir.Table | None = None
) -> ir.Table:
    """Distinct customers churned per ``[by, period]`` (or in the whole window): the
    terms of the ChartMogul B2B customer churn rate over any span of months.

    ``churned``: customers paying at the period's start (MRR > 0 at the end of the month
    before its first month) that churned (went from MRR > 0 to 0) in one of its months,
    each once, even when it came back later in the period (ChartMogul B2B and Tidemill:
    churned ∈ C_start, ``shared/reference/revops.md`` §1.4). ``joined_churned``: the
    other customers that churned in the period, or were new and churned inside one of its
    months (``new_churn``, none under ``same_period_new_churn=ignore``): they joined in
    the period (as new business or a reactivation) and churned in it, each once. Over a
    single month they are the month's ``churned_customers`` and
    ``new_churned_customers``; summing the months of a quarter instead would count a
    customer twice, or one that joined in its first month as if it were at the start.

    Output: [by,] [period,] ``churned``, ``joined_churned``. The ledger is dense (a row
    per customer and month from its first), so a customer's first row in a period holds
    its start.
    """
    led = ledger
    keys: list[str] = []
    if scope.by is not None:
        if by is None:
            raise ConfigError(f"cannot group subscription metrics by {scope.by!r}")
        led = led.join(by, "customer_id")
        keys.append(scope.by)
    if scope.period is not None:
        led = led.mutate(period=period_start(led.month.cast(dt.timestamp), scope.period))
        keys.append("period")
    per = led.group_by([*keys, "customer_id"]).aggregate(
        at_start=(led.start_mrr.argmin(led.idx) > _EPS).fill_null(False),
        churned=((led.start_mrr > _EPS) & (led.end_mrr <= _EPS)).fill_null(False).any(),
        flicker=(led.new_churn > _EPS).fill_null(False).any(),
    )
    per = per.mutate(
        c0=(per.at_start & per.churned).cast(dt.int64),
        cj=(~per.at_start & (per.churned | per.flicker)).cast(dt.int64),
    )
    aggs = {"churned": per.c0.sum(), "joined_churned": per.cj.sum()}
    return per.group_by(keys).aggregate(**aggs) if keys else per.aggregate(**aggs)


def customer_attribute(subscriptions: ir.Table, column: str) -> ir.Table:
    """``customer_id`` and the largest value of ``column`` over the customer's rows."""
    s = conform(subscriptions, "subscriptions")
    if column not in s.columns:
        from revloop.exceptions import SchemaError

        raise SchemaError(
            f"cannot group subscriptions by {column!r}: they have {list(s.columns)}. Pass one of those as --by."
        )
    if column == "customer_id":
        return s.select("customer_id").distinct()
    return s.group_by("customer_id").aggregate(s[column].max().name(column))


def daily_churn(rows: ir.Table, scope: Scope, *, last_month_only: bool = False) -> ir.Table:
    """Every day of the window, the paying customers that churned on it and those active
    at its start: the terms of ChartMogul's B2C daily churn rate (revops.md §1.4).

    Input: :func:`normalised_subscriptions` rows. A customer's rows with MRR > 0 are merged
    into spans of continuous activity (gaps and islands); a span's end day is a churn day.
    The days are those of the ledger's months (:func:`customer_ledger`: from the data's
    first month to its last, or to the window's ``end``) from ``scope.start`` on, up to
    ``scope.as_of``'s day; with ``last_month_only`` those of the last month alone. A day
    without churn has a row too (``churned`` 0), so a period's days are all there.
    Output: ``day`` (date), ``churned`` (spans ending that day), ``active_start``
    (customers active at the day's first instant), ``month`` (its month's first day),
    ``idx``.
    """
    cal = _calendar(rows, scope)[0]
    if last_month_only:
        cal = cal.filter(cal.idx == cal.idx.max().as_scalar())
    first = start_index(scope)
    if first is not None:
        cal = cal.filter(cal.idx >= first)
    cal = cal.select(
        "idx",
        lo=_index_date(cal.idx),
        n=_index_date(cal.idx + 1).delta(_index_date(cal.idx), unit="day"),
    )
    days = cal.select("idx", "lo", k=ibis.range(0, cal.n).unnest())
    days = days.select(day=(days.lo + days.k.as_interval("D")).cast(dt.timestamp).date())
    # a daily rate honours a window inside a month: only its days are summed
    if scope.start is not None:
        days = days.filter(days.day >= ibis.literal(scope.start).cast(dt.timestamp).date())
    if scope.end is not None:
        days = days.filter(days.day.cast(dt.timestamp) < ibis.literal(scope.end).cast(dt.timestamp))
    if scope.as_of is not None:
        days = days.filter(days.day <= ibis.literal(scope.as_of).cast(dt.date))
    paid = rows.filter(rows.mrr_local > _EPS)
    paid = paid.select(
        "customer_id",
        start=paid.starts_at.date(),
        end=paid.eff_end.date(),
    )
    paid = paid.filter(paid.end.isnull() | (paid.end > paid.start))
    far = ibis.date(9999, 12, 31)
    end_ = paid.end.coalesce(far)
    w_prev = ibis.window(group_by=paid.customer_id, order_by=[paid.start, end_], rows=(None, -1))
    reach = end_.max().over(w_prev)
    paid = paid.mutate(
        end_=end_, island_start=(reach.isnull() | (paid.start > reach)).cast(dt.int64)
    )
    w_cum = ibis.window(group_by=paid.customer_id, order_by=[paid.start, paid.end_], rows=(None, 0))
    paid = paid.mutate(island=paid.island_start.sum().over(w_cum))
    spans = paid.group_by(["customer_id", "island"]).aggregate(
        start=paid.start.min(), end=paid.end_.max()
    )
    one, zero = ibis.literal(1, dt.int64), ibis.literal(0, dt.int64)
    starts = spans.select(day=spans.start, delta=one, ended=zero, in_window=zero)
    ends = spans.filter(spans.end < far).select(
        day=spans.end, delta=-one, ended=one, in_window=zero
    )
    # the window's days join the events (delta 0), so every day gets its running count
    grid = days.select("day", delta=zero, ended=zero, in_window=one)
    ev = (
        starts.union(ends)
        .union(grid)
        .group_by("day")
        .aggregate(delta=_.delta.sum(), churned=_.ended.sum(), in_window=_.in_window.max())
    )
    w_before = ibis.window(order_by=ev.day, rows=(None, -1))
    ev = ev.mutate(active_start=ev.delta.sum().over(w_before).fill_null(0))
    ev = ev.filter(ev.in_window > 0)
    return ev.select(
        "day",
        "churned",
        "active_start",
        month=ev.day.truncate("M"),
        idx=month_index(ev.day),
    )
