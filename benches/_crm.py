"""A seeded B2B company's CRM and billing exports at any scale, for the metrics benchmark.

``ensure_crm(leads)`` writes (once) and returns the folder ``benches/data/crm-{leads}/``
holding one Parquet file per canonical table, named so that ``revloop.read_dir`` finds
them: ``leads``, ``activities``, ``opportunities``, ``stage_history``, ``subscriptions``
and ``fx_rates``, with the column names and types of ``revloop.schema``. Sizes follow
``leads``: opportunities = leads / 5, customers = leads / 10, about 7.5 stage-history
rows per opportunity. At 1M leads: 1M leads, about 2.6M activities, 200k
opportunities, 1.5M stage changes, 100k customers with about 280k subscription rows.

Shapes (every draw vectorised numpy, one ``numpy.random.Generator`` per table seeded by
``(seed, table)``):

- **Window**: 24 months of leads and deals, ``START`` = 2024-07-01 to ``END`` =
  2026-07-01 (exclusive), nothing later; billing starts 12 months earlier so that the
  window opens with a paying base. Lead volume grows by half over the window; weekdays
  and working hours are busier.
- **Leads**: 10 sources, 60 owners, three segments (SMB 60 %, Mid-Market 30 %,
  Enterprise 10 %).
- **Activities**: 15 % of leads are never touched; the first rep touch comes within
  5 minutes for 12 % of the others, else after a lognormal delay (median 3 h, three
  times longer for leads created outside working hours); 1 + Poisson(1.6) attempts
  (call, email, sms, linkedin) with outcomes (connected, no_answer, voicemail, replied,
  sent), meetings for some, inbound emails that never stop the clock, 0.4 % of leads
  touched before they were created (a re-created record), and deal activities that
  name an opportunity only.
- **Opportunities**: leads / 5, chosen by a weight that rewards fast response and some
  sources, created about 10 days (median) after the first touch; 2 % are a second deal
  of a converted lead; the link is kept on both sides except for 3 % each way. Won or
  lost after a lognormal cycle by segment (won median 25/50/90 days); deals whose close
  would fall after ``END`` stay open, as do 3 % of stalled deals. Amounts lognormal by
  segment in USD, EUR, GBP or CAD; 1 % without an amount.
- **Stage history**: Discovery → Demo → Proposal → Negotiation, then Closed Won / Closed
  Lost on the close row; 5 % start at Demo, 10 % skip a stage, 12 % regress once; between
  stage changes, amount changes and close-date pushes (70 %) and pulls; the close row
  sets the close date to the close day.
- **Subscriptions**: leads / 10 customers, starting over 36 months; monthly (70 %),
  annual (24 %), quarterly (5 %) and weekly (1 %) plans; seats that expand and contract
  at month boundaries (one row per item version); 30 % with an add-on item; 25 % with a
  recurring discount; 10 % with a trial row first; geometric lifetimes (annual plans
  churn at renewals) ending with ``ends_at`` and an earlier ``cancelled_at``; 10 % of
  churned customers come back on a new subscription; 1 % with a subscription started and
  cancelled inside one month; 0.5 % with a cancellation and no end date.
- **FX**: daily rates to USD for EUR, GBP, CAD (random walks).

Files are cached with a ``meta.json`` (seed, sizes, row counts, ``FORMAT_VERSION``) and
regenerated only when one changes. Run directly to generate:
``python benches/_crm.py 1000000``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent / "data"
FORMAT_VERSION = 4  # bump when the generator changes: cached files are regenerated
SEED = 20261125

START = "2024-07-01"  # first day of the 24 months of leads and deals
END = "2026-07-01"  # exclusive: nothing happens on or after it
BILLING_START = "2023-07-01"  # subscriptions start up to 12 months before START
TABLE_NAMES = ("leads", "activities", "opportunities", "stage_history", "subscriptions", "fx_rates")

_DAY = 86_400
_T0 = int(np.datetime64(START, "s").astype(np.int64))
_T1 = int(np.datetime64(END, "s").astype(np.int64))
_B0 = int(np.datetime64(BILLING_START, "s").astype(np.int64))

SOURCES = np.array(
    ["web_form", "paid_search", "linkedin_ads", "webinar", "content_download",
     "referral", "partner", "outbound", "event", "chat"]
)  # fmt: skip
SOURCE_P = np.array([0.22, 0.16, 0.10, 0.08, 0.14, 0.06, 0.05, 0.09, 0.05, 0.05])
# relative chance of becoming an opportunity, and how quickly reps pick the source up
SOURCE_CONV = np.array([1.0, 0.9, 0.8, 0.7, 0.5, 1.8, 1.5, 0.6, 0.9, 1.2])
SOURCE_SPEED = np.array([1.0, 1.0, 1.2, 2.0, 1.5, 0.8, 1.0, 0.7, 2.5, 0.3])
SEGMENTS = np.array(["SMB", "Mid-Market", "Enterprise"])
SEGMENT_P = np.array([0.6, 0.3, 0.1])
LEAD_STATUSES = np.array(["new", "working", "nurture", "disqualified", "converted"])
KINDS = np.array(["call", "email", "sms", "linkedin", "meeting"])
OUTCOMES = np.array(["connected", "no_answer", "voicemail", "replied", "sent", "held", "received"])
DIRECTIONS = np.array(["outbound", "inbound"])
STAGES = np.array(
    ["Discovery", "Demo", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
)  # fmt: skip
FORECAST = np.array(["pipeline", "pipeline", "best_case", "commit", "closed", "omitted"])
CURRENCIES = np.array(["USD", "EUR", "GBP", "CAD"])
CURRENCY_P = np.array([0.65, 0.18, 0.12, 0.05])
FX_START = {"EUR": 1.08, "GBP": 1.27, "CAD": 0.74}
INTERVALS = np.array(["month", "year", "week"])


# -- helpers ---------------------------------------------------------------------------------
def _ids(prefix: str, idx: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``prefix`` + decimal number as an Arrow string array; null where not ``valid``."""
    nums = pa.array(np.asarray(idx, dtype=np.int64)).cast(pa.string())
    out = pc.binary_join_element_wise(pa.scalar(prefix), nums, "")
    if valid is not None:
        out = pc.if_else(pa.array(valid), out, pa.nulls(len(out), pa.string()))
    return out


def _ts(sec: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds as a naive (UTC) microsecond timestamp array; null where not ``valid``."""
    us = np.asarray(sec, dtype=np.int64) * 1_000_000
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(us, type=pa.timestamp("us"), mask=mask)


def _pick(values: np.ndarray, codes: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Strings ``values[codes]`` as a dictionary-free Arrow array; null where not ``valid``."""
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(values))
    out = arr.cast(pa.string())
    if valid is not None:
        out = pc.if_else(pa.array(valid), out, pa.nulls(len(out), pa.string()))
    return out


def _floats(x: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(np.asarray(x, dtype=np.float64), mask=mask)


def _group_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` restarting at each index in ``starts`` (groups are contiguous)."""
    c = np.cumsum(x)
    before = np.r_[np.zeros(1, dtype=c.dtype), c[starts[1:] - 1]]  # sum before each group
    return c - np.repeat(before, np.diff(np.r_[starts, len(x)]))


def _within(group: np.ndarray) -> np.ndarray:
    """0-based position of each row within its contiguous run of equal ``group`` values."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.r_[True, group[1:] != group[:-1]]
    start_pos = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    return np.arange(n) - start_pos


def _add_months(sec: np.ndarray, months: np.ndarray) -> np.ndarray:
    """``sec`` moved by whole calendar ``months``, same day and time (day clamped to the month)."""
    t = np.asarray(sec, dtype=np.int64).astype("M8[s]")
    m = t.astype("M8[M]")
    day0 = m.astype("M8[D]")
    into_day = (t - t.astype("M8[D]")).astype(np.int64)
    dom = (t.astype("M8[D]") - day0).astype(np.int64)  # 0-based day of month
    m2 = m + np.asarray(months, dtype=np.int64)
    last = ((m2 + 1).astype("M8[D]") - m2.astype("M8[D]")).astype(np.int64) - 1
    d2 = m2.astype("M8[D]") + np.minimum(dom, last)
    return d2.astype("M8[s]").astype(np.int64) + into_day


def _month_index(sec: np.ndarray) -> np.ndarray:
    return np.asarray(sec, dtype=np.int64).astype("M8[s]").astype("M8[M]").astype(np.int64)


def _weighted_top(rng: np.random.Generator, w: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` items drawn without replacement with probability ∝ ``w``
    (Efraimidis–Spirakis keys)."""
    keys = np.full(len(w), -np.inf)
    ok = w > 0
    keys[ok] = np.log(rng.random(int(ok.sum()))) / w[ok]
    k = min(k, int(ok.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    # argpartition's order inside the top k depends on the CPU's SIMD sort (AVX-512 or
    # not): sorted, the same seed gives the same company on every machine
    return np.sort(np.argpartition(-keys, k - 1)[:k])


# -- leads and activities --------------------------------------------------------------------
def _leads(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 1])
    n_days = (_T1 - _T0) // _DAY
    d = np.arange(n_days)
    weekday = (d + 0) % 7  # 2024-07-01 is a Monday
    w = (1.0 + 0.5 * d / n_days) * np.where(weekday < 5, 1.0, 0.33)
    day = rng.choice(n_days, size=n, p=w / w.sum())
    in_hours = rng.random(n) < 0.7
    sec = np.where(in_hours, rng.integers(8 * 3600, 18 * 3600, n), rng.integers(0, _DAY, n))
    created = np.sort(_T0 + day * _DAY + sec)  # ids in creation order
    in_hours = (
        ((created % _DAY) >= 8 * 3600)
        & ((created % _DAY) < 18 * 3600)
        & (((created - _T0) // _DAY) % 7 < 5)
    )
    source = rng.choice(len(SOURCES), size=n, p=SOURCE_P)
    segment = rng.choice(3, size=n, p=SEGMENT_P)
    owner = rng.integers(1, 61, n)

    # first rep-initiated touch
    never = rng.random(n) < 0.15
    fast = rng.random(n) < 0.12 / SOURCE_SPEED[source].clip(0.5, 2.0)
    minutes = np.where(
        fast,
        rng.uniform(0.3, 5.0, n),
        rng.lognormal(np.log(180.0), 2.0, n) * SOURCE_SPEED[source] * np.where(in_hours, 1, 3),
    )
    minutes = np.minimum(minutes, 60 * 24 * 60.0)
    first = created + np.maximum(np.rint(minutes * 60).astype(np.int64), 1)
    contacted = ~never & (first < _T1)
    return {
        "created": created,
        "in_hours": in_hours,
        "source": source,
        "segment": segment,
        "owner": owner,
        "contacted": contacted,
        "first": first,
        "minutes": minutes,
    }


def _activities(seed: int, ld: dict[str, np.ndarray], opp: dict[str, np.ndarray]) -> pa.Table:
    rng = np.random.default_rng([seed, 2])
    n = len(ld["created"])
    parts: list[dict[str, np.ndarray]] = []

    def add(lead: np.ndarray, opp_i: np.ndarray, at: np.ndarray, kind: np.ndarray,
            direction: np.ndarray, outcome: np.ndarray) -> None:  # fmt: skip
        keep = at < _T1
        parts.append(
            {
                "lead": lead[keep],
                "opp": opp_i[keep],
                "at": at[keep],
                "kind": kind[keep],
                "direction": direction[keep],
                "outcome": outcome[keep],
            }
        )

    def attempt_kinds(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kind = rng.choice(4, size=m, p=[0.55, 0.35, 0.05, 0.05])
        u = rng.random(m)
        outcome = np.select(
            [
                (kind == 0) & (u < 0.25),
                (kind == 0) & (u < 0.75),
                kind == 0,
                (kind == 1) & (u < 0.12),
                (kind == 2) & (u < 0.20),
                (kind == 3) & (u < 0.10),
            ],
            [0, 1, 2, 3, 3, 3],
            default=4,
        )
        direction = np.where(rng.random(m) < 0.93, 0, -1)  # -1: not recorded
        return kind, direction, outcome

    # first touch and further attempts of contacted leads
    c = np.flatnonzero(ld["contacted"])
    extra = rng.poisson(1.6, len(c))
    lead = np.repeat(c, 1 + extra)
    starts = np.r_[0, np.cumsum(1 + extra)[:-1]]
    gap = rng.lognormal(np.log(_DAY), 1.0, len(lead)).astype(np.int64) + 60
    gap[starts] = 0
    at = ld["first"][lead] + _group_cumsum(gap, starts)
    kind, direction, outcome = attempt_kinds(len(lead))
    add(lead, np.full(len(lead), -1), at, kind, direction, outcome)

    # meetings after a contact
    m = c[rng.random(len(c)) < 0.08]
    at = ld["first"][m] + rng.lognormal(np.log(3 * _DAY), 0.8, len(m)).astype(np.int64)
    add(m, np.full(len(m), -1), at, np.full(len(m), 4), np.zeros(len(m), int),
        np.full(len(m), 5))  # fmt: skip

    # inbound emails (never stop the clock), some before the first rep touch
    i = np.flatnonzero(rng.random(n) < 0.10)
    at = ld["created"][i] + rng.integers(60, 600 * 60, len(i))
    add(i, np.full(len(i), -1), at, np.full(len(i), 1), np.ones(len(i), int),
        np.full(len(i), 6))  # fmt: skip

    # a rep touch logged before the lead was created (a re-created record)
    e = np.flatnonzero(rng.random(n) < 0.004)
    at = ld["created"][e] - rng.integers(3600, 72 * 3600, len(e))
    kind, direction, outcome = attempt_kinds(len(e))
    add(e, np.full(len(e), -1), at, kind, np.zeros(len(e), int), outcome)

    # deal activities that name the opportunity only
    n_opp = len(opp["created"])
    k = rng.poisson(1.0, n_opp)
    o = np.repeat(np.arange(n_opp), k)
    end = np.where(opp["closed_ok"], opp["closed"], _T1 - 1)[o]
    at = opp["created"][o] + (rng.random(len(o)) * np.maximum(end - opp["created"][o], 1)).astype(
        np.int64
    )
    kind = rng.choice([0, 1, 4], size=len(o), p=[0.4, 0.4, 0.2])
    outcome = np.where(kind == 4, 5, np.where(kind == 0, 0, 4))
    add(np.full(len(o), -1), o, at, kind, np.zeros(len(o), int), outcome)

    cat = {k2: np.concatenate([p[k2] for p in parts]) for k2 in parts[0]}
    order = np.argsort(cat["at"], kind="stable")  # an activity log: in time order
    cat = {k2: v[order] for k2, v in cat.items()}
    lead, opp_i = cat["lead"], cat["opp"]
    owner = np.where(lead >= 0, ld["owner"][np.maximum(lead, 0)], 0)
    return pa.table(
        {
            "activity_id": _ids("act", np.arange(len(lead))),
            "lead_id": _ids("lead", lead, lead >= 0),
            "opportunity_id": _ids("opp", np.maximum(opp_i, 0), opp_i >= 0),
            "owner_id": _ids("sdr", owner, lead >= 0),
            "occurred_at": _ts(cat["at"]),
            "kind": _pick(KINDS, cat["kind"]),
            "direction": _pick(DIRECTIONS, np.maximum(cat["direction"], 0), cat["direction"] >= 0),
            "outcome": _pick(OUTCOMES, cat["outcome"]),
        }
    )


# -- opportunities and stage history ---------------------------------------------------------
def _opportunities(seed: int, ld: dict[str, np.ndarray], n_opp: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 3])
    n = len(ld["created"])
    x = ld["minutes"]
    speed = np.select([x <= 5, x <= 60, x <= 24 * 60], [2.2, 1.6, 1.0], default=0.6)
    w = SOURCE_CONV[ld["source"]] * np.where(ld["contacted"], speed, 0.25)
    base = np.where(ld["contacted"], ld["first"], ld["created"])
    delay = np.minimum(rng.lognormal(np.log(10 * _DAY), 1.0, n), 270 * _DAY).astype(np.int64)
    conv_at = base + delay + 3600
    n_second = round(0.02 * n_opp)
    first_leads = _weighted_top(rng, np.where(conv_at < _T1 - _DAY, w, 0.0), n_opp - n_second)
    created = conv_at[first_leads]
    # a second deal for some converted leads, later
    cand = rng.choice(len(first_leads), size=min(3 * n_second, len(first_leads)), replace=False)
    later = created[cand] + rng.lognormal(np.log(90 * _DAY), 0.7, len(cand)).astype(np.int64)
    ok = later < _T1 - _DAY
    cand, later = cand[ok][:n_second], later[ok][:n_second]
    lead = np.r_[first_leads, first_leads[cand]]
    created = np.r_[created, later]
    second = np.r_[np.zeros(len(first_leads), bool), np.ones(len(cand), bool)]
    order = np.argsort(created, kind="stable")
    lead, created, second = lead[order], created[order], second[order]
    m = len(lead)

    seg = ld["segment"][lead]
    won_p = np.array([0.32, 0.27, 0.22])[seg]
    won = rng.random(m) < won_p
    won_med = np.array([25.0, 50.0, 90.0])[seg] * _DAY
    lost_med = np.array([20.0, 35.0, 60.0])[seg] * _DAY
    cycle = (
        np.where(
            won, rng.lognormal(np.log(won_med), 0.7), rng.lognormal(np.log(lost_med), 0.9)
        ).astype(np.int64)
        + 3600
    )
    closed = created + cycle
    stalled = rng.random(m) < 0.03
    closed_ok = (closed < _T1 - 60) & ~stalled
    amount_usd = rng.lognormal(np.log(np.array([8e3, 3e4, 1.2e5])[seg]), 0.6)
    currency = rng.choice(len(CURRENCIES), size=m, p=CURRENCY_P)
    has_amount = rng.random(m) >= 0.01
    link = rng.random(m)
    return {
        "lead": lead,
        "created": created,
        "second": second,
        "segment": seg,
        "won": won,
        "closed": np.where(closed_ok, closed, 0),
        "closed_ok": closed_ok,
        "amount_usd": amount_usd,
        "currency": currency,
        "has_amount": has_amount,
        # the link from the deal to its lead, and back, each missing for 3 %
        "opp_has_lead": second | (link >= 0.03),
        "lead_has_opp": ~second & ((link < 0.03) | (link >= 0.06)),
        "owner": rng.integers(1, 41, m),
        "account": rng.integers(0, int(0.8 * m) + 1, m),
    }


def _stage_history(
    seed: int, opp: dict[str, np.ndarray], fx: dict[str, np.ndarray]
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The deals' stage history, their close times and the index of each deal's last row."""
    rng = np.random.default_rng([seed, 4])
    m = len(opp["created"])
    closed_ok, won = opp["closed_ok"], opp["won"]
    # the open stages each deal goes through: positions 1..4 with a start, a furthest, skips
    start = np.where(rng.random(m) < 0.05, 2, 1)
    top = np.where(
        won & closed_ok,
        np.where(rng.random(m) < 0.8, 4, 3),
        rng.integers(1, 5, m),
    )
    top = np.maximum(top, start)
    pos = np.arange(1, 5)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] <= top[:, None])
    interior = inside & (pos[None, :] > start[:, None]) & (pos[None, :] < top[:, None])
    skip = interior & (rng.random((m, 4)) < 0.1)
    deal_i, stage_i = np.nonzero(inside & ~skip)  # row-major: by deal, then stage
    stage_pos = stage_i + 1
    # a regression: after its j-th entry (j >= 1) a deal goes back one entry and returns
    n_entries = np.bincount(deal_i, minlength=m)
    first_row = np.r_[0, np.cumsum(n_entries)[:-1]]
    regress = (n_entries >= 2) & (rng.random(m) < 0.12)
    rj = np.where(regress, rng.integers(1, np.maximum(n_entries, 2)), 0)
    key = _within(deal_i).astype(np.float64)
    r = np.flatnonzero(regress)
    ins_deal = np.repeat(r, 2)
    ins_pos = np.r_[stage_pos[first_row[r] + rj[r] - 1], stage_pos[first_row[r] + rj[r]]]
    ins_pos = ins_pos.reshape(2, -1).T.ravel()
    ins_key = np.repeat(rj[r].astype(np.float64), 2) + np.tile([0.3, 0.6], len(r))
    deal_i = np.r_[deal_i, ins_deal]
    stage_pos = np.r_[stage_pos, ins_pos]
    key = np.r_[key, ins_key]
    o = np.lexsort((key, deal_i))
    deal_i, stage_pos = deal_i[o], stage_pos[o]
    entry_no = _within(deal_i)
    n_entries = np.bincount(deal_i, minlength=m)
    first_row = np.r_[0, np.cumsum(n_entries)[:-1]]

    # other changes (amount, close date) between stage changes
    n_other = rng.poisson(3.7, m)
    o_deal = np.repeat(np.arange(m), n_other)
    o_entry = (rng.random(len(o_deal)) * n_entries[o_deal]).astype(np.int64)
    o_stage = stage_pos[first_row[o_deal] + o_entry]
    o_amount = rng.random(len(o_deal)) < 0.5  # else a close-date change
    # closing rows
    c = np.flatnonzero(closed_ok)
    deal = np.r_[deal_i, o_deal, c]
    entry = np.r_[entry_no, o_entry, np.full(len(c), 10**6)]
    sub = np.r_[np.zeros(len(deal_i)), rng.random(len(o_deal)) + 0.01, np.zeros(len(c))]
    stage = np.r_[stage_pos, o_stage, np.where(won[c], 5, 6)]
    kind = np.r_[np.zeros(len(deal_i), int), np.where(o_amount, 1, 2), np.full(len(c), 3)]
    o = np.lexsort((sub, entry, deal))
    deal, stage, kind = deal[o], stage[o], kind[o]
    n_rows = np.bincount(deal, minlength=m)
    starts = np.r_[0, np.cumsum(n_rows)[:-1]]
    k = _within(deal)

    # times: first row at creation, close row at the close, the rest in between, in order
    created = opp["created"]
    last_open = created + (rng.uniform(0.3, 1.0, m) * (_T1 - 3600 - created)).astype(np.int64)
    end = np.where(closed_ok, opp["closed"], last_open)
    u = rng.random(len(deal))
    u_sorted = u[np.lexsort((u, deal))]
    t = created[deal] + (u_sorted * (end - created)[deal]).astype(np.int64)
    t[starts] = created
    close_row = kind == 3
    t[close_row] = end[deal[close_row]]
    # strictly increasing within a deal (unique opportunity_id, changed_at)
    big = np.int64(4 * 10**9)
    t = np.maximum.accumulate(t - k + deal * big) - deal * big + k
    closed_at = np.where(closed_ok, t[starts + n_rows - 1], 0)

    # amounts: changes on amount rows; close dates: pushes and pulls on close-date rows
    step = np.where(kind == 1, rng.normal(0.0, 0.2, len(deal)), 0.0)
    amount0 = opp["amount_usd"] / fx_at(fx, opp["currency"], created)
    amount = amount0[deal] * np.exp(_group_cumsum(step, starts))
    amount = np.round(amount, 2)
    shift = np.where(
        rng.random(len(deal)) < 0.7,
        rng.lognormal(np.log(20.0), 0.6, len(deal)),
        -rng.uniform(3.0, 20.0, len(deal)),
    )
    shift = np.where(kind == 2, np.rint(shift).astype(np.int64), 0)
    expected = created + rng.lognormal(np.log(45.0), 0.5, m).astype(np.int64) * _DAY
    close_day = (expected[deal] // _DAY) + _group_cumsum(shift, starts)
    close_day = np.maximum(close_day, created[deal] // _DAY)  # never before the deal
    close_day = np.where(close_row, t // _DAY, close_day)
    close_date = close_day * _DAY
    stage_code = stage - 1
    table = pa.table(
        {
            "opportunity_id": _ids("opp", deal),
            "changed_at": _ts(t),
            "stage": _pick(STAGES, stage_code),
            "amount": _floats(amount, opp["has_amount"][deal]),
            "close_date": _ts(close_date),
            "forecast_category": _pick(FORECAST, stage_code),
        }
    )
    return table, closed_at, starts + n_rows - 1


def fx_at(fx: dict[str, np.ndarray], currency: np.ndarray, sec: np.ndarray) -> np.ndarray:
    """The generator's own rate to USD of ``CURRENCIES[currency]`` on the day of ``sec``."""
    day = (np.asarray(sec) // _DAY) - fx["day0"]
    day = np.clip(day, 0, fx["rates"].shape[1] - 1)
    return fx["rates"][currency, day]


def _fx(seed: int) -> tuple[dict[str, np.ndarray], pa.Table]:
    rng = np.random.default_rng([seed, 6])
    day0 = _B0 // _DAY - 31
    n_days = _T1 // _DAY - day0
    rates = np.ones((len(CURRENCIES), n_days))
    for i, cur in enumerate(CURRENCIES):
        if cur in FX_START:
            walk = np.cumsum(rng.normal(0.0, 0.004, n_days))
            rates[i] = np.round(FX_START[cur] * np.exp(walk - walk[0]), 6)
    cur_i = np.repeat(np.arange(1, len(CURRENCIES)), n_days)
    day = np.tile(np.arange(n_days), len(CURRENCIES) - 1)
    table = pa.table(
        {
            "date": pa.array((day0 + day).astype(np.int32), type=pa.date32()),
            "currency": _pick(CURRENCIES, cur_i),
            "rate_to_reporting": _floats(rates[cur_i, day]),
        }
    )
    return {"day0": np.int64(day0), "rates": rates}, table


def _opportunity_table(
    opp: dict[str, np.ndarray], sh: pa.Table, closed_at: np.ndarray, last_row: np.ndarray
) -> pa.Table:
    """Deals with their current stage, amount, close date and category: the last history row."""
    m = len(opp["created"])
    last = pa.array(last_row)
    status = np.where(opp["closed_ok"], np.where(opp["won"], 1, 2), 0)
    return pa.table(
        {
            "opportunity_id": _ids("opp", np.arange(m)),
            "lead_id": _ids("lead", opp["lead"], opp["opp_has_lead"]),
            "account_id": _ids("acct", opp["account"]),
            "owner_id": _ids("ae", opp["owner"]),
            "created_at": _ts(opp["created"]),
            "closed_at": _ts(closed_at, opp["closed_ok"]),
            "status": _pick(np.array(["open", "won", "lost"]), status),
            "amount": sh.column("amount").take(last),
            "currency": _pick(CURRENCIES, opp["currency"]),
            "stage": sh.column("stage").take(last),
            "close_date": sh.column("close_date").take(last),
            "forecast_category": sh.column("forecast_category").take(last),
            "segment": _pick(SEGMENTS, opp["segment"]),
        }
    )


def _lead_table(ld: dict[str, np.ndarray], opp: dict[str, np.ndarray], rng_seed: int) -> pa.Table:
    rng = np.random.default_rng([rng_seed, 5])
    n = len(ld["created"])
    opp_of = np.full(n, -1)
    conv_at = np.zeros(n, dtype=np.int64)
    linked = np.flatnonzero(opp["lead_has_opp"])
    opp_of[opp["lead"][linked]] = linked
    conv_at[opp["lead"][linked]] = opp["created"][linked]
    has = opp_of >= 0
    status = np.where(has, 4, rng.choice(4, size=n, p=[0.2, 0.3, 0.3, 0.2]))
    return pa.table(
        {
            "lead_id": _ids("lead", np.arange(n)),
            "person_id": _ids("person", np.arange(n)),
            "created_at": _ts(ld["created"]),
            "source": _pick(SOURCES, ld["source"]),
            "owner_id": _ids("sdr", ld["owner"]),
            "status": _pick(LEAD_STATUSES, status),
            "converted_at": _ts(conv_at, has),
            "opportunity_id": _ids("opp", np.maximum(opp_of, 0), has),
            "segment": _pick(SEGMENTS, ld["segment"]),
        }
    )


# -- subscriptions ---------------------------------------------------------------------------
def _subscriptions(seed: int, n_cust: int) -> pa.Table:
    rng = np.random.default_rng([seed, 7])
    n = n_cust
    # start: 36 months, growing; day and time of day at random
    n_days = (_T1 - _B0) // _DAY
    d = np.arange(n_days)
    day = rng.choice(n_days, size=n, p=(1 + d / n_days) / (1 + d / n_days).sum())
    start = _B0 + day * _DAY + rng.integers(0, _DAY, n)
    plan = rng.choice(4, size=n, p=[0.70, 0.24, 0.05, 0.01])  # month, year, quarter, week
    interval = np.select([plan == 1, plan == 3], [1, 2], default=0)
    count = np.where(plan == 2, 3, 1)
    seg = rng.choice(3, size=n, p=SEGMENT_P)
    currency = rng.choice(len(CURRENCIES), size=n, p=CURRENCY_P)
    monthly = rng.choice(np.array([29.0, 49.0, 99.0]), size=n)
    price = np.select(
        [plan == 1, plan == 2, plan == 3], [monthly * 12 * 0.85, monthly * 3, monthly / 4],
        default=monthly,
    )  # fmt: skip
    seats = 1 + rng.poisson(np.array([3.0, 10.0, 40.0])[seg])
    discount = np.where(rng.random(n) < 0.25, rng.choice([0.1, 0.15, 0.2, 0.3], size=n), np.nan)

    # lifetime in months: geometric; annual plans churn only at a renewal
    life = np.where(plan == 1, 12 * rng.geometric(0.15, n), rng.geometric(0.03, n))
    life = np.where(plan == 2, 3 * np.ceil(life / 3), life).astype(np.int64)
    end = _add_months(start, life)
    flicker_only = rng.random(n) < 0.005
    day_of_month = (
        (start.astype("M8[s]") - start.astype("M8[s]").astype("M8[M]"))
        .astype("m8[D]")
        .astype(np.int64)
    )
    end = np.where(
        flicker_only,
        start + rng.integers(1, 10, n) * _DAY * (day_of_month < 18) + 3600,
        end,
    )
    churned = end < _T1
    obs_end = np.where(churned, end, _T1)
    obs_months = _month_index(obs_end) - _month_index(start)

    # seat changes at month boundaries: one row per item version
    n_changes = rng.poisson(np.maximum(obs_months, 0) / 12 * 1.5)
    n_changes = np.where(flicker_only | (obs_months < 2), 0, np.minimum(n_changes, obs_months - 1))
    cust_c = np.repeat(np.arange(n), n_changes)
    off = 1 + (rng.random(len(cust_c)) * (obs_months[cust_c] - 1)).astype(np.int64)
    cust_c, off = np.unique(np.c_[cust_c, off], axis=0).T if len(cust_c) else (cust_c, off)
    cust = np.r_[np.arange(n), cust_c]
    off = np.r_[np.zeros(n, np.int64), off]
    o = np.lexsort((off, cust))
    cust, off = cust[o], off[o]
    starts = np.r_[0, np.flatnonzero(cust[1:] != cust[:-1]) + 1]
    delta = np.where(
        rng.random(len(cust)) < 0.6,
        rng.integers(1, 4, len(cust)) * np.array([1, 2, 5])[seg[cust]],
        -rng.integers(1, 4, len(cust)) * np.array([1, 2, 5])[seg[cust]],
    )
    delta[starts] = 0
    qty = np.maximum(seats[cust] + _group_cumsum(delta, starts), 1)
    v_start = _add_months(start[cust], off)
    is_last = np.r_[cust[1:] != cust[:-1], True]
    nxt = np.r_[off[1:], 0]
    v_end = np.where(is_last, end[cust], _add_months(start[cust], nxt))
    has_end = ~is_last | churned[cust]
    rows: list[dict[str, np.ndarray]] = []

    def add(c: np.ndarray, sub: np.ndarray, item: int, s: np.ndarray, e: np.ndarray,
            e_ok: np.ndarray, amount: np.ndarray, interval_: np.ndarray, count_: np.ndarray,
            q: np.ndarray, disc: np.ndarray, status: np.ndarray,
            cancelled: np.ndarray, c_ok: np.ndarray) -> None:  # fmt: skip
        rows.append(
            dict(
                cust=c, sub=sub, item=np.full(len(c), item), start=s, end=e, end_ok=e_ok,
                amount=amount, interval=interval_, count=count_, qty=q, disc=disc,
                status=status, cancelled=cancelled, cancelled_ok=c_ok,
            )
        )  # fmt: skip

    # status: 0 active, 1 canceled, 2 past_due, 3 trialing, 4 ended (a replaced version)
    last_churn = is_last & churned[cust]
    cancel = v_end - (rng.random(len(cust)) * np.minimum(25 * _DAY, v_end - v_start)).astype(
        np.int64
    )
    no_end = last_churn & (rng.random(len(cust)) < 0.005)  # cancelled, no end recorded
    status = np.where(
        is_last, np.where(churned[cust], 1, np.where(rng.random(len(cust)) < 0.02, 2, 0)), 4
    )
    add(cust, cust, 0, v_start, v_end, has_end & ~no_end, price[cust], interval[cust],
        count[cust], qty.astype(float), discount[cust], status,
        np.where(no_end, v_end, cancel), last_churn)  # fmt: skip

    # add-on item on the same subscription
    a = np.flatnonzero((rng.random(n) < 0.3) & ~flicker_only)
    a_start = _add_months(start[a], rng.integers(1, 13, len(a)))
    ok = (a_start < obs_end[a]) & (a_start < _T1)
    a, a_start = a[ok], a_start[ok]
    add(a, a, 1, a_start, end[a], churned[a], np.where(plan[a] == 1, 150.0, 15.0)
        * np.where(plan[a] == 2, 3, 1) / np.where(plan[a] == 3, 4, 1), interval[a], count[a],
        np.ones(len(a)), np.full(len(a), np.nan), np.where(churned[a], 1, 0),
        end[a] - _DAY, churned[a])  # fmt: skip

    # trials before the first paid row
    t = np.flatnonzero((rng.random(n) < 0.10) & ~flicker_only)
    add(t, t, 0, start[t] - 14 * _DAY, start[t], np.ones(len(t), bool), monthly[t],
        np.zeros(len(t), int), np.ones(len(t), int), seats[t].astype(float),
        np.full(len(t), np.nan), np.full(len(t), 3), start[t], np.zeros(len(t), bool))  # fmt: skip

    # reactivations: a new subscription some months after churning
    r = np.flatnonzero(churned & ~flicker_only & (rng.random(n) < 0.10))
    r_start = _add_months(end[r], rng.integers(1, 13, len(r))) + rng.integers(0, 10 * _DAY, len(r))
    r = r[r_start < _T1]
    r_start = r_start[r_start < _T1]
    add(r, n + r, 0, r_start, np.zeros(len(r), np.int64), np.zeros(len(r), bool), monthly[r],
        np.zeros(len(r), int), np.ones(len(r), int), seats[r].astype(float),
        discount[r], np.zeros(len(r), int), r_start, np.zeros(len(r), bool))  # fmt: skip

    # a subscription started and cancelled inside one month
    f = np.flatnonzero((rng.random(n) < 0.01) & ~flicker_only)
    fm = _month_index(start[f]) + (rng.random(len(f)) * np.maximum(obs_months[f], 1)).astype(
        np.int64
    )
    f_start = fm.astype("M8[M]").astype("M8[s]").astype(np.int64) + rng.integers(
        0, 15 * _DAY, len(f)
    )
    ok = f_start < _T1 - 12 * _DAY
    f, f_start = f[ok], f_start[ok]
    f_end = f_start + rng.integers(1, 10, len(f)) * _DAY
    add(f, 2 * n + f, 2, f_start, f_end, np.ones(len(f), bool), np.full(len(f), 99.0),
        np.zeros(len(f), int), np.ones(len(f), int), np.ones(len(f)), np.full(len(f), np.nan),
        np.ones(len(f), int), f_end, np.ones(len(f), bool))  # fmt: skip

    cat = {k2: np.concatenate([p[k2] for p in rows]) for k2 in rows[0]}
    o = np.lexsort((cat["start"], cat["item"], cat["sub"]))
    cat = {k2: v[o] for k2, v in cat.items()}
    cur = currency[cat["cust"]]
    disc = cat["disc"]
    return pa.table(
        {
            "customer_id": _ids("cus", cat["cust"]),
            "subscription_id": _ids("sub", cat["sub"]),
            "item_id": _pick(np.array(["base", "addon", "setup"]), cat["item"]),
            "starts_at": _ts(cat["start"]),
            "ends_at": _ts(cat["end"], cat["end_ok"]),
            "cancelled_at": _ts(cat["cancelled"], cat["cancelled_ok"]),
            "amount": _floats(cat["amount"]),
            "interval": _pick(INTERVALS, cat["interval"]),
            "interval_count": pa.array(cat["count"].astype(np.int64)),
            "quantity": _floats(cat["qty"]),
            "discount": _floats(np.nan_to_num(disc), ~np.isnan(disc)),
            "currency": _pick(CURRENCIES, cur),
            "status": _pick(
                np.array(["active", "canceled", "past_due", "trialing", "ended"]), cat["status"]
            ),
        }
    )


# -- driver ----------------------------------------------------------------------------------
def generate(leads: int, seed: int = SEED) -> dict[str, pa.Table]:
    """Every table of the company with ``leads`` leads (in memory)."""
    n_opp = leads // 5
    n_cust = max(leads // 10, 1)
    fx, fx_table = _fx(seed)
    ld = _leads(seed, leads)
    opp = _opportunities(seed, ld, n_opp)
    sh, closed_at, last_row = _stage_history(seed, opp, fx)
    opp["closed"] = closed_at
    return {
        "leads": _lead_table(ld, opp, seed),
        "activities": _activities(seed, ld, opp),
        "opportunities": _opportunity_table(opp, sh, closed_at, last_row),
        "stage_history": sh,
        "subscriptions": _subscriptions(seed, n_cust),
        "fx_rates": fx_table,
    }


def ensure_crm(leads: int, seed: int = SEED, *, quiet: bool = False) -> dict[str, Any]:
    """Generate (unless cached) and describe ``benches/data/crm-{leads}/``.

    Returns ``{"dir", "leads", "seed", "rows": {table: count}, "generate_s"}``.
    """
    folder = DATA_DIR / (f"crm-{leads}" if seed == SEED else f"crm-{leads}-s{seed}")
    meta_path = folder / "meta.json"
    want = {"format_version": FORMAT_VERSION, "leads": leads, "seed": seed}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want and all(
            (folder / f"{t}.parquet").exists() for t in TABLE_NAMES
        ):
            return meta
    if not quiet:
        print(f"generating {leads:,} leads into {folder} ...", file=sys.stderr)
    t0 = time.perf_counter()
    tables = generate(leads, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
    meta = {
        **want,
        "dir": str(folder),
        "start": START,
        "end": END,
        "rows": {name: t.num_rows for name, t in tables.items()},
        "customers": int(pc.count_distinct(tables["subscriptions"].column("customer_id")).as_py()),
        "generate_s": round(time.perf_counter() - t0, 2),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if not quiet:
        print(f"  {meta['rows']} in {meta['generate_s']} s", file=sys.stderr)
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the metrics benchmark's CRM exports.")
    ap.add_argument("leads", nargs="+", type=int)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    for n in args.leads:
        print(json.dumps(ensure_crm(n, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
