"""Rebuild web sessions from events with window functions (compute layer)."""

from __future__ import annotations

import math

import ibis
import ibis.expr.types as ir

from revloop.exceptions import ConfigError
from revloop.touchpoints._checks import column_or_null, require_columns

__all__ = ["marketing_key", "sessionize"]

#: The event columns whose values make up an arrival's "marketing parameters".
MARKETING_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "click_id")

_REQUIRED = {"event_id": "string", "anonymous_id": "string", "occurred_at": "timestamp"}
_OPTIONAL = dict.fromkeys((*MARKETING_COLUMNS, "session_id"), "string")


def marketing_key(events: ir.Table) -> tuple[ir.BooleanValue, ir.StringValue]:
    """Whether each event carries marketing parameters, and a key comparing them.

    The key joins trimmed, lower-cased ``utm_source``, ``utm_medium``,
    ``utm_campaign`` and the trimmed ``click_id`` (blank counts as absent).
    """
    parts: list[ir.StringValue] = []
    for name in MARKETING_COLUMNS:
        col = column_or_null(events, name).cast("string").strip()
        if name != "click_id":
            col = col.lower()
        parts.append(col.nullif(""))
    has = parts[0].notnull()
    for p in parts[1:]:
        has = has | p.notnull()
    key = parts[0].fill_null("")
    for p in parts[1:]:
        key = key + "\x1f" + p.fill_null("")
    return has, key


def _check_timeout(timeout_minutes: float) -> int:
    if (
        isinstance(timeout_minutes, bool)
        or not isinstance(timeout_minutes, int | float)
        or not math.isfinite(timeout_minutes)
        or timeout_minutes <= 0
    ):
        raise ConfigError(
            f"timeout_minutes must be a positive number of minutes, got {timeout_minutes!r}. "
            "GA4 and Snowplow use 30."
        )
    return round(timeout_minutes * 60)


def sessionize(
    events: ir.Table,
    *,
    timeout_minutes: float = 30,
    split_on_campaign_change: bool = True,
    respect_session_id: bool = False,
) -> ir.Table:
    """Group each visitor's events into sessions; rebuild ``session_id``.

    Per ``anonymous_id``, events are ordered by ``occurred_at`` (ties by
    ``event_id``). A new session starts at the visitor's first event, after more
    than ``timeout_minutes`` without an event (a gap of exactly the timeout stays
    in the session), and, with ``split_on_campaign_change``, at an event that
    carries marketing parameters (``utm_source``, ``utm_medium``, ``utm_campaign``,
    ``click_id``; compared trimmed and case-insensitively, ``click_id`` as is)
    that differ from the session's: those of the last event that carried any in
    the session, or none if the session began without them. Events without
    parameters never split a session.

    Input: ``events`` with ``event_id``, ``anonymous_id``, ``occurred_at`` and
    optionally the marketing columns and ``session_id``. Output: the same rows and
    columns, with ``session_id`` (string, ``"<anonymous_id>:<session_index>"``,
    replaced or added) and ``session_index`` (int64, 1 for a visitor's first
    session, like GA4's ``ga_session_number``).

    Parameters
    ----------
    events
        Web events.
    timeout_minutes
        Inactivity that ends a session. 30 is the default of GA4 and Snowplow.
    split_on_campaign_change
        ``True`` (default) splits a session when an arrival's marketing parameters
        change, as Universal Analytics did ("How a web session is defined in
        Universal Analytics", https://support.google.com/analytics/answer/2731565),
        so each campaign arrival is its own touchpoint. ``False`` splits on
        inactivity only, as GA4 and Snowplow do (GA4 does not start a new session
        when the campaign changes mid-session; Snowplow sessions are the tracker's
        cookie sessions). Use ``from_events(..., intrasession=True)`` to keep the
        mid-session arrivals as touchpoints without splitting.
    respect_session_id
        Keep the tag's ``session_id`` (the tracker decided the sessions); only rows
        where it is null or blank get the rebuilt id. ``session_index`` then numbers
        a visitor's sessions by their first event.

    Raises
    ------
    SchemaError
        If ``event_id``, ``anonymous_id`` or ``occurred_at`` is missing or mistyped
        (or ``session_id`` with ``respect_session_id=True``).
    ConfigError
        If ``timeout_minutes`` is not a positive number.

    Examples
    --------
    >>> import revloop, datetime as dt
    >>> t0 = dt.datetime(2024, 5, 1, 9, 0)
    >>> ev = ibis.memtable({
    ...     "event_id": ["e1", "e2", "e3", "e4"],
    ...     "anonymous_id": ["a"] * 4,
    ...     "occurred_at": [t0, t0 + dt.timedelta(minutes=30), t0 + dt.timedelta(minutes=61),
    ...                     t0 + dt.timedelta(minutes=62)],
    ...     "utm_source": [None, None, None, "newsletter"],
    ...     "utm_medium": [None, None, None, "email"],
    ... })
    >>> out = revloop.engine.to_pandas(sessionize(ev).order_by("event_id"))
    >>> out.session_id.tolist()
    ['a:1', 'a:1', 'a:2', 'a:3']
    """
    require_columns(events, "events", _REQUIRED, purpose="sessionize")
    require_columns(
        events,
        "events",
        {k: v for k, v in _OPTIONAL.items() if k in events.columns},
        purpose="sessionize",
    )
    if respect_session_id:
        require_columns(
            events,
            "events",
            {"session_id": "string"},
            purpose="sessionize(respect_session_id=True)",
        )
    seconds = _check_timeout(timeout_minutes)

    order = [events.occurred_at, events.event_id]
    by_visitor = ibis.window(group_by=events.anonymous_id, order_by=order)
    prev_at = events.occurred_at.lag().over(by_visitor)
    timed_out = prev_at.isnull() | (events.occurred_at > prev_at + ibis.interval(seconds=seconds))
    has, key = marketing_key(events)
    t = events.mutate(
        _rl_timed_out=timed_out.fill_null(True).cast("int64"), _rl_has=has, _rl_key=key
    )

    running = ibis.cumulative_window(group_by=t.anonymous_id, order_by=[t.occurred_at, t.event_id])
    t = t.mutate(_rl_visit=t._rl_timed_out.sum().over(running))

    if split_on_campaign_change:
        # lag within (visitor, visit, has-params): for an event with parameters,
        # the previous event *with parameters* of the same visit
        by_kind = ibis.window(
            group_by=[t.anonymous_id, t._rl_visit, t._rl_has], order_by=[t.occurred_at, t.event_id]
        )
        prev_key = t._rl_key.lag().over(by_kind)
        changed = t._rl_has & (prev_key.isnull() | (prev_key != t._rl_key))
        new = (t._rl_timed_out == 1) | changed.fill_null(False)
        t = t.mutate(_rl_new=new.cast("int64"))
    else:
        t = t.mutate(_rl_new=t._rl_timed_out)

    running = ibis.cumulative_window(group_by=t.anonymous_id, order_by=[t.occurred_at, t.event_id])
    t = t.mutate(_rl_index=t._rl_new.sum().over(running).cast("int64"))
    rebuilt = t.anonymous_id + ":" + t._rl_index.cast("string")

    if respect_session_id:
        tagged = t.session_id.cast("string").strip().nullif("")
        t = t.mutate(session_id=ibis.coalesce(tagged, rebuilt))
        whole = ibis.window(group_by=[t.anonymous_id, t.session_id])
        t = t.mutate(_rl_start=t.occurred_at.min().over(whole))
        rank = ibis.dense_rank().over(
            ibis.window(group_by=t.anonymous_id, order_by=[t._rl_start, t.session_id])
        )
        t = t.mutate(session_index=(rank + 1).cast("int64"))
    else:
        t = t.mutate(session_id=rebuilt, session_index=t._rl_index)
    return t.select(*[c for c in t.columns if not c.startswith("_rl_")])
