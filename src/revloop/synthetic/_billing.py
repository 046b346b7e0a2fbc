"""Subscriptions of won customers, daily ad spend, and daily exchange rates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from revloop.synthetic import _params as P
from revloop.synthetic._strings import prefixed_ids, take_strings
from revloop.synthetic._time import F64, I64, B, Window

__all__ = ["CURRENCIES", "fx_table", "spend_table", "subscriptions_table"]

CURRENCIES = ("USD", "EUR", "GBP")
_USD_PER = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
_TIERS = ("plan_starter_seat", "plan_growth_seat", "plan_enterprise_seat")


def _add_months(window: Window, days: F64, months: I64) -> F64:
    """Calendar-month arithmetic on float days (the day of month is kept, clipped to the month)."""
    start = np.datetime64(window.start, "D")
    d = start + np.floor(days).astype(np.int64).astype("timedelta64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + months.astype("timedelta64[M]")
    mlen = (
        (target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype("datetime64[D]")
    ).astype(np.int64)
    out = target.astype("datetime64[D]") + np.minimum(dom, mlen - 1).astype("timedelta64[D]")
    return np.asarray((out - start).astype(np.int64), dtype=np.float64)


class _Rows:
    def __init__(self) -> None:
        self.parts: list[tuple[I64, I64, F64, F64, F64, F64, I64, I64, F64, F64]] = []

    def add(self, sub: I64, item: I64, starts: F64, ends: F64, cancelled: F64, amount: F64,
            interval: I64, count: I64, qty: F64, disc: F64) -> None:  # fmt: skip
        if len(sub):
            self.parts.append(
                (sub, item, starts, ends, cancelled, amount, interval, count, qty, disc)
            )


def _lifecycle(
    rng: np.random.Generator,
    window: Window,
    seg: I64,
    acv: F64,
    start: F64,
    first_sub: int,
    rows: _Rows,
) -> tuple[B, F64]:
    """Simulate renewals, changes and churn of ``len(seg)`` subscriptions numbered from
    ``first_sub``; returns which churned and when their service ended."""
    sp = P.SUBSCRIPTIONS
    H = window.days
    n = len(seg)
    annual = rng.random(n) < np.array([sp["annual_share"][g] for g in P.SEGMENTS])[seg]
    quarterly = ~annual & (rng.random(n) < sp["quarterly_share_of_monthly"])
    interval = np.where(annual, 3, 2).astype(np.int64)  # INTERVALS index: month=2, year=3
    count = np.where(quarterly, 3, 1).astype(np.int64)
    period_m = np.where(annual, 12, count).astype(np.int64)
    seats = np.maximum(
        1.0,
        np.round(
            rng.lognormal(
                np.log(np.array([sp["seats_median"][g] for g in P.SEGMENTS])[seg]),
                sp["seats_sigma"],
            )
        ),
    )
    lo, hi = sp["discount_range"]
    disc = np.where(
        rng.random(n) < sp["discount_share"], np.round(rng.uniform(lo, hi, n) * 20) / 20, 0.0
    )
    price = np.round(acv / (1.0 - disc) * period_m / 12.0 / seats, 2)
    sub = np.arange(first_sub, first_sub + n, dtype=np.int64)
    row_start = start.copy()
    addon = np.zeros(n, dtype=bool)
    addon_start = np.full(n, np.nan)
    addon_price = sp["addon"]["price_per_seat_month"] * period_m.astype(np.float64)
    addon_qty = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    churned = np.zeros(n, dtype=bool)
    ended = np.full(n, np.nan)
    nan = np.full(n, np.nan)
    max_periods = int(np.ceil(window.days / 28.0)) + 2
    for k in range(1, max_periods + 1):
        b = _add_months(window, start, period_m * k)
        idx = np.flatnonzero(alive & (b - 31.0 < H))
        if not len(idx):
            break
        bi = b[idx]
        ann = annual[idx]
        g = seg[idx]
        p_churn = np.where(ann, np.array([sp["churn_per_renewal"][x] for x in P.SEGMENTS])[g],
                           np.array([sp["churn_per_month"][x] for x in P.SEGMENTS])[g] * count[idx])  # fmt: skip
        lead_days = np.where(
            ann, rng.uniform(1.0, 45.0, len(idx)), rng.uniform(0.0, 20.0, len(idx)) * count[idx]
        )
        cancel_at = np.maximum(bi - lead_days, row_start[idx] + 0.5) + rng.uniform(
            0.35, 0.9, len(idx)
        )
        churn = (rng.random(len(idx)) < p_churn) & (cancel_at < H) & (cancel_at < bi)
        ci = idx[churn]
        rows.add(sub[ci], np.zeros(len(ci), np.int64), row_start[ci], b[ci], cancel_at[churn], price[ci],
                 interval[ci], count[ci], seats[ci], disc[ci])  # fmt: skip
        ai = ci[addon[ci]]
        rows.add(sub[ai], np.ones(len(ai), np.int64), addon_start[ai], b[ai], cancel_at[churn][addon[ci]],
                 addon_price[ai], interval[ai], count[ai], addon_qty[ai], np.zeros(len(ai)))  # fmt: skip
        alive[ci] = False
        churned[ci] = True
        ended[ci] = b[ci]
        # renewals inside the window may change price, quantity or discount
        ri = idx[~churn & (bi < H)]
        alive[idx[~churn & (bi >= H)]] = False
        if not len(ri):
            continue
        m = len(ri)
        ann_r = annual[ri]
        u = rng.random(m)
        p_exp = np.where(ann_r, sp["expansion_per_renewal"], sp["expansion_per_month"] * count[ri])
        p_con = np.where(
            ann_r, sp["contraction_per_renewal"], sp["contraction_per_month"] * count[ri]
        )
        new_seats = seats[ri].copy()
        expand = u < p_exp
        contract = (u >= p_exp) & (u < p_exp + p_con)
        new_seats[expand] = np.ceil(
            new_seats[expand] * (1.0 + rng.lognormal(np.log(0.2), 0.6, int(expand.sum())))
        )
        new_seats[contract] = np.maximum(
            1.0, np.floor(new_seats[contract] * rng.uniform(0.5, 0.9, int(contract.sum())))
        )
        new_price = price[ri].copy()
        up = ann_r & (rng.random(m) < sp["price_uplift_at_renewal"]["share"])
        new_price[up] = np.round(new_price[up] * sp["price_uplift_at_renewal"]["factor"], 2)
        new_disc = disc[ri].copy()
        expire = (
            (k == 1) & (new_disc > 0) & (rng.random(m) < sp["discount_expiry_at_first_renewal"])
        )
        new_disc[expire] = 0.0
        changed = (new_seats != seats[ri]) | (new_price != price[ri]) | (new_disc != disc[ri])
        chg = ri[changed]
        rows.add(sub[chg], np.zeros(len(chg), np.int64), row_start[chg], b[chg], nan[chg], price[chg],
                 interval[chg], count[chg], seats[chg], disc[chg])  # fmt: skip
        seats[ri], price[ri], disc[ri] = new_seats, new_price, new_disc
        row_start[chg] = b[chg]
        # the forecasting add-on, bought at a renewal
        p_add = np.where(
            ann_r, sp["addon"]["share_per_renewal"], sp["addon"]["share_per_month"] * count[ri]
        )
        add = ri[~addon[ri] & (seg[ri] > 0) & (rng.random(m) < p_add)]
        addon[add] = True
        addon_start[add] = b[add]
        addon_qty[add] = seats[add]
    # rows still running at the end of the window
    live = np.flatnonzero(~churned)
    rows.add(sub[live], np.zeros(len(live), np.int64), row_start[live], nan[live], nan[live], price[live],
             interval[live], count[live], seats[live], disc[live])  # fmt: skip
    la = live[addon[live]]
    rows.add(sub[la], np.ones(len(la), np.int64), addon_start[la], nan[la], nan[la], addon_price[la],
             interval[la], count[la], addon_qty[la], np.zeros(len(la)))  # fmt: skip
    return churned, ended


def subscriptions_table(
    rng: np.random.Generator,
    window: Window,
    customer: I64,
    segment: I64,
    currency: I64,
    acv: F64,
    won_at: F64,
    customer_ids: pa.Array,
) -> pa.Table:
    """One row per billed item per span of constant price, quantity and discount.

    ``customer`` indexes ``customer_ids``; ``acv`` is the won amount (annual, net of discount).
    """
    sp = P.SUBSCRIPTIONS
    H = window.days
    d0, d1 = sp["start_delay_days"]
    start = np.floor(won_at + rng.uniform(d0, d1, len(won_at)))
    ok = start < H
    customer, segment, currency, acv, start = (
        customer[ok],
        segment[ok],
        currency[ok],
        acv[ok],
        start[ok],
    )
    rows = _Rows()
    churned, ended = _lifecycle(rng, window, segment, acv, start, 0, rows)
    re = sp["reactivation"]
    back = np.flatnonzero(churned & (rng.random(len(churned)) < re["share"]))
    r_start = np.floor(
        ended[back] + rng.uniform(re["delay_days"][0], re["delay_days"][1], len(back))
    )
    ok2 = r_start < H
    back, r_start = back[ok2], r_start[ok2]
    r_churned, _ = _lifecycle(rng, window, segment[back], acv[back] * rng.uniform(0.6, 1.1, len(back)),
                              r_start, len(start), rows)  # fmt: skip
    sub_customer = np.concatenate([customer, customer[back]])
    sub_currency = np.concatenate([currency, currency[back]])
    sub_segment = np.concatenate([segment, segment[back]])
    sub_churned = np.concatenate([churned, r_churned])
    n_sub = len(sub_customer)
    status = np.where(sub_churned, 1, np.where(rng.random(n_sub) < sp["past_due_share"], 2, 0))

    def col(i: int) -> F64:
        return (
            np.concatenate([np.asarray(p[i], dtype=np.float64) for p in rows.parts])
            if rows.parts
            else np.zeros(0)
        )

    def icol(i: int) -> I64:
        return (
            np.concatenate([np.asarray(p[i], dtype=np.int64) for p in rows.parts])
            if rows.parts
            else np.zeros(0, np.int64)
        )

    sub, item, interval, count = icol(0), icol(1), icol(6), icol(7)
    starts, ends, cancelled, amount, qty, disc = col(2), col(3), col(4), col(5), col(8), col(9)
    order = np.lexsort((starts, item, sub))
    sub, item, interval, count = sub[order], item[order], interval[order], count[order]
    starts, ends, cancelled, amount, qty, disc = (
        starts[order],
        ends[order],
        cancelled[order],
        amount[order],
        qty[order],
        disc[order],
    )
    item_names = [*_TIERS, sp["addon"]["item_id"]]
    item_ix = np.where(item == 1, 3, sub_segment[sub])
    return pa.table({
        "customer_id": customer_ids.take(pa.array(sub_customer[sub])),
        "subscription_id": prefixed_ids("sub_", sub + 1, 6),
        "item_id": take_strings(item_names, item_ix),
        "starts_at": window.timestamps(starts),
        "ends_at": window.timestamps(ends, mask=np.isnan(ends)),
        "cancelled_at": window.timestamps(cancelled, mask=np.isnan(cancelled)),
        "amount": pa.array(amount),
        "interval": take_strings(("day", "week", "month", "year"), interval),
        "interval_count": pa.array(count),
        "quantity": pa.array(qty),
        "discount": pa.array(disc),
        "currency": take_strings(CURRENCIES, sub_currency[sub]),
        "status": take_strings(("active", "canceled", "past_due"), status[sub]),
    })  # fmt: skip


def spend_table(
    rng: np.random.Generator, window: Window, s_start: F64, s_channel: I64, s_variant: I64
) -> tuple[pa.Table, dict[str, float]]:
    """Daily spend of every paid campaign: clicks that day x cost per click x noise,
    plus a small daily cost for impressions that brought no visit."""
    ndays = int(window.days)
    var_chan: list[int] = []
    campaigns: list[str] = []
    cpc: list[float] = []
    for ci, c in enumerate(P.CHANNEL_PARAMS):
        for v in c.variants:
            var_chan.append(ci)
            campaigns.append(v.campaign or "")
            if c.cost_per_click is None:
                cpc.append(0.0)
            else:
                factor = (
                    0.35
                    if "brand_search" in (v.campaign or "")
                    else 1.4
                    if c.name == "Paid Search"
                    else 1.0
                )
                cpc.append(c.cost_per_click * factor)
    paid = sorted({(var_chan[i], campaigns[i]) for i in range(len(cpc)) if cpc[i] > 0})
    day = np.floor(s_start).astype(np.int64)
    frames_date: list[I64] = []
    frames_ch: list[I64] = []
    frames_cp: list[I64] = []
    frames_amt: list[F64] = []
    camp_names = sorted({c for _, c in paid})
    cpc_by_campaign: dict[str, float] = {}
    for ci, camp in paid:
        vids = [i for i in range(len(cpc)) if var_chan[i] == ci and campaigns[i] == camp]
        rate = float(np.mean([cpc[i] for i in vids]))
        cpc_by_campaign[f"{P.CHANNELS[ci]}|{camp}"] = rate
        clicks = np.bincount(day[np.isin(s_variant, vids)], minlength=ndays)[:ndays].astype(
            np.float64
        )
        base = rate * max(1.0, clicks.mean()) * 0.3  # impressions that brought no visit
        amt = np.round(
            clicks * rate * rng.lognormal(0.0, 0.25, ndays) + base * rng.random(ndays), 2
        )
        frames_date.append(np.arange(ndays, dtype=np.int64))
        frames_ch.append(np.full(ndays, ci, dtype=np.int64))
        frames_cp.append(np.full(ndays, camp_names.index(camp), dtype=np.int64))
        frames_amt.append(amt)
    d = np.concatenate(frames_date)
    ch = np.concatenate(frames_ch)
    cp = np.concatenate(frames_cp)
    order = np.lexsort((cp, ch, d))
    table = pa.table({
        "date": window.dates(d[order]),
        "channel": take_strings(P.CHANNELS, ch[order]),
        "campaign": take_strings(camp_names, cp[order]),
        "amount": pa.array(np.concatenate(frames_amt)[order]),
        "currency": take_strings(("USD",), np.zeros(len(d), np.int64)),
    })  # fmt: skip
    return table, cpc_by_campaign


def fx_table(rng: np.random.Generator, window: Window, reporting_currency: str) -> pa.Table:
    """Daily rates for USD, EUR and GBP to the reporting currency (a random walk around
    1.08 USD per EUR and 1.27 USD per GBP, 0.4 % daily volatility)."""
    ndays = int(window.days)
    usd = {"USD": np.ones(ndays)}
    for cur in ("EUR", "GBP"):
        steps = rng.normal(0.0, 0.004, ndays)
        steps[0] = 0.0
        walk = np.cumsum(steps)
        usd[cur] = _USD_PER[cur] * np.exp(walk - 0.5 * walk.mean())
    ref = usd[reporting_currency]
    days = np.repeat(np.arange(ndays, dtype=np.int64), len(CURRENCIES))
    cur_ix = np.tile(np.arange(len(CURRENCIES), dtype=np.int64), ndays)
    rate = np.stack([usd[c] / ref for c in CURRENCIES], axis=1).reshape(-1)
    return pa.table({
        "date": window.dates(days),
        "currency": take_strings(CURRENCIES, cur_ix),
        "rate_to_reporting": pa.array(np.round(rate, 6)),
    })  # fmt: skip
