"""Subscription revenue metrics: MRR ledger, ARR, churn rates, NRR/GRR, ARPA, LTV, cohorts.

Every metric is read off the customer-grain ledger of :mod:`revloop.metrics._mrr`.
Definitions, vendor defaults and sources: ``shared/reference/revops.md`` §1 and
``docs/metrics-subscription.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
from ibis import _

from revloop.exceptions import ConfigError
from revloop.metrics._mrr import (
    LEDGER_POLICIES,
    aggregate_months,
    check_month_window,
    customer_attribute,
    customer_ledger,
    customer_months,
    daily_churn,
    last_month,
    month_date,
    month_index,
    normalised_subscriptions,
    period_churned_customers,
    shared_ledger,
    shared_totals,
    start_index,
    totals_key,
)
from revloop.metrics._registry import Benchmark, Policy, Scope, SharedBuild, metric
from revloop.metrics._scope import attach, period_start

__all__ = [
    "arpa",
    "arr",
    "asp",
    "cohort_retention",
    "customer_churn_rate",
    "grr",
    "ltv",
    "mrr",
    "mrr_churn_rate",
    "mrr_movements",
    "net_new_mrr",
    "nrr",
    "quick_ratio",
]

_TABLES = ("subscriptions",)
_OPTIONAL = ("fx_rates",)
_LEDGER_KEYS = tuple(p.name for p in LEDGER_POLICIES)


def _totals(
    tables: Mapping[str, ir.Table],
    scope: Scope,
    policy: Mapping[str, Any],
    *,
    rate: bool = False,
) -> ir.Table:
    """Ledger totals per [by, period]; a ``rate`` with no period and no start: the last month."""
    ledger_policy = {k: policy[k] for k in _LEDGER_KEYS}
    last_only = rate and scope.period is None and scope.start is None
    shared = tables.get(totals_key(scope, ledger_policy))
    if shared is not None and not last_only:  # materialised by a runner (shared_totals)
        return shared
    months = customer_months(tables, scope=scope, **ledger_policy)
    if last_only:  # the last month
        months = months.filter(months.idx == months.idx.max().as_scalar())
    return aggregate_months(months, scope)


def _keys(scope: Scope) -> list[str]:
    return [k for k in (scope.by, "period" if scope.period else None) if k is not None]


def _ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """``num / den``, null when the denominator is zero."""
    return ibis.ifelse(den == 0, ibis.null(dt.float64), num.cast(dt.float64) / den.cast(dt.float64))


def _front(t: ir.Table, scope: Scope, cols: list[str]) -> ir.Table:
    """The keys, per period the months it covers (``period_start``, ``period_end``:
    the first day of its first month and of the month after its last), then ``cols``.

    ``period`` is the calendar period's first day, as for every metric; a window that
    does not start or end on the period's boundary, or data that ends inside it, clip
    the period, and the span says so.
    """
    span = ["period_start", "period_end"] if scope.period is not None else []
    return t.select(*_keys(scope), *span, *cols)


def _spans(t: ir.Table, idx: ir.IntegerValue) -> ir.Table:
    """``period``, ``period_start``, ``period_end`` of the months ``idx`` of ``t`` per period."""
    return t.group_by("period").aggregate(
        period_start=month_date(idx.min()), period_end=month_date(idx.max() + 1)
    )


@metric(
    "mrr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=LEDGER_POLICIES,
)
def mrr(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Monthly recurring revenue at the end of the period (the last month of the window).

    Output: [by, period,] value (MRR in the reporting currency), customers (paying
    customers), unknown_interval (rows with an unknown interval), missing_rate (rows in a
    currency without an exchange rate); value is null when either is > 0.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.end_mrr, customers=t.customers_end)
    return _front(t, scope, ["value", "customers", "unknown_interval", "missing_rate"])


@metric(
    "arr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=LEDGER_POLICIES,
)
def arr(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Annual recurring revenue: 12 × MRR at the end of the period (Baremetrics, revops.md §1.1).

    Output: [by, period,] value (ARR), mrr, customers, unknown_interval, missing_rate.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.end_mrr * 12.0, mrr=t.end_mrr, customers=t.customers_end)
    return _front(t, scope, ["value", "mrr", "customers", "unknown_interval", "missing_rate"])


_MOVEMENT_COLS = [
    "start_mrr",
    "new",
    "expansion",
    "reactivation",
    "contraction",
    "churn",
    "fx",
    "end_mrr",
    "reconciles",
    "customers_start",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
    "new_churned_customers",
    "customers_end",
    "unknown_interval",
    "missing_rate",
]


@metric(
    "mrr_movements",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=LEDGER_POLICIES,
)
def mrr_movements(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """The MRR bridge: start + new + expansion + reactivation − contraction − churn ± fx = end.

    Output: [by, period,] value (net new MRR = end − start − fx), start_mrr, new,
    expansion, reactivation, contraction, churn, fx (exchange-rate impact, never a
    movement), end_mrr, reconciles (the identity holds for every customer-month and
    for the totals), customer counts, unknown_interval, missing_rate.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.new + t.expansion + t.reactivation - t.contraction - t.churn)
    return _front(t, scope, ["value", *_MOVEMENT_COLS])


@metric(
    "net_new_mrr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=LEDGER_POLICIES,
)
def net_new_mrr(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Net new MRR: new + expansion + reactivation − contraction − churn (FX impact excluded).

    Output: [by, period,] value, new, expansion, reactivation, contraction, churn, fx.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.new + t.expansion + t.reactivation - t.contraction - t.churn)
    return _front(
        t, scope, ["value", "new", "expansion", "reactivation", "contraction", "churn", "fx"]
    )


def _reactivation(default: str, who: str) -> Policy:
    return Policy(
        "reactivation",
        default,
        ("exclude", "include"),
        doc=f"Whether reactivation MRR counts in {who}.",
        sources={
            "exclude": "ChartMogul Net MRR Retention chart (revops.md §1.6)",
            "include": "ChartMogul Net MRR Churn Rate and Quick Ratio; Tidemill NRR (§1.5, §1.6, §1.9)",
        },
    )


def _churn_shared(
    tables: Mapping[str, ir.Table], *, scope: Scope, convention: str, **policy: Any
) -> dict[str, SharedBuild]:
    """The ledger customer_churn_rate reads (none for b2c_daily, which counts days)."""
    if convention == "b2c_daily":
        return {}
    if convention == "profitwell":
        policy = {**policy, "same_period_new_churn": "ignore"}
    return shared_totals(tables, scope=scope, **policy)


def _profitwell_ignores_new_churn(
    given: Mapping[str, Any], policy: dict[str, Any]
) -> dict[str, Any]:
    """ProfitWell never counts a customer new and churned in one month (revops.md §1.4):
    ``convention=profitwell`` sets ``same_period_new_churn=ignore``."""
    if policy["convention"] != "profitwell":
        return policy
    asked = given.get("same_period_new_churn", "ignore")
    if asked != "ignore":
        raise ConfigError(
            f"customer_churn_rate: convention='profitwell' ignores customers new and churned "
            f"in one month, but same_period_new_churn={asked!r} was given. Drop that parameter, "
            "or choose convention 'chartmogul' (exclude) or 'stripe' (count_both)."
        )
    return {**policy, "same_period_new_churn": "ignore"}


@metric(
    "customer_churn_rate",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=_churn_shared,
    policies=(
        Policy(
            "convention",
            "chartmogul",
            ("chartmogul", "b2c_daily", "stripe", "profitwell"),
            doc=(
                "chartmogul: customers at the period's start that churned in it ÷ customers "
                "at its start; "
                "b2c_daily: Σ over days of churned that day ÷ active at the day's start; "
                "stripe: churn events ÷ (customers at start + new and returning customers "
                "in the period); "
                "profitwell: as chartmogul, with customers new and churned in one month "
                "never counted (same_period_new_churn=ignore is forced). Customers that "
                "joined and churned in the period are in both terms (count_both) or in "
                "neither (exclude, ignore)."
            ),
            sources={
                "chartmogul": "ChartMogul B2B customer churn rate (revops.md §1.4)",
                "b2c_daily": "ChartMogul B2C ('Shopify') daily formula (§1.4)",
                "stripe": "Stripe subscriber churn rate (§1.4)",
                "profitwell": "ProfitWell/Paddle (§1.4)",
            },
        ),
        *LEDGER_POLICIES,
    ),
    implies=_profitwell_ignores_new_churn,
    benchmarks=(
        Benchmark(
            "best-in-class yearly customer retention, ARPA < $25",
            0.75,
            "share",
            "ChartMogul 2023 SaaS Benchmarks (revops.md §1.10, secondary)",
        ),
    ),
)
def customer_churn_rate(
    tables: Mapping[str, ir.Table], *, scope: Scope, convention: str, **policy: Any
) -> ir.Table:
    """Customer (logo) churn rate per period.

    A customer churns when its MRR goes from > 0 to 0 (all of its subscriptions end).
    Output: [by, period, period_start, period_end,] value (the rate), churned
    (numerator), customers (denominator); b2c_daily: value, churned, days.

    The conventions differ in what they count (``shared/reference/revops.md`` §1.4):

    - ``chartmogul`` and ``profitwell`` count customers, over any span of months: those
      paying at the period's start that churned in it, each once
      (:func:`~revloop.metrics._mrr.period_churned_customers`), over the customers at its
      start.
    - ``stripe`` counts churn events (a returning customer that churns again counts
      twice) over the customers at the start plus every subscriber that arrived in the
      period (new business and reactivations: each churn event then has its subscriber
      in the denominator).

    ``same_period_new_churn`` says where the customers that joined in the period and
    churned in it go, in both terms alike, so every rate stays in [0, 1]:

    - ``exclude`` (ChartMogul B2B, the default) and ``ignore`` (ProfitWell, forced by
      ``profitwell``): in neither term. Under ``stripe`` the arrivals that churned in the
      period leave the denominator with their churn events.
    - ``count_both`` (Stripe: in both terms, revops.md §1.4): in both. Under ``stripe``
      they already are (arrivals and their churn events). Under ``chartmogul`` each such
      customer is added once to the numerator and to the denominator: revloop's own
      combination, so that the rate stays a share. Baremetrics (since its update, §1.4)
      counts them in the numerator only, over the customers active 30 days earlier, a rate
      that can exceed 100%; revloop does not offer that variant.

    Over one month the joiners that churned are the same-month flickers (``new_churn``);
    over a quarter, a year or a window, any customer not paying at the start that
    churned in it.

    ChartMogul's example: 100 customers at the start, 10 of them cancel, 1 joins and
    cancels: ``exclude`` gives 10/100; ``count_both`` (10 + 1) / (100 + 1); ``stripe``
    with ``count_both`` 11 / (100 + 1 new) (tests/metrics/cases/subscription_rates.json).

    References
    ----------
    ``shared/reference/revops.md`` §1.4 and §1.8 ("Same-period new + churn"): ChartMogul
    B2B customer churn rate (help.chartmogul.com/hc/en-us/articles/203359321), Stripe
    subscriber churn (support.stripe.com/questions/calculating-churn-rate-in-billing),
    ProfitWell/Paddle (learn.profitwell.com), Baremetrics (changelog.baremetrics.com).
    """
    if convention == "b2c_daily":
        return _b2c_daily(tables, scope, policy)
    t = _totals(tables, scope, policy, rate=True)
    count_both = policy["same_period_new_churn"] == "count_both"
    one_month = scope.period == "month" or (scope.period is None and scope.start is None)
    # churn events: customers paying at a month's start and gone at its end, and
    # same-month flickers (none under ignore)
    events = t.churned_customers + t.new_churned_customers
    if one_month:
        at_start, joined = t.churned_customers, t.new_churned_customers
    elif convention == "stripe" and count_both:
        # Stripe's own rule reads the period's sums only (events over start + arrivals)
        at_start = joined = ibis.literal(0, dt.int64)
    else:
        # a span of several months: distinct customers (the sum of the months' counts
        # would count a customer churning twice, or joining and churning, in the span)
        ledger_policy = {k: policy[k] for k in _LEDGER_KEYS}
        led = customer_ledger(tables, scope=scope, **ledger_policy)
        by = None if scope.by is None else customer_attribute(tables["subscriptions"], scope.by)
        c = period_churned_customers(led, scope, by=by)
        t = attach(t, c.rename(span_churned="churned", span_joined="joined_churned"), _keys(scope))
        # unknown MRR in the period leaves the counts unknown (null), as the sums are
        unknown = t.churned_customers.isnull()
        null = ibis.null(dt.int64)
        at_start = ibis.ifelse(unknown, null, t.span_churned.fill_null(0))
        joined = ibis.ifelse(unknown, null, t.span_joined.fill_null(0))
        events = t.churned_customers + t.new_churned_customers
    if convention == "stripe":
        arrivals = t.new_customers + t.reactivated_customers
        if count_both:
            churned, customers = events, t.customers_start + arrivals
        else:  # the arrivals that churned in the period leave both terms
            churned = at_start
            customers = t.customers_start + arrivals - (events - at_start)
    elif count_both:
        churned, customers = at_start + joined, t.customers_start + joined
    else:
        churned, customers = at_start, t.customers_start
    t = t.mutate(value=_ratio(churned, customers), churned=churned, customers=customers)
    return _front(t, scope, ["value", "churned", "customers"])


def _b2c_daily(tables: Mapping[str, ir.Table], scope: Scope, policy: Mapping[str, Any]) -> ir.Table:
    """ChartMogul's B2C daily customer churn rate (revops.md §1.4): Σ over the period's
    days of the customers that churned that day ÷ those active at its start (that is,
    1 − customers still active at the day's end ÷ active at its start, the day's new
    customers set apart). Every period of the window has a row: a period without churn
    is 0, one without a customer active at any day's start null. ``days`` is the number
    of days summed over: the period's days inside the window (up to ``as_of``'s day)."""
    if scope.by is not None:
        raise ConfigError("customer_churn_rate convention='b2c_daily' cannot be grouped --by.")
    if scope.period in ("day", "week"):
        raise ConfigError("subscription metrics are monthly: use --period month, quarter or year.")
    rows = normalised_subscriptions(
        tables["subscriptions"],
        churn_recognition=policy["churn_recognition"],
        discounts=policy["discounts"],
        scope=scope,
    )
    # a rate with no window is the last month's, as for every other convention
    last_only = scope.period is None and scope.start is None
    d = daily_churn(rows, scope, last_month_only=last_only)
    d = d.mutate(
        share=ibis.ifelse(
            d.active_start > 0, d.churned.cast(dt.float64) / d.active_start.cast(dt.float64), 0.0
        )
    )
    if scope.period is not None:
        d = d.mutate(period=period_start(d.day.cast(dt.timestamp), scope.period))
    aggs = {
        "value": ibis.ifelse(d.active_start.max() > 0, d.share.sum(), ibis.null(dt.float64)),
        "churned": d.churned.sum(),
        "days": d.count(),
        "period_start": d.day.min(),
        "period_end": d.day.max() + ibis.interval(days=1),
    }
    if scope.period is not None:
        out = d.group_by("period").aggregate(**aggs)
        return _front(out, scope, ["value", "churned", "days"]).order_by("period")
    return d.aggregate(**aggs).select("value", "churned", "days")


@metric(
    "mrr_churn_rate",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=(
        Policy(
            "variant",
            "gross",
            ("gross", "net"),
            doc=(
                "gross: (churn + contraction) ÷ MRR at the period's start; net: (churn + "
                "contraction − expansion [− reactivation]) ÷ MRR at start."
            ),
            sources={
                "gross": "ChartMogul Gross MRR Churn Rate (revops.md §1.5)",
                "net": "ChartMogul Net MRR Churn Rate (§1.5)",
            },
        ),
        _reactivation("include", "the net MRR churn rate"),
        *LEDGER_POLICIES,
    ),
    benchmarks=(
        Benchmark(
            "typical gross MRR churn per month above $10k MRR",
            0.045,
            "share",
            "ChartMogul Gross MRR Churn Rate page: 4–5 % a month (revops.md §1.5)",
            column="gross",
        ),
    ),
)
def mrr_churn_rate(
    tables: Mapping[str, ir.Table], *, scope: Scope, variant: str, reactivation: str, **policy: Any
) -> ir.Table:
    """Gross or net MRR churn rate per period (FX impact is not churn).

    MRR of customers new and churned inside one month is left out unless
    ``same_period_new_churn=count_both``, which adds it to numerator and denominator.
    Output: [by, period,] value (the chosen variant), gross, net, start_mrr.
    """
    t = _totals(tables, scope, policy, rate=True)
    if policy["same_period_new_churn"] == "count_both":
        # Stripe: in the numerator and the denominator
        lost = t.churn + t.contraction
        base = t.start_mrr + t.new_churn
        back = t.reactivation
    else:
        # customers new and churned inside a month are not churn of the starting MRR
        lost = t.churn - t.new_churn + t.contraction
        base = t.start_mrr
        back = t.reactivation - t.react_churn
    won_back = t.expansion + (back if reactivation == "include" else 0.0)
    t = t.mutate(gross=_ratio(lost, base), net=_ratio(lost - won_back, base))
    t = t.mutate(value=t.gross if variant == "gross" else t.net)
    return _front(t, scope, ["value", "gross", "net", "start_mrr"])


@metric(
    "quick_ratio",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=(_reactivation("include", "the quick ratio's numerator"), *LEDGER_POLICIES),
)
def quick_ratio(
    tables: Mapping[str, ir.Table], *, scope: Scope, reactivation: str, **policy: Any
) -> ir.Table:
    """SaaS quick ratio: (new + expansion [+ reactivation]) ÷ (contraction + churn).

    Null when nothing was lost. Output: [by, period,] value, gained, lost.
    Source: revops.md §1.9.
    """
    t = _totals(tables, scope, policy)
    gained = t.new + t.expansion + (t.reactivation if reactivation == "include" else 0.0)
    lost = t.contraction + t.churn
    t = t.mutate(value=_ratio(gained, lost), gained=gained, lost=lost)
    return _front(t, scope, ["value", "gained", "lost"])


def _retention(
    tables: Mapping[str, ir.Table],
    scope: Scope,
    policy: Mapping[str, Any],
    *,
    variant: str,
    reactivation: str,
) -> ir.Table:
    """Per [by, period]: start (base MRR of existing customers), retained, retained_capped;
    per period also the months it covers (period_start, period_end)."""
    ledger_policy = {k: policy[k] for k in _LEDGER_KEYS}
    led = customer_ledger(tables, scope=scope, history=True, **ledger_policy)
    if scope.period in ("day", "week"):
        raise ConfigError("subscription metrics are monthly: use --period month, quarter or year.")
    first = start_index(scope)
    if variant == "yoy":
        w = ibis.window(group_by=led.customer_id, order_by=led.idx)
        w12 = ibis.window(group_by=led.customer_id, order_by=led.idx, rows=(-11, 0))
        prior = led.end_mrr.lag(12).over(w)
        led = led.mutate(
            base=prior.fill_null(0.0),
            # the ledger is dense: a row 12 rows back is 12 months back; its MRR null = unknown
            base_unknown=led.idx.lag(12).over(w).notnull() & prior.isnull(),
            dipped=(led.end_mrr.min().over(w12) <= 1e-6),
        )
        if first is not None:
            led = led.filter(led.idx >= first)
        # the last month of each period (or of the window) is the one reported
        if scope.period is not None:
            led = led.mutate(period=period_start(led.month.cast(dt.timestamp), scope.period))
            last = led.idx.max().over(ibis.window(group_by=led.period))
        else:
            last = led.idx.max().over(ibis.window())
        cust = led.filter(led.idx == last)
        cust = cust.mutate(end=cust.end_mrr, unknown=cust.base_unknown | cust.end_mrr.isnull())
    else:
        if first is not None:
            led = led.filter(led.idx >= first)
        elif scope.period is None:
            led = last_month(led)
        if scope.period is not None:
            led = led.mutate(period=period_start(led.month.cast(dt.timestamp), scope.period))
        gk = ["customer_id", *(["period"] if scope.period else [])]
        if scope.period == "month":  # one ledger row per customer and period already
            cust = led.select(
                *gk,
                base=led.start_mrr,
                end=led.end_mrr,
                dipped=led.end_mrr <= 1e-6,
                unknown=led.start_mrr.isnull() | led.end_mrr.isnull(),
            )
        else:
            # the ledger is dense (a row per customer and month from its first month to
            # the last), so a customer's first and last rows in a period are the
            # period's first and last months in the data: conditional maxima, no sort.
            # A customer new in the period has no row at its first month, or one whose
            # start_mrr is 0: either way it is not in the base.
            top = led.idx.max().as_scalar()
            if scope.period is not None:
                p_idx = month_index(led.period)
                span = {"quarter": 3, "year": 12}[scope.period]
                lo = p_idx if first is None else ibis.greatest(p_idx, first)
                hi = ibis.least(p_idx + span - 1, top)
            else:
                lo, hi = (top if first is None else ibis.literal(first)), top
            cust = led.group_by(gk).aggregate(
                base=led.start_mrr.max(where=led.idx == lo),
                end=led.end_mrr.max(where=led.idx == hi),
                dipped=(led.end_mrr.min() <= 1e-6),
                unknown=(
                    (led.idx == lo) & led.start_mrr.isnull()
                    | (led.idx == hi) & led.end_mrr.isnull()
                ).any(),
            )
    spans = _spans(led, led.idx) if scope.period is not None else None
    kept = cust.end if reactivation == "include" else ibis.ifelse(cust.dipped, 0.0, cust.end)
    # an existing customer whose MRR at the base or the end is unknown (an unknown
    # interval, a missing exchange rate) makes the figure unknown: null, not a silent drop
    cust = cust.filter((cust.base > 1e-6) | cust.unknown).mutate(kept=kept)
    cust = cust.mutate(capped=ibis.least(cust.kept, cust.base))
    keys: list[str] = []
    if scope.by is not None:
        cust = cust.join(customer_attribute(tables["subscriptions"], scope.by), "customer_id")
        keys.append(scope.by)
    if scope.period is not None:
        keys.append("period")
    aggs = {
        "start_mrr": cust.base.sum(),
        "retained_mrr": cust.kept.sum(),
        "retained_capped": cust.capped.sum(),
        "customers": cust.count(),
        "customers_retained": (cust.kept > 1e-6).sum(),
        "unknown": cust.unknown.any(),
    }
    out = cust.group_by(keys).aggregate(**aggs) if keys else cust.aggregate(**aggs)
    null = {"float64": ibis.null(dt.float64), "int64": ibis.null(dt.int64)}
    out = out.mutate(
        **{
            c: ibis.ifelse(out.unknown.fill_null(False), null[kind], out[c])
            for c, kind in (
                ("start_mrr", "float64"),
                ("retained_mrr", "float64"),
                ("retained_capped", "float64"),
                ("customers", "int64"),
                ("customers_retained", "int64"),
            )
        }
    ).drop("unknown")
    if spans is not None:
        out = attach(out, spans, ["period"])
    return out.order_by(keys) if keys else out


_VARIANT = Policy(
    "variant",
    "interval",
    ("interval", "yoy"),
    doc=(
        "interval: MRR at the period's end of the customers paying at its start ÷ their MRR "
        "at the start (new business excluded); yoy: MRR in the last month of the period of "
        "the customers paying 12 months earlier ÷ their MRR then."
    ),
    sources={
        "interval": "ChartMogul Net MRR Retention chart (revops.md §1.6)",
        "yoy": "SaaS Capital retention surveys; ChartMogul Benchmarks (§1.6)",
    },
)


@metric(
    "nrr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_ledger,
    policies=(_VARIANT, _reactivation("exclude", "net revenue retention"), *LEDGER_POLICIES),
    benchmarks=(
        Benchmark(
            "median NRR, ACV $12–25k (YoY)",
            1.02,
            "share",
            "SaaS Capital 2023 B2B SaaS Retention Benchmarks (revops.md §1.10; verify)",
            column="value",
            variant="yoy",
        ),
        Benchmark(
            "median NRR, all SaaS (YoY)",
            1.00,
            "share",
            "SaaS Capital via atlasrosetta.com (revops.md §1.10, secondary)",
            column="value",
            variant="yoy",
        ),
    ),
)
def nrr(
    tables: Mapping[str, ir.Table], *, scope: Scope, variant: str, reactivation: str, **policy: Any
) -> ir.Table:
    """Net revenue retention of existing customers (expansion, contraction, churn, FX).

    Output: [by, period,] value, start_mrr (base of the existing customers), retained_mrr,
    customers (existing at the base), customers_retained (logo retention numerator).
    With ``reactivation=exclude`` a customer whose MRR was zero at some month end between
    the base and the end counts 0.
    """
    t = _retention(tables, scope, policy, variant=variant, reactivation=reactivation)
    t = t.mutate(value=_ratio(t.retained_mrr, t.start_mrr))
    return _front(
        t, scope, ["value", "start_mrr", "retained_mrr", "customers", "customers_retained"]
    )


@metric(
    "grr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_ledger,
    policies=(_VARIANT, _reactivation("exclude", "gross revenue retention"), *LEDGER_POLICIES),
    benchmarks=(
        Benchmark(
            "median GRR, all SaaS (YoY)",
            0.90,
            "share",
            "SaaS Capital via atlasrosetta.com (revops.md §1.10, secondary)",
            column="value",
            variant="yoy",
        ),
    ),
)
def grr(
    tables: Mapping[str, ir.Table], *, scope: Scope, variant: str, reactivation: str, **policy: Any
) -> ir.Table:
    """Gross revenue retention: each existing customer's MRR capped at its base MRR.

    Capping is per customer, never in aggregate (revops.md §1.6), so one customer's
    expansion cannot hide another's contraction. Output: [by, period,] value, start_mrr,
    retained_capped, customers, customers_retained.
    """
    t = _retention(tables, scope, policy, variant=variant, reactivation=reactivation)
    t = t.mutate(value=_ratio(t.retained_capped, t.start_mrr))
    return _front(
        t, scope, ["value", "start_mrr", "retained_capped", "customers", "customers_retained"]
    )


@metric(
    "arpa",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=LEDGER_POLICIES,
)
def arpa(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Average revenue per account: MRR ÷ paying customers at the period's end (ChartMogul).

    A customer's subscriptions are combined first. Output: [by, period,] value, mrr, customers.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=_ratio(t.end_mrr, t.customers_end), mrr=t.end_mrr, customers=t.customers_end)
    return _front(t, scope, ["value", "mrr", "customers"])


@metric(
    "asp",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_totals,
    policies=LEDGER_POLICIES,
)
def asp(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Average sale price: New Business MRR ÷ new customers in the period (ChartMogul ASP).

    Output: [by, period,] value, new_mrr, new_customers.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=_ratio(t.new, t.new_customers), new_mrr=t.new)
    return _front(t, scope, ["value", "new_mrr", "new_customers"])


@metric(
    "ltv",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_ledger,
    policies=(
        Policy(
            "method",
            "chartmogul",
            ("chartmogul", "cohort_empirical"),
            doc=(
                "chartmogul: ARPA of the period's last month ÷ the mean customer churn rate "
                "of the six months before it (null when that churn is 0); cohort_empirical: "
                "Σ over customer age k of the mean MRR per acquired customer at age k, over "
                "the cohorts observed at that age (no churn model; a lower bound that grows "
                "with history)."
            ),
            sources={
                "chartmogul": "ChartMogul LTV chart (revops.md §1.7)",
                "cohort_empirical": "cohort revenue per acquired customer (revops.md §1.6 cohorts)",
            },
        ),
        *LEDGER_POLICIES,
    ),
)
def ltv(tables: Mapping[str, ir.Table], *, scope: Scope, method: str, **policy: Any) -> ir.Table:
    """Customer lifetime value.

    Output (chartmogul): [by, period,] value, arpa, churn_rate (trailing six-month mean).
    Output (cohort_empirical): value, customers (acquired), months (ages observed).
    """
    ledger_policy = {k: policy[k] for k in _LEDGER_KEYS}
    led = customer_ledger(tables, scope=scope, history=True, **ledger_policy)
    if method == "cohort_empirical":
        if scope.by is not None or scope.period is not None:
            raise ConfigError(
                "ltv method='cohort_empirical' is one figure: drop --by and --period."
            )
        return _ltv_cohort(led)
    monthly_scope = Scope(by=scope.by, period="month", end=scope.end, as_of=scope.as_of)
    months = customer_months(tables, scope=monthly_scope, history=True, **ledger_policy)
    m = aggregate_months(months, monthly_scope)
    m = m.mutate(
        churn_m=_ratio(m.churned_customers, m.customers_start),
        arpa=_ratio(m.end_mrr, m.customers_end),
    )
    part = [scope.by] if scope.by else []
    w6 = ibis.window(group_by=part or None, order_by=m.period, rows=(-6, -1))
    m = m.mutate(churn_rate=m.churn_m.mean().over(w6), month=m.period)
    if scope.start is not None:
        m = m.filter(m.month >= ibis.literal(scope.start).cast(dt.date))
    if scope.period is not None:
        m = m.mutate(period=period_start(m.month.cast(dt.timestamp), scope.period))
        keys = [*part, "period"]
        # the months of the period the row covers (the same for every group)
        wp = ibis.window(group_by=m.period)
        idx = month_index(m.month)
        m = m.mutate(
            period_start=month_date(idx.min().over(wp)),
            period_end=month_date(idx.max().over(wp) + 1),
        )
    else:
        m = m.drop("period")
        keys = part
    last = m.month.max().over(ibis.window(group_by=keys or None))
    m = m.filter(m.month == last)
    m = m.mutate(value=ibis.ifelse(m.churn_rate > 0, m.arpa / m.churn_rate, ibis.null(dt.float64)))
    out = _front(m, scope, ["value", "arpa", "churn_rate"])
    return out.order_by(keys) if keys else out


def _ltv_cohort(led: ir.Table) -> ir.Table:
    """Σ_k mean MRR at age k per customer acquired at least k months before the last month."""
    paid = led.end_mrr > 1e-6
    w = ibis.window(group_by=led.customer_id)
    led = led.mutate(
        first=ibis.ifelse(paid, led.idx, ibis.null(dt.int64)).min().over(w),
        last=led.idx.max().over(ibis.window()),
    )
    led = led.filter(led.first.notnull() & (led.idx >= led.first))
    led = led.mutate(age=led.idx - led.first)
    by_age = led.group_by("age").aggregate(revenue=led.end_mrr.sum(), observed=led.count())
    return by_age.aggregate(
        value=(by_age.revenue / by_age.observed).sum(),
        customers=by_age.observed.max(),
        months=by_age.count(),
    )


@metric(
    "cohort_retention",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    shared=shared_ledger,
    policies=(
        Policy(
            "basis",
            "revenue",
            ("revenue", "logo"),
            doc=(
                "value = revenue retention (cohort MRR at age k ÷ its New Business MRR) or "
                "logo retention (customers paying at age k ÷ cohort size); both are columns."
            ),
            sources={
                "revenue": "ChartMogul Cohort: Net MRR Retention (revops.md §1.6)",
                "logo": "logo retention, reported next to NRR/GRR (revops.md §1.6)",
            },
        ),
        *LEDGER_POLICIES,
    ),
)
def cohort_retention(
    tables: Mapping[str, ir.Table], *, scope: Scope, basis: str, **policy: Any
) -> ir.Table:
    """Monthly cohort matrices: customers by the month they first paid, followed by age.

    Output, one row per cohort and age (months since the cohort month, 0 first): cohort,
    age, value, customers (paying at the end of that month), cohort_customers, logo_retention,
    mrr, cohort_mrr (the cohort's New Business MRR: its first month's end MRR plus that of
    customers new and churned inside it), revenue_retention = mrr ÷ cohort_mrr (ChartMogul
    "Cohort: Net MRR Retention", revops.md §1.6). A customer that churns in its first month
    is in its cohort and not paying at age 0, so age 0 can be below 100 %.
    ``--start``/``--end`` select cohorts; ``--by`` and ``--period`` are not supported.
    """
    if scope.by is not None or scope.period not in (None, "month"):
        raise ConfigError("cohort_retention has monthly cohorts: drop --by and use --period month.")
    check_month_window(scope)
    ledger_policy = {k: policy[k] for k in _LEDGER_KEYS}
    led = customer_ledger(tables, scope=Scope(end=scope.end, as_of=scope.as_of), **ledger_policy)
    # a customer's cohort is its first paid month: MRR at the month's end, or new and
    # churned inside it (counted as new business unless same_period_new_churn=ignore)
    # (a month of unknown MRR counts too: the customer's cells are then null, not moved
    # to a later cohort)
    unknown = led.end_mrr.isnull() | (led.missing_rate > 0) | (led.unknown_interval > 0)
    paid = (led.end_mrr > 1e-6) | (led.new_churn > 1e-6) | unknown
    w = ibis.window(group_by=led.customer_id)
    led = led.mutate(first=ibis.ifelse(paid, led.idx, ibis.null(dt.int64)).min().over(w))
    led = led.filter(led.first.notnull() & (led.idx >= led.first))
    led = led.mutate(age=led.idx - led.first)
    first = start_index(scope)
    if first is not None:
        led = led.filter(led.first >= first)
    # a member whose MRR that month is unknown (unknown interval, missing exchange rate)
    # makes the cell unknown: null, never a silent 0
    unknown = led.end_mrr.isnull() | (led.missing_rate > 0) | (led.unknown_interval > 0)
    m = led.group_by(["first", "age"]).aggregate(
        customers=(led.end_mrr > 1e-6).sum(),
        mrr=led.end_mrr.sum(),
        unknown=unknown.any(),
    )
    m = m.mutate(
        customers=ibis.ifelse(m.unknown, ibis.null(dt.int64), m.customers),
        mrr=ibis.ifelse(m.unknown, ibis.null(dt.float64), m.mrr),
    )
    size = (
        led.filter(led.age == 0)
        .mutate(unknown=unknown)
        .group_by("first")
        .aggregate(
            cohort_customers=_.count(),
            cohort_mrr=(_.new + _.reactivation).sum(),
            base_unknown=_.unknown.any(),
        )
    )
    size = size.mutate(
        cohort_mrr=ibis.ifelse(size.base_unknown, ibis.null(dt.float64), size.cohort_mrr)
    ).drop("base_unknown")
    m = m.join(size, "first")
    m = m.mutate(
        logo_retention=_ratio(m.customers, m.cohort_customers),
        revenue_retention=_ratio(m.mrr, m.cohort_mrr),
        cohort=ibis.date((m.first // 12).cast(dt.int32), (m.first % 12 + 1).cast(dt.int32), 1),
    )
    m = m.mutate(value=m.revenue_retention if basis == "revenue" else m.logo_retention)
    cols = ["cohort", "age", "value", "customers", "cohort_customers", "logo_retention", "mrr"]
    return m.select(*cols, "cohort_mrr", "revenue_retention").order_by(["cohort", "age"])
