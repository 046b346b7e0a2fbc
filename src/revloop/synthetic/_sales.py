"""Leads, speed to lead, sales activities, opportunities and their stage history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from revloop.synthetic import _params as P
from revloop.synthetic._strings import prefixed_ids, take_strings
from revloop.synthetic._time import F64, I64, Window, business_add, sample_days

__all__ = ["Leads", "Pipeline", "lead_to_opportunity_time", "make_leads", "simulate_pipeline"]

INF = np.inf
STAGE_NAMES = (*P.STAGES, "Closed Won", "Closed Lost")
WON, LOST = 4, 5
FORECAST = ("Pipeline", "Best Case", "Commit", "Closed", "Omitted")


@dataclass(frozen=True)
class Leads:
    """Every lead, sorted by creation time (index = lead number)."""

    person: I64
    kind: I64  # 0 inbound, 1 outbound, 2 partner
    created: F64
    source: I64  # index into lead_source_labels()
    session: I64  # converting web session (-1 for outbound and partner)
    segment: I64
    owner: I64  # SDR number
    first_touch: F64  # latent first outbound touch (inf when never contacted)
    bucket: I64  # speed-to-lead bucket index (4 = never)
    log_hr: F64  # log hazard ratio of lead->opportunity (all terms)
    conv_time: F64  # latent opportunity creation time (inf when it never converts)


def make_leads(
    rng: np.random.Generator,
    window: Window,
    person_kind: I64,
    segment: I64,
    intent: F64,
    web_person: I64,
    web_time: F64,
    web_session: I64,
    web_channel: I64,
    n_sdr: int,
) -> Leads:
    """Web leads from their form fills, plus outbound and partner leads; speed to lead and
    the latent lead->opportunity time of each."""
    growth = P.PEOPLE["monthly_growth"]
    out_p = np.flatnonzero(person_kind == 1)
    par_p = np.flatnonzero(person_kind == 2)
    out_t = sample_days(rng, window, len(out_p), growth=growth, weekend=0.05)
    par_t = sample_days(rng, window, len(par_p), growth=growth, weekend=0.2)
    n_ch = len(P.CHANNELS)
    web_src = np.where(
        rng.random(len(web_person)) < P.WEB["unknown_lead_source_share"], n_ch, web_channel
    )
    person = np.concatenate([web_person, out_p, par_p])
    kind = np.concatenate(
        [
            np.zeros(len(web_person), np.int64),
            np.ones(len(out_p), np.int64),
            np.full(len(par_p), 2, np.int64),
        ]
    )
    created = np.concatenate([web_time, out_t, par_t])
    source = np.concatenate([web_src, np.full(len(out_p), n_ch + 1), np.full(len(par_p), n_ch + 2)])
    session = np.concatenate([web_session, np.full(len(out_p) + len(par_p), -1)])
    order = np.argsort(created, kind="stable")
    person, kind, created, source, session = (
        person[order],
        kind[order],
        created[order],
        source[order],
        session[order],
    )
    n = len(person)
    seg = segment[person]
    owner = rng.integers(0, n_sdr, n)
    # --- speed to lead ------------------------------------------------------------------------
    s = P.SPEED_TO_LEAD
    rep_speed = rng.lognormal(0.0, s["rep_speed_sigma"], n_sdr)
    never_p = np.array([s["never_contacted"][k] for k in ("inbound", "outbound", "partner")])[kind]
    never = rng.random(n) < never_p
    bm = s["business_minutes_lognormal"]
    minutes = rng.lognormal(np.log(bm["median"]), bm["sigma"], n) * rep_speed[owner]
    off_hours = rng.random(n) < s["off_hours_responder_share"]
    first = np.where(off_hours, created + minutes / 1440.0, business_add(window, created, minutes))
    om = s["outbound_minutes_lognormal"]
    first = np.where(
        kind == 1, created + rng.lognormal(np.log(om["median"]), om["sigma"], n) / 1440.0, first
    )
    first = np.where(never, INF, np.maximum(first, created + 1.0 / 1440.0))
    resp_min = (first - created) * 1440.0
    bucket = np.where(
        never,
        4,
        np.searchsorted(np.array(s["buckets_minutes"], dtype=np.float64), resp_min, side="left"),
    )
    # --- lead -> opportunity: proportional hazards over lead age ------------------------------------
    lo = P.LEAD_TO_OPP
    hr = np.array([s["hazard_ratio"][b] for b in s["bucket_labels"]])
    log_hr = (
        np.array([lo["log_hr_source"][k] for k in ("inbound", "outbound", "partner")])[kind]
        + np.array([lo["log_hr_segment"][g] for g in P.SEGMENTS])[seg]
        + np.log(hr[bucket])
        + lo["intent_exponent"] * np.log(intent[person] / P.WEB["intent_lognormal"]["median"])
        + rng.normal(0.0, lo["lead_quality_sigma"], n)
    )
    t_conv = lead_to_opportunity_time(rng.exponential(1.0, n), log_hr)
    conv = created + t_conv
    lo_h, hi_h = lo["min_delay_after_first_touch_hours"]
    too_early = np.isfinite(conv) & np.isfinite(first) & (conv < first + lo_h / 24.0)
    conv = np.where(too_early, first + rng.uniform(lo_h, hi_h, n) / 24.0, conv)
    return Leads(
        person,
        kind,
        created,
        source,
        session,
        seg,
        owner,
        first,
        bucket.astype(np.int64),
        log_hr,
        conv,
    )


def lead_to_opportunity_time(e: F64, log_hr: F64) -> F64:
    """Days from lead creation to opportunity under the piecewise-constant baseline hazard.

    ``e`` are unit exponential draws; the result is ``inf`` when the lead never converts
    (the hazard is zero after the last knot).

    Examples
    --------
    >>> rate = P.LEAD_TO_OPP["base_daily_hazard"][0]
    >>> lead_to_opportunity_time(np.array([2 * rate, 10.0]), np.array([0.0, 0.0])).round(6)
    array([ 2., inf])
    """
    lo = P.LEAD_TO_OPP
    knots = np.array(lo["age_knots_days"], dtype=np.float64)
    rates = np.array(lo["base_daily_hazard"], dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(rates * np.diff(knots))])
    target = e / np.exp(log_hr)
    t = np.interp(target, cum, knots)
    return np.where(target >= cum[-1], INF, t)


@dataclass(frozen=True)
class Pipeline:
    """Opportunities (index = opportunity number) and their stage history rows."""

    lead: I64  # lead number of each opportunity
    created: F64
    owner: I64
    currency: I64
    final_stage: I64  # index into STAGE_NAMES
    closed: F64  # inf when open at the end
    amount: F64
    close_date: F64
    forecast: I64
    h_opp: I64  # stage history, sorted by (opportunity, changed_at)
    h_time: F64
    h_stage: I64
    h_amount: F64
    h_close: F64
    h_forecast: I64


def _remaining(stage: I64, mult: F64) -> F64:
    usual = np.array([P.WIN["usual_days"][s] for s in P.STAGES])
    rem = np.cumsum(usual[::-1])[::-1]
    return rem[np.minimum(stage, 3)] * mult


def _forecast(rng: np.random.Generator, stage: I64) -> I64:
    table = np.zeros((4, 3))
    for i, s in enumerate(P.STAGES):
        for cat, p in P.WIN["forecast_category"][s].items():
            table[i, FORECAST.index(cat)] = p
    cum = np.cumsum(table, axis=1)[np.minimum(stage, 3)]
    out = (rng.random(len(stage))[:, None] > cum).sum(axis=1).astype(np.int64)
    return np.where(stage == WON, 3, np.where(stage == LOST, 4, out))


def advance_time(e: F64, rate: F64, usual: F64, decay: F64) -> F64:
    """Time to advance under a hazard ``rate`` that decays as ``exp(-(t - usual) / decay)``
    after ``usual``; ``inf`` when the deal never advances.

    Examples
    --------
    >>> advance_time(np.array([0.5, 1.5, 3.0]), np.array([0.1]), np.array([10.0]), np.array([10.0]))
    array([ 5.        , 16.93147181,         inf])
    """
    early = rate * usual
    late = np.where(e <= early, 0.0, (e - early) / (rate * decay))
    t_late = np.where(late < 1.0, usual - decay * np.log(np.maximum(1.0 - late, 1e-300)), INF)
    return np.where(e <= early, e / rate, t_late)


def simulate_pipeline(
    rng: np.random.Generator, window: Window, leads: Leads, n_ae: int
) -> Pipeline:
    """Walk every opportunity through the stages with competing hazards (see the module docstring)."""
    H = window.days
    wp = P.WIN
    lead = np.flatnonzero(leads.conv_time < H)
    n = len(lead)
    seg = leads.segment[lead]
    created = leads.conv_time[lead]
    mult = np.array([wp["segment_time_multiplier"][g] for g in P.SEGMENTS])[seg]
    cur_p = np.array(list(wp["currency_shares"].values()))
    currency = rng.choice(len(cur_p), size=n, p=cur_p)
    to_local = np.array([1.0, 1.08, 1.27])[currency]
    amount = np.round(
        rng.lognormal(
            np.log(np.array([wp["amount_median"][g] for g in P.SEGMENTS])[seg]), wp["amount_sigma"]
        )
        / to_local,
        -2,
    )
    amount = np.maximum(amount, 1000.0)
    # AEs are split between segments (roughly half SMB, a third MM, the rest Enterprise)
    pools = np.array_split(np.arange(n_ae), [max(1, n_ae // 2), max(2, n_ae * 5 // 6)])
    owner = np.empty(n, dtype=np.int64)
    for g in range(3):
        seg_rows = np.flatnonzero(seg == g)
        pool = pools[g] if len(pools[g]) else np.arange(n_ae)
        owner[seg_rows] = rng.choice(pool, size=len(seg_rows))
    opt_lo, opt_hi = wp["close_date_optimism"]
    stage = np.zeros(n, dtype=np.int64)
    t = created.copy()
    close = np.floor(t + _remaining(stage, mult) * rng.uniform(opt_lo, opt_hi, n))
    fc = _forecast(rng, stage)
    rows: list[tuple[I64, F64, I64, F64, F64, I64]] = [
        (np.arange(n), t.copy(), stage.copy(), amount.copy(), close.copy(), fc.copy())
    ]
    last = t.copy()
    active = np.ones(n, dtype=bool)
    closed = np.full(n, INF)
    usual_s = np.array([wp["usual_days"][s] for s in P.STAGES])
    adv_s = np.array([wp["advance_per_usual_time"][s] for s in P.STAGES])
    lose_s = np.array([wp["lose_per_usual_time"][s] for s in P.STAGES])
    reg_s = np.array([wp["regress_per_usual_time"][s] for s in P.STAGES])
    skip_s = np.array([wp["skip_next_stage"][s] for s in P.STAGES])
    pl = wp["push_days_lognormal"]
    for _ in range(60):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        st = stage[idx]
        usual = usual_s[st] * mult[idx]
        t_adv = advance_time(
            rng.exponential(1.0, len(idx)),
            adv_s[st] / usual,
            usual,
            wp["decay_in_usual_times"] * usual,
        )
        t_lose = rng.exponential(1.0, len(idx)) * usual / lose_s[st]
        t_reg = np.where(
            reg_s[st] > 0,
            rng.exponential(1.0, len(idx)) * usual / np.maximum(reg_s[st], 1e-12),
            INF,
        )
        dt = np.maximum(np.minimum(np.minimum(t_adv, t_lose), t_reg), 1.0 / 24.0)
        t_next = t[idx] + dt
        spell_end = np.minimum(t_next, H)
        # close-date pushes while the deal sits in the stage
        for _k in range(10):
            p_t = np.maximum(close[idx] - rng.uniform(0.0, 5.0, len(idx)), last[idx] + 1.0 / 24.0)
            push = (close[idx] < spell_end) & (p_t < spell_end - 1.0 / 1440.0)
            if not push.any():
                break
            pi = idx[push]
            close[pi] = np.floor(
                np.maximum(close[pi], p_t[push])
                + rng.lognormal(np.log(pl["median"]), pl["sigma"], len(pi))
            )
            fc[pi] = np.where((fc[pi] == 2) & (rng.random(len(pi)) < 0.3), 1, fc[pi])
            last[pi] = p_t[push]
            rows.append(
                (
                    pi,
                    p_t[push],
                    stage[pi].copy(),
                    amount[pi].copy(),
                    close[pi].copy(),
                    fc[pi].copy(),
                )
            )
        moving = t_next < H
        active[idx[~moving]] = False
        idx, st, t_next = idx[moving], st[moving], t_next[moving]
        which = np.argmin(np.stack([t_adv[moving], t_lose[moving], t_reg[moving]]), axis=0)
        new = np.where(
            which == 0,
            st + 1 + ((rng.random(len(idx)) < skip_s[st]) & (st <= 1)),
            np.where(which == 1, LOST, st - 1),
        )
        new = np.where((which == 0) & (st == 3), WON, new)
        done = (new == WON) | (new == LOST)
        change = ~done & (rng.random(len(idx)) < wp["amount_change_share"])
        amount[idx] = np.where(
            change, np.round(amount[idx] * rng.lognormal(0.0, 0.2, len(idx)), -2), amount[idx]
        )
        disc = (new == 3) & (st != 3) & (rng.random(len(idx)) < wp["negotiation_discount_share"])
        amount[idx] = np.where(
            disc, np.round(amount[idx] * rng.uniform(0.85, 0.97, len(idx)), -2), amount[idx]
        )
        amount[idx] = np.maximum(amount[idx], 500.0)
        close[idx] = np.where(
            done,
            np.floor(t_next),
            np.floor(t_next + _remaining(new, mult[idx]) * rng.uniform(opt_lo, opt_hi, len(idx))),
        )
        fc[idx] = _forecast(rng, new)
        stage[idx] = new
        t[idx] = t_next
        last[idx] = t_next
        closed[idx] = np.where(done, t_next, INF)
        active[idx[done]] = False
        rows.append(
            (idx, t_next.copy(), new.copy(), amount[idx].copy(), close[idx].copy(), fc[idx].copy())
        )
    h = [np.concatenate([r[i] for r in rows]) for i in range(6)]
    order = np.lexsort((h[1], h[0]))
    return Pipeline(
        lead, created, owner, currency.astype(np.int64), stage, closed, amount, close, fc,
        h[0][order].astype(np.int64), h[1][order], h[2][order].astype(np.int64), h[3][order], h[4][order],
        h[5][order].astype(np.int64),
    )  # fmt: skip


def opportunity_tables(
    window: Window, leads: Leads, pipe: Pipeline, lead_ids: pa.Array, account_ids: pa.Array
) -> tuple[pa.Table, pa.Table]:
    """The ``opportunities`` and ``stage_history`` tables."""
    n = len(pipe.lead)
    opp_ids = prefixed_ids("opp_", np.arange(1, n + 1, dtype=np.int64), 6)
    status = np.where(pipe.final_stage == WON, 1, np.where(pipe.final_stage == LOST, 2, 0))
    is_open = status == 0
    crm = np.array([P.WIN["crm_probability"][s] for s in STAGE_NAMES], dtype=np.float64)
    opps = pa.table({
        "opportunity_id": opp_ids,
        "lead_id": lead_ids.take(pa.array(pipe.lead)),
        "account_id": account_ids,
        "owner_id": prefixed_ids("usr_ae_", pipe.owner + 1, 3),
        "created_at": window.timestamps(pipe.created),
        "closed_at": window.timestamps(pipe.closed, mask=is_open),
        "status": take_strings(("open", "won", "lost"), status),
        "amount": pa.array(pipe.amount),
        "currency": take_strings(("USD", "EUR", "GBP"), pipe.currency),
        "stage": take_strings(STAGE_NAMES, pipe.final_stage),
        "close_date": window.timestamps(pipe.close_date),
        "forecast_category": take_strings(FORECAST, pipe.forecast),
        "segment": take_strings(P.SEGMENTS, leads.segment[pipe.lead]),
        "probability": pa.array(crm[pipe.final_stage]),
    })  # fmt: skip
    hist = pa.table({
        "opportunity_id": opp_ids.take(pa.array(pipe.h_opp)),
        "changed_at": window.timestamps(pipe.h_time),
        "stage": take_strings(STAGE_NAMES, pipe.h_stage),
        "amount": pa.array(pipe.h_amount),
        "close_date": window.timestamps(pipe.h_close),
        "forecast_category": take_strings(FORECAST, pipe.h_forecast),
        "probability": pa.array(crm[pipe.h_stage]),
    })  # fmt: skip
    return opps, hist


def activities_table(
    rng: np.random.Generator,
    window: Window,
    leads: Leads,
    pipe: Pipeline,
    lead_ids: pa.Array,
    opp_ids: pa.Array,
) -> pa.Table:
    """Sales activities: SDR attempts from the first touch on, inbound calls, the meeting
    that creates each opportunity, and a meeting at each forward stage change."""
    H = window.days
    s = P.SPEED_TO_LEAD
    n = len(leads.person)
    opp_of_lead = np.full(n, -1, dtype=np.int64)
    opp_of_lead[pipe.lead] = np.arange(len(pipe.lead))
    stop = np.minimum(leads.conv_time, H)
    contacted = np.flatnonzero(leads.first_touch < stop)
    n_att = np.minimum(rng.geometric(s["attempts_geometric_p"], len(contacted)), s["max_attempts"])
    a_lead = np.repeat(contacted, n_att)
    k = np.arange(len(a_lead)) - np.repeat(np.cumsum(n_att) - n_att, n_att)
    gl = s["attempt_gap_days_lognormal"]
    gaps = np.where(
        k == 0, 0.0, rng.lognormal(np.log(gl["median"]), gl["sigma"], len(a_lead)) * (1.0 + 0.5 * k)
    )
    starts = np.flatnonzero(k == 0)
    cs = np.cumsum(gaps)
    a_time = leads.first_touch[a_lead] + cs - np.repeat(cs[starts], n_att)
    keep = a_time < stop[a_lead]
    a_lead, k, a_time = a_lead[keep], k[keep], a_time[keep]
    m = len(a_lead)
    kind = rng.choice(3, size=m, p=[0.55, 0.40, 0.05])  # call, email, linkedin
    speed = np.array([2.5, 1.5, 1.0, 0.6, 0.6])[leads.bucket[a_lead]]
    p_connect = s["call_connect_rate"] * np.where(k == 0, speed, 1.0)
    u = rng.random(m)
    outcome = np.where(
        kind == 0,
        np.where(u < p_connect, 0, np.where(rng.random(m) < 0.8, 1, 2)),
        np.where(u < s["email_reply_rate"], 3, 4),
    )  # connected, no_answer, left_voicemail, replied, sent
    act_kind = np.array([0, 1, 4])[kind]  # ACTIVITY_KINDS: call, email, meeting, sms, linkedin
    # inbound calls from the lead
    ib = np.flatnonzero(rng.random(n) < s["inbound_call_share"])
    ib_t = leads.created[ib] + rng.uniform(0.01, 3.0, len(ib))
    ok = ib_t < stop[ib]
    ib, ib_t = ib[ok], ib_t[ok]
    # the meeting that creates each opportunity
    mt_lead = pipe.lead
    floor_t = np.maximum(
        leads.created[mt_lead],
        np.where(np.isfinite(leads.first_touch[mt_lead]), leads.first_touch[mt_lead], 0.0),
    )
    mt_t = np.maximum(pipe.created - rng.uniform(0.005, 0.08, len(mt_lead)), floor_t + 1.0 / 1440.0)
    mt_t = np.minimum(mt_t, pipe.created)
    # meetings at forward stage changes (Demo, Proposal, Negotiation)
    ho = pipe.h_opp
    prev_stage = np.concatenate([[-1], pipe.h_stage[:-1]])
    prev_time = np.concatenate([[-INF], pipe.h_time[:-1]])
    same = np.concatenate([[False], ho[1:] == ho[:-1]])
    fwd = same & (pipe.h_stage > prev_stage) & (pipe.h_stage <= 3)
    sm_o = ho[fwd]
    sm_t = np.maximum(
        pipe.h_time[fwd] - rng.uniform(0.01, 1.0, int(fwd.sum())), prev_time[fwd] + 1.0 / 1440.0
    )
    n_sm = len(sm_o)
    # assemble
    lead_ix = np.concatenate([a_lead, ib, mt_lead, pipe.lead[sm_o]])
    opp_ix = np.concatenate([np.full(m + len(ib), -1), np.arange(len(mt_lead)), sm_o])
    when = np.concatenate([a_time, ib_t, mt_t, sm_t])
    kinds = np.concatenate([act_kind, np.zeros(len(ib), np.int64), np.full(len(mt_lead) + n_sm, 2)])
    direction = np.concatenate(
        [np.zeros(m, np.int64), np.ones(len(ib), np.int64), np.zeros(len(mt_lead) + n_sm, np.int64)]
    )
    meet_out = np.where(rng.random(len(mt_lead) + n_sm) < 0.9, 5, 6)
    outcomes = np.concatenate([outcome, np.zeros(len(ib), np.int64), meet_out])
    sdr = np.concatenate([leads.owner[a_lead], leads.owner[ib]])
    is_ae = np.concatenate([np.zeros(m + len(ib), bool), np.ones(len(mt_lead) + n_sm, bool)])
    ae = np.concatenate([np.zeros(m + len(ib), np.int64), pipe.owner, pipe.owner[sm_o]])
    order = np.argsort(when, kind="stable")
    owners = pa.chunked_array(
        [
            prefixed_ids(
                "usr_sdr_", np.concatenate([sdr, np.zeros(len(ae) - len(sdr), np.int64)]) + 1, 3
            ),
        ]
    ).combine_chunks()
    ae_ids = prefixed_ids("usr_ae_", ae + 1, 3)
    owner_col = pc.if_else(pa.array(is_ae), ae_ids, owners).take(pa.array(order))
    return pa.table({
        "activity_id": prefixed_ids("act_", np.arange(1, len(when) + 1, dtype=np.int64), 8),
        "lead_id": lead_ids.take(pa.array(lead_ix[order])),
        "opportunity_id": opp_ids.take(pa.array(np.maximum(opp_ix, 0)[order], mask=(opp_ix < 0)[order])),
        "owner_id": owner_col,
        "occurred_at": window.timestamps(when[order]),
        "kind": take_strings(("call", "email", "meeting", "sms", "linkedin"), kinds[order]),
        "direction": take_strings(("outbound", "inbound"), direction[order]),
        "outcome": take_strings(("connected", "no_answer", "left_voicemail", "replied", "sent", "completed", "no_show"), outcomes[order]),
    })  # fmt: skip
