"""The full metric panel in plain pandas: the baseline of ``bench_metrics.py``.

A straightforward script, the way an analyst would compute a RevOps review from CRM and
billing exports: read the Parquet files with ``pd.read_parquet``, then ``merge``,
``groupby`` and vectorised column arithmetic, one metric after another, each as one
figure over the window and as a monthly trend. It computes the same figures as
``revloop.metrics.panel`` with every metric's DEFAULT policies (``docs/metrics-*.md``):

- lead handling: speed to lead on the wall clock (median, p90, mean among contacted
  leads; Kaplan–Meier median with the never-contacted censored at the data's horizon;
  shares within 5 min, 1 h, 24 h), lead contact rate (two-way contact within 30 days,
  mature leads), lead→opportunity rate (cohort, 90 days), conversion by response time;
- pipeline: win rate (closed in the period, by count), sales cycle (median days),
  pipeline velocity (with the LMDI split of its monthly change), pipeline coverage,
  stage conversion (skipped stages passed through, stage order inferred), time in stage
  (Kaplan–Meier, revisits summed, stall threshold p75 of won deals), slippage (pushes
  to a later quarter), the monthly pipeline waterfall, average deal size; amounts in
  USD at the latest FX rate on or before the close (or creation) day;
- subscriptions, read off one ledger of MRR per customer and month (ChartMogul's
  conventions: churn at the end of the paid period, trials excluded, discounts applied,
  rates of each billing period's start, FX impact apart): MRR, movements, ARR, net new
  MRR, customer and gross MRR churn rates, quick ratio, NRR and GRR (interval),
  ARPA, ASP, LTV (ARPA ÷ trailing six-month churn), cohort retention.

``compute_panel(tables, start=..., end=..., target=...)`` returns ``{(metric, period):
DataFrame}`` with revloop's column names, so the benchmark can compare the two.
Run alone: ``python benches/pandas_panel.py benches/data/crm-1000000 --start 2024-07-01
--end 2026-07-01 --target 1e7 --out result.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TABLES = ("leads", "activities", "opportunities", "stage_history", "subscriptions", "fx_rates")
EPS = 1e-6
DAY = pd.Timedelta(days=1)
TRIALS = ["trial", "trialing", "trialling", "in_trial"]
NOT_PAYING = ["unpaid", "paused", "incomplete", "incomplete_expired"]
BUCKETS = [("0-5m", 5.0), ("5-30m", 30.0), ("30-60m", 60.0), ("1-24h", 1440.0)]
Frames = dict[tuple[str, str | None], pd.DataFrame]


def load(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of the export folder, as pandas reads it."""
    return {name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in TABLES}


# -- helpers ---------------------------------------------------------------------------------
def month(s: pd.Series) -> pd.Series:
    """The first day of each timestamp's month."""
    return s.dt.to_period("M").dt.to_timestamp()


def between(s: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return (s >= start) & (s < end)


def ratio(num: Any, den: Any) -> Any:
    """num / den, NaN where den is 0."""
    if isinstance(den, pd.Series):
        return num / den.where(den != 0)
    return num / den if den != 0 else np.nan


def with_period(df: pd.DataFrame, anchor: str, monthly: bool) -> pd.DataFrame:
    """``df`` with a ``period`` column: the anchor's month, or one group for the headline."""
    return df.assign(period=month(df[anchor]) if monthly else "all")


def finish(out: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    """The period index as a column for a trend; dropped for a headline."""
    out = out.reset_index()
    return (
        out.sort_values("period").reset_index(drop=True) if monthly else out.drop(columns="period")
    )


def km_survival(time: pd.Series, event: pd.Series) -> pd.Series:
    """Kaplan–Meier survival just after each distinct time (index: time)."""
    d = pd.DataFrame({"t": time.to_numpy(), "e": event.to_numpy(dtype=np.int64)})
    g = d.groupby("t")["e"].agg(["sum", "size"])
    at_risk = g["size"][::-1].cumsum()[::-1]
    return (1.0 - g["sum"] / at_risk).cumprod()


def km_quantile(time: pd.Series, event: pd.Series, q: float) -> float:
    """Smallest time at which survival is at most 1 - q (NaN if it never gets there)."""
    s = km_survival(time, event)
    hit = s.index[s.to_numpy() <= 1.0 - q + 1e-9]
    return float(hit.min()) if len(hit) else np.nan


def fx_table(fx: pd.DataFrame) -> pd.DataFrame:
    r = fx.assign(currency=fx.currency.str.upper(), day=pd.to_datetime(fx.date))
    r = r.groupby(["currency", "day"], as_index=False)["rate_to_reporting"].max()
    return r.astype({"day": "datetime64[ns]"}).sort_values("day")


def usd_rate(currency: pd.Series, at: pd.Series, rates: pd.DataFrame) -> pd.Series:
    """Rate to USD of each row: the latest rate on or before the day of ``at``."""
    cur = currency.str.upper()
    same = cur.isna() | (cur == "USD")
    rate = pd.Series(np.where(same, 1.0, np.nan), index=currency.index)
    need = ~same & at.notna()
    left = pd.DataFrame(
        {
            "row": np.flatnonzero(need),
            "currency": cur[need].to_numpy(),
            "day": at[need].dt.floor("D"),
        }
    ).astype({"day": "datetime64[ns]"})
    m = pd.merge_asof(left.sort_values("day"), rates, on="day", by="currency")
    rate.iloc[m["row"].to_numpy()] = m["rate_to_reporting"].to_numpy()
    return rate


# -- lead handling ---------------------------------------------------------------------------
def lead_facts(leads: pd.DataFrame, acts: pd.DataFrame, opps: pd.DataFrame) -> pd.DataFrame:
    """One row per lead: first rep touch, contact in 30 days, first opportunity, maturity."""
    horizon = max(leads.created_at.max(), acts.occurred_at.max(), opps.created_at.max())
    # rep-initiated touches, and meetings in either direction (a contact, not a touch)
    by_rep = acts.direction.isna() | (acts.direction == "outbound")
    rep = acts[acts.lead_id.notna() & (by_rep | (acts.kind == "meeting"))]
    rep = rep[["lead_id", "occurred_at", "kind", "direction", "outcome"]].merge(
        leads[["lead_id", "created_at"]], on="lead_id"
    )
    by_rep = rep.direction.isna() | (rep.direction == "outbound")
    after = rep.occurred_at >= rep.created_at
    in30 = after & (rep.occurred_at < rep.created_at + 30 * DAY)
    call30 = in30 & by_rep & (rep.kind == "call")
    two_way = (by_rep & rep.outcome.isin(["connected", "replied"])) | (rep.kind == "meeting")
    rep = rep.assign(
        touch_at=rep.occurred_at.where(after & by_rep),
        early=~after & by_rep,
        in30=in30 & by_rep,
        contact30=in30 & two_way,
        call30=call30,
        connected30=call30 & (rep.outcome == "connected"),
    )
    per = rep.groupby("lead_id").agg(
        first_touch_at=("touch_at", "min"),
        early=("early", "any"),
        attempts30=("in30", "sum"),
        contact30=("contact30", "any"),
        calls30=("call30", "sum"),
        connected30=("connected30", "sum"),
    )
    lf = leads[["lead_id", "created_at", "opportunity_id", "converted_at"]].merge(
        per, left_on="lead_id", right_index=True, how="left"
    )
    lf["early"] = lf.early.eq(True)  # leads without a rep touch: not early, not contacted
    lf["contact30"] = lf.contact30.eq(True)
    lf[["attempts30", "calls30", "connected30"]] = lf[
        ["attempts30", "calls30", "connected30"]
    ].fillna(0)
    # the lead's first opportunity created at or after it: by the deal's lead_id or the
    # lead's opportunity_id; converted into an older one, its converted_at
    linked = opps.loc[opps.lead_id.notna(), ["lead_id", "created_at"]].merge(
        leads[["lead_id", "created_at"]], on="lead_id", suffixes=("", "_lead")
    )
    pre = linked.created_at < linked.created_at_lead
    by_lead = linked[~pre].groupby("lead_id").created_at.min()
    pre_lead = set(linked.lead_id[pre])
    id_at = lf.opportunity_id.map(opps.set_index("opportunity_id").created_at)
    id_pre = id_at < lf.created_at
    conv = pd.concat([lf.lead_id.map(by_lead), id_at.where(~id_pre)], axis=1).min(axis=1)
    into_existing = (
        (lf.lead_id.isin(pre_lead) | id_pre)
        & lf.converted_at.notna()
        & (lf.converted_at >= lf.created_at)
    )
    lf["conv_at"] = conv.where(conv.notna() | ~into_existing, lf.converted_at)
    stop = lf.first_touch_at.fillna(horizon)
    lf["elapsed_min"] = ((stop - lf.created_at).dt.total_seconds() / 60.0).clip(lower=0.0)
    lf["contacted"] = lf.first_touch_at.notna()
    lf["mature30"] = lf.created_at + 30 * DAY <= horizon
    lf["mature90"] = lf.created_at + 90 * DAY <= horizon
    lf["conv90"] = lf.conv_at.notna() & (lf.conv_at < lf.created_at + 90 * DAY)
    lf["days_to_opp"] = (lf.conv_at - lf.created_at).dt.total_seconds() / 86400.0
    return lf


def speed_to_lead(lf: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    rows = []
    for period, g in with_period(lf, "created_at", monthly).groupby("period"):
        ok = g[~g.early]
        c, x = ok.contacted, ok.elapsed_min
        rows.append(
            {
                "period": period,
                "value": x[c].quantile(0.5),
                "p90": x[c].quantile(0.9),
                "mean": x[c].mean(),
                "km_median": km_quantile(x, c, 0.5),
                "leads": len(ok),
                "contacted": int(c.sum()),
                "never_contacted_share": (~c).mean(),
                # among the leads whose outcome at the mark is known (an untouched lead
                # younger than the mark is censored)
                "within_5m": (c & (x <= 5))[c | (x >= 5)].mean(),
                "within_1h": (c & (x <= 60))[c | (x >= 60)].mean(),
                "within_24h": (c & (x <= 1440))[c | (x >= 1440)].mean(),
                "contacted_before_created": int(g.early.sum()),
            }
        )
    return finish(pd.DataFrame(rows).set_index("period"), monthly)


def lead_contact_rate(lf: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    d = with_period(lf, "created_at", monthly)
    ok, m = ~d.early, d.mature30 & ~d.early
    d = d.assign(
        n=m,
        hit=m & d.contact30,
        att=d.attempts30.where(m, 0),
        never=m & (d.attempts30 == 0),
        calls=d.calls30.where(m, 0),
        conn=d.connected30.where(m, 0),
        immature=ok & ~d.mature30,
    )
    g = d.groupby("period").agg(
        leads=("n", "sum"),
        contacted=("hit", "sum"),
        attempts=("att", "sum"),
        never=("never", "sum"),
        calls=("calls", "sum"),
        connected=("conn", "sum"),
        immature_leads=("immature", "sum"),
        contacted_before_created=("early", "sum"),
    )
    g["value"] = ratio(g.contacted, g.leads)
    g["attempts_per_lead"] = ratio(g.attempts, g.leads)
    g["never_attempted_share"] = ratio(g.never, g.leads)
    g["pickup_rate"] = ratio(g.connected, g.calls)
    return finish(g, monthly)


def lead_to_opportunity_rate(lf: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    d = with_period(lf, "created_at", monthly)
    ok = ~d.early
    m = ok & d.mature90
    hit = m & d.conv90
    d = d.assign(n=m, hit=hit, days=d.days_to_opp.where(hit), immature=ok & ~d.mature90)
    g = d.groupby("period").agg(
        leads=("n", "sum"),
        converted=("hit", "sum"),
        mean_days_to_opportunity=("days", "mean"),
        immature_leads=("immature", "sum"),
        contacted_before_created=("early", "sum"),
    )
    g["value"] = ratio(g.converted, g.leads)
    return finish(g, monthly)


def conversion_by_response_time(lf: pd.DataFrame) -> pd.DataFrame:
    d = lf[~lf.early & lf.mature90]
    x = d.elapsed_min
    bucket = np.select(
        [~d.contacted] + [x <= upper for _, upper in BUCKETS],
        ["never"] + [label for label, _ in BUCKETS],
        default="24h+",
    )
    g = (
        d.assign(response_bucket=bucket)
        .groupby("response_bucket")
        .agg(leads=("conv90", "size"), converted=("conv90", "sum"))
    )
    g["value"] = g.converted / g.leads
    slow = g.value.get("24h+", np.nan)
    g["lift"] = g.value / slow if slow > 0 else np.nan
    return g.reset_index()


# -- pipeline --------------------------------------------------------------------------------
def deals(opps: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """Opportunities with ``amt`` in USD at the close (else creation) day's rate, and
    ``open_rate``, the creation day's rate (the pipeline's amounts, open deals)."""
    rate = usd_rate(opps.currency, opps.closed_at.fillna(opps.created_at), rates)
    return opps.assign(
        amt=opps.amount * rate, open_rate=usd_rate(opps.currency, opps.created_at, rates)
    )


def average_deal_size(o: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    won = with_period(o[(o.status == "won") & o.closed_at.notna()], "closed_at", monthly)
    g = won.groupby("period").agg(
        value=("amt", "mean"), deals=("amt", "size"), won_amount=("amt", "sum")
    )
    g["won_without_amount"] = won.amt.isna().groupby(won.period).sum()
    return finish(g, monthly)


def win_counts(closed: pd.DataFrame) -> pd.DataFrame:
    g = closed.assign(won=closed.status == "won", lost=closed.status == "lost").groupby("period")
    out = g.agg(won=("won", "sum"), lost=("lost", "sum"))
    out["win_rate"] = ratio(out.won, out.won + out.lost)
    return out


def win_rate(o: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    closed = o[o.status.isin(["won", "lost"]) & o.closed_at.notna()]
    g = win_counts(with_period(closed, "closed_at", monthly)).rename(columns={"win_rate": "value"})
    return finish(g, monthly)


def won_cycles(o: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    won = o[(o.status == "won") & o.closed_at.notna()]
    won = won.assign(days=(won.closed_at - won.created_at).dt.total_seconds() / 86400.0)
    return with_period(won, "closed_at", monthly)


def sales_cycle(o: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    won = won_cycles(o, monthly)
    g = won.groupby("period")["days"]
    out = pd.DataFrame(
        {
            "median": g.quantile(0.5),
            "p75": g.quantile(0.75),
            "p90": g.quantile(0.9),
            "mean": g.mean(),
            "deals": g.size(),
        }
    )
    out["value"] = out["median"]
    return finish(out, monthly)


def pipeline_velocity(o: pd.DataFrame, start: Any, end: Any, monthly: bool) -> pd.DataFrame:
    """Opportunities created × win rate × average won amount ÷ median cycle, per period."""
    created = o[between(o.created_at, start, end)]
    n = with_period(created, "created_at", monthly).groupby("period").size()
    closed = o[o.status.isin(["won", "lost"]) & between(o.closed_at, start, end)]
    closed_p = with_period(closed, "closed_at", monthly)
    wr = win_counts(closed_p).win_rate
    no_amount = ((closed_p.status == "won") & closed_p.amt.isna()).groupby(closed_p.period).sum()
    by = won_cycles(closed, monthly).groupby("period")
    out = pd.concat(
        [
            n.rename("opportunities"),
            wr,
            by.amt.mean().rename("average_deal_size"),
            by.days.median().rename("cycle_days"),
            no_amount.rename("won_without_amount"),
        ],
        axis=1,
    ).sort_index()
    out["opportunities"] = out.opportunities.fillna(0)
    cycle = out.cycle_days.where(out.cycle_days > 0)
    out["value"] = out.opportunities * out.win_rate * out.average_deal_size / cycle
    levers = {
        "opportunities": "contrib_opportunities",
        "win_rate": "contrib_win_rate",
        "average_deal_size": "contrib_deal_size",
        "cycle_days": "contrib_cycle",
    }
    if monthly:  # the change from the previous month, split among the levers (LMDI)
        prev = out.shift(1)
        ok = out.value > 0
        for k in levers:
            ok &= (out[k] > 0) & (prev[k] > 0)
        v, pv = out.value, prev.value
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(v == pv, v, (v - pv) / (np.log(v) - np.log(pv)))
            for k, name in levers.items():
                sign = -1.0 if k == "cycle_days" else 1.0
                out[name] = np.where(ok, sign * weight * np.log(out[k] / prev[k]), np.nan)
        out["change"] = v - pv
    return finish(out, monthly)


def pipeline_coverage(
    o: pd.DataFrame, start: Any, end: Any, target: float, monthly: bool
) -> pd.DataFrame:
    """Open pipeline by expected close date ÷ the target; required coverage = 1 ÷ win rate."""
    open_ = o[(o.status == "open") & between(o.close_date, start, end)]
    open_ = with_period(open_, "close_date", monthly).assign(no_amount=open_.amt.isna())
    g = open_.groupby("period").agg(
        open_pipeline=("amt", "sum"),
        open_deals=("amt", "size"),
        open_without_amount=("no_amount", "sum"),
    )
    closed = o[o.status.isin(["won", "lost"]) & o.closed_at.notna()]
    rate = ratio((closed.status == "won").sum(), len(closed))
    g["value"] = g.open_pipeline / target
    g["target"] = target
    g["win_rate"] = rate
    g["required_coverage"] = 1.0 / rate if rate > 0 else np.nan
    g["gap"] = g.value - g.required_coverage
    return finish(g, monthly)


# -- stage history ---------------------------------------------------------------------------
def history(sh: pd.DataFrame, o: pd.DataFrame) -> pd.DataFrame:
    """Stage changes with the deal's status, close time and creation-day rate, in order per deal."""
    h = sh.merge(
        o[["opportunity_id", "status", "closed_at", "open_rate"]], on="opportunity_id", how="left"
    )
    h["status"] = h.status.fillna("open")
    h["terminal"] = h.closed_at.notna() & (h.changed_at >= h.closed_at)
    return h.sort_values(["opportunity_id", "changed_at"], ignore_index=True)


def stage_entries(h: pd.DataFrame) -> pd.DataFrame:
    """One row per entry into an open stage, with its exit time (null while still there)."""
    prev = h.groupby("opportunity_id").stage.shift()
    e = h[prev.isna() | (prev != h.stage)].copy()
    e["exit_at"] = e.groupby("opportunity_id").changed_at.shift(-1).fillna(e.closed_at)
    closed_max = h.closed_at.max()
    e["ref_at"] = max(
        h.changed_at.max(), closed_max if pd.notna(closed_max) else h.changed_at.max()
    )
    return e[~e.terminal]


def stage_positions(e: pd.DataFrame) -> pd.DataFrame:
    """Stages in funnel order: by the mean rank of their first entry within a deal."""
    first = e.groupby(["opportunity_id", "stage"], as_index=False).changed_at.min()
    first["rank"] = first.groupby("opportunity_id").changed_at.rank(method="first")
    avg = first.groupby("stage", as_index=False)["rank"].mean().sort_values(["rank", "stage"])
    avg["position"] = np.arange(1, len(avg) + 1)
    return avg[["stage", "position"]]


def stage_conversion(e: pd.DataFrame, pos: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    v = e.merge(pos, on="stage")
    visits = v.groupby(["opportunity_id", "stage"]).size().rename("visits").reset_index()
    deal = (
        v.assign(won=v.status == "won")
        .groupby("opportunity_id", as_index=False)
        .agg(
            min_pos=("position", "min"),
            max_pos=("position", "max"),
            start_at=("changed_at", "min"),
            won=("won", "any"),
        )
    )
    deal = deal[between(deal.start_at, start, end)]
    grid = deal.merge(pos, how="cross").merge(visits, on=["opportunity_id", "stage"], how="left")
    k = grid.position
    reach = np.where(grid.won, len(pos) + 1, grid.max_pos)
    has = grid.visits.notna()
    entered = (grid.min_pos <= k) & (k <= reach)
    grid = grid.assign(
        entered=entered,
        advanced=entered & (reach >= k + 1),
        skipped=entered & ~has,
        regressed=has & (grid.visits > 1),
    )
    out = grid.groupby(["stage", "position"], as_index=False)[
        ["entered", "advanced", "skipped", "regressed"]
    ].sum()
    out["value"] = ratio(out.advanced, out.entered)
    return out.sort_values("position", ignore_index=True)


def time_in_stage(h: pd.DataFrame, e: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    e = e.assign(
        dur=(e.exit_at.fillna(e.ref_at) - e.changed_at).dt.total_seconds() / 86400.0,
        done=e.exit_at.notna(),
    )
    d = e.groupby(["opportunity_id", "stage", "status"], as_index=False).agg(
        first_at=("changed_at", "min"),
        dur=("dur", "sum"),
        event=("done", "all"),
        ref=("ref_at", "max"),
    )
    won = d[(d.status == "won") & d.event]
    thr = won.groupby("stage").dur.quantile(0.75).rename("stall_threshold")
    d = d[between(d.first_at, start, end)]
    rows = []
    for stage, g in d.groupby("stage"):
        rows.append(
            {
                "stage": stage,
                "value": km_quantile(g.dur, g.event, 0.5),
                "p75": km_quantile(g.dur, g.event, 0.75),
                "p90": km_quantile(g.dur, g.event, 0.9),
                "deals": len(g),
                "censored": int((~g.event).sum()),
            }
        )
    out = pd.DataFrame(rows).merge(thr, left_on="stage", right_index=True, how="left")
    latest = h.drop_duplicates("opportunity_id", keep="last").set_index("opportunity_id").close_date
    cur = d[(d.status == "open") & ~d.event]
    cur = cur.assign(
        stalled=cur.dur > cur.stage.map(thr),
        past_close_date=cur.opportunity_id.map(latest) < cur.ref,
    )
    stalled = cur.groupby("stage")[["stalled", "past_close_date"]].sum()
    out = out.merge(stalled, left_on="stage", right_index=True, how="left")
    out[["stalled", "past_close_date"]] = out[["stalled", "past_close_date"]].fillna(0)
    return out.sort_values("stage", ignore_index=True)


def slippage(h: pd.DataFrame, start: Any, end: Any, monthly: bool) -> pd.DataFrame:
    c = h[h.close_date.notna()]
    quarter = c.close_date.dt.to_period("Q")
    prev = quarter.groupby(c.opportunity_id).shift()
    has_prev = prev.notna()
    c = c.assign(
        push=has_prev & (quarter > prev.where(has_prev, quarter)),
        pull=has_prev & (quarter < prev.where(has_prev, quarter)),
    )
    deal = c.groupby("opportunity_id").agg(
        pushes=("push", "sum"),
        pulls=("pull", "sum"),
        first_close=("close_date", "first"),
        last_close=("close_date", "last"),
    )
    deal["pushed_out"] = deal.last_close.dt.to_period("Q") > deal.first_close.dt.to_period("Q")
    deal = with_period(deal[between(deal.first_close, start, end)], "first_close", monthly)
    deal = deal.assign(slipped=deal.pushes >= 1, repeat=deal.pushes >= 2)
    g = deal.groupby("period").agg(
        deals=("pushes", "size"),
        pushes=("pushes", "sum"),
        pulls=("pulls", "sum"),
        slipped_deals=("slipped", "sum"),
        repeat_slipped_deals=("repeat", "sum"),
        pushed_out_deals=("pushed_out", "sum"),
    )
    g["value"] = ratio(g.pushes, g.deals)
    g["repeat_slip_share"] = ratio(g.repeat_slipped_deals, g.slipped_deals)
    g["pushed_out_share"] = ratio(g.pushed_out_deals, g.deals)
    return finish(g, monthly)


def pipeline_waterfall(h: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Monthly bridge of the open pipeline with a close date in [start, end), rebuilt from
    the stage history as it stood at each month's first instant (amounts in USD at each
    deal's creation-day rate)."""
    h = h.assign(amount=h.amount * h.open_rate)
    bounds = list(pd.date_range(start, end, freq="MS"))
    if bounds[-1] < end:
        bounds.append(end)
    first_at = h.groupby("opportunity_id").changed_at.min()
    states = []
    for b in bounds:  # each deal's row in force at b
        s = h[h.changed_at <= b].drop_duplicates("opportunity_id", keep="last")
        inn = (s.closed_at.isna() | (s.closed_at > b)) & between(s.close_date, start, end)
        states.append(
            s[["opportunity_id", "status", "closed_at"]].assign(
                inn=inn, amt=s.amount.fillna(0.0), no_amt=s.amount.isna()
            )
        )
    rows = []
    for b_from, b_to, was, now in zip(
        bounds[:-1], bounds[1:], states[:-1], states[1:], strict=True
    ):
        m = now.merge(
            was[["opportunity_id", "inn", "amt"]].rename(columns={"inn": "in_s", "amt": "amt_s"}),
            on="opportunity_id",
            how="left",
        )
        in_s = m.in_s.eq(True)  # not in the pipeline, or not there yet
        in_e = m.inn
        amt_s = m.amt_s.fillna(0.0)
        fresh = m.opportunity_id.map(first_at) > b_from
        closed = m.closed_at.notna() & (m.closed_at <= b_to)
        leaving = in_s & ~in_e
        rows.append(
            {
                "period": b_from,
                "period_end": b_to,
                "start": amt_s[in_s].sum(),
                "new": m.amt[~in_s & in_e & fresh].sum(),
                "pulled_in": m.amt[~in_s & in_e & ~fresh].sum(),
                "pushed": amt_s[leaving & ~closed].sum(),
                "won": amt_s[leaving & closed & (m.status == "won")].sum(),
                "lost": amt_s[leaving & closed & (m.status != "won")].sum(),
                "changed": (m.amt - amt_s)[in_s & in_e].sum(),
                "end": m.amt[in_e].sum(),
                "deals_start": int(in_s.sum()),
                "deals_end": int(in_e.sum()),
                "end_without_amount": int((in_e & m.no_amt).sum()),
            }
        )
    out = pd.DataFrame(rows)
    out["check"] = (
        out.start
        + out.new
        + out.pulled_in
        - out.pushed
        - out.won
        - out.lost
        + out.changed
        - out.end
    )
    return out


# -- subscriptions ---------------------------------------------------------------------------
def month_idx(s: pd.Series) -> pd.Series:
    return s.dt.year * 12 + s.dt.month - 1


def add_months(ts: pd.Series, k: pd.Series) -> pd.Series:
    """The day of ``ts`` moved by ``k`` calendar months (day clamped to the month's end)."""
    m = ts.dt.year * 12 + ts.dt.month - 1 + k
    first = pd.to_datetime({"year": m // 12, "month": m % 12 + 1, "day": 1})
    day = np.minimum(ts.dt.day, first.dt.days_in_month)
    return first + pd.to_timedelta(day - 1, unit="D")


def mrr_ledger(subs: pd.DataFrame, rates: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """One row per customer and month (from the customer's first month to the last month
    before ``end``) with MRR at the month's end and its movements."""
    s = subs[~subs.status.str.lower().str.strip().isin(TRIALS + NOT_PAYING)].reset_index(drop=True)
    interval = s.interval.str.lower().str.strip()
    n = s.interval_count.fillna(1)
    factor = interval.map({"day": 365 / 12, "week": 52 / 12, "month": 1.0, "year": 1 / 12}) / n
    s["mrr_local"] = s.amount * s.quantity.fillna(1.0) * factor * (1.0 - s.discount.fillna(0.0))
    s["eff_end"] = s.ends_at.fillna(s.cancelled_at)
    s["period_months"] = np.select(
        [interval == "month", interval == "year"], [n, 12 * n], default=np.nan
    )
    s["start_idx"] = month_idx(s.starts_at)
    s["end_idx"] = month_idx(s.eff_end)
    hi = end.year * 12 + end.month - 1 - (1 if end == end.normalize() and end.day == 1 else 0)

    # every row in every month whose last instant it is active at
    last = np.minimum(s.end_idx.fillna(10**7) - 1, hi)
    n_months = (last - s.start_idx + 1).clip(lower=0).astype(np.int64)
    rm = s.loc[s.index.repeat(n_months)]
    rm["idx"] = rm.start_idx + rm.groupby(level=0).cumcount()
    k = ((rm.idx - rm.start_idx) // rm.period_months) * rm.period_months
    period_start = add_months(rm.starts_at, k.fillna(0).astype(np.int64))
    month_first = pd.to_datetime({"year": rm.idx // 12, "month": rm.idx % 12 + 1, "day": 1})
    later = rm.starts_at.where(rm.starts_at > month_first, month_first)
    fx_day = period_start.where(rm.period_months.notna(), later)
    rm["rate"] = usd_rate(rm.currency, fx_day, rates).to_numpy()
    rm["mrr"] = rm.mrr_local * rm.rate
    prev_rate = rm.groupby(level=0).rate.shift()
    rm["fx"] = (rm.mrr_local * (rm.rate - prev_rate)).fillna(0.0)
    cm = rm.groupby(["customer_id", "idx"]).agg(end_mrr=("mrr", "sum"), fx=("fx", "sum"))

    # rows that start and end inside one month: never active at a month's end
    fl = s[(s.end_idx == s.start_idx) & (s.eff_end > s.starts_at)]
    fl = fl.assign(flicker=fl.mrr_local * usd_rate(fl.currency, fl.starts_at, rates))
    fl = fl.groupby(["customer_id", "start_idx"]).flicker.sum().rename_axis(["customer_id", "idx"])

    # every customer from its first month to the last one
    first = s.groupby("customer_id").start_idx.min()
    first = first[first <= hi]
    months = (hi - first + 1).to_numpy()
    led = pd.DataFrame(
        {"customer_id": first.index.repeat(months), "first": first.to_numpy().repeat(months)}
    )
    led["idx"] = led["first"] + led.groupby("customer_id").cumcount()
    led = led.merge(cm, on=["customer_id", "idx"], how="left").merge(
        fl, on=["customer_id", "idx"], how="left"
    )
    led = led.fillna({"end_mrr": 0.0, "fx": 0.0, "flicker": 0.0})
    led["start_mrr"] = led.groupby("customer_id").end_mrr.shift().fillna(0.0)
    was, now = led.start_mrr > EPS, led.end_mrr > EPS
    led["new_churn"] = led.flicker.where(~was & ~now & (led.flicker > EPS), 0.0)
    paid = now | (led.new_churn > EPS)
    paid_before = (paid.astype(int).groupby(led.customer_id).cumsum() - paid.astype(int)) > 0
    returning = ~was & paid
    react = returning & paid_before
    arriving = led.end_mrr + led.new_churn
    cont = was & now
    diff = led.end_mrr - led.start_mrr - led.fx
    led["new"] = arriving.where(returning & ~react, 0.0)
    led["reactivation"] = arriving.where(react, 0.0)
    led["expansion"] = diff.where(cont & (diff > EPS), 0.0)  # FX-only float leftovers: none
    led["contraction"] = (-diff).where(cont & (diff < -EPS), 0.0)
    led["churn"] = led.start_mrr.where(was & ~now, 0.0) + led.new_churn
    led["fx"] = led.fx.where(cont, 0.0)
    led["month"] = pd.to_datetime({"year": led.idx // 12, "month": led.idx % 12 + 1, "day": 1})
    return led.drop(columns=["first", "flicker"])


MOVES = ["new", "expansion", "contraction", "churn", "reactivation", "fx"]


def ledger_months(led: pd.DataFrame) -> pd.DataFrame:
    """Ledger totals per month."""
    start, end = led.start_mrr > EPS, led.end_mrr > EPS
    d = led.assign(
        react_churn=led.reactivation.where(~end, 0.0),
        customers_start=start,
        customers_end=end,
        new_customers=led.new > EPS,
        churned_customers=start & ~end,
        new_churned_customers=led.new_churn > EPS,
        reactivated_customers=led.reactivation > EPS,
    )
    cols = ["start_mrr", "end_mrr", *MOVES, "new_churn", "react_churn", "customers_start",
            "customers_end", "new_customers", "churned_customers", "new_churned_customers",
            "reactivated_customers"]  # fmt: skip
    return d.groupby("month")[cols].sum().sort_index()


def ledger_totals(monthly: pd.DataFrame, by_month: bool) -> pd.DataFrame:
    """Totals per period: sums of movements, start of the first month, end of the last."""
    if by_month:
        return monthly.rename_axis("period")
    t = monthly.sum().to_frame().T
    for c in ("start_mrr", "customers_start"):
        t[c] = monthly[c].iloc[0]
    for c in ("end_mrr", "customers_end"):
        t[c] = monthly[c].iloc[-1]
    return t.assign(period="all").set_index("period")


def retention(led: pd.DataFrame, by_month: bool) -> pd.DataFrame:
    """NRR and GRR (interval, reactivation excluded) per period."""
    keys = ["customer_id", "month"] if by_month else ["customer_id"]
    c = led.groupby(keys).agg(  # the ledger is in customer, month order
        base=("start_mrr", "first"), end=("end_mrr", "last"), low=("end_mrr", "min")
    )
    c = c[c.base > EPS]
    kept = c.end.where(c.low > EPS, 0.0)
    c = c.assign(kept=kept, capped=np.minimum(kept, c.base), retained=kept > EPS)
    g = c.groupby("month" if by_month else np.zeros(len(c), int)).agg(
        start_mrr=("base", "sum"),
        retained_mrr=("kept", "sum"),
        retained_capped=("capped", "sum"),
        customers=("base", "size"),
        customers_retained=("retained", "sum"),
    )
    return g.rename_axis("period")


def subscription_metrics(led: pd.DataFrame, start: pd.Timestamp) -> Frames:
    out: Frames = {}
    history = ledger_months(led)
    window = history[history.index >= start]
    in_window = led[led.month >= start]
    in_window = in_window.assign(churned=(in_window.start_mrr > EPS) & (in_window.end_mrr <= EPS))
    for period in (None, "month"):
        monthly = period == "month"
        t = ledger_totals(window, monthly)
        net_new = t.new + t.expansion + t.reactivation - t.contraction - t.churn
        churned = t.churned_customers
        if not monthly:  # the window: customers paying at its start that churned in it, once
            c = in_window.groupby("customer_id").agg(  # in customer, month order
                base=("start_mrr", "first"),
                churned=("churned", "any"),
            )
            churned = pd.Series(int(((c.base > EPS) & c.churned).sum()), index=t.index)
        frames = {
            "mrr": pd.DataFrame({"value": t.end_mrr, "customers": t.customers_end}),
            "arr": pd.DataFrame(
                {"value": 12 * t.end_mrr, "mrr": t.end_mrr, "customers": t.customers_end}
            ),
            "mrr_movements": t.assign(value=net_new),
            "net_new_mrr": t.assign(value=net_new)[["value", *MOVES]],
            "customer_churn_rate": pd.DataFrame(
                {
                    "value": ratio(churned, t.customers_start),
                    "churned": churned,
                    "customers": t.customers_start,
                }
            ),
            "quick_ratio": pd.DataFrame(
                {
                    "value": ratio(t.new + t.expansion + t.reactivation, t.contraction + t.churn),
                    "gained": t.new + t.expansion + t.reactivation,
                    "lost": t.contraction + t.churn,
                }
            ),
            "arpa": pd.DataFrame(
                {
                    "value": ratio(t.end_mrr, t.customers_end),
                    "mrr": t.end_mrr,
                    "customers": t.customers_end,
                }
            ),
            "asp": pd.DataFrame(
                {
                    "value": ratio(t.new, t.new_customers),
                    "new_mrr": t.new,
                    "new_customers": t.new_customers,
                }
            ),
        }
        lost = t.churn - t.new_churn + t.contraction
        won_back = t.expansion + t.reactivation - t.react_churn
        frames["mrr_churn_rate"] = pd.DataFrame(
            {
                "value": ratio(lost, t.start_mrr),
                "gross": ratio(lost, t.start_mrr),
                "net": ratio(lost - won_back, t.start_mrr),
                "start_mrr": t.start_mrr,
            }
        )
        r = retention(in_window, monthly)
        frames["nrr"] = r.assign(value=ratio(r.retained_mrr, r.start_mrr))
        frames["grr"] = r.assign(value=ratio(r.retained_capped, r.start_mrr))
        # LTV: ARPA ÷ the mean monthly customer churn of the six months before
        churn_m = ratio(history.churned_customers, history.customers_start)
        lt = pd.DataFrame(
            {
                "arpa": ratio(history.end_mrr, history.customers_end),
                "churn_rate": churn_m.shift(1).rolling(6, min_periods=1).mean(),
            }
        )
        lt["value"] = lt.arpa / lt.churn_rate.where(lt.churn_rate > 0)
        lt = lt[lt.index >= start].rename_axis("period")
        frames["ltv"] = lt if monthly else lt.iloc[[-1]]
        for name, f in frames.items():
            out[(name, period)] = finish(f.rename_axis("period"), monthly)
    out[("cohort_retention", None)] = cohort_retention(led, start)
    return out


def cohort_retention(led: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    # cohort: the first paid month (MRR at its end, or new and churned inside it);
    # its base is the cohort's New Business MRR (ChartMogul)
    paid = (led.end_mrr > EPS) | (led.new_churn > EPS)
    first = led.idx.where(paid).groupby(led.customer_id).transform("min")
    c = led.assign(first=first)
    c = c[c["first"].notna() & (c.idx >= c["first"])]
    c = c.assign(age=(c.idx - c["first"]).astype(int), paying=c.end_mrr > EPS)
    c = c[c["first"] >= start.year * 12 + start.month - 1]
    m = c.groupby(["first", "age"], as_index=False).agg(
        customers=("paying", "sum"), mrr=("end_mrr", "sum")
    )
    base = c[c.age == 0].assign(arrived=lambda d: d.new + d.reactivation)
    size = base.groupby("first", as_index=False).agg(
        cohort_customers=("arrived", "size"), cohort_mrr=("arrived", "sum")
    )
    m = m.merge(size, on="first")
    m["logo_retention"] = ratio(m.customers, m.cohort_customers)
    m["revenue_retention"] = ratio(m.mrr, m.cohort_mrr)
    m["value"] = m.revenue_retention
    f = m["first"].astype(int)
    m["cohort"] = pd.to_datetime({"year": f // 12, "month": f % 12 + 1, "day": 1})
    return m.drop(columns="first").sort_values(["cohort", "age"], ignore_index=True)


# -- the panel -------------------------------------------------------------------------------
def compute_panel(
    t: dict[str, pd.DataFrame],
    *,
    start: str,
    end: str,
    target: float,
    on_done: Callable[[str, float], None] | None = None,
) -> Frames:
    """Every metric of the panel, as one figure over [start, end) and per month."""
    import time

    t0 = [time.perf_counter()]

    def done(step: str) -> None:
        if on_done is not None:
            now = time.perf_counter()
            on_done(step, now - t0[0])
            t0[0] = now

    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    out: Frames = {}
    periods: tuple[str | None, ...] = (None, "month")

    lf = lead_facts(t["leads"], t["activities"], t["opportunities"])
    lf = lf[between(lf.created_at, lo, hi)]
    done("lead facts")
    for p in periods:
        out[("speed_to_lead", p)] = speed_to_lead(lf, p == "month")
        out[("lead_contact_rate", p)] = lead_contact_rate(lf, p == "month")
        out[("lead_to_opportunity_rate", p)] = lead_to_opportunity_rate(lf, p == "month")
    out[("conversion_by_response_time", None)] = conversion_by_response_time(lf)
    done("lead metrics")

    rates = fx_table(t["fx_rates"])
    o = deals(t["opportunities"], rates)
    closed_in = o[between(o.closed_at, lo, hi)]
    for p in periods:
        monthly = p == "month"
        out[("average_deal_size", p)] = average_deal_size(closed_in, monthly)
        out[("win_rate", p)] = win_rate(closed_in, monthly)
        out[("sales_cycle", p)] = sales_cycle(closed_in, monthly)
        out[("pipeline_velocity", p)] = pipeline_velocity(o, lo, hi, monthly)
        out[("pipeline_coverage", p)] = pipeline_coverage(o, lo, hi, target, monthly)
    done("deal metrics")

    h = history(t["stage_history"], o)
    e = stage_entries(h)
    pos = stage_positions(e)
    out[("stage_conversion", None)] = stage_conversion(e, pos, lo, hi)
    out[("time_in_stage", None)] = time_in_stage(h, e, lo, hi)
    for p in periods:
        out[("slippage", p)] = slippage(h, lo, hi, p == "month")
    out[("pipeline_waterfall", "month")] = pipeline_waterfall(h, lo, hi)
    done("stage history metrics")

    led = mrr_ledger(t["subscriptions"], rates, hi)
    done("MRR ledger")
    out.update(subscription_metrics(led, lo))
    done("subscription metrics")
    return out


# -- running alone ---------------------------------------------------------------------------
def frames_to_json(frames: Frames) -> list[dict[str, Any]]:
    """``[{"metric", "period", "rows": [...]}]`` with dates as ISO strings."""
    out = []
    for (name, period), df in frames.items():
        d = df.copy()
        for c in d.columns:
            if pd.api.types.is_datetime64_any_dtype(d[c]):
                d[c] = d[c].dt.strftime("%Y-%m-%d")
        rows = json.loads(d.to_json(orient="records", double_precision=15))
        out.append({"metric": name, "period": period, "rows": rows})
    return out


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _measure import Recorder, write_result

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder of the CRM exports (benches/_crm.py)")
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    ap.add_argument("--target", type=float, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    rec = Recorder("pandas")
    with rec.phase("read"):
        tables = load(args.data)
    steps: dict[str, float] = {}
    with rec.phase("compute"):
        frames = compute_panel(
            tables,
            start=args.start,
            end=args.end,
            target=args.target,
            on_done=lambda s, dt: steps.__setitem__(s, round(dt, 3)),
        )
    write_result(
        args.out,
        rec.result(
            pandas=pd.__version__,
            numpy=np.__version__,
            steps_s=steps,
            frames=frames_to_json(frames),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
