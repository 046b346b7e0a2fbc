"""Conversion paths: which touches of a person lead to each conversion.

A conversion's path holds the person's touches at or before the conversion
(never after), inside the lookback window, in time order. Path transforms from
Google Fractribution and Snowplow's attribution package may then rewrite it.

Everything here builds Ibis expressions; nothing is executed.

References
----------
- GA4 lookback windows: ``otherConversionEventLookbackWindow`` 30/60/90 days,
  default 90 (Admin API ``AttributionSettings``; ``attribution.md`` §3.3).
- Path transforms: google/fractribution ``tuple_transforms.py``; snowplow
  ``dbt-snowplow-attribution`` ``create_udfs.sql`` (``attribution.md`` §3.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, cast

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import ConfigError, SchemaError

__all__ = [
    "UNATTRIBUTED",
    "LookbackFrom",
    "PathTransform",
    "TransformSpec",
    "build_paths",
    "conversions_frame",
    "normalize_transforms",
    "touchpoints_frame",
]

UNATTRIBUTED = "(unattributed)"
"""Channel label of the credit row of a conversion that has no touch in its window."""

LookbackFrom = Literal["lead_created", "conversion"]

TransformName = Literal[
    "unique", "exposure", "first", "remove_if_last_and_not_all", "remove_if_not_all"
]
_NAMES: tuple[str, ...] = (
    "unique",
    "exposure",
    "first",
    "remove_if_last_and_not_all",
    "remove_if_not_all",
)
_NEEDS_CHANNELS = ("remove_if_last_and_not_all", "remove_if_not_all")


@dataclass(frozen=True)
class PathTransform:
    """One path transform.

    ``unique``
        Identity (Fractribution's name): the path as observed.
    ``exposure``
        Collapse consecutive repeats of a channel: D A B B C → D A B C.
    ``first``
        Keep only the first occurrence of each channel: D A B D C → D A B C.
    ``remove_if_last_and_not_all``
        Drop trailing touches of the listed channels unless the whole path is
        made of them: A B A A with channels=("A",) → A B.
    ``remove_if_not_all``
        Drop every touch of the listed channels unless the whole path is made of
        them: A B A A with channels=("A",) → B.
    """

    name: TransformName
    channels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "channels": list(self.channels)}


TransformSpec: TypeAlias = str | PathTransform | tuple[str, Sequence[str]] | Mapping[str, object]


def normalize_transforms(transforms: Sequence[TransformSpec] | None) -> tuple[PathTransform, ...]:
    """Turn user input into :class:`PathTransform` objects, checking names and channel lists.

    Accepted forms: ``"exposure"``, ``("remove_if_not_all", ["Direct"])``,
    ``{"name": "remove_if_not_all", "channels": ["Direct"]}``, or a
    :class:`PathTransform`. A comma string ``"exposure,first"`` is split.

    Examples
    --------
    >>> normalize_transforms(["exposure", ("remove_if_not_all", ["Direct"])])
    (PathTransform(name='exposure', channels=()), PathTransform(name='remove_if_not_all', channels=('Direct',)))
    """
    if transforms is None:
        return ()
    if isinstance(transforms, str):
        transforms = [s.strip() for s in transforms.split(",") if s.strip()]
    out: list[PathTransform] = []
    for spec in transforms:
        if isinstance(spec, PathTransform):
            t = spec
        elif isinstance(spec, str):
            name, _, chans = spec.partition(":")
            t = _make(name.strip(), [c for c in chans.split("|") if c] if chans else [])
        elif isinstance(spec, Mapping):
            channels = spec.get("channels", ())
            if isinstance(channels, str) or not isinstance(channels, Sequence):
                raise ConfigError(
                    f"path transform {spec!r}: 'channels' must be a list of channel names, "
                    f"got {channels!r}."
                )
            t = _make(str(spec.get("name")), [str(c) for c in channels])
        else:
            name, channels = spec
            if isinstance(channels, str):
                channels = [channels]
            t = _make(str(name), [str(c) for c in channels])
        out.append(t)
    return tuple(out)


def _make(name: str, channels: Sequence[str]) -> PathTransform:
    if name not in _NAMES:
        raise ConfigError(
            f"unknown path transform {name!r}. Expected one of {list(_NAMES)}; "
            "channel lists go with 'remove_if_last_and_not_all' and 'remove_if_not_all', "
            "e.g. ('remove_if_not_all', ['Direct'])."
        )
    if name in _NEEDS_CHANNELS and not channels:
        raise ConfigError(
            f"path transform {name!r} needs a list of channels, e.g. ({name!r}, ['Direct'])."
        )
    if name not in _NEEDS_CHANNELS and channels:
        raise ConfigError(f"path transform {name!r} takes no channel list; got {list(channels)}.")
    return PathTransform(cast(TransformName, name), tuple(channels))


def _require(table: ir.Table, name: str, columns: Sequence[str], example: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SchemaError(
            f"{name} is missing column(s) {missing}; found {list(table.columns)}. "
            f"{example} Rename with revloop.schema.conform(table, {name!r}, column_map=...)."
        )


def touchpoints_frame(touchpoints: ir.Table) -> ir.Table:
    """The columns of ``touchpoints`` that attribution uses, with optional ones filled.

    Input: touchpoint_id (optional), person_id, occurred_at, channel, campaign (optional).
    Output: person_id, tp_at, touchpoint_id, channel, campaign (strings except tp_at).
    """
    _require(
        touchpoints,
        "touchpoints",
        ["person_id", "occurred_at", "channel"],
        "Touchpoints need person_id, occurred_at and channel.",
    )
    t = touchpoints
    tp_id = (
        t.touchpoint_id.cast("string")
        if "touchpoint_id" in t.columns
        # a stable id when none is given: person, time and channel identify a touch
        else (
            t.person_id.cast("string")
            + "|"
            + t.occurred_at.cast("string")
            + "|"
            + t.channel.cast("string")
        )
    )
    campaign = t.campaign.cast("string") if "campaign" in t.columns else ibis.null(dt.string)
    occurred = (
        t.occurred_at if t.occurred_at.type().is_timestamp() else t.occurred_at.cast(dt.Timestamp())
    )
    return t.select(
        tp_person=t.person_id.cast("string"),
        tp_at=occurred,
        touchpoint_id=tp_id,
        channel=t.channel.cast("string"),
        campaign=campaign,
    )


def conversions_frame(conversions: ir.Table) -> ir.Table:
    """The columns of ``conversions`` that attribution uses, with optional ones filled.

    Input: conversion_id, person_id, occurred_at, value (optional, default 1.0; a null
    value stays null in the credits),
    kind (optional), lead_created_at / opportunity_created_at / won_at (optional
    milestones for the U/W/full-path models).
    """
    _require(
        conversions,
        "conversions",
        ["conversion_id", "person_id", "occurred_at"],
        "Conversions need conversion_id, person_id and occurred_at (value and kind are optional).",
    )
    c = conversions

    def ts(name: str) -> ir.Value:
        if name not in c.columns:
            return ibis.null(dt.Timestamp())
        col = c[name]
        return col if col.type().is_timestamp() else col.cast(dt.Timestamp())

    return c.select(
        conversion_id=c.conversion_id.cast("string"),
        person_id=c.person_id.cast("string"),
        conv_at=ts("occurred_at"),
        kind=c.kind.cast("string") if "kind" in c.columns else ibis.null(dt.string),
        # an unknown value (a deal in a currency without a rate) stays unknown: its
        # credits carry a null value, never a silent 0; its weights are still credited
        conv_value=(
            c.value.cast("float64") if "value" in c.columns else ibis.literal(1.0, type=dt.float64)
        ),
        lead_at=ts("lead_created_at"),
        opp_at=ts("opportunity_created_at"),
        won_at=ts("won_at"),
    )


_MILESTONES = {
    # role: (milestone column, conversion kinds that have reached it)
    "lead": ("lead_at", ("lead", "opportunity", "won")),
    "opp": ("opp_at", ("opportunity", "won")),
    "won": ("won_at", ("won",)),
}


def _order(t: ir.Table) -> list[ir.Value]:
    return [t.tp_at, t.touchpoint_id]


def _renumber(t: ir.Table, milestones: frozenset[str]) -> ir.Table:
    """Add pos, n, last_at and the milestone anchors, all in one window pass.

    ``milestones`` names the roles whose milestone column the conversions have; the
    others fall on the conversion itself, at or after every touch of the path, so
    their count is ``n`` and needs no window of its own.
    """
    w = ibis.window(group_by=t.conversion_id, order_by=_order(t))
    whole = ibis.window(group_by=t.conversion_id)
    counted = t.mutate(
        pos=ibis.row_number().over(w),
        n=t.touchpoint_id.count().over(whole),
        last_at=t.tp_at.max().over(whole),
        **_touches_before_milestones(t, whole, milestones),
    )
    counted = counted.mutate(
        **{f"__before_{r}": counted.n for r in _MILESTONES if r not in milestones}
    )
    # each window appears once in the SQL; the anchors are plain arithmetic on top
    anchored = counted.mutate(**_anchors(counted))
    # an explicit column list (not drop(), whose EXCLUDE order follows string hashing)
    # keeps the SQL byte-identical from run to run
    return anchored.select(*[c for c in anchored.columns if not c.startswith("__before_")])


def _keep(t: ir.Table, keep: ir.BooleanValue, milestones: frozenset[str]) -> ir.Table:
    # materialise the (window) condition as a column before filtering on it: filters
    # over window expressions do not compile on every backend (PySpark)
    return _renumber(t.mutate(__keep=keep).filter(ibis._.__keep).drop("__keep"), milestones)


def _apply(t: ir.Table, tr: PathTransform, milestones: frozenset[str]) -> ir.Table:
    if tr.name == "unique":
        return t
    ordered = ibis.window(group_by=t.conversion_id, order_by=_order(t))
    whole = ibis.window(group_by=t.conversion_id)
    if tr.name == "exposure":
        prev = t.channel.lag().over(ordered)
        return _keep(t, prev.isnull() | (prev != t.channel), milestones)
    if tr.name == "first":
        per_channel = ibis.window(group_by=[t.conversion_id, t.channel], order_by=_order(t))
        return _keep(t, ibis.row_number().over(per_channel) == 0, milestones)
    # the null touch of a conversion without a path is never listed, so it is kept
    listed = t.channel.isin(list(tr.channels)).fill_null(False)
    all_listed = listed.cast("int8").min().over(whole) == 1
    if tr.name == "remove_if_not_all":
        return _keep(t, ~listed | all_listed, milestones)
    # remove_if_last_and_not_all: keep everything up to the last unlisted touch
    last_unlisted = ibis.cases((~listed, t.pos), else_=ibis.null(dt.int64)).max().over(whole)
    return _keep(t, all_listed | (t.pos <= last_unlisted), milestones)


def _touches_before_milestones(
    t: ir.Table, whole: ibis.Window, milestones: frozenset[str]
) -> dict[str, ir.IntegerValue]:
    """How many touches of each path lie at or before each given milestone (window counts)."""
    cols = {}
    for role, (col, _) in _MILESTONES.items():
        if role not in milestones:
            continue
        m = t[col].fill_null(t.conv_at)
        m = ibis.cases((m > t.conv_at, t.conv_at), else_=m)
        cols[f"__before_{role}"] = (t.tp_at <= m).fill_null(False).cast(dt.int64).sum().over(whole)
    return cols


def _anchors(t: ir.Table) -> dict[str, ir.IntegerValue]:
    """lead_pos, opp_pos, won_pos: the last touch at or before each CRM milestone.

    Touches are ordered by time, so the last touch at or before instant ``m`` sits
    at position (number of touches at or before ``m``) − 1; counting needs no
    position, so the counts share the window pass that numbers the touches.

    A milestone left empty is taken to be the conversion itself (and one later
    than the conversion is capped at it). A milestone later in the funnel than
    the conversion's kind (an opportunity milestone of a lead conversion) has not
    happened: null. So is a milestone with no touch at or before it.
    """
    cols = {}
    for role, (_, kinds) in _MILESTONES.items():
        reached = (t.kind.isnull() | t.kind.isin(list(kinds))).fill_null(False)
        before = t[f"__before_{role}"]
        cols[f"{role}_pos"] = ibis.cases(
            (reached & (before > 0), before - 1), else_=ibis.null(dt.int64)
        )
    return cols


def build_paths(
    touchpoints: ir.Table,
    conversions: ir.Table,
    *,
    lookback_days: float | None = 90,
    lookback_from: LookbackFrom = "lead_created",
    lookback_steps: int | None = None,
    transforms: Sequence[PathTransform] = (),
) -> ir.Table:
    """One row per conversion × touch on its path (and one row for a conversion with none).

    Parameters
    ----------
    touchpoints, conversions
        Canonical tables (see :func:`touchpoints_frame`, :func:`conversions_frame`).
    lookback_days
        Length of the lookback window in days (``None``: no limit). GA4's
        default for key events is 90 days.
    lookback_from
        Where the window is counted back from. ``"lead_created"`` (default): from
        the person's lead creation when the conversion has one (else from the
        conversion), so an opportunity or a deal closed months later keeps the
        journey that produced its lead, as HubSpot's deal and revenue
        attribution does. ``"conversion"``: from the conversion itself, as GA4
        counts back from each key event. Either way no touch after the
        conversion is on its path.
    lookback_steps
        Keep only the last N touches of the path (``None``: all), applied before
        the transforms, as Snowplow's ``path_lookback_steps`` (``trim_long_path``).
    transforms
        :class:`PathTransform` s applied in order.

    Returns
    -------
    ibis.Table
        conversion_id, person_id, conv_at, kind, conv_value, lead_at, opp_at,
        won_at, touchpoint_id, tp_at, channel, campaign, pos (0-based, in time
        order; ties broken by touchpoint_id), n (path length; 0 for a conversion
        with no touch, whose touch columns are null), last_at (time of the newest
        touch on the path), lead_pos, opp_pos, won_pos (positions of the touches
        anchoring the CRM milestones; see :func:`_anchors`).
    """
    if lookback_days is not None and lookback_days <= 0:
        raise ConfigError(f"lookback_days must be positive or None, got {lookback_days!r}.")
    if lookback_from not in ("lead_created", "conversion"):
        raise ConfigError(
            f"lookback_from must be 'lead_created' or 'conversion', got {lookback_from!r}."
        )
    if lookback_steps is not None and lookback_steps < 1:
        raise ConfigError(f"lookback_steps must be at least 1 or None, got {lookback_steps!r}.")
    tp = touchpoints_frame(touchpoints)
    cv = conversions_frame(conversions)
    preds = [cv.person_id == tp.tp_person, tp.tp_at <= cv.conv_at]
    if lookback_days is not None:
        seconds = round(float(lookback_days) * 86400)
        if lookback_from == "lead_created":
            early_lead = cv.lead_at.notnull() & (cv.lead_at < cv.conv_at)
            origin = ibis.cases((early_lead, cv.lead_at), else_=cv.conv_at)
        else:
            origin = cv.conv_at
        preds.append(tp.tp_at >= origin - ibis.interval(seconds=seconds))
    joined = cv.left_join(tp, preds).select(
        cv.conversion_id,
        cv.person_id,
        cv.conv_at,
        cv.kind,
        cv.conv_value,
        cv.lead_at,
        cv.opp_at,
        cv.won_at,
        tp.touchpoint_id,
        tp.tp_at,
        tp.channel,
        tp.campaign,
    )
    given = frozenset(
        role
        for role, column in (
            ("lead", "lead_created_at"),
            ("opp", "opportunity_created_at"),
            ("won", "won_at"),
        )
        if column in conversions.columns
    )
    t = _renumber(joined, given)
    if lookback_steps is not None:
        drop = (t.n - lookback_steps).clip(lower=0)
        shifted = {
            f"{r}_pos": ibis.cases(
                (t[f"{r}_pos"] >= drop, t[f"{r}_pos"] - drop), else_=ibis.null(dt.int64)
            )
            for r in _MILESTONES
        }
        # last_at is unchanged: the newest touch is always kept
        t = t.mutate(pos=t.pos - drop, n=t.n - drop, **shifted).filter(lambda x: x.pos >= 0)
    for tr in transforms:
        t = _apply(t, tr, given)
    return t
