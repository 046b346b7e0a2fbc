"""Source / medium / campaign of a web event from its UTM tags, click id and referrer.

The order of evidence (first that applies wins):

1. **UTM tags**: ``utm_source`` or ``utm_medium`` present. A missing one becomes
   ``"(not set)"``, as GA4 reports it.
2. **Paid click ids** in the landing ``url``'s query string (auto-tagging):
   ``gclid`` / ``gbraid`` / ``wbraid`` -> ``google / cpc``; ``dclid`` ->
   ``dv360 / display`` (Display & Video 360 / Campaign Manager 360);
   ``msclkid`` -> ``bing / cpc``; ``li_fat_id`` -> ``linkedin / cpc`` (LinkedIn
   appends ``li_fat_id`` to ad clicks only, when the advertiser enables it, so it
   does imply a paid click).
3. **Referrer**: its host (scheme, user info, port, path dropped; ``www.``
   dropped; lower-cased). Empty, one of ``internal_domains`` (or a subdomain), or
   the page's own host -> no evidence (self-referral). A known search engine ->
   ``<engine> / organic`` (``google``, ``bing``...). Anything else ->
   ``<host> / referral``: the channel rules then make known social hosts
   (``linkedin.com``, ``t.co``, ``l.facebook.com``...) Organic Social, video hosts
   Organic Video, and the rest Referral.
4. **Weak click ids**: ``fbclid`` alone -> ``facebook.com / referral`` (Facebook
   adds ``fbclid`` to organic and paid outbound links alike, so it does *not*
   imply a paid click; GA4 ignores it and reports such a visit as direct).
5. Otherwise ``(direct) / (none)``.

``campaign`` is ``utm_campaign`` when present, else GA4's placeholders:
``(direct)``, ``(organic)``, ``(referral)`` or ``(not set)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import ibis
import ibis.expr.types as ir

from revloop.exceptions import ConfigError
from revloop.touchpoints._checks import column_or_null, require_columns

__all__ = [
    "CLICK_ID_SOURCES",
    "SEARCH_ENGINES",
    "WEAK_CLICK_ID_SOURCES",
    "derive_source_medium",
    "referrer_host",
]

#: Search engine -> regex on the referrer host (lower-cased, ``www.`` dropped).
SEARCH_ENGINES: Mapping[str, str] = {
    "google": r"^google\.[a-z]{2,3}(\.[a-z]{2})?$",
    "bing": r"^([a-z]{2}\.)?bing\.com$",
    "yahoo": r"^([a-z]+\.)?search\.yahoo\.(com|co\.jp)$",
    "duckduckgo": r"^duckduckgo\.com$",
    "baidu": r"^(m\.)?baidu\.com$",
    "yandex": r"^yandex\.(ru|com|com\.tr|by|kz|ua|uz|fr)$",
    "ecosia": r"^ecosia\.org$",
    "naver": r"^(m\.)?search\.naver\.com$",
    "qwant": r"^qwant\.com$",
    "seznam": r"^(search\.)?seznam\.cz$",
}

#: URL query parameter -> (source, medium) it implies, in priority order.
CLICK_ID_SOURCES: Mapping[str, tuple[str, str]] = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "dclid": ("dv360", "display"),
    "msclkid": ("bing", "cpc"),
    "li_fat_id": ("linkedin", "cpc"),
}

#: Click ids that show where a visit came from but not that it was paid; used
#: only when the referrer gives nothing.
WEAK_CLICK_ID_SOURCES: Mapping[str, tuple[str, str]] = {
    "fbclid": ("facebook.com", "referral"),
}

# scheme (optional), user info (optional), then the host up to / ? # or :port
_HOST = r"^(?:[a-z][a-z0-9+.\-]*://)?(?:[^/?#@]*@)?([^/?#:]+)"

_OPTIONAL = {
    "url": "string",
    "referrer": "string",
    "utm_source": "string",
    "utm_medium": "string",
    "utm_campaign": "string",
    "click_id": "string",
}


def _blank_to_null(col: ir.Value) -> ir.StringValue:
    return col.cast("string").strip().nullif("")


def referrer_host(url: ir.Value) -> ir.StringValue:
    """The host of a URL: lower-cased, without scheme, user info, port or ``www.``.

    Null for an empty or null URL. A value without a scheme is read as starting
    with the host (``"google.com/search"`` -> ``"google.com"``).

    Examples
    --------
    >>> import revloop
    >>> t = ibis.memtable({"r": ["https://www.Google.co.uk/search?q=x", "http://u:p@lnkd.in:443/a",
    ...                          "t.co/abc", "", None]})
    >>> revloop.engine.to_pandas(t.select(h=referrer_host(t.r)))["h"].tolist()
    ['google.co.uk', 'lnkd.in', 't.co', None, None]
    """
    text = _blank_to_null(url).lower()
    host = text.re_extract(_HOST, 1).re_replace(r"^www\.", "")
    return host.nullif("")


def _url_has_param(url: ir.StringValue, name: str) -> ir.BooleanValue:
    return url.re_search(rf"[?&#]{name}=[^&#]").fill_null(False)


def _domain_match(host: ir.StringValue, domains: Iterable[str]) -> ir.BooleanValue:
    out: ir.BooleanValue = ibis.literal(False)
    for d in domains:
        out = out | (host == d) | host.endswith("." + d)
    return out.fill_null(False)


def _clean_domains(internal_domains: Iterable[str]) -> list[str]:
    if isinstance(internal_domains, str):
        raise ConfigError(
            f"internal_domains must be a list of domains, got the string {internal_domains!r}. "
            f"Pass internal_domains=[{internal_domains!r}]."
        )
    out = []
    for d in internal_domains:
        clean = str(d).strip().lower().removeprefix("www.").strip(".")
        if not clean or "/" in clean:
            raise ConfigError(
                f"internal_domains has {d!r}; expected a bare domain such as 'acme.com'."
            )
        out.append(clean)
    return out


def derive_source_medium(
    events: ir.Table,
    *,
    internal_domains: Iterable[str] = (),
    search_engines: Mapping[str, str] = SEARCH_ENGINES,
    click_ids: Mapping[str, tuple[str, str]] = CLICK_ID_SOURCES,
    weak_click_ids: Mapping[str, tuple[str, str]] = WEAK_CLICK_ID_SOURCES,
) -> ir.Table:
    """Add ``source``, ``medium`` and ``campaign`` to each web event.

    Input: ``events`` with any of ``url``, ``referrer``, ``utm_source``,
    ``utm_medium``, ``utm_campaign`` (absent ones count as null). Output: the same
    rows and columns plus ``source``, ``medium``, ``campaign`` (strings, never
    null; existing columns of those names are replaced). The rules are in this
    module's docstring; UTM values keep their case (blanks trimmed).

    Parameters
    ----------
    events
        Web events (canonical ``events`` columns).
    internal_domains
        Your own domains: referrers from them (or their subdomains) are
        self-referrals and count as no referrer.
    search_engines
        Engine name -> regex on the referrer host; a match gives
        ``<engine> / organic``.
    click_ids, weak_click_ids
        URL parameter -> (source, medium), see the module docstring.

    Examples
    --------
    >>> import revloop
    >>> ev = ibis.memtable({
    ...     "url": ["https://acme.com/?utm_source=LinkedIn&utm_medium=paid_social",
    ...             "https://acme.com/?gclid=abc", "https://acme.com/pricing",
    ...             "https://acme.com/blog", "https://acme.com/"],
    ...     "referrer": [None, "https://www.google.com/", "https://www.bing.com/search?q=acme",
    ...                  "https://app.acme.com/settings", None],
    ...     "utm_source": ["LinkedIn", None, None, None, None],
    ...     "utm_medium": ["paid_social", None, None, None, None],
    ... })
    >>> out = revloop.engine.to_pandas(derive_source_medium(ev, internal_domains=["acme.com"]))
    >>> list(zip(out.source, out.medium))  # doctest: +NORMALIZE_WHITESPACE
    [('LinkedIn', 'paid_social'), ('google', 'cpc'), ('bing', 'organic'),
     ('(direct)', '(none)'), ('(direct)', '(none)')]
    """
    t = events
    require_columns(
        t,
        "events",
        {k: v for k, v in _OPTIONAL.items() if k in t.columns},
        purpose="derive_source_medium",
    )
    domains = _clean_domains(internal_domains)

    # stage the parsed values as columns so the CASE below refers to them by name
    # (inlining the referrer parsing into every branch would bloat the SQL)
    url = _blank_to_null(column_or_null(t, "url")).lower()
    host = referrer_host(column_or_null(t, "referrer"))
    page_host = referrer_host(column_or_null(t, "url"))
    t = t.mutate(
        _rl_utm_source=_blank_to_null(column_or_null(t, "utm_source")),
        _rl_utm_medium=_blank_to_null(column_or_null(t, "utm_medium")),
        _rl_utm_campaign=_blank_to_null(column_or_null(t, "utm_campaign")),
        _rl_url=url,
        _rl_host=host,
        _rl_page_host=page_host,
    )
    self_ref = _domain_match(t._rl_host, domains) | (t._rl_host == t._rl_page_host).fill_null(False)
    t = t.mutate(_rl_ref=ibis.cases((self_ref, ibis.null("string")), else_=t._rl_host))
    utm_source, utm_medium, utm_campaign = t._rl_utm_source, t._rl_utm_medium, t._rl_utm_campaign
    url, ref_host = t._rl_url, t._rl_ref
    has_utm = utm_source.notnull() | utm_medium.notnull()

    # (condition, source, medium, default campaign), in priority order
    branches: list[tuple[ir.BooleanValue, ir.Value, ir.Value, str]] = [
        (
            has_utm,
            utm_source.fill_null("(not set)"),
            utm_medium.fill_null("(not set)"),
            "(not set)",
        )
    ]
    for param, (src, med) in click_ids.items():
        branches.append(
            (_url_has_param(url, param), ibis.literal(src), ibis.literal(med), "(not set)")
        )
    for engine, pattern in search_engines.items():
        branches.append(
            (
                ref_host.re_search(pattern).fill_null(False),
                ibis.literal(engine),
                ibis.literal("organic"),
                "(organic)",
            )
        )
    branches.append((ref_host.notnull(), ref_host, ibis.literal("referral"), "(referral)"))
    for param, (src, med) in weak_click_ids.items():
        branches.append(
            (_url_has_param(url, param), ibis.literal(src), ibis.literal(med), "(referral)")
        )

    source = ibis.cases(*[(c, s) for c, s, _, _ in branches], else_=ibis.literal("(direct)"))
    medium = ibis.cases(*[(c, m) for c, _, m, _ in branches], else_=ibis.literal("(none)"))
    default_campaign = ibis.cases(
        *[(c, ibis.literal(k)) for c, _, _, k in branches], else_=ibis.literal("(direct)")
    )
    campaign = ibis.coalesce(utm_campaign, default_campaign)
    out = t.mutate(source=source, medium=medium, campaign=campaign)
    return out.select(*[c for c in out.columns if not c.startswith("_rl_")])
