"""Web events + identities -> canonical touchpoints (one per session)."""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.types as ir

from revloop.touchpoints._channels import classify_channel
from revloop.touchpoints._checks import require_columns
from revloop.touchpoints._rules import GA4_RULES, RuleSet
from revloop.touchpoints._sessions import marketing_key, sessionize
from revloop.touchpoints._sources import derive_source_medium

__all__ = ["from_events", "resolve_identities"]

_ID_COLUMNS = {"anonymous_id": "string", "person_id": "string", "linked_at": "timestamp"}


def resolve_identities(identities: ir.Table) -> ir.Table:
    """One person per anonymous id: the earliest link wins (ties by ``person_id``).

    :func:`revloop.identity.stitch` already returns one person per anonymous id;
    this guards against identities built elsewhere (which could otherwise
    duplicate touchpoints). Output columns: ``anonymous_id``, ``person_id``.
    """
    require_columns(identities, "identities", _ID_COLUMNS, purpose="from_events")
    ids = identities.filter(
        identities.anonymous_id.notnull(), identities.person_id.notnull()
    ).select("anonymous_id", "person_id", "linked_at")
    w = ibis.window(group_by=ids.anonymous_id, order_by=[ids.linked_at, ids.person_id])
    ids = ids.mutate(_rl_rank=ibis.row_number().over(w))
    return ids.filter(ids._rl_rank == 0).select(
        anonymous_id=ids.anonymous_id.cast("string"), person_id=ids.person_id.cast("string")
    )


def from_events(
    events: ir.Table,
    identities: ir.Table | None = None,
    *,
    rules: RuleSet = GA4_RULES,
    timeout_minutes: float = 30,
    internal_domains: Iterable[str] = (),
    split_on_campaign_change: bool = True,
    respect_session_id: bool = False,
    intrasession: bool = False,
    anonymous_prefix: str = "anon:",
) -> ir.Table:
    """Canonical ``touchpoints`` from web events: one per session, at its first event.

    Each event gets a source / medium / campaign (:func:`derive_source_medium`);
    events are grouped into sessions (:func:`sessionize`); the first event of each
    session is its touchpoint, classified with ``rules`` (GA4's "session default
    channel group": the session keeps the traffic source it started with). Direct
    sessions stay Direct: GA4's reports replace them with the last non-direct
    source, which is an attribution choice left to the attribution models.

    The person is the one the visitor's ``anonymous_id`` is stitched to, for
    *every* session of that anonymous id, before and after the link was made
    (retroactive stitching: the pre-form-fill visits are credited to the lead).
    Visitors never stitched keep ``anonymous_prefix + anonymous_id`` so that
    non-converting paths stay in the data (data-driven models need them).

    Input: canonical ``events`` (``event_id``, ``anonymous_id``, ``occurred_at``;
    ``url``, ``referrer``, ``utm_*``, ``click_id``, ``session_id`` optional) and
    canonical ``identities`` (``anonymous_id``, ``person_id``, ``linked_at``).
    Output columns: ``touchpoint_id`` (``"web:" + event_id`` of the touch event),
    ``person_id``, ``occurred_at``, ``channel``, ``source``, ``medium``,
    ``campaign``, ``kind`` (``"session"``), ``session_id``.

    Parameters
    ----------
    events, identities
        Web events; identities from :func:`revloop.identity.stitch` (or ``None``:
        everyone stays anonymous). Several people linked to one anonymous id are
        resolved with :func:`resolve_identities` (earliest link wins).
    rules
        Channel rule set (:data:`GA4_RULES`, :data:`VELIR_RULES`,
        :data:`SNOWPLOW_RULES` or your own).
    timeout_minutes, split_on_campaign_change, respect_session_id
        Passed to :func:`sessionize`.
    internal_domains
        Passed to :func:`derive_source_medium` (self-referrals).
    intrasession
        Also make a touchpoint of every later event in a session whose marketing
        parameters differ from the last ones seen in it (Snowplow's
        ``consider_intrasession_channels``; Snowplow counts each page view with a
        marketing medium, repeats included, where revloop skips an unchanged
        repeat such as a reload of the landing page). Only matters with
        ``split_on_campaign_change=False``, since otherwise such an event starts a
        new session.
    anonymous_prefix
        Prefix of the person id of a visitor never stitched.

    Examples
    --------
    >>> import revloop, datetime as dt
    >>> t0 = dt.datetime(2024, 5, 1, 9, 0)
    >>> ev = ibis.memtable({
    ...     "event_id": ["e1", "e2", "e3"], "anonymous_id": ["a1", "a1", "a2"],
    ...     "occurred_at": [t0, t0 + dt.timedelta(days=1), t0],
    ...     "url": ["https://acme.com/?gclid=x", "https://acme.com/", "https://acme.com/"],
    ...     "referrer": [None, "https://www.linkedin.com/feed/", None],
    ... })
    >>> ids = ibis.memtable({"anonymous_id": ["a1"], "person_id": ["p1"],
    ...                      "linked_at": [t0 + dt.timedelta(days=2)], "method": ["email"]})
    >>> tp = revloop.engine.to_pandas(from_events(ev, ids).order_by("touchpoint_id"))
    >>> tp[["touchpoint_id", "person_id", "channel", "source", "medium"]].values.tolist()
    [['web:e1', 'p1', 'Paid Search', 'google', 'cpc'], ['web:e2', 'p1', 'Organic Social', 'linkedin.com', 'referral'], ['web:e3', 'anon:a2', 'Direct', '(direct)', '(none)']]
    """
    sessions = sessionize(
        derive_source_medium(events, internal_domains=internal_domains),
        timeout_minutes=timeout_minutes,
        split_on_campaign_change=split_on_campaign_change,
        respect_session_id=respect_session_id,
    )
    order = [sessions.occurred_at, sessions.event_id]
    in_session = ibis.window(group_by=[sessions.anonymous_id, sessions.session_id], order_by=order)
    touch = ibis.row_number().over(in_session) == 0
    if intrasession:
        has, key = marketing_key(sessions)
        s = sessions.mutate(_rl_first=touch, _rl_has=has, _rl_key=key)
        by_kind = ibis.window(
            group_by=[s.anonymous_id, s.session_id, s._rl_has], order_by=[s.occurred_at, s.event_id]
        )
        prev_key = s._rl_key.lag().over(by_kind)
        new_params = s._rl_has & (prev_key.isnull() | (prev_key != s._rl_key))
        s = s.mutate(_rl_touch=s._rl_first | new_params.fill_null(False))
    else:
        s = sessions.mutate(_rl_touch=touch)
    s = s.filter(s._rl_touch)
    s = s.select(
        event_id=s.event_id.cast("string"),
        anonymous_id=s.anonymous_id.cast("string"),
        occurred_at=s.occurred_at,
        session_id=s.session_id,
        source=s.source,
        medium=s.medium,
        campaign=s.campaign,
    )
    s = classify_channel(s, rules)

    if identities is None:
        person = anonymous_prefix + s.anonymous_id
        joined = s.mutate(person_id=person)
    else:
        ids = resolve_identities(identities)
        joined = s.left_join(ids, "anonymous_id", rname="_rl_{name}")
        joined = joined.mutate(
            person_id=ibis.coalesce(joined.person_id, anonymous_prefix + joined.anonymous_id)
        )
    return joined.select(
        touchpoint_id="web:" + joined.event_id,
        person_id=joined.person_id,
        occurred_at=joined.occurred_at,
        channel=joined.channel,
        source=joined.source,
        medium=joined.medium,
        campaign=joined.campaign,
        kind=ibis.literal("session"),
        session_id=joined.session_id,
    )
