"""People, accounts, devices, web sessions, the true lead conversion, and events."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from revloop.synthetic import _params as P
from revloop.synthetic._strings import base64url, hex_strings, prefixed_ids, take_strings
from revloop.synthetic._time import F64, I64, B, Window, sample_days, time_of_day

__all__ = ["People", "Web", "make_people", "simulate_web"]

KIND_WEB, KIND_OUTBOUND, KIND_PARTNER = 0, 1, 2
KINDS = ("inbound", "outbound", "partner")


@dataclass(frozen=True)
class People:
    """Latent attributes of every person (index = person number)."""

    kind: I64  # 0 web visitor, 1 outbound prospect, 2 partner referral
    account: I64
    segment: I64  # index into SEGMENTS (the account's segment)
    account_segment: I64
    intent: F64
    n_devices: I64

    @property
    def n(self) -> int:
        return len(self.kind)


def make_people(rng: np.random.Generator, n_people: int) -> People:
    """Draw accounts, segments, kinds, intent and devices for ``n_people`` people."""
    p = P.PEOPLE
    n_acc = max(20, round(n_people / p["people_per_account"]))
    seg_p = np.array([p["segment_shares"][s] for s in P.SEGMENTS])
    acc_seg = rng.choice(3, size=n_acc, p=seg_p)
    size = rng.lognormal(0.0, p["account_size_sigma"], n_acc)
    size *= np.where(acc_seg == 2, p["enterprise_account_size_multiplier"], 1.0)
    kshares = p["kind_shares"]
    kind = rng.choice(3, size=n_people, p=[kshares["web"], kshares["outbound"], kshares["partner"]])
    tilt = np.array([p["outbound_segment_tilt"][s] for s in P.SEGMENTS])[acc_seg]
    account = np.where(
        kind == KIND_WEB,
        rng.choice(n_acc, size=n_people, p=size / size.sum()),
        rng.choice(n_acc, size=n_people, p=size * tilt / (size * tilt).sum()),
    )
    segment = acc_seg[account]
    w = P.WEB
    intent = rng.lognormal(
        np.log(w["intent_lognormal"]["median"]), w["intent_lognormal"]["sigma"], n_people
    )
    intent *= np.array([w["intent_segment_multiplier"][s] for s in P.SEGMENTS])[segment]
    n_dev = 1 + (rng.random(n_people) < p["second_device_share"]).astype(np.int64)
    return People(kind.astype(np.int64), account.astype(np.int64), segment.astype(np.int64),
                  acc_seg.astype(np.int64), intent, n_dev)  # fmt: skip


@dataclass(frozen=True)
class Web:
    """Sessions (sorted by person, time), the conversions they caused, and the events."""

    s_person: I64
    s_device: I64  # global device number
    s_start: F64
    s_channel: I64
    s_variant: I64  # global variant number
    s_id: pa.Array
    s_anonymous_id: pa.Array
    s_click_id: pa.Array
    s_credit: F64  # true share of the lead conversion (0 if the session did not contribute)
    s_converting: B
    lead_person: I64  # web leads: person, time of the form fill, converting session
    lead_time: F64
    lead_session: I64
    events: pa.Table


def _variants() -> tuple[I64, list[P.Variant], list[float]]:
    chan: list[int] = []
    variants: list[P.Variant] = []
    for ci, c in enumerate(P.CHANNEL_PARAMS):
        for v in c.variants:
            chan.append(ci)
            variants.append(v)
    return np.array(chan, dtype=np.int64), variants, [v.weight for v in variants]


def _segment_starts(group: I64) -> I64:
    """Index of the first row of each row's group (rows sorted by group)."""
    n = len(group)
    first = np.ones(n, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    starts = np.flatnonzero(first)
    return np.repeat(starts, np.diff(np.append(starts, n)))


def _pick_channels(rng: np.random.Generator, n: int, attr: str) -> I64:
    w = np.array([getattr(c, attr) for c in P.CHANNEL_PARAMS])
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int64)


def _pick_variants(
    rng: np.random.Generator, channel: I64, var_chan: I64, weights: list[float]
) -> I64:
    out = np.empty(len(channel), dtype=np.int64)
    wts = np.array(weights)
    for ci in range(len(P.CHANNEL_PARAMS)):
        rows = np.flatnonzero(channel == ci)
        ids = np.flatnonzero(var_chan == ci)
        out[rows] = rng.choice(ids, size=len(rows), p=wts[ids] / wts[ids].sum())
    return out


def _click_ids(rng: np.random.Generator, kinds: list[str | None], kind_of_session: I64) -> pa.Array:
    """Click ids for the sessions whose variant carries one (null elsewhere)."""
    n = len(kind_of_session)
    pieces: list[pa.Array] = []
    rows: list[I64] = []
    for ki, kind in enumerate(kinds):
        if kind is None:
            continue
        idx = np.flatnonzero(kind_of_session == ki)
        if not len(idx):
            continue
        m = len(idx)
        if kind == "gclid":
            body = base64url(rng.integers(0, 256, (m, 40), dtype=np.uint8))
            ids = pc.binary_join_element_wise(
                pa.scalar("Cj0KCQjw"), body, pa.scalar("BwE"), pa.scalar("")
            )
        elif kind == "fbclid":
            body = base64url(rng.integers(0, 256, (m, 44), dtype=np.uint8))
            ids = pc.binary_join_element_wise(pa.scalar("IwAR"), body, pa.scalar(""))
        elif kind == "msclkid":
            ids = hex_strings(rng.integers(0, 256, (m, 16), dtype=np.uint8))
        else:  # li_fat_id: a UUID
            h = hex_strings(rng.integers(0, 256, (m, 16), dtype=np.uint8))
            parts = [
                pc.utf8_slice_codeunits(h, a, b)
                for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
            ]
            ids = pc.binary_join_element_wise(*parts, pa.scalar("-"))
        pieces.append(ids)
        rows.append(idx)
    if not pieces:
        return pa.nulls(n, pa.string())
    allrows = np.concatenate(rows)
    pos = np.full(n, -1, dtype=np.int64)
    pos[allrows] = np.arange(len(allrows))
    return pc.take(pa.concat_arrays(pieces), pa.array(pos, mask=pos < 0))


def simulate_web(rng: np.random.Generator, people: People, window: Window) -> Web:
    """Sessions of the web visitors, the true noisy-OR lead conversion, and the events table.

    See the :mod:`revloop.synthetic` docstring for the model.
    """
    w = P.WEB
    H = window.days
    web = np.flatnonzero(people.kind == KIND_WEB)
    nw = len(web)
    # --- sessions per person and their times --------------------------------------------
    arrival = sample_days(
        rng,
        window,
        nw,
        growth=P.PEOPLE["monthly_growth"],
        weekend=P.PEOPLE["weekend_arrival_factor"],
    )
    n_s = np.minimum(rng.geometric(w["sessions_geometric_p"], nw), w["max_sessions"]).astype(
        np.int64
    )
    person = np.repeat(web, n_s)
    pos = np.arange(len(person)) - np.repeat(np.cumsum(n_s) - n_s, n_s)
    gap_days = np.ceil(
        rng.lognormal(
            np.log(w["gap_days_lognormal"]["median"]), w["gap_days_lognormal"]["sigma"], len(person)
        )
    )
    gap_days[pos == 0] = 0.0
    first_day = np.floor(np.repeat(arrival, n_s))
    day = first_day + _cumsum_by_group(gap_days, pos == 0)
    tod = time_of_day(rng, len(person))
    tod[pos == 0] = np.repeat(arrival - np.floor(arrival), n_s)[pos == 0]
    start = day + tod
    # page views and session length
    n_pv = np.minimum(
        rng.geometric(w["pageviews_geometric_p"], len(person)), w["max_pageviews"]
    ).astype(np.int64)
    dur_est = (n_pv - 1) * w["pageview_gap_seconds_mean"] / 86400.0 + 300.0 / 86400.0
    prev_end = np.roll(start + dur_est, 1)
    min_gap = w["min_gap_minutes"] / 1440.0
    clash = (pos > 0) & (start < prev_end + min_gap)
    start = np.where(clash, prev_end + min_gap + rng.random(len(person)) / 24.0, start)
    keep = start < H - 1.0 / 24.0
    person, pos, start, n_pv = person[keep], pos[keep], start[keep], n_pv[keep]
    ns = len(person)
    # --- channels ------------------------------------------------------------------------
    channel = np.where(
        pos == 0, _pick_channels(rng, ns, "first"), _pick_channels(rng, ns, "repeat")
    )
    lift = np.array([c.lift for c in P.CHANNEL_PARAMS])[channel]
    lift = lift * np.where(pos == 0, w["first_touch_multiplier"], 1.0)
    # --- the true conversion: noisy-OR over past sessions with carry-over ---------------------
    tau = w["carryover_days"]
    max_pos = int(pos.max()) if ns else 0
    log_surv = np.zeros(ns)
    for lag in range(max_pos + 1):
        rows = np.flatnonzero(pos >= lag)
        src = rows - lag
        log_surv[rows] += np.log1p(-lift[src] * np.exp(-(start[rows] - start[src]) / tau))
    prob = 1.0 - (1.0 - w["baseline_lift"]) * np.exp(log_surv)
    hazard = np.minimum(people.intent[person] * prob, w["hazard_cap"])
    fires = rng.random(ns) < hazard
    fired_before = _cumsum_by_group(fires.astype(np.float64), pos == 0)
    converting = fires & (fired_before == 1)
    conv_rows = np.flatnonzero(converting)
    # true credit of each earlier session: its share of -log(1 - h) among the session terms
    credit = np.zeros(ns)
    total = np.zeros(len(conv_rows))
    for lag in range(max_pos + 1):
        ok = pos[conv_rows] >= lag
        k, j = conv_rows[ok], conv_rows[ok] - lag
        r = -np.log1p(-lift[j] * np.exp(-(start[k] - start[j]) / tau))
        credit[j] = r
        total[ok] += r
    lead_of_row = np.full(ns, -1, dtype=np.int64)
    conv_person_rank = np.full(people.n, -1, dtype=np.int64)
    conv_person_rank[person[conv_rows]] = np.arange(len(conv_rows))
    has_lead = conv_person_rank[person] >= 0
    after = np.zeros(ns, dtype=bool)
    conv_pos = np.full(people.n, 10**9, dtype=np.int64)
    conv_pos[person[conv_rows]] = pos[conv_rows]
    before_or_at = has_lead & (pos <= conv_pos[person])
    lead_of_row[before_or_at] = conv_person_rank[person[before_or_at]]
    credit = np.where(
        before_or_at,
        credit / np.where(lead_of_row >= 0, total[np.maximum(lead_of_row, 0)], 1.0),
        0.0,
    )
    after = has_lead & (pos > conv_pos[person])
    # sessions after the lead come from the post-lead mix (they cannot change the conversion)
    channel = np.where(after, _pick_channels(rng, ns, "post_lead"), channel)
    var_chan, variants, weights = _variants()
    variant = _pick_variants(rng, channel, var_chan, weights)
    # --- devices -------------------------------------------------------------------------------
    dev_offset = np.cumsum(people.n_devices) - people.n_devices
    second = (
        (people.n_devices[person] == 2)
        & (pos > 0)
        & (rng.random(ns) < w["second_device_session_share"])
    )
    device = dev_offset[person] + second.astype(np.int64)
    n_dev_total = int(people.n_devices.sum())
    first_seen = np.full(n_dev_total, np.inf)
    np.minimum.at(first_seen, device, start)
    client = (
        np.arange(n_dev_total, dtype=np.int64) * 2_654_435_761 + 1_000_000_007
    ) % 8_999_999_999 + 1_000_000_000
    client_s = pc.cast(pa.array(client), pa.string())
    start_epoch = window.epoch_seconds(start)
    seen_epoch = window.epoch_seconds(np.where(np.isfinite(first_seen), first_seen, 0.0))
    anon_dev = pc.binary_join_element_wise(
        client_s, pc.cast(pa.array(seen_epoch), pa.string()), pa.scalar(".")
    )
    anon = pc.take(anon_dev, pa.array(device))
    sid = pc.binary_join_element_wise(
        pc.take(client_s, pa.array(device)),
        pc.cast(pa.array(start_epoch), pa.string()),
        pa.scalar("."),
    )
    click_kinds: list[str | None] = [*sorted({v.click for v in variants if v.click}), None]
    kind_index = {k: i for i, k in enumerate(click_kinds)}
    session_click_kind = np.array([kind_index[v.click] for v in variants], dtype=np.int64)[variant]
    click = _click_ids(rng, click_kinds, session_click_kind)
    # --- leads -----------------------------------------------------------------------------
    lead_person = person[conv_rows]
    events, lead_time = _events(
        rng, window, person, device, start, n_pv, variant, variants, channel, converting, after,
        anon_dev, sid, click,
    )  # fmt: skip
    return Web(person, device, start, channel, variant, sid, anon, click, credit, converting,
               lead_person, lead_time, conv_rows, events)  # fmt: skip


def _cumsum_by_group(x: F64, first: B) -> F64:
    c = np.cumsum(x)
    starts = np.flatnonzero(first)
    base = np.repeat(c[starts] - x[starts], np.diff(np.append(starts, len(x))))
    return c - base


_FORM_PAGES = (
    "/demo",
    "/contact-sales",
    "/resources/attribution-guide",
    "/webinars/pipeline-forecasting",
)
_CUSTOM = ("pricing_calculator_used", "video_play", "cta_click", "docs_search")


def _events(
    rng: np.random.Generator,
    window: Window,
    person: I64,
    device: I64,
    start: F64,
    n_pv: I64,
    variant: I64,
    variants: list[P.Variant],
    channel: I64,
    converting: B,
    after: B,
    anon_dev: pa.Array,
    sid: pa.Array,
    click: pa.Array,
) -> tuple[pa.Table, F64]:
    """Expand sessions into page views, custom events, form fills and identifies."""
    w = P.WEB
    ns = len(person)
    email_ch = P.CHANNELS.index("Email")
    # identify: on the first post-lead session on another device, and via e-mail links
    conv_dev_person = np.full(int(person.max()) + 1 if ns else 1, -1, dtype=np.int64)
    conv_dev_person[person[converting]] = device[converting]
    other_dev = after & (device != conv_dev_person[person])
    first_on_dev = np.ones(ns, dtype=bool)
    order = np.lexsort((start, device))
    dsorted = device[order]
    first_on_dev[order[1:]] = dsorted[1:] != dsorted[:-1]
    # first post-lead session on that device: the device's first session or later after the lead
    seen_after = np.zeros(ns, dtype=bool)
    a_sorted = after[order] & (device[order] != conv_dev_person[person[order]])
    # rank of post-lead other-device sessions within each device
    grp_first = np.ones(ns, dtype=bool)
    grp_first[1:] = dsorted[1:] != dsorted[:-1]
    cum = _cumsum_by_group(a_sorted.astype(np.float64), grp_first)
    seen_after[order] = a_sorted & (cum == 1)
    u = rng.random(ns)
    identify = np.where(
        other_dev & seen_after,
        u < w["identify_other_device"],
        np.where(
            after & (channel == email_ch),
            u < w["identify_email_session"],
            after & (u < w["identify_other_session"]),
        ),
    )
    custom = rng.random(ns) < w["custom_event_share"]
    form = converting
    n_ev = n_pv + custom + form + identify
    sess = np.repeat(np.arange(ns), n_ev)
    k = np.arange(len(sess)) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)
    is_pv = k < n_pv[sess]
    extra = k - n_pv[sess]  # 0.. for extras in the order custom, form, identify
    has_c = custom[sess]
    is_custom = (~is_pv) & has_c & (extra == 0)
    is_form = (~is_pv) & form[sess] & (extra == has_c.astype(np.int64))
    is_ident = (~is_pv) & ~is_custom & ~is_form
    # times: page views a minute or so apart, extras attached to them
    gaps = np.clip(
        rng.exponential(w["pageview_gap_seconds_mean"], len(sess)),
        2.0,
        w["pageview_gap_seconds_max"],
    )
    gaps = np.where(is_pv & (k > 0), gaps, 0.0) / 86400.0
    pv_time = start[sess] + _cumsum_by_group(gaps, k == 0)
    last_pv = pv_time[np.repeat(np.cumsum(n_ev) - n_ev, n_ev) + n_pv[sess] - 1]
    t = pv_time.copy()
    first_ev = np.repeat(np.cumsum(n_ev) - n_ev, n_ev)
    ci, fi, ii = np.flatnonzero(is_custom), np.flatnonzero(is_form), np.flatnonzero(is_ident)
    s_c = start[sess[ci]]
    t[ci] = s_c + rng.uniform(5, 60, len(ci)) / 86400.0 + (last_pv[ci] - s_c) * rng.random(len(ci))
    t[fi] = last_pv[fi] + rng.uniform(30, 180, len(fi)) / 86400.0
    t[ii] = start[sess[ii]] + rng.uniform(2, 20, len(ii)) / 86400.0
    # a session running past midnight of the last day ends there
    np.minimum(t, window.days - 1.0 / 86400.0, out=t)
    # urls: the landing page from the channel variant, then the site's pages
    pages = [p for p, _ in P.PAGES]
    landing_set = sorted({lp for v in variants for lp in v.landing} | set(pages) | set(_FORM_PAGES))
    page_ix = {p: i for i, p in enumerate(landing_set)}
    urls = [P.SITE + p for p in landing_set]
    pw = np.array([wt for _, wt in P.PAGES])
    browse = np.array([page_ix[p] for p in pages])[
        rng.choice(len(pages), size=len(sess), p=pw / pw.sum())
    ]
    land_lists = [np.array([page_ix[p] for p in v.landing]) for v in variants]
    lens = np.array([len(x) for x in land_lists])
    flat = np.concatenate(land_lists)
    offs = np.cumsum(lens) - lens
    v_of = variant[sess]
    url = browse
    li = np.flatnonzero(k == 0)
    v_li = v_of[li]
    url[li] = flat[offs[v_li] + (rng.random(len(li)) * lens[v_li]).astype(np.int64)]
    url[fi] = np.array([page_ix[p] for p in _FORM_PAGES])[
        rng.integers(0, len(_FORM_PAGES), len(fi))
    ]
    # custom and identify events sit on the landing page of their session
    url = np.where(is_pv | is_form, url, url[first_ev])
    # referrers: external on the landing view, the previous page afterwards
    ext = sorted({v.referrer for v in variants if v.referrer} - set(urls))
    ref_ix = {r: i for i, r in enumerate(urls + ext)}
    v_ref = np.array([ref_ix[v.referrer] if v.referrer else -1 for v in variants], dtype=np.int64)
    prev = np.roll(url, 1)
    ref = np.where(k == 0, v_ref[v_of], np.where(is_pv, prev, -1))
    ref = np.where(is_form, url, ref)  # the form posts from its own page
    ref_null = ref < 0
    # utm and click id only on the landing page view
    first = k == 0

    def utm(attr: str) -> pa.Array:
        vals = [getattr(v, attr) for v in variants]
        choices = sorted({x for x in vals if x})
        ix = np.array([choices.index(x) if x else -1 for x in vals], dtype=np.int64)[v_of]
        return take_strings(choices or [""], np.maximum(ix, 0), ~first | (ix < 0))

    event_type = np.where(is_pv, 0, np.where(is_form, 1, np.where(is_ident, 2, 3)))
    custom_name = rng.integers(0, len(_CUSTOM), len(sess))
    props_choices = [json.dumps({"form_id": "demo_request"})] + [
        json.dumps({"name": c}) for c in _CUSTOM
    ]
    props_ix = np.where(is_form, 0, 1 + custom_name)
    # order events by time (stable) and number them
    order = np.argsort(t, kind="stable")
    n_ev_total = len(sess)
    sess_o = sess[order]
    # ids as dictionaries over the devices and sessions: no string per event is built here
    anon_col = pa.DictionaryArray.from_arrays(pa.array(device[sess_o].astype(np.int32)), anon_dev)
    sid_col = pa.DictionaryArray.from_arrays(pa.array(sess_o.astype(np.int32)), sid)
    events = pa.table({
        "event_id": prefixed_ids("evt_", np.arange(n_ev_total, dtype=np.int64), 9),
        "anonymous_id": anon_col,
        "session_id": sid_col,
        "occurred_at": window.timestamps(t[order]),
        "event_type": take_strings(("page_view", "form_submit", "identify", "custom"), event_type[order]),
        "url": take_strings(urls, url[order]),
        "referrer": take_strings(urls + ext, np.maximum(ref, 0)[order], ref_null[order]),
        "utm_source": utm("source").take(pa.array(order)),
        "utm_medium": utm("medium").take(pa.array(order)),
        "utm_campaign": utm("campaign").take(pa.array(order)),
        "utm_term": utm("term").take(pa.array(order)),
        "utm_content": pa.nulls(n_ev_total, pa.string()),
        "click_id": pc.take(click, pa.array(np.where(first, sess, -1)[order], mask=~first[order])),
        "email_hash": pa.nulls(n_ev_total, pa.string()),  # filled by the caller
        "properties": take_strings(props_choices, props_ix[order], (is_pv | is_ident)[order]),
        "_person": pa.array(person[sess_o]),
    })  # fmt: skip
    return events, t[is_form]  # sessions are in order, so these follow the converting sessions


def lead_source_labels() -> list[str]:
    """The CRM lead sources: one per channel, plus the unknown web source, Outbound and Partner."""
    names = {"Unassigned": "Other"}
    return [f"Inbound - {names.get(c, c)}" for c in P.CHANNELS] + [
        "Inbound - Web",
        "Outbound",
        "Partner",
    ]


def describe_sessions(web: Web, window: Window) -> pa.Table:
    """The true session table: one row per session with its true channel and credit."""
    return pa.table({
        "session_id": web.s_id,
        "anonymous_id": web.s_anonymous_id,
        "person_id": prefixed_ids("per_", web.s_person, 7),
        "started_at": window.timestamps(web.s_start),
        "channel": take_strings(P.CHANNELS, web.s_channel),
        "lead_credit": pa.array(web.s_credit),
        "converting": pa.array(web.s_converting),
    })  # fmt: skip
