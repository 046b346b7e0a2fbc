"""Referrer parsing, click ids and UTM precedence (source / medium derivation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import pytest

import revloop
from revloop.exceptions import ConfigError
from revloop.touchpoints import classify_channel, derive_source_medium, referrer_host

Events = Callable[[list[dict[str, Any]]], ir.Table]


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.google.com/search?q=crm", "google.com"),
        ("HTTP://WWW.LinkedIn.com/feed/", "linkedin.com"),
        ("https://user:secret@lnkd.in:8443/abc", "lnkd.in"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Facme.com", "l.facebook.com"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("t.co/xyz", "t.co"),
        ("https://news.ycombinator.com#item", "news.ycombinator.com"),
        ("   ", None),
        ("", None),
        (None, None),
    ],
)
def test_referrer_host(referrer: str | None, host: str | None) -> None:
    t = ibis.memtable({"r": [referrer]}, schema={"r": "string"})
    got = revloop.engine.to_pandas(t.select(h=referrer_host(t.r)))["h"].iloc[0]
    assert (None if got is None or got != got else got) == host


# (url, referrer, utm_source, utm_medium, utm_campaign) -> (source, medium, campaign, GA4 channel)
CASES: list[tuple[str, tuple[Any, ...], tuple[str, str, str, str]]] = [
    # --- referrers
    (
        "google search",
        ("https://acme.com/", "https://www.google.co.uk/", None, None, None),
        ("google", "organic", "(organic)", "Organic Search"),
    ),
    (
        "bing search",
        ("https://acme.com/", "https://www.bing.com/search?q=acme", None, None, None),
        ("bing", "organic", "(organic)", "Organic Search"),
    ),
    (
        "duckduckgo",
        ("https://acme.com/", "https://duckduckgo.com/", None, None, None),
        ("duckduckgo", "organic", "(organic)", "Organic Search"),
    ),
    (
        "linkedin feed",
        ("https://acme.com/", "https://www.linkedin.com/feed/", None, None, None),
        ("linkedin.com", "referral", "(referral)", "Organic Social"),
    ),
    (
        "t.co",
        ("https://acme.com/", "https://t.co/abc", None, None, None),
        ("t.co", "referral", "(referral)", "Organic Social"),
    ),
    (
        "youtube",
        ("https://acme.com/", "https://www.youtube.com/watch?v=1", None, None, None),
        ("youtube.com", "referral", "(referral)", "Organic Video"),
    ),
    (
        "other site",
        ("https://acme.com/", "https://www.g2.com/products/acme", None, None, None),
        ("g2.com", "referral", "(referral)", "Referral"),
    ),
    (
        "internal subdomain",
        ("https://acme.com/", "https://app.acme.com/settings", None, None, None),
        ("(direct)", "(none)", "(direct)", "Direct"),
    ),
    (
        "lookalike is not internal",
        ("https://acme.com/", "https://notacme.com/", None, None, None),
        ("notacme.com", "referral", "(referral)", "Referral"),
    ),
    (
        "same host as page",
        ("https://docs.example.org/a", "https://docs.example.org/b", None, None, None),
        ("(direct)", "(none)", "(direct)", "Direct"),
    ),
    (
        "no referrer",
        ("https://acme.com/", None, None, None, None),
        ("(direct)", "(none)", "(direct)", "Direct"),
    ),
    ("no url either", (None, None, None, None, None), ("(direct)", "(none)", "(direct)", "Direct")),
    # --- UTM tags win over everything
    (
        "utm beats referrer",
        (
            "https://acme.com/?utm_source=newsletter",
            "https://www.google.com/",
            "newsletter",
            "email",
            "may-digest",
        ),
        ("newsletter", "email", "may-digest", "Email"),
    ),
    (
        "utm beats gclid",
        ("https://acme.com/?gclid=abc", None, "capterra", "cpc", None),
        ("capterra", "cpc", "(not set)", "Paid Other"),
    ),
    (
        "utm source only",
        ("https://acme.com/", None, "partner", None, None),
        ("partner", "(not set)", "(not set)", "Unassigned"),
    ),
    (
        "blank utm is absent",
        ("https://acme.com/", "https://www.bing.com/", " ", "", None),
        ("bing", "organic", "(organic)", "Organic Search"),
    ),
    (
        "utm case kept",
        ("https://acme.com/", None, "LinkedIn", "Paid_Social", "Q2"),
        ("LinkedIn", "Paid_Social", "Q2", "Paid Social"),
    ),
    # --- click ids (auto-tagging) beat the referrer
    (
        "gclid",
        ("https://acme.com/?gclid=Cj0K", "https://www.google.com/", None, None, None),
        ("google", "cpc", "(not set)", "Paid Search"),
    ),
    (
        "gbraid",
        ("https://acme.com/?x=1&gbraid=0AAA", None, None, None, None),
        ("google", "cpc", "(not set)", "Paid Search"),
    ),
    (
        "wbraid",
        ("https://acme.com/?wbraid=CL", None, None, None, None),
        ("google", "cpc", "(not set)", "Paid Search"),
    ),
    (
        "gclid keeps utm campaign",
        ("https://acme.com/?gclid=Cj0K", None, None, None, "brand-exact"),
        ("google", "cpc", "brand-exact", "Paid Search"),
    ),
    (
        "msclkid",
        ("https://acme.com/?msclkid=9f", "https://www.bing.com/", None, None, None),
        ("bing", "cpc", "(not set)", "Paid Search"),
    ),
    (
        "dclid",
        ("https://acme.com/?dclid=CJ", None, None, None, None),
        ("dv360", "display", "(not set)", "Display"),
    ),
    (
        "li_fat_id",
        ("https://acme.com/?li_fat_id=7c1", "https://www.linkedin.com/", None, None, None),
        ("linkedin", "cpc", "(not set)", "Paid Social"),
    ),
    (
        "parameter name must match exactly",
        ("https://acme.com/?notgclid=1", None, None, None, None),
        ("(direct)", "(none)", "(direct)", "Direct"),
    ),
    # --- fbclid alone is not paid
    (
        "fbclid without referrer",
        ("https://acme.com/?fbclid=IwAR", None, None, None, None),
        ("facebook.com", "referral", "(referral)", "Organic Social"),
    ),
    (
        "fbclid with referrer",
        ("https://acme.com/?fbclid=IwAR", "https://l.facebook.com/", None, None, None),
        ("l.facebook.com", "referral", "(referral)", "Organic Social"),
    ),
    (
        "fbclid with utm",
        ("https://acme.com/?fbclid=IwAR", None, "facebook", "paid_social", "q2"),
        ("facebook", "paid_social", "q2", "Paid Social"),
    ),
]


def test_derive_source_medium_cases(events: Events) -> None:
    rows = [
        {
            "event_id": f"e{i:02d}",
            "m": i,
            "url": url,
            "referrer": ref,
            "utm_source": us,
            "utm_medium": um,
            "utm_campaign": uc,
        }
        for i, (_, (url, ref, us, um, uc), _) in enumerate(CASES)
    ]
    t = derive_source_medium(events(rows), internal_domains=["www.acme.com"])
    out = revloop.engine.to_pandas(classify_channel(t).order_by("event_id"))
    got = list(zip(out.source, out.medium, out.campaign, out.channel, strict=True))
    wrong = [
        f"{name}: expected {want}, got {g}"
        for (name, _, want), g in zip(CASES, got, strict=True)
        if tuple(g) != want
    ]
    assert not wrong, "\n".join(wrong)


def test_derive_adds_three_columns_only(events: Events) -> None:
    t = events([{"m": 0}])
    out = derive_source_medium(t)
    assert list(out.columns) == [*t.columns, "source", "medium", "campaign"]


def test_derive_works_without_optional_columns() -> None:
    t = ibis.memtable({"referrer": ["https://www.google.com/"]})
    out = revloop.engine.to_pandas(derive_source_medium(t))
    assert (out.source[0], out.medium[0]) == ("google", "organic")


@pytest.mark.parametrize("bad", ["acme.com", ["https://acme.com/path"], [""]])
def test_bad_internal_domains(events: Events, bad: Any) -> None:
    with pytest.raises(ConfigError, match="internal_domains"):
        derive_source_medium(events([{"m": 0}]), internal_domains=bad)
