"""The contract every attribution model shares, and the registry that builds them.

Following scikit-learn's estimator protocol (``doc/developers/develop.rst``) and
pymc-marketing's component registry: ``__init__`` stores keyword
hyperparameters unchanged; ``fit`` validates them, learns, and returns ``self``;
learned attributes end in ``_``; ``credit(conversions)`` returns the credits
table at conversion × touch grain; ``to_dict`` / ``from_dict`` round-trip.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution._paths import (
    UNATTRIBUTED,
    LookbackFrom,
    PathTransform,
    TransformSpec,
    build_paths,
    normalize_transforms,
)
from revloop.exceptions import ConfigError, NotFittedError, UnknownModelError

__all__ = [
    "CREDIT_COLUMNS",
    "AttributionModel",
    "get_model",
    "list_models",
    "model_class",
    "parse_duration",
]

CREDIT_COLUMNS = (
    "model",
    "conversion_id",
    "kind",
    "conversion_at",
    "touchpoint_id",
    "touch_at",
    "channel",
    "campaign",
    "weight",
    "value",
)
"""Columns of a credits table, in order."""

_REGISTRY: dict[str, type[AttributionModel]] = {}

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}


def parse_duration(value: str | float | _dt.timedelta) -> float:
    """A duration in seconds, from ``"7 days"``, ``"168 hours"``, ``"1 week"``, a
    :class:`~datetime.timedelta`, or a number of days.

    Examples
    --------
    >>> parse_duration("7 days") == parse_duration("168h") == parse_duration(7) == 604800
    True
    """
    if isinstance(value, _dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) * 86400
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        unit = m.group(2).lower().rstrip("s") if m else ""
        if unit == "" and m:
            unit = "day"
        if not m or (unit not in _UNITS and unit + "s" not in _UNITS):
            raise ConfigError(
                f"cannot read {value!r} as a duration. Use e.g. '7 days', '168 hours', "
                "'1 week' or a number of days."
            )
        seconds = float(m.group(1)) * _UNITS[unit]
    else:
        raise ConfigError(f"cannot read {value!r} as a duration; use e.g. '7 days'.")
    if seconds <= 0:
        raise ConfigError(f"a duration must be positive, got {value!r}.")
    return seconds


def _jsonable(v: Any) -> Any:
    if isinstance(v, PathTransform):
        return v.to_dict()
    if isinstance(v, _dt.timedelta):
        return f"{v.total_seconds()} seconds"
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    return v


@dataclass(kw_only=True, eq=False, repr=False)
class AttributionModel:
    """Base of every attribution model.

    Parameters
    ----------
    lookback_days
        Length of the lookback window in days (``None`` for no limit). Default
        90, as GA4 for key events other than first visit.
    lookback_from
        ``"lead_created"`` (default): the window counts back from the lead's
        creation, so deals keep the journey that created their lead (HubSpot's
        deal and revenue attribution); ``"conversion"``: from the conversion
        itself (GA4).
    lookback_steps
        Keep only the last N touches of a path (``None``: all); applied before
        ``transforms``, as Snowplow's ``path_lookback_steps``.
    transforms
        Path transforms applied in order: ``"unique"``, ``"exposure"``, ``"first"``,
        ``("remove_if_last_and_not_all", [channels])``, ``("remove_if_not_all", [channels])``.

    Attributes
    ----------
    touchpoints_
        The touchpoints table the model was fitted on (set by :meth:`fit`).
    transforms_
        The validated path transforms.
    """

    lookup_name: ClassVar[str] = ""
    family: ClassVar[str] = "rule_based"

    lookback_days: float | None = 90
    lookback_from: LookbackFrom = "lead_created"
    lookback_steps: int | None = None
    transforms: Sequence[TransformSpec] = field(default_factory=tuple)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("lookup_name", "")
        if name:
            if name in _REGISTRY and _REGISTRY[name].__qualname__ != cls.__qualname__:
                raise ConfigError(f"attribution model {name!r} is registered twice")
            _REGISTRY[name] = cls

    # -- parameters -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The hyperparameters as given to ``__init__``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description: ``{"model": lookup_name, "params": {...}}``.

        Path transforms are written in their canonical form
        (``{"name": ..., "channels": [...]}``).
        """
        params = self.get_params()
        params["transforms"] = list(normalize_transforms(params["transforms"]))
        return {"model": self.lookup_name, "params": _jsonable(params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttributionModel:
        """Rebuild a model from :meth:`to_dict` output."""
        params = dict(data.get("params", {}))
        if "transforms" in params:
            params["transforms"] = tuple(normalize_transforms(params["transforms"]))
        return get_model(str(data["model"]), **params)

    def __repr__(self) -> str:
        defaults: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if _jsonable(v) != _jsonable(defaults[k])
        )
        return f"{type(self).__name__}({shown})"

    def _validate_params(self) -> None:
        if self.lookback_days is not None and not self.lookback_days > 0:
            raise ConfigError(
                f"{self.lookup_name}: lookback_days must be a positive number of days or None, "
                f"got {self.lookback_days!r}."
            )
        if self.lookback_from not in ("lead_created", "conversion"):
            raise ConfigError(
                f"{self.lookup_name}: lookback_from must be 'lead_created' (HubSpot) or "
                f"'conversion' (GA4), got {self.lookback_from!r}."
            )
        if self.lookback_steps is not None and (
            not isinstance(self.lookback_steps, int) or self.lookback_steps < 1
        ):
            raise ConfigError(
                f"{self.lookup_name}: lookback_steps must be a whole number ≥ 1 or None, "
                f"got {self.lookback_steps!r}."
            )

    # -- estimator protocol -----------------------------------------------------------------
    def fit(self, touchpoints: ir.Table, conversions: ir.Table | None = None) -> Self:
        """Validate the hyperparameters and keep the touchpoints; returns ``self``.

        Rule-based models learn nothing from data; data-driven models (Markov,
        Shapley) learn from the converting and non-converting paths here.
        """
        self._validate_params()
        self.transforms_ = normalize_transforms(self.transforms)
        self.touchpoints_ = touchpoints
        self._fit(touchpoints, conversions)
        return self

    def _fit(self, touchpoints: ir.Table, conversions: ir.Table | None) -> None:
        """Learn from data (data-driven models override this)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "touchpoints_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call "
                f".fit(touchpoints) before .credit(conversions)."
            )

    def paths(self, conversions: ir.Table) -> ir.Table:
        """The conversion paths this model credits (see :func:`build_paths`)."""
        self._check_fitted()
        return build_paths(
            self.touchpoints_,
            conversions,
            lookback_days=self.lookback_days,
            lookback_from=self.lookback_from,
            lookback_steps=self.lookback_steps,
            transforms=self.transforms_,
        )

    def weight(self, paths: ir.Table) -> ir.FloatingValue:
        """Each touch's share of its conversion, for paths with at least one touch.

        The shares of one conversion's touches are ≥ 0 and sum to 1.
        """
        raise NotImplementedError

    def credit(self, conversions: ir.Table) -> ir.Table:
        """Credit each conversion to the touches on its path.

        Input columns: conversion_id, person_id, occurred_at, value (default 1.0),
        kind, and optionally the milestones lead_created_at,
        opportunity_created_at, won_at.

        Returns
        -------
        ibis.Table
            One row per conversion × credited touch: model, conversion_id, kind,
            conversion_at, touchpoint_id, touch_at, channel, campaign, weight,
            value. The weights of a conversion sum to 1 and its values to its
            value. A conversion without a touch in its window gets one row with
            channel ``"(unattributed)"`` and weight 1, so totals reconcile.
        """
        return credits_from_paths(self, self.paths(conversions))


def path_weight(model: AttributionModel, p: ir.Table) -> ir.FloatingValue:
    """``model``'s weight of each row of paths table ``p``; 1 for a conversion without a touch."""
    return ibis.cases((p.n > 0, model.weight(p)), else_=ibis.literal(1.0, type=dt.float64))


def credits_select(t: ir.Table, model: ir.StringValue, weight: str) -> ir.Table:
    """The credits columns (:data:`CREDIT_COLUMNS`) of a paths table with a ``weight`` column."""
    return t.select(
        model=model,
        conversion_id=t.conversion_id,
        kind=t.kind,
        conversion_at=t.conv_at,
        touchpoint_id=t.touchpoint_id,
        touch_at=t.tp_at,
        channel=ibis.cases((t.n > 0, t.channel), else_=ibis.literal(UNATTRIBUTED)),
        campaign=t.campaign,
        weight=t[weight],
        value=t[weight] * t.conv_value,
    )


def credits_from_paths(model: AttributionModel, p: ir.Table) -> ir.Table:
    """Turn a paths table into the credits of ``model``."""
    # the weight becomes a column first, so its expression is written once in the SQL
    t = p.mutate(__weight=path_weight(model, p))
    return credits_select(t, ibis.literal(model.lookup_name, type=dt.string), "__weight")


def model_class(name: str) -> type[AttributionModel]:
    """The registered class for ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown attribution model {name!r}. Registered models: {sorted(_REGISTRY)}."
        ) from None


def get_model(name: str, **params: Any) -> AttributionModel:
    """Build a registered model by its lookup name.

    Examples
    --------
    >>> get_model("time_decay", half_life="3 days")
    TimeDecay(half_life='3 days')
    """
    cls = model_class(name)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(
            f"{name} takes no parameter(s) {unknown}. Its parameters: {sorted(names)}."
        )
    return cls(**params)


def list_models(family: str | None = None) -> list[str]:
    """Lookup names of the registered models, optionally of one family."""
    return sorted(k for k, v in _REGISTRY.items() if family is None or v.family == family)
