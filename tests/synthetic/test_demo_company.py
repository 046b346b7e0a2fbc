"""The demo company is a specification: valid tables, consistent processes, realistic rates."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import revloop
import revloop.synthetic as synthetic
from revloop.synthetic import TABLE_NAMES, DemoCompany, demo_company, generate
from revloop.synthetic._params import CHANNELS
from revloop.synthetic._sales import advance_time, lead_to_opportunity_time
from revloop.synthetic._strings import sha256_hex
from revloop.synthetic._time import Window, business_add

END = dt.date(2026, 10, 31)
AFTER_END = dt.datetime(2026, 11, 1)
STAGE_ORDER = {
    "Discovery": 0,
    "Demo": 1,
    "Proposal": 2,
    "Negotiation": 3,
    "Closed Won": 4,
    "Closed Lost": 4,
}


@pytest.fixture(scope="module")
def demo() -> DemoCompany:
    return demo_company(revloop.connect(), seed=7)


@pytest.fixture(scope="module")
def frames(demo: DemoCompany) -> dict[str, pd.DataFrame]:
    return {name: t.execute() for name, t in demo.tables().items()}


def _digest(table: pa.Table) -> str:
    """A hash of the table's sorted content (row order does not matter)."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        cols[name] = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
    t = pa.table(cols)
    t = t.sort_by([(c, "ascending") for c in t.column_names])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as writer:
        writer.write_table(t)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _digests(seed: int) -> dict[str, str]:
    con = revloop.connect()
    company = demo_company(con, seed=seed, n_people=3_000)
    return {name: _digest(t.to_pyarrow()) for name, t in company.tables().items()}


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_tables() -> None:
    assert _digests(11) == _digests(11)


def test_different_seed_gives_different_tables() -> None:
    a, b = _digests(11), _digests(12)
    # fx walks, events, leads ... all change; nothing is hard-coded
    assert all(a[name] != b[name] for name in TABLE_NAMES)


# --- validation ------------------------------------------------------------------------------


def test_public_names() -> None:
    assert len(synthetic.__all__) == len(set(synthetic.__all__))
    assert set(synthetic.__all__) == {n for n in dir(synthetic) if not n.startswith("_")} - {
        "annotations"
    }


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_validates_clean(demo: DemoCompany, name: str) -> None:
    report = revloop.schema.validate(getattr(demo, name), name, now=AFTER_END)
    assert report.ok, str(report)
    assert report.rows[name] > 0


def test_tables_created_under_canonical_names(demo: DemoCompany) -> None:
    con = demo.events._find_backend()
    assert set(TABLE_NAMES) <= set(con.list_tables())
    assert demo.events.schema()["properties"].is_json()


def test_nothing_after_end(frames: dict[str, pd.DataFrame]) -> None:
    past = {
        "events": ["occurred_at"],
        "leads": ["created_at", "converted_at"],
        "activities": ["occurred_at"],
        "opportunities": ["created_at", "closed_at"],
        "stage_history": ["changed_at"],
        "subscriptions": ["starts_at", "cancelled_at"],
    }
    for table, cols in past.items():
        for col in cols:
            assert frames[table][col].max() < pd.Timestamp(AFTER_END), (table, col)
    assert pd.Timestamp(frames["spend"]["date"].max()) == pd.Timestamp(END)
    assert pd.Timestamp(frames["fx_rates"]["date"].max()) == pd.Timestamp(END)


# --- referential integrity and process invariants ------------------------------------------


def test_opportunities_and_leads_point_at_each_other(frames: dict[str, pd.DataFrame]) -> None:
    leads, opps = frames["leads"], frames["opportunities"]
    assert opps.lead_id.isin(leads.lead_id).all()
    linked = leads.dropna(subset=["opportunity_id"]).set_index("opportunity_id")
    assert set(linked.index) == set(opps.opportunity_id)
    joined = opps.set_index("opportunity_id").join(
        linked[["lead_id", "converted_at", "created_at"]], rsuffix="_lead"
    )
    assert (joined.lead_id == joined.lead_id_lead).all()
    assert (joined.created_at == joined.converted_at).all()
    assert (joined.created_at >= joined.created_at_lead).all()
    assert (leads.status == "Converted").sum() == len(opps)


def test_deal_states_are_consistent(frames: dict[str, pd.DataFrame]) -> None:
    opps = frames["opportunities"]
    won, lost, open_ = (opps[opps.status == s] for s in ("won", "lost", "open"))
    assert (won.amount > 0).all()
    assert (won.closed_at >= won.created_at).all()
    assert (won.stage == "Closed Won").all()
    assert (won.forecast_category == "Closed").all()
    assert (lost.stage == "Closed Lost").all()
    assert lost.closed_at.notna().all()
    assert open_.closed_at.isna().all()
    assert open_.stage.isin(["Discovery", "Demo", "Proposal", "Negotiation"]).all()
    assert set(opps.currency) == {"USD", "EUR", "GBP"}
    assert set(opps.segment) == {"SMB", "Mid-Market", "Enterprise"}


def test_stage_history_belongs_to_deals_and_is_ordered(frames: dict[str, pd.DataFrame]) -> None:
    hist, opps = frames["stage_history"], frames["opportunities"].set_index("opportunity_id")
    assert set(hist.opportunity_id) == set(opps.index)
    g = hist.groupby("opportunity_id", sort=False)
    assert g.changed_at.apply(lambda s: s.is_monotonic_increasing and s.is_unique).all()
    first, last = g.first(), g.last()
    assert (first.changed_at == opps.created_at.loc[first.index]).all()
    assert (first.stage == "Discovery").all()
    assert (last.stage == opps.stage.loc[last.index]).all()
    assert (last.amount == opps.amount.loc[last.index]).all()
    closed = opps.closed_at.notna()
    assert (last.changed_at[closed[last.index]] == opps.closed_at[closed]).all()


def test_activities_follow_their_leads(frames: dict[str, pd.DataFrame]) -> None:
    acts, leads = frames["activities"], frames["leads"].set_index("lead_id")
    assert acts.lead_id.isin(leads.index).all()
    assert (acts.occurred_at >= leads.created_at.loc[acts.lead_id].to_numpy()).all()
    with_opp = acts.dropna(subset=["opportunity_id"])
    opp_lead = frames["opportunities"].set_index("opportunity_id").lead_id
    assert (opp_lead.loc[with_opp.opportunity_id].to_numpy() == with_opp.lead_id.to_numpy()).all()
    # every opportunity is preceded by a meeting with it
    meetings = with_opp[with_opp.kind == "meeting"].groupby("opportunity_id").occurred_at.min()
    created = frames["opportunities"].set_index("opportunity_id").created_at
    assert (meetings.reindex(created.index) <= created).all()


def test_subscriptions_belong_to_won_customers(frames: dict[str, pd.DataFrame]) -> None:
    subs, opps = frames["subscriptions"], frames["opportunities"]
    won_accounts = set(opps.loc[opps.status == "won", "account_id"])
    assert set(subs.customer_id) <= won_accounts
    ended = subs.dropna(subset=["ends_at"])
    assert (ended.ends_at > ended.starts_at).all()
    cancelled = subs.dropna(subset=["cancelled_at"])
    assert (cancelled.cancelled_at <= cancelled.ends_at).all()
    assert (cancelled.status == "canceled").all()
    # one open row at most per (subscription, item); rows of an item do not overlap
    for _, rows in subs.sort_values("starts_at").groupby(["subscription_id", "item_id"]):
        assert rows.ends_at.iloc[:-1].notna().all()
        assert (rows.starts_at.iloc[1:].to_numpy() >= rows.ends_at.iloc[:-1].to_numpy()).all()


def test_subscriptions_show_the_lifecycle(frames: dict[str, pd.DataFrame]) -> None:
    subs = frames["subscriptions"]
    assert set(subs.interval) == {"month", "year"}
    assert subs.cancelled_at.notna().any()  # churn
    assert (subs.groupby("subscription_id").size() > 1).any()  # changes start new rows
    assert (subs.discount > 0).any()
    assert (subs.discount < 1).all()


def test_form_fills_and_identifies_carry_lead_email_hashes(frames: dict[str, pd.DataFrame]) -> None:
    ev, leads = frames["events"], frames["leads"]
    hashed = ev[ev.event_type.isin(["form_submit", "identify"])]
    assert hashed.email_hash.notna().all()
    assert hashed.email_hash.isin(leads.email_hash).all()
    assert ev.loc[ev.event_type.isin(["page_view", "custom"]), "email_hash"].isna().all()
    assert leads.email_hash.is_unique
    assert leads.email_hash.str.fullmatch("[0-9a-f]{64}").all()
    forms = ev[ev.event_type == "form_submit"].set_index("email_hash").occurred_at
    inbound = leads[leads.source.str.startswith("Inbound")].set_index("email_hash").created_at
    assert forms.index.is_unique
    assert len(forms) == len(inbound)
    assert (forms.loc[inbound.index] == inbound).all()
    # some leads identify on a device other than the one that filled the form
    ident = ev[ev.event_type == "identify"]
    form_dev = ev[ev.event_type == "form_submit"].set_index("email_hash").anonymous_id
    assert (ident.anonymous_id.to_numpy() != form_dev.loc[ident.email_hash].to_numpy()).any()


def test_sessions_are_sessionizable(frames: dict[str, pd.DataFrame]) -> None:
    ev = frames["events"].sort_values(["anonymous_id", "occurred_at"])
    gap = ev.groupby("anonymous_id").occurred_at.diff()
    new_session = ev.session_id != ev.groupby("anonymous_id").session_id.shift()
    # within a tagged session events are < 30 minutes apart; between sessions >= 30 minutes
    assert (gap[~new_session] < pd.Timedelta(minutes=30)).all()
    assert (gap[new_session].dropna() >= pd.Timedelta(minutes=30)).all()
    assert ev.groupby("session_id").anonymous_id.nunique().max() == 1


# --- GA4-style channel rules recover the true channel ------------------------------------------

_SEARCH = {"google", "bing", "google.com", "bing.com", "duckduckgo.com", "yahoo.com"}
_SOCIAL = {"linkedin", "facebook", "linkedin.com", "facebook.com", "t.co", "reddit.com"}
_VIDEO = {"youtube", "youtube.com", "vimeo.com"}
_PAID = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")


def _ga4(source: str | None, medium: str | None, campaign: str | None, referrer: str | None) -> str:
    """The GA4 default channel group (attribution.md §3.4) for the sources the demo uses."""
    if source is None and referrer:
        host = urlparse(referrer).hostname or ""
        host = re.sub(r"^(www|m|l|search)\.", "", host)
        if host.endswith("acme-revops.com"):
            source, medium = "(direct)", "(none)"
        else:
            source, medium = host, "referral"
    if source is None:
        source, medium = "(direct)", "(none)"
    medium = medium or "(none)"
    campaign = campaign or ""
    paid = bool(_PAID.match(medium))
    rules = [
        ("Direct", source == "(direct)" and medium in {"(none)", "(not set)"}),
        ("Cross-network", "cross-network" in campaign),
        ("Paid Search", source in _SEARCH and paid),
        ("Paid Social", source in _SOCIAL and paid),
        ("Paid Video", source in _VIDEO and paid),
        ("Display", medium in {"display", "banner", "expandable", "interstitial", "cpm"}),
        ("Paid Other", paid),
        ("Organic Social", source in _SOCIAL or medium in {"social", "social-network", "sm"}),
        ("Organic Video", source in _VIDEO or "video" in medium),
        ("Organic Search", source in _SEARCH or medium == "organic"),
        ("Referral", medium in {"referral", "app", "link"}),
        ("Email", "email" in source or "email" in medium),
        ("Affiliates", medium == "affiliate"),
    ]
    return next((name for name, hit in rules if hit), "Unassigned")


def test_ga4_rules_recover_every_true_channel(
    demo: DemoCompany, frames: dict[str, pd.DataFrame]
) -> None:
    ev = frames["events"]
    landing = (
        ev[ev.event_type == "page_view"].sort_values("occurred_at").groupby("session_id").first()
    )
    predicted = [
        _ga4(s, m, c, r)
        for s, m, c, r in zip(
            landing.utm_source.where(landing.utm_source.notna(), None),
            landing.utm_medium.where(landing.utm_medium.notna(), None),
            landing.utm_campaign.where(landing.utm_campaign.notna(), None),
            landing.referrer.where(landing.referrer.notna(), None),
            strict=True,
        )
    ]
    truth = demo.truth.sessions.to_pandas().set_index("session_id").channel
    assert set(truth.index) == set(landing.index)
    predicted_s = pd.Series(predicted, index=landing.index)
    wrong = predicted_s != truth.loc[landing.index].astype(str)
    assert not wrong.any(), (
        landing[wrong]
        .assign(pred=predicted_s[wrong], true=truth[wrong.index[wrong]])[
            ["utm_source", "utm_medium", "utm_campaign", "referrer", "pred", "true"]
        ]
        .drop_duplicates(["referrer", "utm_source", "true"])
        .to_dict("records")
    )
    assert truth.nunique() >= 11
    assert set(truth.unique()) == set(CHANNELS)


# --- realism bands ---------------------------------------------------------------------------


def test_funnel_rates_are_realistic(frames: dict[str, pd.DataFrame]) -> None:
    leads, opps, acts = frames["leads"], frames["opportunities"], frames["activities"]
    assert 0.08 <= leads.opportunity_id.notna().mean() <= 0.20
    closed = opps[opps.status != "open"]
    assert 0.15 <= (closed.status == "won").mean() <= 0.35
    touched = acts.loc[acts.direction == "outbound", "lead_id"].unique()
    assert 0.10 <= 1 - leads.lead_id.isin(touched).mean() <= 0.20
    assert {"Outbound", "Partner", "Inbound - Paid Search"} <= set(leads.source)
    won = opps[opps.status == "won"]
    median_amount = won.groupby("segment").amount.median()
    assert median_amount["SMB"] < median_amount["Mid-Market"] < median_amount["Enterprise"]


def test_stage_history_has_regressions_skips_and_pushes(frames: dict[str, pd.DataFrame]) -> None:
    hist = frames["stage_history"].copy()
    hist["rank"] = hist.stage.map(STAGE_ORDER)
    g = hist.groupby("opportunity_id")
    step = g["rank"].diff()
    assert (step < 0).sum() > 0  # regressions
    assert (step > 1).sum() > 0  # skipped stages
    same_stage = hist.stage == g.stage.shift()
    pushed = same_stage & (hist.close_date > g.close_date.shift())
    assert pushed.sum() > 10
    assert (hist.amount != g.amount.shift()).where(same_stage | step.notna()).any()


def test_speed_to_lead_effect_is_visible(
    demo: DemoCompany, frames: dict[str, pd.DataFrame]
) -> None:
    truth = demo.truth.leads.to_pandas().set_index("lead_id")
    leads = frames["leads"].set_index("lead_id")
    rate = leads.opportunity_id.notna().groupby(truth.speed_bucket.astype(str)).mean()
    assert rate["<=5m"] > rate["1-24h"] > rate["never"]


def test_spend_and_fx(frames: dict[str, pd.DataFrame]) -> None:
    spend, fx = frames["spend"], frames["fx_rates"]
    assert set(spend.channel) == {
        "Paid Search",
        "Paid Social",
        "Display",
        "Paid Video",
        "Cross-network",
    }
    assert spend.groupby(["channel", "campaign"]).size().nunique() == 1  # every day, every campaign
    assert 50_000 < spend.amount.sum() < 2_000_000
    assert set(fx.currency) == {"USD", "EUR", "GBP"}
    assert (fx.loc[fx.currency == "USD", "rate_to_reporting"] == 1.0).all()
    assert fx.loc[fx.currency == "EUR", "rate_to_reporting"].between(0.9, 1.3).all()


# --- ground truth ----------------------------------------------------------------------------


def test_truth_is_serialisable_and_complete(demo: DemoCompany) -> None:
    truth = demo.truth
    d = json.loads(json.dumps(truth.to_dict()))
    assert set(d["channel_lift"]) == set(CHANNELS)
    assert d["params"]["settings"]["n_people"] == 20_000
    assert d["lead_to_opportunity"]["age_knots_days"][0] == 0
    assert set(d["win"]["usual_days"]) == {"Discovery", "Demo", "Proposal", "Negotiation"}
    assert d["speed_to_lead"]["hazard_ratio"]["<=5m"] > d["speed_to_lead"]["hazard_ratio"][">24h"]


def test_true_credits_sum_to_one_per_web_lead(demo: DemoCompany) -> None:
    s = demo.truth.sessions.to_pandas()
    conv_people = s.loc[s.converting, "person_id"]
    credit = s.groupby("person_id").lead_credit.sum()
    np.testing.assert_allclose(credit.loc[conv_people], 1.0, rtol=1e-9)
    assert credit.drop(conv_people).eq(0).all()
    inbound = demo.truth.leads.to_pandas().query("kind == 'inbound'")
    assert len(inbound) == s.converting.sum()


def test_leads_never_after_their_conversion(frames: dict[str, pd.DataFrame]) -> None:
    leads = frames["leads"].dropna(subset=["converted_at"])
    assert (leads.converted_at > leads.created_at).all()


# --- the pure pieces ---------------------------------------------------------------------------


def test_sha256_matches_hashlib() -> None:
    emails = ["ana.smith@bluestack3.com", "", "x" * 55, "zoë@example.org"]
    got = sha256_hex(pa.array(emails)).to_pylist()
    assert got == [hashlib.sha256(e.encode()).hexdigest() for e in emails]
    with pytest.raises(ValueError, match="longer than 55 bytes"):
        sha256_hex(pa.array(["y" * 56]))


def test_business_add_lands_in_business_hours() -> None:
    window = Window.ending(END, 24)
    rng = np.random.default_rng(0)
    t0 = rng.uniform(0, window.days - 30, 5_000)
    mins = rng.lognormal(3.0, 2.0, 5_000)
    t1 = business_add(window, t0, mins)
    assert (t1 >= t0).all()
    hour = (t1 % 1.0) * 24
    assert ((hour >= 14 - 1e-9) & (hour <= 22 + 1e-9)).all()
    assert (window.weekday(t1) < 5).all()


def test_hazard_inversions() -> None:
    e = np.random.default_rng(1).exponential(1.0, 10_000)
    t = lead_to_opportunity_time(e, np.zeros_like(e))
    assert np.isinf(t).mean() > 0.8
    assert (t[np.isfinite(t)] <= 365).all()
    faster = lead_to_opportunity_time(e, np.full_like(e, np.log(2.0)))
    assert np.isfinite(faster).sum() > np.isfinite(t).sum()
    adv = advance_time(e, np.array([0.1]), np.array([10.0]), np.array([10.0]))
    # the hazard decays after the usual time, so some deals never advance
    # P(never) = exp(-(rate * usual + rate * decay)) = exp(-2)
    assert (adv[np.isfinite(adv)] > 0).all()
    assert np.isinf(adv).mean() == pytest.approx(np.exp(-2.0), abs=0.015)


def test_rejects_unsupported_settings() -> None:
    con = revloop.connect()
    with pytest.raises(ValueError, match=r"reporting_currency='JPY'.*Expected one of"):
        demo_company(con, reporting_currency="JPY", n_people=500)
    with pytest.raises(ValueError, match="n_people=10"):
        demo_company(con, n_people=10)


def test_reporting_currency_eur() -> None:
    tables, truth = generate(np.random.default_rng(3), n_people=1_000, reporting_currency="EUR")
    fx = tables["fx_rates"].to_pandas()
    assert (fx.loc[fx.currency == "EUR", "rate_to_reporting"] == 1.0).all()
    assert (fx.loc[fx.currency == "USD", "rate_to_reporting"] < 1.0).all()
    assert truth.params["settings"]["reporting_currency"] == "EUR"


# --- scale ---------------------------------------------------------------------------------------


def test_two_hundred_thousand_people(demo: DemoCompany) -> None:
    con = revloop.connect()
    big = demo_company(con, seed=7, n_people=200_000)
    counts = {name: int(t.count().execute()) for name, t in big.tables().items()}
    small = {name: int(t.count().execute()) for name, t in demo.tables().items()}
    for name in ("events", "leads", "activities", "opportunities"):
        assert 8 <= counts[name] / small[name] <= 12, name
    report = revloop.schema.validate(big.events, "events", now=AFTER_END)
    assert report.ok, str(report)
    ids = pc.count_distinct(big.truth.sessions.column("session_id")).as_py()
    assert ids == big.truth.sessions.num_rows
