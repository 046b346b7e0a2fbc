"""The generating parameters of the demo company, in one place.

Every number that shapes the synthetic data lives here, so that
:class:`~revloop.synthetic.GroundTruth` can hand all of them back (``to_dict()``)
and a model can be scored against the truth it should recover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANNELS",
    "CHANNEL_PARAMS",
    "LEAD_TO_OPP",
    "PAGES",
    "PEOPLE",
    "SEGMENTS",
    "SPEED_TO_LEAD",
    "STAGES",
    "SUBSCRIPTIONS",
    "WEB",
    "WIN",
    "ChannelParams",
    "Variant",
    "all_params",
]

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
STAGES = ("Discovery", "Demo", "Proposal", "Negotiation")
SITE = "https://www.acme-revops.com"


@dataclass(frozen=True)
class Variant:
    """One way a session of a channel arrives: its referrer and UTM tags."""

    weight: float
    referrer: str | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    click: str | None = None  # gclid, msclkid, li_fat_id, fbclid
    landing: tuple[str, ...] = ("/",)


@dataclass(frozen=True)
class ChannelParams:
    """A true channel: how often it brings a session, and its true lift.

    ``first``, ``repeat`` and ``post_lead`` are the relative weights of the channel
    among a person's first session, later sessions before the lead, and sessions
    after the lead. ``lift`` is the channel's term in the noisy-OR conversion
    hazard (see the module docstring of :mod:`revloop.synthetic`).
    """

    name: str
    first: float
    repeat: float
    post_lead: float
    lift: float
    cost_per_click: float | None
    variants: tuple[Variant, ...]


_BLOG = (
    "/blog/multi-touch-attribution-explained",
    "/blog/speed-to-lead-benchmarks",
    "/blog/pipeline-coverage",
    "/",
)
_PRODUCT = ("/", "/product/attribution", "/product/forecasting", "/pricing")
_BRAND = ("/", "/pricing", "/demo")

CHANNEL_PARAMS: tuple[ChannelParams, ...] = (
    ChannelParams("Organic Search", 0.25, 0.13, 0.08, 0.030, None, (
        Variant(0.78, referrer="https://www.google.com/", landing=_BLOG + _PRODUCT),
        Variant(0.12, referrer="https://www.bing.com/", landing=_BLOG + _PRODUCT),
        Variant(0.06, referrer="https://duckduckgo.com/", landing=_BLOG),
        Variant(0.04, referrer="https://search.yahoo.com/", landing=_BLOG),
    )),
    ChannelParams("Paid Search", 0.15, 0.12, 0.07, 0.045, 24.0, (
        Variant(0.34, "https://www.google.com/", "google", "cpc", "brand_search", "acme revops", "gclid", _BRAND),
        Variant(0.30, "https://www.google.com/", "google", "cpc", "nonbrand_crm_software", "crm attribution software", "gclid", ("/product/attribution", "/lp/attribution-software")),
        Variant(0.16, "https://www.google.com/", "google", "cpc", "nonbrand_revenue_attribution", "b2b revenue attribution", "gclid", ("/lp/revenue-attribution",)),
        Variant(0.10, "https://www.google.com/", "google", "cpc", "competitor_hubspot", "hubspot attribution alternative", "gclid", ("/compare/hubspot",)),
        Variant(0.10, "https://www.bing.com/", "bing", "cpc", "brand_search", "acme revops", "msclkid", _BRAND),
    )),
    ChannelParams("Paid Social", 0.09, 0.05, 0.03, 0.020, 14.0, (
        Variant(0.45, "https://www.linkedin.com/", "linkedin", "paid_social", "abm_enterprise", None, "li_fat_id", ("/lp/enterprise-attribution",)),
        Variant(0.30, "https://www.linkedin.com/", "linkedin", "paid_social", "lead_gen_attribution_guide", None, "li_fat_id", ("/resources/attribution-guide",)),
        Variant(0.25, "https://l.facebook.com/", "facebook", "paid_social", "retargeting_site_visitors", None, "fbclid", ("/pricing", "/demo")),
    )),
    ChannelParams("Organic Social", 0.07, 0.04, 0.03, 0.015, None, (
        Variant(0.55, referrer="https://www.linkedin.com/", landing=_BLOG),
        Variant(0.20, referrer="https://t.co/", landing=_BLOG),
        Variant(0.15, referrer="https://www.reddit.com/", landing=_BLOG),
        Variant(0.10, referrer="https://www.facebook.com/", landing=_BLOG),
    )),
    ChannelParams("Email", 0.01, 0.08, 0.24, 0.040, None, (
        Variant(0.50, None, "newsletter", "email", "monthly_newsletter", None, None, _BLOG),
        Variant(0.25, None, "newsletter", "email", "product_update", None, None, ("/product/forecasting", "/changelog")),
        Variant(0.25, None, "newsletter", "email", "webinar_invite", None, None, ("/webinars/pipeline-forecasting",)),
    )),
    ChannelParams("Referral", 0.07, 0.05, 0.04, 0.060, None, (
        Variant(0.35, referrer="https://www.g2.com/products/acme-revops/reviews", landing=_PRODUCT),
        Variant(0.25, referrer="https://www.capterra.com/p/241234/acme-revops/", landing=_PRODUCT),
        Variant(0.20, referrer="https://blog.pipelineconsulting.io/best-attribution-tools", landing=_PRODUCT),
        Variant(0.10, referrer="https://revopscoop.com/tools", landing=("/",)),
        Variant(0.10, referrer="https://www.producthunt.com/products/acme-revops", landing=("/",)),
    )),
    ChannelParams("Direct", 0.13, 0.36, 0.40, 0.035, None, (
        Variant(0.84, landing=("/", "/pricing", "/login", "/demo")),
        # self-referrals (the product app and the site itself): still Direct
        Variant(0.10, referrer="https://app.acme-revops.com/", landing=("/", "/pricing", "/changelog")),
        Variant(0.06, referrer="https://www.acme-revops.com/", landing=("/pricing",)),
    )),
    ChannelParams("Display", 0.06, 0.03, 0.01, 0.006, 6.0, (
        Variant(0.60, None, "google", "display", "retargeting_display", None, None, ("/pricing", "/")),
        Variant(0.40, None, "stackadapt", "display", "abm_display_enterprise", None, None, ("/lp/enterprise-attribution",)),
    )),
    ChannelParams("Paid Video", 0.03, 0.015, 0.005, 0.008, 3.0, (
        Variant(1.00, "https://www.youtube.com/", "youtube", "cpv", "brand_video_awareness", None, None, ("/",)),
    )),
    ChannelParams("Affiliates", 0.03, 0.02, 0.01, 0.025, None, (
        Variant(0.60, None, "partnerstack", "affiliate", "partner_program", None, None, ("/", "/pricing")),
        Variant(0.40, "https://www.saasworthy.com/", "saasworthy", "affiliate", "listing", None, None, ("/",)),
    )),
    ChannelParams("Organic Video", 0.03, 0.02, 0.02, 0.012, None, (
        Variant(0.60, referrer="https://www.youtube.com/", landing=_BLOG),
        Variant(0.25, referrer="https://m.youtube.com/", landing=_BLOG),
        Variant(0.15, referrer="https://vimeo.com/", landing=("/",)),
    )),
    ChannelParams("Cross-network", 0.04, 0.03, 0.02, 0.020, 12.0, (
        Variant(0.70, "https://www.google.com/", "google", "cpc", "pmax_cross-network_demand", None, "gclid", ("/", "/pricing")),
        Variant(0.30, "https://www.youtube.com/", "google", "cpc", "demand_gen_cross-network", None, "gclid", ("/",)),
    )),
    ChannelParams("Unassigned", 0.02, 0.02, 0.02, 0.030, None, (
        Variant(0.40, None, "partner_x", "webinar", "q3_partner_webinar", None, None, ("/webinars/pipeline-forecasting",)),
        Variant(0.30, None, "qr_code", "print", "event_booth", None, None, ("/demo",)),
        Variant(0.30, None, "saastr", "booth", "saastr_annual", None, None, ("/",)),
    )),
)  # fmt: skip

CHANNELS = tuple(c.name for c in CHANNEL_PARAMS)

#: Pages a session wanders through after landing, with their weights.
PAGES: tuple[tuple[str, float], ...] = (
    ("/", 0.12), ("/pricing", 0.14), ("/product/attribution", 0.12), ("/product/forecasting", 0.09),
    ("/customers", 0.08), ("/integrations/salesforce", 0.06), ("/integrations/hubspot", 0.06),
    ("/blog/multi-touch-attribution-explained", 0.06), ("/blog/speed-to-lead-benchmarks", 0.05),
    ("/blog/pipeline-coverage", 0.04), ("/docs/getting-started", 0.05), ("/about", 0.03),
    ("/security", 0.03), ("/demo", 0.04), ("/changelog", 0.03),
)  # fmt: skip

PEOPLE: dict[str, Any] = {
    "kind_shares": {"web": 0.963, "outbound": 0.025, "partner": 0.012},
    "people_per_account": 6.0,
    "segment_shares": {"SMB": 0.62, "Mid-Market": 0.28, "Enterprise": 0.10},
    "account_size_sigma": 1.2,
    "enterprise_account_size_multiplier": 3.0,
    "outbound_segment_tilt": {"SMB": 0.5, "Mid-Market": 1.5, "Enterprise": 3.0},
    "second_device_share": 0.30,
    "monthly_growth": 0.03,
    "weekend_arrival_factor": 0.45,
}

WEB: dict[str, Any] = {
    "sessions_geometric_p": 0.33,
    "max_sessions": 30,
    "gap_days_lognormal": {"median": 5.0, "sigma": 1.2},
    "min_gap_minutes": 45,
    "pageviews_geometric_p": 0.42,
    "max_pageviews": 15,
    "pageview_gap_seconds_mean": 70.0,
    "pageview_gap_seconds_max": 1500.0,
    "custom_event_share": 0.15,
    "second_device_session_share": 0.45,
    # conversion hazard of a session k of person i:
    #   h_ik = min(cap, intent_i * (1 - (1 - baseline) * prod_{j<=k} (1 - lift_cj * m_j * exp(-(t_k - t_j) / tau))))
    # m_j = first_touch_multiplier for the person's first session, 1 otherwise
    "baseline_lift": 0.010,
    "first_touch_multiplier": 1.5,
    "carryover_days": 21.0,
    "hazard_cap": 0.9,
    "intent_lognormal": {"median": 0.34, "sigma": 1.0},
    "intent_segment_multiplier": {"SMB": 1.0, "Mid-Market": 0.9, "Enterprise": 0.75},
    "identify_other_device": 0.7,
    "identify_email_session": 0.5,
    "identify_other_session": 0.03,
    "unknown_lead_source_share": 0.08,
}

SPEED_TO_LEAD: dict[str, Any] = {
    "never_contacted": {"inbound": 0.16, "outbound": 0.04, "partner": 0.10},
    "business_hours_utc": [14, 22],  # 09:00-17:00 US Eastern (UTC-5), Mon-Fri
    "business_minutes_lognormal": {"median": 45.0, "sigma": 2.0},
    "outbound_minutes_lognormal": {"median": 20.0, "sigma": 1.2},
    "off_hours_responder_share": 0.12,
    "rep_speed_sigma": 0.7,
    # hazard ratio of lead->opportunity by first-response bucket (wall clock)
    "buckets_minutes": [5, 60, 1440],
    "bucket_labels": ["<=5m", "5-60m", "1-24h", ">24h", "never"],
    "hazard_ratio": {"<=5m": 2.2, "5-60m": 1.6, "1-24h": 1.0, ">24h": 0.55, "never": 0.25},
    "attempts_geometric_p": 0.3,
    "max_attempts": 8,
    "attempt_gap_days_lognormal": {"median": 1.5, "sigma": 1.0},
    "call_connect_rate": 0.18,
    "email_reply_rate": 0.07,
    "inbound_call_share": 0.03,
}

LEAD_TO_OPP: dict[str, Any] = {
    # piecewise-constant daily hazard over days since lead creation (proportional hazards)
    "age_knots_days": [0, 7, 30, 90, 180, 365],
    "base_daily_hazard": [0.0023, 0.0010, 0.0004, 0.00016, 0.00008],
    "log_hr_source": {"inbound": 0.0, "outbound": -0.9, "partner": 0.7},
    "log_hr_segment": {"SMB": 0.0, "Mid-Market": 0.1, "Enterprise": 0.2},
    "lead_quality_sigma": 0.8,
    "intent_exponent": 0.5,
    "min_delay_after_first_touch_hours": [1.0, 72.0],
}

WIN: dict[str, Any] = {
    # per stage: usual days in stage (x segment multiplier); the advance, lose and regress
    # hazards per usual time in stage (a daily hazard is this / (usual days x multiplier));
    # the probability to skip the next stage when advancing
    "usual_days": {"Discovery": 20.0, "Demo": 22.0, "Proposal": 32.0, "Negotiation": 26.0},
    "advance_per_usual_time": {"Discovery": 1.0, "Demo": 1.0, "Proposal": 1.0, "Negotiation": 1.0},
    "lose_per_usual_time": {"Discovery": 0.4, "Demo": 0.3, "Proposal": 0.25, "Negotiation": 0.2},
    "regress_per_usual_time": {
        "Discovery": 0.0,
        "Demo": 0.0,
        "Proposal": 0.08,
        "Negotiation": 0.08,
    },
    "skip_next_stage": {"Discovery": 0.10, "Demo": 0.06, "Proposal": 0.0, "Negotiation": 0.0},
    # beyond the usual time in stage the advance hazard decays as exp(-(age - usual) / (decay * usual))
    "decay_in_usual_times": 1.0,
    "segment_time_multiplier": {"SMB": 0.5, "Mid-Market": 1.0, "Enterprise": 1.8},
    "amount_median": {"SMB": 12_000.0, "Mid-Market": 42_000.0, "Enterprise": 140_000.0},
    "amount_sigma": 0.55,
    "currency_shares": {"USD": 0.75, "EUR": 0.15, "GBP": 0.10},
    "amount_change_share": 0.25,
    "negotiation_discount_share": 0.4,
    "close_date_optimism": [0.5, 1.0],
    "push_days_lognormal": {"median": 28.0, "sigma": 0.5},
    # the CRM's configured stage probabilities (not the true win rates): HubSpot's default
    # deal-stage probabilities 20/40/60/80 % in stage order (revops.md §3.2), as most teams
    # leave them; closed stages 100 % / 0 %
    "crm_probability": {
        "Discovery": 0.2,
        "Demo": 0.4,
        "Proposal": 0.6,
        "Negotiation": 0.8,
        "Closed Won": 1.0,
        "Closed Lost": 0.0,
    },
    "forecast_category": {
        "Discovery": {"Pipeline": 1.0},
        "Demo": {"Pipeline": 0.9, "Best Case": 0.1},
        "Proposal": {"Pipeline": 0.15, "Best Case": 0.65, "Commit": 0.2},
        "Negotiation": {"Best Case": 0.25, "Commit": 0.75},
    },
}

SUBSCRIPTIONS: dict[str, Any] = {
    "annual_share": {"SMB": 0.35, "Mid-Market": 0.7, "Enterprise": 0.9},
    "quarterly_share_of_monthly": 0.08,
    "seats_median": {"SMB": 8.0, "Mid-Market": 40.0, "Enterprise": 200.0},
    "seats_sigma": 0.5,
    "discount_share": 0.35,
    "discount_range": [0.05, 0.25],
    "start_delay_days": [0, 14],
    "churn_per_month": {"SMB": 0.030, "Mid-Market": 0.015, "Enterprise": 0.008},
    "churn_per_renewal": {"SMB": 0.20, "Mid-Market": 0.12, "Enterprise": 0.08},
    "expansion_per_month": 0.025,
    "expansion_per_renewal": 0.30,
    "contraction_per_month": 0.012,
    "contraction_per_renewal": 0.10,
    "price_uplift_at_renewal": {"share": 0.3, "factor": 1.05},
    "discount_expiry_at_first_renewal": 0.5,
    "addon": {
        "item_id": "addon_forecasting",
        "share_per_renewal": 0.12,
        "share_per_month": 0.01,
        "price_per_seat_month": 6.0,
    },
    "reactivation": {"share": 0.12, "delay_days": [60, 240]},
    "past_due_share": 0.02,
}


def all_params() -> dict[str, Any]:
    """Every generating parameter as plain JSON-serialisable data."""
    return {
        "channels": {
            c.name: {
                "first": c.first,
                "repeat": c.repeat,
                "post_lead": c.post_lead,
                "lift": c.lift,
                "cost_per_click": c.cost_per_click,
                "variants": [
                    {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(var).items()}
                    for var in c.variants
                ],
            }
            for c in CHANNEL_PARAMS
        },
        "people": PEOPLE,
        "web": WEB,
        "speed_to_lead": SPEED_TO_LEAD,
        "lead_to_opportunity": LEAD_TO_OPP,
        "win": WIN,
        "subscriptions": SUBSCRIPTIONS,
        "stages": list(STAGES),
        "segments": list(SEGMENTS),
    }
