"""Assemble the demo company: generation (pure) and loading into a backend (edge)."""

from __future__ import annotations

import copy
import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from revloop.synthetic import _params as P
from revloop.synthetic._billing import CURRENCIES, fx_table, spend_table, subscriptions_table
from revloop.synthetic._sales import (
    activities_table,
    make_leads,
    opportunity_tables,
    simulate_pipeline,
)
from revloop.synthetic._strings import prefixed_ids, sha256_hex, take_strings
from revloop.synthetic._time import I64, Window
from revloop.synthetic._web import describe_sessions, lead_source_labels, make_people, simulate_web

__all__ = ["TABLE_NAMES", "DemoCompany", "GroundTruth", "demo_company", "generate"]

#: The canonical tables the demo company provides, in load order.
TABLE_NAMES = (
    "events",
    "leads",
    "activities",
    "opportunities",
    "stage_history",
    "subscriptions",
    "spend",
    "fx_rates",
)


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(d)))


@dataclass(frozen=True)
class GroundTruth:
    """What really generated the demo company, to score models against.

    Attributes
    ----------
    params
        Every generating parameter (channels and their UTM variants, people, web,
        speed to lead, lead->opportunity, win, subscriptions), plus the run settings
        (seed, n_people, window). JSON-serialisable through :meth:`to_dict`.
    channel_lift
        The true lift of each channel: its term ``lift_c`` in the noisy-OR hazard that a
        session turns its visitor into a lead.
    sessions
        One row per web session: ``session_id``, ``anonymous_id``, ``person_id``,
        ``started_at``, ``channel`` (the true channel, what a GA4-style classifier should
        return), ``lead_credit`` (the session's true share of the lead it led to: its
        ``-log(1 - lift * carry-over)`` term over the sum of those terms; 0 for sessions
        after the lead or of people who never converted) and ``converting`` (the session
        in which the form was filled).
    leads
        One row per lead: ``lead_id``, ``person_id``, ``kind`` (inbound, outbound,
        partner), ``true_channel`` (of the converting session; null otherwise),
        ``response_minutes`` (the true first-response time, null when never contacted),
        ``speed_bucket`` and ``log_hazard_ratio`` (the lead's total log hazard ratio of
        lead->opportunity conversion).
    lead_to_opportunity
        The piecewise-constant daily baseline hazard over lead age and the log hazard
        ratios of source, segment, speed to lead, intent and lead quality.
    win
        The stage process: usual days per stage, advance, lose and regress hazards,
        the decay of the advance hazard beyond the usual time, skips, amounts.
    speed_to_lead
        The response-time distributions and the true hazard ratio of lead->opportunity
        conversion by first-response bucket.
    """

    params: Mapping[str, Any]
    channel_lift: Mapping[str, float]
    sessions: pa.Table = field(repr=False)
    leads: pa.Table = field(repr=False)
    lead_to_opportunity: Mapping[str, Any]
    win: Mapping[str, Any]
    speed_to_lead: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON-serialisable data (tables excluded).

        Examples
        --------
        >>> import json
        >>> truth = generate(np.random.default_rng(1), n_people=500)[1]
        >>> sorted(json.loads(json.dumps(truth.to_dict())))
        ['channel_lift', 'lead_to_opportunity', 'params', 'speed_to_lead', 'win']
        """
        out = {
            "params": self.params,
            "channel_lift": self.channel_lift,
            "lead_to_opportunity": self.lead_to_opportunity,
            "win": self.win,
            "speed_to_lead": self.speed_to_lead,
        }
        return json.loads(json.dumps(out, default=_jsonable))  # type: ignore[no-any-return]


def _jsonable(obj: object) -> Any:
    if isinstance(obj, MappingProxyType):
        return dict(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


@dataclass(frozen=True)
class DemoCompany:
    """The demo company's canonical tables, as created in the backend, and its ground truth."""

    events: ir.Table
    leads: ir.Table
    activities: ir.Table
    opportunities: ir.Table
    stage_history: ir.Table
    subscriptions: ir.Table
    spend: ir.Table
    fx_rates: ir.Table
    truth: GroundTruth = field(repr=False)

    def tables(self) -> dict[str, ir.Table]:
        """The canonical tables by name."""
        return {name: getattr(self, name) for name in TABLE_NAMES}


_FIRST = ("anna", "ben", "carla", "david", "elena", "felix", "grace", "hugo", "ines", "jon", "kate",
          "liam", "maria", "noah", "olivia", "pablo", "quinn", "rosa", "sam", "tara", "umar", "vera",
          "will", "xena", "yusuf", "zoe", "priya", "wei", "kenji", "amara")  # fmt: skip
_LAST = ("smith", "garcia", "muller", "rossi", "dubois", "nowak", "kim", "patel", "okafor", "silva",
         "johnson", "brown", "jensen", "kowalski", "tanaka", "nguyen", "schmidt", "lopez", "martin",
         "walsh", "cohen", "haddad", "larsen", "moreau", "fischer")  # fmt: skip
_W1 = (
    "blue",
    "north",
    "bright",
    "clear",
    "swift",
    "iron",
    "green",
    "silver",
    "true",
    "peak",
    "open",
    "bold",
)
_W2 = (
    "river",
    "stack",
    "labs",
    "works",
    "cloud",
    "logic",
    "forge",
    "scale",
    "data",
    "signal",
    "path",
)


def _emails(rng: np.random.Generator, person: I64, account: I64) -> pa.Array:
    """Unique lower-case e-mail addresses: first.last[rank]@<company><n>.com."""
    n = len(person)
    order = np.lexsort((person, account))
    acc_sorted = account[order]
    first_in = np.ones(n, dtype=bool)
    first_in[1:] = acc_sorted[1:] != acc_sorted[:-1]
    starts = np.flatnonzero(first_in)
    rank_sorted = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    first = take_strings(_FIRST, rng.integers(0, len(_FIRST), n)).cast(pa.string())
    last = take_strings(_LAST, rng.integers(0, len(_LAST), n)).cast(pa.string())
    suffix = pc.if_else(pa.array(rank > 0), pc.cast(pa.array(rank), pa.string()), pa.scalar(""))
    w1 = take_strings(_W1, account % len(_W1)).cast(pa.string())
    w2 = take_strings(_W2, (account // len(_W1)) % len(_W2)).cast(pa.string())
    num = pc.cast(pa.array(account // (len(_W1) * len(_W2))), pa.string())
    local = pc.binary_join_element_wise(first, ".", last, suffix, pa.scalar(""))
    domain = pc.binary_join_element_wise(w1, w2, num, ".com", pa.scalar(""))
    out: pa.Array = pc.binary_join_element_wise(local, "@", domain, pa.scalar(""))
    return out


def _lead_status(rng: np.random.Generator, window: Window, converted: np.ndarray[Any, Any],
                 contacted: np.ndarray[Any, Any], created: np.ndarray[Any, Any]) -> I64:  # fmt: skip
    age = window.days - created
    old = age > 90.0
    unq = rng.random(len(created)) < 0.6
    return np.where(
        converted, 4, np.where(~contacted, 0, np.where(old, np.where(unq, 3, 2), 1))
    ).astype(np.int64)


def generate(
    rng: np.random.Generator,
    *,
    n_people: int = 20_000,
    months: int = 24,
    end: _dt.date = _dt.date(2026, 10, 31),
    reporting_currency: str = "USD",
) -> tuple[dict[str, pa.Table], GroundTruth]:
    """Generate the demo company's canonical tables as pyarrow tables (no backend needed).

    Parameters
    ----------
    rng
        The only source of randomness.
    n_people
        People in the market: web visitors, outbound prospects and partner referrals.
    months
        Calendar months of history, ending on ``end`` (inclusive).
    end
        The last day of history; nothing happens after it.
    reporting_currency
        ``"USD"``, ``"EUR"`` or ``"GBP"``: the currency ``fx_rates`` converts to.

    Returns
    -------
    tuple of dict and GroundTruth
        The tables by canonical name (see :data:`TABLE_NAMES`), and the ground truth.

    Examples
    --------
    >>> tables, truth = generate(np.random.default_rng(0), n_people=2_000)
    >>> sorted(tables) == sorted(TABLE_NAMES)
    True
    >>> truth.channel_lift["Referral"]
    0.06
    """
    if reporting_currency not in CURRENCIES:
        raise ValueError(
            f"demo_company(reporting_currency={reporting_currency!r}) is not supported. "
            f"Expected one of {list(CURRENCIES)}."
        )
    if n_people < 100:
        raise ValueError(
            f"demo_company(n_people={n_people!r}) is too small. Expected at least 100 people."
        )
    if months < 1:
        raise ValueError(f"demo_company(months={months!r}) must be at least 1.")
    window = Window.ending(end, months)
    people = make_people(rng, n_people)
    web = simulate_web(rng, people, window)
    n_sdr = max(4, round(n_people / 2500))
    n_ae = max(3, round(n_people / 3500))
    leads = make_leads(
        rng, window, people.kind, people.segment, people.intent,
        web.lead_person, web.lead_time, web.lead_session, web.s_channel[web.lead_session], n_sdr,
    )  # fmt: skip
    n_leads = len(leads.person)
    lead_ids = prefixed_ids("lead_", np.arange(1, n_leads + 1, dtype=np.int64), 7)
    person_ids = prefixed_ids("per_", leads.person, 7)
    email_hash = sha256_hex(_emails(rng, leads.person, people.account[leads.person]))
    # --- events: attach the e-mail hash to form fills and identifies ------------------------------
    lead_of_person = np.full(people.n, -1, dtype=np.int64)
    lead_of_person[leads.person] = np.arange(n_leads)
    ev = web.events
    ev_person = ev.column("_person").to_numpy()
    et = ev.column("event_type").combine_chunks().indices.to_numpy(zero_copy_only=False)
    needs = (et == 1) | (et == 2)
    hix = np.where(needs, lead_of_person[ev_person], -1)
    ev = ev.set_column(ev.schema.get_field_index("email_hash"), "email_hash",
                       email_hash.take(pa.array(np.maximum(hix, 0), mask=hix < 0)))  # fmt: skip
    ev = ev.drop_columns(["_person"])
    # --- pipeline ------------------------------------------------------------------------------
    pipe = simulate_pipeline(rng, window, leads, n_ae)
    n_opp = len(pipe.lead)
    opp_ids = prefixed_ids("opp_", np.arange(1, n_opp + 1, dtype=np.int64), 6)
    acc_of_opp = people.account[leads.person[pipe.lead]]
    account_ids_all = prefixed_ids(
        "acc_", np.arange(int(people.account.max()) + 1, dtype=np.int64), 6
    )
    opportunities, stage_history = opportunity_tables(
        window, leads, pipe, lead_ids, account_ids_all.take(pa.array(acc_of_opp))
    )
    activities = activities_table(rng, window, leads, pipe, lead_ids, opp_ids)
    # --- leads table ---------------------------------------------------------------------------------
    opp_of_lead = np.full(n_leads, -1, dtype=np.int64)
    opp_of_lead[pipe.lead] = np.arange(n_opp)
    converted = opp_of_lead >= 0
    contacted = leads.first_touch < window.days
    status = _lead_status(rng, window, converted, contacted, leads.created)
    conv_at = np.where(converted, leads.conv_time, np.nan)
    has_click = leads.session >= 0
    lead_click = pc.take(web.s_click_id, pa.array(np.maximum(leads.session, 0), mask=~has_click))
    leads_t = pa.table({
        "lead_id": lead_ids,
        "person_id": person_ids,
        "created_at": window.timestamps(leads.created),
        "source": take_strings(lead_source_labels(), leads.source),
        "owner_id": prefixed_ids("usr_sdr_", leads.owner + 1, 3),
        "status": take_strings(("New", "Working", "Nurturing", "Unqualified", "Converted"), status),
        "converted_at": window.timestamps(conv_at, mask=~converted),
        "opportunity_id": opp_ids.take(pa.array(np.maximum(opp_of_lead, 0), mask=~converted)),
        "segment": take_strings(P.SEGMENTS, leads.segment),
        "email_hash": email_hash,
        "click_id": lead_click,
    })  # fmt: skip
    # --- billing --------------------------------------------------------------------------------------
    won = np.flatnonzero(pipe.final_stage == 4)
    won_acv_usd = pipe.amount[won]
    subscriptions = subscriptions_table(
        rng, window, acc_of_opp[won], leads.segment[pipe.lead[won]], pipe.currency[won],
        won_acv_usd, pipe.closed[won], account_ids_all,
    )  # fmt: skip
    spend, cpc = spend_table(rng, window, web.s_start, web.s_channel, web.s_variant)
    fx = fx_table(rng, window, reporting_currency)
    tables = {
        "events": ev,
        "leads": leads_t,
        "activities": activities,
        "opportunities": opportunities,
        "stage_history": stage_history,
        "subscriptions": subscriptions,
        "spend": spend,
        "fx_rates": fx,
    }
    # --- ground truth ---------------------------------------------------------------------------------
    resp = (leads.first_touch - leads.created) * 1440.0
    kinds = ("inbound", "outbound", "partner")
    true_leads = pa.table({
        "lead_id": lead_ids,
        "person_id": person_ids,
        "kind": take_strings(kinds, leads.kind),
        "true_channel": take_strings(P.CHANNELS, np.where(has_click, web.s_channel[np.maximum(leads.session, 0)], 0), ~has_click),
        "response_minutes": pa.array(np.where(np.isfinite(resp), resp, 0.0), mask=~np.isfinite(resp)),
        "speed_bucket": take_strings(P.SPEED_TO_LEAD["bucket_labels"], leads.bucket),
        "log_hazard_ratio": pa.array(leads.log_hr),
    })  # fmt: skip
    settings = {
        "n_people": n_people,
        "months": months,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "reporting_currency": reporting_currency,
        "n_sdr": n_sdr,
        "n_ae": n_ae,
        "cost_per_click": cpc,
    }
    params = {**P.all_params(), "settings": settings}
    truth = GroundTruth(
        params=_frozen(params),
        channel_lift=MappingProxyType({c.name: c.lift for c in P.CHANNEL_PARAMS}),
        sessions=describe_sessions(web, window),
        leads=true_leads,
        lead_to_opportunity=_frozen(P.LEAD_TO_OPP),
        win=_frozen(P.WIN),
        speed_to_lead=_frozen(P.SPEED_TO_LEAD),
    )
    return tables, truth


def _plain_ids(table: pa.Table) -> pa.Table:
    """Decode dictionary columns with large dictionaries (ids): backends load those faster
    as plain strings, while a few hundred distinct values load faster encoded."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            col = table.column(i)
            if any(len(chunk.dictionary) > 10_000 for chunk in col.chunks):
                table = table.set_column(i, f.name, col.cast(pa.string()))
    return table


def demo_company(
    con: BaseBackend,
    *,
    seed: int = 7,
    n_people: int = 20_000,
    months: int = 24,
    end: _dt.date = _dt.date(2026, 10, 31),
    reporting_currency: str = "USD",
) -> DemoCompany:
    """Generate the seeded demo B2B SaaS company and create its tables in ``con``.

    Parameters
    ----------
    con
        An Ibis backend (``revloop.connect()`` for in-memory DuckDB). Tables are created
        under their canonical names, replacing any that exist.
    seed
        Seed of the random generator: the same seed gives the same company.
    n_people
        People in the market (web visitors, outbound prospects, partner referrals).
        20,000 gives about 2,500 leads and 350 opportunities.
    months
        Calendar months of history ending on ``end``.
    end
        The last day of history (inclusive); nothing is dated after it.
    reporting_currency
        The currency ``fx_rates.rate_to_reporting`` converts to.

    Returns
    -------
    DemoCompany
        The tables as :class:`ibis.Table` and the :class:`GroundTruth`.

    Examples
    --------
    >>> import revloop
    >>> con = revloop.connect()
    >>> demo = demo_company(con, n_people=2_000)
    >>> sorted(con.list_tables())[:3]
    ['activities', 'events', 'fx_rates']
    """
    tables, truth = generate(
        np.random.default_rng(seed),
        n_people=n_people,
        months=months,
        end=end,
        reporting_currency=reporting_currency,
    )
    made: dict[str, ir.Table] = {}
    for name in TABLE_NAMES:
        data = _plain_ids(tables[name])
        if name == "events":
            expr = ibis.memtable(data).mutate(properties=ibis._.properties.cast("json"))
            made[name] = con.create_table(name, expr, overwrite=True)
        else:
            made[name] = con.create_table(name, data, overwrite=True)
    return DemoCompany(**made, truth=truth)
