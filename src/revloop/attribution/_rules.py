"""Rule-based attribution models.

Each model gives every touch on a conversion's path a share of that conversion.
Models anchored on positions or CRM milestones (position-based, U, W, full
path, J, inverse J) give each anchor its share, and split the middle share
evenly across the touches that are no anchor. Two rules keep every
conversion's shares summing to 1:

- one touch that is several anchors at once (the first touch is also the last
  touch before lead creation, say) gets the sum of their shares;
- shares with nowhere to go (a middle share on a path with no middle touch, an
  anchor whose milestone has no touch before it) are dropped and the remaining
  shares rescaled, keeping their ratios. So 40/20/40 on two touches gives
  50/50 and on one touch 100%, as Snowplow and DP6 do; if every share would be
  dropped (``position_based(first=0, last=0)`` on a two-touch path), the path is
  credited linearly rather than losing the conversion (DP6 issue #43).

Milestones. ``lead``, ``opportunity`` and ``won`` anchors are the last touch at
or before the person's lead creation, opportunity creation and closed-won
(HubSpot's key conversion points). They come from the conversion's
``lead_created_at``, ``opportunity_created_at`` and ``won_at`` columns; a milestone
left empty is taken to be the conversion itself. A milestone later in the funnel
than the conversion's ``kind`` (an opportunity anchor on a lead conversion) has
not happened and takes no share.

References
----------
- HubSpot, "Understand attribution reporting" (knowledge.hubspot.com, 2023 and
  2026): U-shaped 40/40/20, W-shaped 30/30/30/10, full path 22.5×4/10, J-shaped
  20/60/20, inverse J 60/20/20, time decay with a 7-day half-life.
- Google Ads ``AttributionModelEnum``: position-based 40/20/40, time decay
  half-life one week; GA4 paid-and-organic last click ignores direct traffic.
- Snowplow ``dbt-snowplow-attribution`` 0.5.1 and DP6
  ``marketing-attribution-models`` 2.1.1 for the 1- and 2-touch cases.
- ``shared/reference/attribution.md`` §2.2, §3, §4.1.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution._base import AttributionModel, parse_duration
from revloop.exceptions import ConfigError

__all__ = [
    "RULE_BASED",
    "AnchoredModel",
    "FirstTouch",
    "FullPath",
    "InverseJShaped",
    "JShaped",
    "LastNonDirect",
    "LastTouch",
    "Linear",
    "PositionBased",
    "TimeDecay",
    "UShaped",
    "WShaped",
]

_F = dt.float64


def _f(x: float) -> ir.FloatingScalar:
    return ibis.literal(float(x), type=_F)


@dataclass(kw_only=True, eq=False, repr=False)
class FirstTouch(AttributionModel):
    """All credit to the first touch on the path (first click)."""

    lookup_name: ClassVar[str] = "first_touch"

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        return (paths.pos == 0).cast(_F)


@dataclass(kw_only=True, eq=False, repr=False)
class LastTouch(AttributionModel):
    """All credit to the last touch before the conversion (last click)."""

    lookup_name: ClassVar[str] = "last_touch"

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        return (paths.pos == paths.n - 1).cast(_F)


@dataclass(kw_only=True, eq=False, repr=False)
class LastNonDirect(AttributionModel):
    """All credit to the last touch that is not direct traffic; an all-direct path
    keeps its last touch (GA4 "paid and organic last click" semantics).

    Parameters
    ----------
    direct_channels
        Channels that count as direct. Default ``("Direct",)``, the GA4 channel name.
    """

    lookup_name: ClassVar[str] = "last_non_direct"
    direct_channels: Sequence[str] = field(default_factory=lambda: ("Direct",))

    def _validate_params(self) -> None:
        super()._validate_params()
        if isinstance(self.direct_channels, str) or not all(
            isinstance(c, str) for c in self.direct_channels
        ):
            raise ConfigError(
                f"last_non_direct: direct_channels must be a list of channel names, "
                f"got {self.direct_channels!r}."
            )

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        p = paths
        whole = ibis.window(group_by=p.conversion_id)
        direct = p.channel.isin(list(self.direct_channels)).fill_null(False)
        last_nd = ibis.cases((~direct, p.pos), else_=ibis.null(dt.int64)).max().over(whole)
        return (p.pos == last_nd.fill_null(p.n - 1)).cast(_F)


@dataclass(kw_only=True, eq=False, repr=False)
class Linear(AttributionModel):
    """Equal credit to every touch; a channel touched twice gets two shares."""

    lookup_name: ClassVar[str] = "linear"

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        return _f(1.0) / paths.n.cast(_F)


@dataclass(kw_only=True, eq=False, repr=False)
class TimeDecay(AttributionModel):
    """Credit halves for every ``half_life`` a touch lies before the conversion.

    A touch ``t`` before the conversion gets ``2 ** (-t / half_life)``, rescaled so a
    conversion's shares sum to 1 (DP6 v2 ``run_time_decay``; HubSpot and Google
    Ads use a 7-day half-life).

    Parameters
    ----------
    half_life
        ``"7 days"``, ``"168 hours"``, a :class:`~datetime.timedelta` or a number of days.
    """

    lookup_name: ClassVar[str] = "time_decay"
    half_life: str | float = "7 days"

    def _validate_params(self) -> None:
        super()._validate_params()
        parse_duration(self.half_life)

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        p = paths
        seconds = parse_duration(self.half_life)
        # 2 ** (-age / half_life) with age measured from the path's newest touch
        # rather than the conversion: the newest touch weighs 1, so long paths never
        # underflow to 0/0; the common factor cancels in the rescaling
        rel = (p.last_at.epoch_seconds() - p.tp_at.epoch_seconds()).cast(_F)
        raw = (rel * _f(-math.log(2.0) / seconds)).exp()
        return raw / raw.sum().over(ibis.window(group_by=p.conversion_id))


_ROLES = ("first", "last", "lead", "opportunity", "won")


@dataclass(kw_only=True, eq=False, repr=False)
class AnchoredModel(AttributionModel):
    """Shares for anchor touches and an even split of the rest (see module docs)."""

    def shares(self) -> dict[str, float]:
        """Share of each anchor role; the middle share is what is left of 1."""
        raise NotImplementedError

    def middle(self) -> float:
        return 1.0 - sum(self.shares().values())

    def _validate_params(self) -> None:
        super()._validate_params()
        shares = self.shares()
        bad = {k: v for k, v in shares.items() if not (isinstance(v, int | float) and 0 <= v <= 1)}
        if bad:
            raise ConfigError(f"{self.lookup_name}: shares must lie in [0, 1], got {bad}.")
        if self.middle() < -1e-9:
            raise ConfigError(
                f"{self.lookup_name}: the anchor shares {shares} add up to "
                f"{sum(shares.values()):g}, more than 1; lower them so the middle share is ≥ 0."
            )

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        p = paths
        shares = self.shares()
        middle = max(self.middle(), 0.0)
        # anchor positions with -1 for "no anchor": plain integer comparisons, no nulls
        anchors = {role: _anchor(p, role).fill_null(-1) for role in shares}
        always = {"first", "last"}  # defined on every path with a touch
        hits = [p.pos == a for a in anchors.values()]
        is_anchor = functools.reduce(operator.or_, hits)
        raw = functools.reduce(
            operator.add,
            [h.ifelse(_f(shares[r]), _f(0.0)) for h, r in zip(hits, shares, strict=True)],
        )
        total = _f(sum(shares[r] for r in shares if r in always))
        for role in shares:
            if role not in always:
                total = total + (anchors[role] >= 0).ifelse(_f(shares[role]), _f(0.0))
        n_middle = p.n - _distinct_count(list(anchors.values()))
        raw = raw + (~is_anchor & (n_middle > 0)).ifelse(_f(middle) / n_middle.cast(_F), _f(0.0))
        total = total + (n_middle > 0).ifelse(_f(middle), _f(0.0))
        return (total > 1e-12).ifelse(raw / total, _f(1.0) / p.n.cast(_F))


def _anchor(p: ir.Table, role: str) -> ir.IntegerValue:
    """Position of the anchor touch of ``role`` in each path (null if none)."""
    if role == "first":
        return ibis.literal(0, type=dt.int64)
    if role == "last":
        return p.n - 1
    if role == "lead":
        return p.lead_pos
    if role == "opportunity":
        return p.opp_pos
    if role == "won":
        return p.won_pos
    raise ConfigError(f"unknown anchor role {role!r}; expected one of {list(_ROLES)}.")


def _distinct_count(values: list[ir.IntegerValue]) -> ir.IntegerValue:
    """How many distinct values ≥ 0 among ``values`` (row-wise; -1 means none)."""
    count: ir.IntegerValue = ibis.literal(0, type=dt.int64)
    for i, v in enumerate(values):
        new = v >= 0
        for u in values[:i]:
            new = new & (u != v)
        count = count + new.ifelse(1, 0)
    return count


@dataclass(kw_only=True, eq=False, repr=False)
class PositionBased(AnchoredModel):
    """``first`` to the first touch, ``last`` to the last, the rest split evenly
    across the middle (40/20/40 by default, as Google Ads and Snowplow).

    Parameters
    ----------
    first, last
        Shares of the first and last touch; the middle gets ``1 - first - last``.
    """

    lookup_name: ClassVar[str] = "position_based"
    first: float = 0.4
    last: float = 0.4

    def shares(self) -> dict[str, float]:
        return {"first": self.first, "last": self.last}


@dataclass(kw_only=True, eq=False, repr=False)
class UShaped(AnchoredModel):
    """HubSpot's U-shaped model: 40% to the first touch, 40% to the last touch
    before lead creation, 20% to the rest. On lead conversions it equals
    ``position_based``; on deals it anchors on the lead's creation, not the deal's.
    """

    lookup_name: ClassVar[str] = "u_shaped"
    first: float = 0.4
    lead: float = 0.4

    def shares(self) -> dict[str, float]:
        return {"first": self.first, "lead": self.lead}


@dataclass(kw_only=True, eq=False, repr=False)
class WShaped(AnchoredModel):
    """30% first touch, 30% lead creation, 30% opportunity creation, 10% the rest (HubSpot)."""

    lookup_name: ClassVar[str] = "w_shaped"
    first: float = 0.3
    lead: float = 0.3
    opportunity: float = 0.3

    def shares(self) -> dict[str, float]:
        return {"first": self.first, "lead": self.lead, "opportunity": self.opportunity}


@dataclass(kw_only=True, eq=False, repr=False)
class FullPath(AnchoredModel):
    """22.5% each to the first touch and the touches at lead creation, opportunity
    creation and closed-won; 10% to the rest (HubSpot "full path", Z-shaped)."""

    lookup_name: ClassVar[str] = "full_path"
    first: float = 0.225
    lead: float = 0.225
    opportunity: float = 0.225
    won: float = 0.225

    def shares(self) -> dict[str, float]:
        return {
            "first": self.first,
            "lead": self.lead,
            "opportunity": self.opportunity,
            "won": self.won,
        }


@dataclass(kw_only=True, eq=False, repr=False)
class JShaped(AnchoredModel):
    """20% first touch, 60% last touch, 20% the rest (HubSpot J-shaped)."""

    lookup_name: ClassVar[str] = "j_shaped"
    first: float = 0.2
    last: float = 0.6

    def shares(self) -> dict[str, float]:
        return {"first": self.first, "last": self.last}


@dataclass(kw_only=True, eq=False, repr=False)
class InverseJShaped(AnchoredModel):
    """60% first touch, 20% last touch, 20% the rest (HubSpot inverse J)."""

    lookup_name: ClassVar[str] = "inverse_j_shaped"
    first: float = 0.6
    last: float = 0.2

    def shares(self) -> dict[str, float]:
        return {"first": self.first, "last": self.last}


RULE_BASED: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "u_shaped",
    "w_shaped",
    "full_path",
    "time_decay",
    "j_shaped",
    "inverse_j_shaped",
)
"""Lookup names of the rule-based models, in the order reports show them."""
