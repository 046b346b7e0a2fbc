"""Lead-handling metrics: speed to lead, contact rate, lead→opportunity, response curve.

Definitions, vendor conventions and benchmark sources: ``shared/reference/revops.md``
§2.1–2.3 and §2.9; user documentation: ``docs/metrics-lead.md``.

Conventions shared by every metric here
---------------------------------------
* A *rep-initiated touch* is an activity of the lead whose ``direction`` is
  ``outbound`` or null (a logged call, email, meeting, sms); inbound activities
  (the lead writing in, auto-replies logged as inbound) never stop the clock.
* A *contact* (two-way) is a rep-initiated touch whose ``outcome`` is ``connected``
  or ``replied``, or a meeting (``kind == "meeting"``) in either direction: one the
  lead booked (``inbound``) is a contact, though not a rep-initiated touch.
* A lead with a rep-initiated touch *before* its ``created_at`` is inconsistent data
  (a re-created or merged record). It is excluded from every figure and counted in
  the ``contacted_before_created`` column, never dropped silently.
* The *horizon* is ``scope.as_of`` when given (activities after it are ignored),
  else the latest ``created_at`` or ``occurred_at`` in the data. Never-contacted leads
  are right-censored at the horizon; cohorts whose window has not closed by the
  horizon are *immature*, excluded from cohort rates and counted in ``immature_leads``.
* Leads get three derived columns usable as ``scope.by``: ``hour_of_week`` (0 = Monday
  00:00–00:59 in ``timezone``), ``in_hours`` (created inside the calendar's working
  hours) and ``response_bucket`` (only in ``conversion_by_response_time``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import holidays as _holidays
import ibis
import ibis.expr.types as ir

from revloop.metrics._registry import (
    Benchmark,
    Policy,
    Scope,
    SharedBuild,
    metric,
    null_spelling,
)
from revloop.metrics._scope import as_timestamp, attach, group_keys, scoped, with_lone_groups
from revloop.metrics._stats import quantile, ranked
from revloop.metrics._survival import km_curve, km_steps
from revloop.schema import conform

__all__ = [
    "BUCKETS",
    "business_day_table",
    "conversion_by_response_time",
    "lead_base_key",
    "lead_contact_rate",
    "lead_to_opportunity_rate",
    "parse_calendar",
    "speed_to_lead",
]

#: Years covered by the business-hours calendar table (timestamps outside count no hours).
CALENDAR_YEARS = (2000, 2040)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CAL_RE = re.compile(
    r"^\s*(?P<days>[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?(?:\s*,\s*[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?)*)"
    r"\s+(?P<open>\d{1,2}:\d{2})\s*-\s*(?P<close>\d{1,2}:\d{2})\s*$"
)
#: Response-time buckets of ``conversion_by_response_time``: (label, upper bound in minutes).
BUCKETS: tuple[tuple[str, float], ...] = (
    ("0-5m", 5.0),
    ("5-30m", 30.0),
    ("30-60m", 60.0),
    ("1-24h", 24 * 60.0),
    ("24h+", math.inf),
)
_CONTACT_OUTCOMES = ("connected", "replied")


# --------------------------------------------------------------------------- calendar


def parse_calendar(calendar: str) -> tuple[frozenset[int], int, int]:
    """Working days (0 = Monday) and opening/closing second of day of a calendar string.

    Examples
    --------
    >>> days, open_s, close_s = parse_calendar("Mon-Fri 09:00-17:00")
    >>> sorted(days), open_s // 3600, close_s // 3600
    ([0, 1, 2, 3, 4], 9, 17)
    """
    m = _CAL_RE.match(calendar) if isinstance(calendar, str) else None
    if m is None:
        raise ValueError(
            f"calendar {calendar!r}: not 'Days HH:MM-HH:MM'; e.g. 'Mon-Fri 09:00-17:00' "
            "or 'Mon-Thu,Sat 08:30-18:00'"
        )
    days: set[int] = set()
    for part in m["days"].split(","):
        ends = [p.strip().lower() for p in part.split("-")]
        if any(e not in _DAYS for e in ends):
            raise ValueError(f"calendar {calendar!r}: unknown day in {part.strip()!r}; use Mon…Sun")
        a, b = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])

    def secs(hhmm: str) -> int:
        h, mi = (int(x) for x in hhmm.split(":"))
        if h > 24 or mi > 59 or (h == 24 and mi):
            raise ValueError(f"calendar {calendar!r}: {hhmm!r} is not a time of day")
        return h * 3600 + mi * 60

    open_s, close_s = secs(m["open"]), secs(m["close"])
    if close_s <= open_s:
        raise ValueError(f"calendar {calendar!r}: closing time must be after opening time")
    return frozenset(days), open_s, close_s


def _check_calendar(value: Any) -> str | None:
    try:
        parse_calendar(value)
    except ValueError as exc:
        return str(exc).split(": ", 1)[1]  # the policy error names the value already
    return None


def _check_timezone(value: Any) -> str | None:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "not an IANA time zone; e.g. 'America/New_York', 'Europe/Paris' or 'UTC'"
    return None


def _check_holidays(value: Any) -> str | None:
    if value is None:
        return None
    if str(value) not in _holidays.list_supported_countries():
        return "not a country code of the holidays package; e.g. 'US', 'GB', 'DE', or none"
    return None


def _holiday_spelling(value: Any) -> Any:
    """``none``/``null`` → ``None``; a country code in any case → upper case (``us`` → ``US``)."""
    value = null_spelling(value)
    if isinstance(value, str) and value.strip().upper() in _holidays.list_supported_countries():
        return value.strip().upper()
    return value


def _check_window(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "expected a whole number of days >= 1, e.g. 30"
    return None


@lru_cache(maxsize=16)
def _offsets(day: _dt.date, tz: zoneinfo.ZoneInfo) -> tuple[int, int, int]:
    """UTC offset of ``tz`` at the UTC midnight of ``day``, the second it changes, the new one."""
    day0 = _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC)

    def off(sec: int) -> int:
        o = (day0 + _dt.timedelta(seconds=sec)).astimezone(tz).utcoffset()
        return int(o.total_seconds()) if o is not None else 0

    first, last = off(0), off(86400)
    if first == last:
        return first, 86400, first
    lo, hi = 0, 86400  # off(lo) == first, off(hi) == last: bisect to the changing second
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if off(mid) == first else (lo, mid)
    return first, hi, last


@lru_cache(maxsize=8)
def _day_rows(calendar: str, timezone: str, country: str | None) -> tuple[tuple[Any, ...], ...]:
    """Columns of :func:`business_day_table` (cached: built once per calendar)."""
    days, open_s, close_s = parse_calendar(calendar)
    tz = zoneinfo.ZoneInfo(timezone)
    first, last = _dt.date(CALENDAR_YEARS[0], 1, 1), _dt.date(CALENDAR_YEARS[1], 12, 31)
    off = (
        set()
        if country is None
        else set(_holidays.country_holidays(country, years=range(first.year, last.year + 1)))
    )
    pieces: dict[_dt.date, list[tuple[int, int]]] = {}
    utc = _dt.UTC
    d = first - _dt.timedelta(days=1)
    while d <= last + _dt.timedelta(days=1):
        if d.weekday() in days and d not in off:
            midnight = _dt.datetime(d.year, d.month, d.day, tzinfo=tz)
            s = (midnight + _dt.timedelta(seconds=open_s)).astimezone(utc)
            e = (midnight + _dt.timedelta(seconds=close_s)).astimezone(utc)
            while s < e:  # split at UTC midnights
                day0 = _dt.datetime(s.year, s.month, s.day, tzinfo=utc)
                cut = min(e, day0 + _dt.timedelta(days=1))
                pieces.setdefault(s.date(), []).append(
                    (int((s - day0).total_seconds()), int((cut - day0).total_seconds()))
                )
                s = cut
        d += _dt.timedelta(days=1)
    out: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [], [])
    base = 0
    d = first
    while d <= last:
        ps = sorted(pieces.get(d, []))
        if len(ps) > 2:  # only for a window of nearly 24 h around a DST change
            raise ValueError(
                f"calendar {calendar!r} in {timezone}: more than two working spans in the "
                f"UTC day {d}; use a working window shorter than 23 hours"
            )
        (s1, e1), (s2, e2) = [*ps, (0, 0), (0, 0)][:2]
        row = (d, base, s1, e1, s2, e2, *_offsets(d, tz))
        for col, v in zip(out, row, strict=True):
            col.append(v)
        base += (e1 - s1) + (e2 - s2)
        d += _dt.timedelta(days=1)
    return tuple(tuple(col) for col in out)


def business_day_table(calendar: str, timezone: str, country: str | None) -> ir.Table:
    """A literal table, one row per UTC day of :data:`CALENDAR_YEARS`, of the working hours.

    Output columns: ``day`` (UTC date), ``base`` (working seconds before that UTC
    midnight since 2000-01-01), ``s1, e1, s2, e2`` (the working pieces inside that UTC
    day, in seconds after UTC midnight; ``0, 0`` when none), ``off0`` (UTC offset of
    ``timezone`` in seconds at that UTC midnight), ``switch`` (the second of the day it
    changes, 86400 when it does not) and ``off1`` (the offset from then on). Holidays of ``country`` (the ``holidays``
    package) are not working days. The table is built in Python once per calendar (a
    loop over calendar days, never over leads) and joined in the engine.

    References
    ----------
    Salesforce Apex ``BusinessHours.diff`` (working time between two instants inside a
    BusinessHours record, holidays excluded); revops.md §2.1 ``BH(t0, t1)``.
    """
    day, base, s1, e1, s2, e2, off0, switch, off1 = _day_rows(calendar, timezone, country)
    return ibis.memtable(
        {
            "day": day,
            "base": base,
            "s1": s1,
            "e1": e1,
            "s2": s2,
            "e2": e2,
            "off0": off0,
            "switch": switch,
            "off1": off1,
        },
        schema={
            "day": "date",
            "base": "int64",
            "s1": "int64",
            "e1": "int64",
            "s2": "int64",
            "e2": "int64",
            "off0": "int64",
            "switch": "int64",
            "off1": "int64",
        },
    )


def _clamp(x: ir.IntegerValue, lo: ir.IntegerValue, hi: ir.IntegerValue) -> ir.IntegerValue:
    """``min(max(x - lo, 0), hi - lo)``: working seconds of piece ``[lo, hi)`` before ``x``."""
    return ibis.least(ibis.greatest(x - lo, 0), hi - lo)


def _with_clock(
    t: ir.Table,
    col: str,
    prefix: str,
    cal: ir.Table | None,
    *,
    business: bool,
    local: bool = False,
) -> ir.Table:
    """Add ``{prefix}_sec`` (a clock reading of ``t[col]``) and, with ``local``, the
    local columns ``hour_of_week`` and ``in_hours`` of ``t[col]``.

    Wall clock: seconds since the epoch. Business hours: working seconds since
    2000-01-01 (``base`` of the UTC day plus the working part of the day before ``col``).
    """
    ts = t[col]
    if not business and not local:
        # the wall clock needs no calendar (only the local columns do)
        return t.mutate(**{f"{prefix}_sec": ts.epoch_seconds().cast("float64")})
    assert cal is not None, "business hours and local columns read the calendar"
    keyed = t.mutate(_day=ts.date())
    j = keyed.left_join(cal, keyed._day == cal.day).drop("_day", "day")
    sod = j[col].epoch_seconds() - j[col].truncate("D").epoch_seconds()
    working = _clamp(sod, j.s1, j.e1) + _clamp(sod, j.s2, j.e2)
    reading = (j.base + working) if business else j[col].epoch_seconds()
    extra: dict[str, Any] = {f"{prefix}_sec": reading.cast("float64")}
    if local:
        offset = ibis.ifelse(sod < j.switch, j.off0, j.off1).fill_null(0)
        local_hours = (j[col].epoch_seconds() + offset) // 3600
        extra["hour_of_week"] = ((local_hours + 72) % 168).cast("int64")
        inside = ((sod >= j.s1) & (sod < j.e1)) | ((sod >= j.s2) & (sod < j.e2))
        extra["in_hours"] = inside.fill_null(False)
    return j.mutate(**extra).drop("base", "s1", "e1", "s2", "e2", "off0", "switch", "off1")


# --------------------------------------------------------------------------- lead base


#: Days of the contact rate's default window. Only the contact rate's activity counts
#: depend on a window; every other lead metric reads the base of this window (its
#: activity counts unused), so a panel of lead metrics builds one base. Windows on
#: conversions are added at read time by :func:`_with_window`, from ``conv_at``.
_CONTACT_WINDOW = 30


def lead_base_key(
    scope: Scope,
    *,
    clock: str = "wall",
    calendar: str = "Mon-Fri 09:00-17:00",
    timezone: str = "UTC",
    holidays: str | None = None,
    contact_window_days: int = _CONTACT_WINDOW,
    opportunities: bool = True,
    activities: bool = True,
) -> str:
    """The name a materialised lead base goes by: every input it depends on.

    >>> lead_base_key(Scope(), contact_window_days=30)
    'lead_base(as_of=None, clock=wall, calendar=Mon-Fri 09:00-17:00, timezone=UTC, holidays=None, contact_window_days=30, opportunities=True, activities=True)'
    """
    keep = f", keep={scope.by}" if scope.by is not None and scope.by not in _FACTS else ""
    return (
        f"lead_base(as_of={scope.as_of}, clock={clock}, calendar={calendar}, "
        f"timezone={timezone}, holidays={holidays}, "
        f"contact_window_days={contact_window_days}, "
        f"opportunities={opportunities}, activities={activities}{keep})"
    )


#: The columns of the lead base every lead metric reads. A shared base holds these
#: alone, plus the column a request groups by (a lead column, or ``hour_of_week`` and
#: ``in_hours``, which need the calendar's join): its key then names that column.
_FACTS = (
    "created_at",
    "first_touch_at",
    "early",
    "attempts_in_window",
    "contact_in_window",
    "calls_in_window",
    "connected_calls_in_window",
    "conv_at",
    "opp_before_created",
    "_horizon",
    "contacted",
    "elapsed_min",
)
#: Derived columns of the lead's local creation time, for grouping (``scope.by``).
_LOCAL_COLUMNS = ("hour_of_week", "in_hours")


def _shared_base(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    clock: str = "wall",
    calendar: str = "Mon-Fri 09:00-17:00",
    timezone: str = "UTC",
    holidays: str | None = None,
    contact_window_days: int = _CONTACT_WINDOW,
    **_: Any,
) -> dict[str, SharedBuild]:
    """``{lead_base_key: builder}`` of the lead base a lead metric reads."""
    kw: dict[str, Any] = {
        "clock": clock,
        "calendar": calendar,
        "timezone": timezone,
        "holidays": holidays,
        "contact_window_days": contact_window_days,
    }
    whole = Scope(as_of=scope.as_of)
    key = lead_base_key(
        Scope(as_of=scope.as_of, by=scope.by),
        **kw,
        opportunities="opportunities" in tables,
        activities="activities" in tables,
    )

    def build(available: Mapping[str, ir.Table]) -> ir.Table:
        base = _lead_base(available, whole, **kw, local=scope.by in _LOCAL_COLUMNS)
        # the materialised base is narrower: the facts, and the column grouped by
        return base.select(*[c for c in base.columns if c in _FACTS or c == scope.by])

    return {key: build}


def _contact_base(
    tables: Mapping[str, ir.Table], *, window_days: int = _CONTACT_WINDOW, **kw: Any
) -> dict[str, SharedBuild]:
    """The shared base of the contact rate: activity counts within its own window."""
    return _shared_base(tables, contact_window_days=window_days, **kw)


def _with_window(base: ir.Table, window_days: int) -> ir.Table:
    """``base`` plus ``mature`` (creation + window_days <= horizon) and
    ``converted_in_window`` (first opportunity within window_days of creation)."""
    end = base.created_at + ibis.interval(days=window_days)
    return base.mutate(
        mature=end <= base._horizon,
        converted_in_window=base.conv_at.notnull() & (base.conv_at < end),
    )


def _lead_base(
    tables: Mapping[str, ir.Table],
    scope: Scope,
    *,
    clock: str = "wall",
    calendar: str = "Mon-Fri 09:00-17:00",
    timezone: str = "UTC",
    holidays: str | None = None,
    contact_window_days: int = _CONTACT_WINDOW,
    local: bool = True,
) -> ir.Table:
    """One row per lead (not yet scoped) with its first touch, contact and conversion facts.

    Output columns: the lead's columns, ``hour_of_week`` and ``in_hours`` (with
    ``local``; a join on the calendar, needed only to group by them),
    ``first_touch_at`` (first rep-initiated touch at or after creation, else null),
    ``early`` (a rep-initiated touch before creation), ``contacted`` (touched by the
    horizon), ``elapsed_min`` (time to first touch, or to the horizon when censored,
    in minutes of the chosen clock), ``conv_at`` (the lead's first opportunity created
    at or after it, or its ``converted_at`` when it was converted into an opportunity
    created before it), ``opp_before_created`` (its only linked opportunities predate it
    and it has no such ``converted_at``: not a conversion),
    ``_horizon`` (the instant the data ends), and within ``contact_window_days`` of
    creation: ``attempts_in_window``, ``contact_in_window``, ``calls_in_window``,
    ``connected_calls_in_window``. :func:`_with_window` adds a window's maturity and
    conversion.
    """
    key = lead_base_key(
        scope,
        clock=clock,
        calendar=calendar,
        timezone=timezone,
        holidays=holidays,
        contact_window_days=contact_window_days,
        opportunities="opportunities" in tables,
        activities="activities" in tables,
    )
    shared = tables.get(key)
    if shared is not None:  # materialised once by a runner of several metrics
        return shared
    leads = conform(tables["leads"], "leads")
    acts = conform(tables["activities"], "activities") if "activities" in tables else None
    opp = conform(tables["opportunities"], "opportunities") if "opportunities" in tables else None
    if scope.as_of is not None:
        cut = as_timestamp(scope.as_of)
        acts = None if acts is None else acts.filter(acts.occurred_at <= cut)
        opp = None if opp is None else opp.filter(opp.created_at <= cut)
    if scope.as_of is not None:
        horizon: ir.TimestampValue = as_timestamp(scope.as_of)
    else:
        # scalar subqueries: computed once, not as a window over every lead
        lmax = leads.created_at.max().as_scalar()
        horizon = ibis.greatest(
            lmax,
            lmax if acts is None else acts.occurred_at.max().as_scalar().fill_null(lmax),
            lmax if opp is None else opp.created_at.max().as_scalar().fill_null(lmax),
        )
    country = null_spelling(holidays)
    business = clock == "business_hours"
    # the calendar (a table of some 15,000 days) only for business hours or local columns
    cal = business_day_table(calendar, timezone, country) if business or local else None

    base = leads
    if acts is not None:
        # rep-initiated touches, and meetings in either direction (a lead booking one
        # through a scheduler is a two-way contact too, but does not stop the clock)
        # Every aggregate below tests _by_rep or a meeting itself, so the other activities
        # are not filtered out before the join (the inner join drops null lead ids): an
        # unfiltered activities table is the larger side, and DuckDB builds its hash table
        # on the smaller one (the leads) instead of on a filter it estimates at a fifth.
        rep = acts.mutate(_by_rep=acts.direction.isnull() | (acts.direction == "outbound"))
        # the window's end is computed once per lead, not once per activity
        lc = leads.select(
            lead_id=leads.lead_id,
            _created=leads.created_at,
            _until=leads.created_at + ibis.interval(days=contact_window_days),
        )
        rj = rep.inner_join(lc, "lead_id")
        by_rep = rj._by_rep
        after = rj.occurred_at >= rj._created
        two_way = (by_rep & rj.outcome.isin(_CONTACT_OUTCOMES)) | (rj.kind == "meeting")
        touch = after & by_rep
        aggs: dict[str, Any] = {
            "first_touch_at": rj.occurred_at.min(where=touch),
            "early": (by_rep & (rj.occurred_at < rj._created)).any(),
        }
        in_win = after & (rj.occurred_at < rj._until)
        aggs["attempts_in_window"] = (in_win & by_rep).sum()
        aggs["contact_in_window"] = (in_win & two_way).any()
        call = in_win & by_rep & (rj.kind == "call")
        aggs["calls_in_window"] = call.sum()
        aggs["connected_calls_in_window"] = (call & (rj.outcome == "connected")).sum()
        per_lead = rj.group_by("lead_id").aggregate(**aggs)
        base = base.left_join(per_lead, "lead_id").drop("lead_id_right")
    else:
        base = base.mutate(
            first_touch_at=ibis.null("timestamp"),
            early=ibis.null("boolean"),
            attempts_in_window=ibis.null("int64"),
            contact_in_window=ibis.null("boolean"),
            calls_in_window=ibis.null("int64"),
            connected_calls_in_window=ibis.null("int64"),
        )

    if opp is not None:
        # an opportunity created before the lead is not the lead's conversion: only the
        # linked opportunities created at or after the lead count
        linked = opp.filter(opp.lead_id.notnull()).select("lead_id", "created_at")
        lead_times = leads.select(_ol=leads.lead_id, _oc=leads.created_at)
        lo = linked.inner_join(lead_times, linked.lead_id == lead_times._ol)
        by_lead = lo.group_by("lead_id").aggregate(
            _opp_at=lo.created_at.min(where=lo.created_at >= lo._oc),
            _opp_pre=(lo.created_at < lo._oc).any(),
        )
        by_id = opp.select(_oid=opp.opportunity_id, _oid_at=opp.created_at)
        base = base.left_join(by_lead, "lead_id").drop("lead_id_right")
        base = base.left_join(by_id, base.opportunity_id == by_id._oid).drop("_oid")
        oid_pre = base._oid_at < base.created_at
        oid_at = ibis.ifelse(oid_pre, ibis.null("timestamp"), base._oid_at)
        conv = ibis.coalesce(ibis.least(base._opp_at, oid_at), base._opp_at, oid_at)
        pre = base._opp_pre.fill_null(False) | oid_pre.fill_null(False)
        # Salesforce converts a lead into an opportunity that already exists at the
        # lead's ConvertedDate (converted_at)
        into_existing = pre & base.converted_at.notnull() & (base.converted_at >= base.created_at)
        conv = ibis.ifelse(conv.isnull() & into_existing, base.converted_at, conv)
        base = base.mutate(conv_at=conv, opp_before_created=pre & conv.isnull()).drop(
            "_opp_at", "_opp_pre", "_oid_at"
        )
    else:
        base = base.mutate(conv_at=ibis.null("timestamp"), opp_before_created=ibis.literal(False))
    base = base.mutate(early=base.early.fill_null(False), _horizon=horizon)
    base = _with_clock(base, "created_at", "created", cal, business=business, local=local)
    base = base.mutate(_stop=ibis.coalesce(base.first_touch_at, base._horizon))
    base = _with_clock(base, "_stop", "stop", cal, business=business)
    base = base.mutate(
        contacted=base.first_touch_at.notnull(),
        elapsed_min=ibis.greatest(base.stop_sec - base.created_sec, 0.0) / 60.0,
    )
    base = base.mutate(
        attempts_in_window=base.attempts_in_window.fill_null(0),
        contact_in_window=base.contact_in_window.fill_null(False),
        calls_in_window=base.calls_in_window.fill_null(0),
        connected_calls_in_window=base.connected_calls_in_window.fill_null(0),
    )
    return base.drop("_stop", "stop_sec", "created_sec")


def _by_keys(t: ir.Table, keys: list[str], **aggs: Any) -> ir.Table:
    """``t`` aggregated by ``keys`` (one row without keys)."""
    return t.group_by(keys).aggregate(**aggs) if keys else t.aggregate(**aggs)


# --------------------------------------------------------------------------- policies

_CLOCK = Policy(
    "clock",
    "wall",
    ("wall", "business_hours"),
    doc="Elapsed time on the wall clock, or working time only (calendar, timezone, holidays).",
    sources={
        "wall": "HubSpot hs_time_to_first_engagement; the MIT/InsideSales 2007 and HBR 2011 "
        "studies (elapsed minutes)",
        "business_hours": "Salesforce Apex BusinessHours.diff (working hours of a "
        "BusinessHours record, holidays excluded); revops.md §2.1 BH(t0, t1)",
    },
)
_CALENDAR = Policy(
    "calendar",
    "Mon-Fri 09:00-17:00",
    doc="Working days and hours for clock=business_hours, e.g. 'Mon-Fri 09:00-17:00'.",
    sources={"parameter": "revops.md §2.1 worked examples use 9–17 on weekdays"},
    check=_check_calendar,
)
_TIMEZONE = Policy(
    "timezone",
    "UTC",
    doc="IANA time zone of the calendar and of hour_of_week, e.g. 'America/New_York'.",
    sources={"parameter": "Salesforce BusinessHours records carry a TimeZoneSidKey"},
    check=_check_timezone,
)
_HOLIDAYS = Policy(
    "holidays",
    None,
    doc="Country code of public holidays (the `holidays` package), e.g. 'US'; none by default.",
    sources={"parameter": "Salesforce BusinessHours with Holiday records; python `holidays`"},
    check=_check_holidays,
    normalise=_holiday_spelling,
)
_PERCENTILE = Policy(
    "percentile",
    "linear",
    ("linear", "nearest_rank"),
    doc="Quantile definition of the median and p90 of response times.",
    sources={
        "linear": "Hyndman & Fan (1996) type 7: numpy, pandas, Excel PERCENTILE.INC, "
        "DuckDB quantile_cont",
        "nearest_rank": "Hyndman & Fan type 1 (an observed value): DuckDB quantile_disc, "
        "SQL PERCENTILE_DISC",
    },
)


def _window_policy(default: int, doc: str, source: str) -> Policy:
    return Policy(
        "window_days", default, doc=doc, sources={"parameter": source}, check=_check_window
    )


_CLOCK_POLICIES = (_CLOCK, _CALENDAR, _TIMEZONE, _HOLIDAYS)

_HBR = (
    "HBR, 'The Short Life of Online Sales Leads', Oldroyd, McElheran & Elkington, "
    "March 2011 (audit of 2,241 US firms)"
)
_MIT = (
    "MIT/InsideSales Lead Response Management Study, Oldroyd & Elkington, "
    "MarketingSherpa B2B Demand Gen Summit, 16 Oct 2007 (6 companies, 15,000+ leads)"
)


def _km(base: ir.Table, keys: list[str]) -> ir.Table:
    """Kaplan–Meier survival of time to first touch; never-contacted leads censored.

    Output: [keys,] minutes, at_risk, events, censored, survival (after ``minutes``).
    """
    g = km_curve(base, keys, "elapsed_min", base.contacted).rename(minutes="elapsed_min")
    return g.select(*keys, "minutes", "at_risk", "events", "censored", "survival").order_by(
        [*keys, "minutes"]
    )


# --------------------------------------------------------------------------- metrics


@metric(
    "speed_to_lead",
    family="lead",
    tables=("leads", "activities"),
    shared=_shared_base,
    policies=(
        *_CLOCK_POLICIES,
        _PERCENTILE,
        Policy(
            "output",
            "summary",
            ("summary", "km_curve"),
            doc="One row of statistics per group, or the Kaplan–Meier curve of time to first touch.",
            sources={
                "summary": "revops.md §2.1 'how to report it': median, p90, SLA shares",
                "km_curve": "Kaplan & Meier (1958); lifelines KaplanMeierFitter survival_function_",
            },
        ),
    ),
    benchmarks=(
        Benchmark(
            "average first response among firms responding within 30 days",
            42 * 60,
            "minutes",
            _HBR,
            column="mean",
        ),
        Benchmark(
            "share of firms responding within 1 hour", 0.37, "share", _HBR, column="within_1h"
        ),
        Benchmark(
            "share of firms never responding", 0.23, "share", _HBR, column="never_contacted_share"
        ),
        Benchmark(
            "share of 323 service businesses responding within 5 minutes",
            0.068,
            "share",
            "Chatpath 2017 (blog.chatpath.com/lead-response-time-study); small sample",
            column="within_5m",
        ),
        Benchmark(
            "average first response, secret-shopper tests (secondary source)",
            46 * 60 + 53,
            "minutes",
            "Forbes secret-shopper tests of 10,000+ companies, via "
            "ad-dictions.co.za/turn-leads-into-business (secondary source)",
            column="mean",
        ),
        Benchmark(
            "odds of qualifying when contacted within 1 hour vs an hour later", 7.0, "x", _HBR
        ),
        Benchmark("odds of contacting when called within 5 vs 30 minutes", 100.0, "x", _MIT),
    ),
)
def speed_to_lead(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    clock: str,
    calendar: str,
    timezone: str,
    holidays: str | None,
    percentile: str,
    output: str,
) -> ir.Table:
    """Time from lead creation to the first rep-initiated touch, in minutes.

    Output (``output="summary"``): [by, period,] ``value`` (median minutes among
    contacted leads), ``p90``, ``mean``, ``km_median`` (Kaplan–Meier median with the
    never-contacted censored at the horizon; null while survival stays above 0.5),
    ``leads`` (leads counted), ``contacted``, ``never_contacted_share``,
    ``within_5m``, ``within_1h``, ``within_24h`` (share of the leads whose outcome at
    that mark is known: touched by it, or touched later or still untouched once it had
    passed; a lead still untouched and younger than the mark at the horizon is censored
    and left out of that share, as Kaplan–Meier leaves it out of the risk set — counting
    it as a miss would pull the latest periods down), ``contacted_before_created``
    (leads excluded: touched before they were created).

    Output (``output="km_curve"``): [by, period,] ``minutes``, ``at_risk``, ``events``,
    ``censored``, ``survival`` (share not yet touched after ``minutes``).

    References
    ----------
    revops.md §2.1; Kaplan & Meier (1958); HBR (Oldroyd et al. 2011); MIT/InsideSales (2007).
    """
    base = _lead_base(
        tables,
        scope,
        clock=clock,
        calendar=calendar,
        timezone=timezone,
        holidays=holidays,
    )
    base = scoped(base, "created_at", scope, table_name="leads")
    keys = group_keys(scope)
    bad = base.filter(base.early)
    ok = base.filter(~base.early)
    if output == "km_curve":
        return _km(ok, keys)
    r = ranked(ok, keys, "elapsed_min", where=ok.contacted, method=percentile)
    c = r.contacted
    x = r.elapsed_min
    stats = {
        "value": quantile(r, "elapsed_min", 0.5, percentile),
        "p90": quantile(r, "elapsed_min", 0.9, percentile),
        "mean": x.mean(where=c),
        "leads": r.count(),
        "contacted": c.sum(),
        "never_contacted_share": (~c).cast("float64").mean(),
        **{
            name: (c & (x <= mark)).cast("float64").mean(where=c | (x >= mark))
            for name, mark in (("within_5m", 5), ("within_1h", 60), ("within_24h", 24 * 60))
        },
    }
    # the curve's steps (event times) hold its median
    km = km_steps(ok, keys, "elapsed_min", ok.contacted)
    km_med = km.filter(km.survival <= 0.5 + 1e-9)
    km_med = (
        km_med.group_by(keys).aggregate(km_median=km_med.elapsed_min.min())
        if keys
        else km_med.aggregate(km_median=km_med.elapsed_min.min())
    )
    bad_n = (
        bad.group_by(keys).aggregate(contacted_before_created=bad.count())
        if keys
        else bad.aggregate(contacted_before_created=bad.count())
    )
    # every group of the scope, also one whose leads were all contacted before creation
    allk = base.select(*keys).distinct() if keys else None
    summary = r.group_by(keys).aggregate(**stats) if keys else r.aggregate(**stats)
    if allk is not None:
        summary = attach(allk, summary, keys)
    out = attach(attach(summary, km_med, keys), bad_n, keys)
    out = out.mutate(
        leads=out.leads.fill_null(0),
        contacted=out.contacted.fill_null(0),
        contacted_before_created=out.contacted_before_created.fill_null(0),
    )
    cols = [
        *keys,
        "value",
        "p90",
        "mean",
        "km_median",
        "leads",
        "contacted",
        "never_contacted_share",
        "within_5m",
        "within_1h",
        "within_24h",
        "contacted_before_created",
    ]
    out = out.select(*cols)
    return out.order_by(keys) if keys else out


def _finish(out: ir.Table, keys: list[str], cols: list[str]) -> ir.Table:
    out = out.select(*keys, *cols)
    return out.order_by(keys) if keys else out


def _with_excluded(
    good: ir.Table, base: ir.Table, keys: list[str], aggs: Mapping[str, Any]
) -> ir.Table:
    """``aggs`` over ``good`` per group, every group of ``base`` kept, plus the excluded count."""
    stats = _by_keys(good, keys, **aggs)
    bad = base.filter(base.early)
    bad_n = _by_keys(bad, keys, contacted_before_created=bad.count())
    if keys:
        stats = attach(base.select(*keys).distinct(), stats, keys)
    out = attach(stats, bad_n, keys)
    return out.mutate(contacted_before_created=out.contacted_before_created.fill_null(0))


@metric(
    "lead_contact_rate",
    family="lead",
    tables=("leads", "activities"),
    shared=_contact_base,
    policies=(
        Policy(
            "basis",
            "contact",
            ("contact", "attempt"),
            doc="Count a lead when it had a two-way contact (connected call, reply, meeting), "
            "or when it had any rep-initiated attempt.",
            sources={
                "contact": "revops.md §2.2 contact rate (two-way contact within N days ÷ leads "
                "created); InsideSales/MIT 'contacted'",
                "attempt": "HBR 2011 audit and Forbes secret-shopper tests: any response/attempt",
            },
        ),
        _window_policy(
            30,
            "Days after creation within which the contact must happen; younger leads are "
            "immature and left out.",
            "HBR 2011 counts responses within 30 days",
        ),
    ),
    benchmarks=(
        Benchmark(
            "share of leads never contacted at all",
            0.30,
            "share (over)",
            "InsideSales/MIT infographic (paperzz.com/doc/7077922): 'over 30% of leads are "
            "never contacted at all'",
            column="never_attempted_share",
        ),
        Benchmark(
            "share of leads ever contacted, secret-shopper tests (secondary source)",
            0.27,
            "share",
            "Forbes secret-shopper tests of 10,000+ companies, via "
            "ad-dictions.co.za/turn-leads-into-business (secondary source)",
            column="value",
        ),
        Benchmark(
            "call attempts per lead, secret-shopper tests (secondary source)",
            1.3,
            "attempts",
            "Forbes secret-shopper tests, via ad-dictions.co.za/turn-leads-into-business "
            "(secondary source)",
            column="attempts_per_lead",
        ),
        Benchmark(
            "share of leads never called a second time",
            0.50,
            "share",
            "Leads360 (Velocify), Nov 2012; 3.5M leads, 400+ companies "
            "(trends.e-strategyblog.com/2012/11/30/effect-of-speed-to-call-on-conversions/5825)",
        ),
    ),
)
def lead_contact_rate(
    tables: Mapping[str, ir.Table], *, scope: Scope, basis: str, window_days: int
) -> ir.Table:
    """Share of leads contacted within ``window_days`` of creation (mature cohorts).

    Output: [by, period,] ``value`` (contacted ÷ leads), ``leads`` (mature leads
    counted), ``contacted``, ``attempts_per_lead`` (rep-initiated touches in the window
    ÷ leads), ``never_attempted_share`` (leads without any attempt in the window),
    ``pickup_rate`` (connected calls ÷ rep-initiated calls in the window; null without calls),
    ``immature_leads`` (created less than ``window_days`` before the horizon, left
    out), ``contacted_before_created`` (left out).

    References
    ----------
    revops.md §2.2; InsideSales/MIT Lead Response Management Study (2007).
    """
    base = _with_window(_lead_base(tables, scope, contact_window_days=window_days), window_days)
    base = scoped(base, "created_at", scope, table_name="leads")
    keys = group_keys(scope)
    ok = base.filter(~base.early)
    m = ok.mature
    hit = ok.contact_in_window if basis == "contact" else ok.attempts_in_window > 0
    n = m.sum()
    aggs = {
        "leads": n,
        "contacted": (m & hit).sum(),
        "attempts": ok.attempts_in_window.sum(where=m),
        "never": (m & (ok.attempts_in_window == 0)).sum(),
        "calls": ok.calls_in_window.sum(where=m),
        "connected_calls": ok.connected_calls_in_window.sum(where=m),
        "immature_leads": (~m).sum(),
    }
    out = _with_excluded(ok, base, keys, aggs)
    leads = out.leads.fill_null(0)
    denom = ibis.ifelse(leads > 0, leads.cast("float64"), ibis.null("float64"))
    out = out.mutate(
        leads=leads,
        contacted=out.contacted.fill_null(0),
        immature_leads=out.immature_leads.fill_null(0),
        value=out.contacted.fill_null(0) / denom,
        attempts_per_lead=out.attempts.fill_null(0) / denom,
        never_attempted_share=out.never.fill_null(0) / denom,
        pickup_rate=ibis.ifelse(
            out.calls.fill_null(0) > 0,
            out.connected_calls.cast("float64") / out.calls.cast("float64"),
            ibis.null("float64"),
        ),
    )
    cols = [
        "value",
        "leads",
        "contacted",
        "attempts_per_lead",
        "never_attempted_share",
        "pickup_rate",
        "immature_leads",
        "contacted_before_created",
    ]
    return _finish(out, keys, cols)


@metric(
    "lead_to_opportunity_rate",
    family="lead",
    tables=("leads", "opportunities"),
    optional_tables=("activities",),
    shared=_shared_base,
    policies=(
        Policy(
            "variant",
            "cohort",
            ("cohort", "flow"),
            doc="cohort: leads created in the period that became an opportunity within "
            "window_days, mature cohorts only; flow: leads converted in the period ÷ leads "
            "created in the period (mixes cohorts, can exceed 1).",
            sources={
                "cohort": "Salesforce Lead.IsConverted / ConvertedDate / "
                "ConvertedOpportunityId by lead creation cohort (revops.md §2.3)",
                "flow": "Fivetran dbt_salesforce salesforce__daily_activity: leads_created by "
                "created_date, leads_converted by converted_date",
            },
        ),
        _window_policy(
            90,
            "Days after creation within which the opportunity must be created (cohort).",
            "revops.md §2.3: report conversion within 30/60/90 days; Implisit: 84 days on average",
        ),
    ),
    benchmarks=(
        Benchmark(
            "leads that convert to opportunities",
            0.13,
            "share",
            "Implisit (~500 US B2B companies), via pmg360.com/index.php/blog/"
            "189-b2b-lead-generation-conversion-rates and venncomm.com/news/2014/11",
            column="value",
        ),
        Benchmark(
            "average days from lead to opportunity",
            84,
            "days",
            "Implisit (~500 US B2B companies), via pmg360.com/index.php/blog/"
            "189-b2b-lead-generation-conversion-rates",
            column="mean_days_to_opportunity",
        ),
    ),
)
def lead_to_opportunity_rate(
    tables: Mapping[str, ir.Table], *, scope: Scope, variant: str, window_days: int
) -> ir.Table:
    """Share of leads that become an opportunity.

    A lead's opportunity is the earliest of the opportunities whose ``lead_id`` is the
    lead and the opportunity named by the lead's ``opportunity_id``; its conversion
    time is that opportunity's ``created_at``.

    Output: [by, period,] ``value``, ``leads`` (cohort: mature leads; flow: leads
    created in the period), ``converted`` (cohort: converted within the window; flow:
    leads whose opportunity was created in the period), ``mean_days_to_opportunity``
    (among ``converted``), ``immature_leads`` (cohort only, else 0),
    ``contacted_before_created`` (left out; 0 without activities),
    ``opportunity_before_created`` (leads whose only linked opportunities were created
    before the lead, with no ``converted_at`` at or after its creation: kept as not
    converted, since the opportunity did not come from the lead; a Salesforce lead
    converted into an existing opportunity converts at its ``converted_at``).

    References
    ----------
    revops.md §2.3; Implisit benchmark (13% in 84 days on average).
    """
    base = _with_window(_lead_base(tables, scope), window_days)
    keys = group_keys(scope)
    days = (base.conv_at.epoch_seconds() - base.created_at.epoch_seconds()) / 86400.0
    base = base.mutate(_days=days.cast("float64"))
    if variant == "cohort":
        created = scoped(base, "created_at", scope, table_name="leads")
        ok = created.filter(~created.early)
        m = ok.mature
        hit = m & ok.converted_in_window
        aggs = {
            "leads": m.sum(),
            "converted": hit.sum(),
            "mean_days_to_opportunity": ok._days.mean(where=hit),
            "immature_leads": (~m).sum(),
            "opportunity_before_created": ok.opp_before_created.sum(),
        }
        out = _with_excluded(ok, created, keys, aggs)
    else:
        created = scoped(base, "created_at", scope, table_name="leads")
        ok = created.filter(~created.early)
        conv_all = base.filter(base.conv_at.notnull() & ~base.early)
        conv = scoped(conv_all, "conv_at", scope, table_name="leads")
        den = _with_excluded(
            ok,
            created,
            keys,
            {
                "leads": ok.count(),
                "opportunity_before_created": ok.opp_before_created.sum(),
            },
        )
        num = _by_keys(
            conv, keys, converted=conv.count(), mean_days_to_opportunity=conv._days.mean()
        )
        if keys:
            both = den.select(*keys).union(num.select(*keys)).distinct()
            out = attach(attach(both, den, keys), num, keys)
        else:
            out = den.cross_join(num)
        out = out.mutate(immature_leads=ibis.literal(0, "int64"))
    leads = out.leads.fill_null(0)
    denom = ibis.ifelse(leads > 0, leads.cast("float64"), ibis.null("float64"))
    out = out.mutate(
        leads=leads,
        converted=out.converted.fill_null(0),
        immature_leads=out.immature_leads.fill_null(0),
        contacted_before_created=out.contacted_before_created.fill_null(0),
        opportunity_before_created=out.opportunity_before_created.fill_null(0),
        value=out.converted.fill_null(0) / denom,
    )
    cols = [
        "value",
        "leads",
        "converted",
        "mean_days_to_opportunity",
        "immature_leads",
        "contacted_before_created",
        "opportunity_before_created",
    ]
    return _finish(out, keys, cols)


@metric(
    "conversion_by_response_time",
    family="lead",
    tables=("leads", "activities", "opportunities"),
    shared=_shared_base,
    policies=(
        *_CLOCK_POLICIES,
        _window_policy(
            90,
            "Days after creation within which the opportunity must be created; younger "
            "leads are immature and left out.",
            "revops.md §2.3: conversion within 30/60/90 days on mature cohorts",
        ),
    ),
    benchmarks=(
        Benchmark("odds of qualifying when called within 5 vs 30 minutes", 21.0, "x", _MIT),
        Benchmark("likelihood of qualifying, within 1 hour vs an hour later", 7.0, "x", _HBR),
        Benchmark(
            "likelihood of qualifying, within 1 hour vs after 24 hours or more",
            60.0,
            "x (over)",
            _HBR,
        ),
        Benchmark(
            "conversion uplift when called within 1 minute",
            3.91,
            "+share",
            "Leads360 (Velocify), Nov 2012; 3.5M leads, 400+ companies "
            "(trends.e-strategyblog.com/2012/11/30/effect-of-speed-to-call-on-conversions/5825)",
        ),
    ),
)
def conversion_by_response_time(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    clock: str,
    calendar: str,
    timezone: str,
    holidays: str | None,
    window_days: int,
) -> ir.Table:
    """The lead-response curve: lead→opportunity rate by speed-to-lead bucket.

    Buckets (minutes of the chosen clock, upper bound inclusive): ``0-5m``, ``5-30m``,
    ``30-60m``, ``1-24h``, ``24h+``, and ``never`` (no rep-initiated touch by the
    horizon). Only mature leads (window closed by the horizon) count; a bucket
    without leads has no row.

    Output: [by, period,] ``response_bucket``, ``value`` (converted ÷ leads),
    ``leads``, ``converted`` (opportunity within ``window_days``), ``lift`` (value ÷
    the value of the ``24h+`` bucket of the same group; null without it), and the leads
    of the group left out of every bucket, repeated on each of its rows:
    ``immature_leads`` (created less than ``window_days`` before the horizon) and
    ``contacted_before_created`` (a rep touch before the lead existed, see
    ``speed_to_lead``). A group whose leads are all left out keeps one row, with no
    bucket (null), no leads and its counts.

    References
    ----------
    revops.md §2.1 'close the loop'; MIT/InsideSales (2007); HBR (2011).
    """
    base = _lead_base(
        tables,
        scope,
        clock=clock,
        calendar=calendar,
        timezone=timezone,
        holidays=holidays,
    )
    base = _with_window(base, window_days)
    base = scoped(base, "created_at", scope, table_name="leads")
    keys = group_keys(scope)
    ok = base.filter(~base.early & base.mature)
    x = ok.elapsed_min
    branches = [(x <= upper, label) for label, upper in BUCKETS if math.isfinite(upper)]
    bucket = ibis.cases((~ok.contacted, "never"), *branches, else_=BUCKETS[-1][0])
    order = ibis.cases(
        (~ok.contacted, len(BUCKETS)),
        *[(x <= upper, i) for i, (_, upper) in enumerate(BUCKETS) if math.isfinite(upper)],
        else_=len(BUCKETS) - 1,
    )
    ok = ok.mutate(response_bucket=bucket, _order=order)
    out = ok.group_by([*keys, "response_bucket", "_order"]).aggregate(
        leads=ok.count(), converted=ok.converted_in_window.sum()
    )
    out = out.mutate(value=out.converted.cast("float64") / out.leads.cast("float64"))
    slow = out.filter(out.response_bucket == BUCKETS[-1][0]).select(*keys, _slow=out.value)
    # without keys a left join on true: no slow bucket (no row) keeps every other bucket
    out = attach(out, slow, keys) if keys else out.left_join(slow, ibis.literal(True))
    out = out.mutate(lift=ibis.ifelse(out._slow > 0, out.value / out._slow, ibis.null("float64")))
    # what no bucket holds, counted per group: nothing is dropped silently
    left_out = _by_keys(
        base,
        keys,
        immature_leads=(~base.early & ~base.mature).sum(),
        contacted_before_created=base.early.sum(),
    )
    full = attach(out, left_out, keys)
    cols = {
        "response_bucket": full.response_bucket,
        "value": full.value,
        "leads": full.leads,
        "converted": full.converted,
        "lift": full.lift,
        "immature_leads": full.immature_leads.fill_null(0).cast("int64"),
        "contacted_before_created": full.contacted_before_created.fill_null(0).cast("int64"),
        "_order": full._order,
    }
    full = full.select(*keys, **cols)
    # a group whose leads are all left out keeps one row (no bucket, no leads) with its counts
    counted = left_out.filter(
        (left_out.immature_leads > 0) | (left_out.contacted_before_created > 0)
    )
    full = with_lone_groups(full, counted, keys, _order=ibis.literal(len(BUCKETS) + 1))
    return full.order_by([*keys, "_order"]).drop("_order")
