"""The metric registry: every RevOps and subscription metric, its tables and its policies.

A metric is a compute function decorated with :func:`metric`. The decorator records
the canonical tables it reads, every *policy* (a definitional choice the vendors
disagree on) with its default, its allowed values and the vendor each value matches,
and the published benchmarks its figure can be read against. :func:`compute` checks
the policies, calls the function and returns a :class:`MetricResult`: the unexecuted
Ibis table plus the policies in force, so every output can state them.

Every metric function has the signature::

    fn(tables: Mapping[str, ibis.Table], *, scope: Scope, **policies) -> ibis.Table

and returns a table whose headline column is ``value`` (other columns are further
statistics), with the ``scope.by`` column and a ``period`` column (the period's
start) first when they are asked for.

References: ``shared/reference/revops.md`` (definitions and vendor defaults).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import ibis.expr.types as ir

from revloop.exceptions import ConfigError, SchemaError, UnknownModelError

__all__ = [
    "Benchmark",
    "MetricDef",
    "MetricResult",
    "Period",
    "Policy",
    "Request",
    "Scope",
    "SharedBuild",
    "SharedTables",
    "compute",
    "get_metric",
    "list_metrics",
    "metric",
]

Period: TypeAlias = Literal["day", "week", "month", "quarter", "year"]
PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
Family: TypeAlias = Literal["lead", "pipeline", "subscription"]
DateLike: TypeAlias = str | _dt.date | _dt.datetime


@dataclass(frozen=True)
class Policy:
    """One definitional choice of a metric, as a named parameter.

    Attributes
    ----------
    name
        The parameter name: the ``--param`` key and the Python keyword.
    default
        The value used when the user gives none (ChartMogul's where it has one).
    choices
        The closed set of allowed values, or ``None`` for a free value checked by
        ``check`` (a number of days, a time zone).
    doc
        What the choice means.
    sources
        For each choice (or for the parameter), the vendor or paper it matches.
    check
        Optional validator for free values: returns an error message or ``None``.
    normalise
        Optional spelling fix applied first, for values with one obvious meaning
        (``"none"`` for null, ``"us"`` for the country code ``"US"``); the output states
        the normalised value.
    """

    name: str
    default: Any
    choices: tuple[Any, ...] | None = None
    doc: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)
    check: Callable[[Any], str | None] | None = None
    normalise: Callable[[Any], Any] | None = None

    def validate(self, metric: str, value: Any) -> Any:
        if self.normalise is not None:
            value = self.normalise(value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"{metric}: {self.name}={value!r} is not allowed; choose one of "
                f"{list(self.choices)} (default {self.default!r})."
            )
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ConfigError(f"{metric}: {self.name}={value!r}: {problem}")
        return value


def null_spelling(value: Any) -> Any:
    """``None`` for the text ``none`` or ``null`` (any case), as ``--param`` gives it."""
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    return value


@dataclass(frozen=True)
class Benchmark:
    """A published figure the user's own can be read against (with its source).

    ``column`` is the output column holding the user's comparable figure (``None``: none
    is comparable, e.g. an odds ratio between studies); ``variant`` the ``variant`` policy
    the figure is quoted under when it is not the metric's default (NRR and GRR
    benchmarks are year over year: ``"yoy"``), so the user's own is read from that
    variant's output.
    """

    label: str
    value: float
    unit: str
    source: str
    column: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class Scope:
    """What part of the data a metric covers and how it is grouped.

    Attributes
    ----------
    by
        A column to group by (``source``, ``owner_id``, ``segment`` …), or ``None``.
    period
        Group by calendar period of the metric's anchor date, or ``None`` for one figure.
    start, end
        Half-open window ``[start, end)`` on the metric's anchor date.
    as_of
        Use only what was known at this instant: later rows and later changes are ignored
        (leak-free history).
    """

    by: str | None = None
    period: Period | None = None
    start: DateLike | None = None
    end: DateLike | None = None
    as_of: DateLike | None = None

    def __post_init__(self) -> None:
        if self.period is not None and self.period not in PERIODS:
            raise ConfigError(f"period must be one of {list(PERIODS)}, got {self.period!r}.")
        when = {k: _instant(k, getattr(self, k)) for k in ("start", "end", "as_of")}
        start, end = when["start"], when["end"]
        if start is not None and end is not None and start >= end:
            raise ConfigError(
                f"the window is empty: start={self.start} is not before end={self.end} "
                "(the window is [start, end)). Give a start earlier than the end."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "period": self.period,
            "start": None if self.start is None else str(self.start),
            "end": None if self.end is None else str(self.end),
            "as_of": None if self.as_of is None else str(self.as_of),
        }


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?")


def as_datetime(value: DateLike) -> _dt.datetime:
    """A date, datetime or ISO text as a naive datetime (a date is its midnight).

    Text must be in the extended form (2026-01-01, 2026-01-01T09:30[:00][+02:00]), which
    every engine reads; Python alone also takes 20260101 and 2026W01, which DuckDB does
    not. Raises ``ValueError`` otherwise.
    """
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    text = str(value).strip()
    if not _ISO.fullmatch(text):
        raise ValueError(f"not an ISO date: {text!r}")
    return _dt.datetime.fromisoformat(text).replace(tzinfo=None)


def _instant(name: str, value: DateLike | None) -> _dt.datetime | None:
    """``value`` as a naive datetime (to compare the window's ends); a clear error when it
    is not a date, naming the option and the format."""
    if value is None:
        return None
    try:
        return as_datetime(value)
    except ValueError:
        option = "--" + name.replace("_", "-")
        raise ConfigError(
            f"{name} ({option}) = {value!r} is not a date: give an ISO date or date-time "
            "such as 2026-01-01 or 2026-01-01T09:30."
        ) from None


MetricFn: TypeAlias = Callable[..., ir.Table]
SharedBuild: TypeAlias = Callable[[Mapping[str, ir.Table]], ir.Table]
"""``build(available) -> table``: builds a shared table's expression from ``available``,
the canonical tables plus the shared tables materialised before it (so the stage
entries read the materialised stage history instead of rebuilding it)."""
PolicyRule: TypeAlias = Callable[[Mapping[str, Any], dict[str, Any]], dict[str, Any]]
"""``rule(given, policy) -> policy``: the policies one choice implies (ProfitWell's churn
convention sets ``same_period_new_churn=ignore``), applied after the defaults so that
the policy every output states is the one in force; a contradicting value the user
gave is an error."""
SharedTables: TypeAlias = Callable[..., dict[str, SharedBuild]]
"""``fn(tables, *, scope, **policy) -> {key: builder}``: the intermediate tables a metric
reads that other metrics build the same way (the MRR ledger), each as its key (cheap)
and a :data:`SharedBuild` (called once per key, in the order given). A runner that
computes several metrics materialises each distinct key once and passes it in
``tables`` under that key; the metric then reads it instead of rebuilding it (see
:func:`shared_tables`). Keys spell out everything the table depends on."""


@dataclass(frozen=True)
class MetricDef:
    """A registered metric."""

    name: str
    family: Family
    tables: tuple[str, ...]
    policies: tuple[Policy, ...]
    fn: MetricFn
    doc: str
    benchmarks: tuple[Benchmark, ...] = ()
    optional_tables: tuple[str, ...] = ()
    shared: SharedTables | None = None
    implies: PolicyRule | None = None

    def policy(self, name: str) -> Policy:
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(name)

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled in and every value checked; unknown names are an error."""
        names = [p.name for p in self.policies]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ConfigError(
                f"{self.name} takes no parameter(s) {unknown}. Its policies: {names}."
            )
        policy = {
            p.name: p.validate(self.name, params.get(p.name, p.default)) for p in self.policies
        }
        return policy if self.implies is None else self.implies(params, policy)


@dataclass(frozen=True)
class MetricResult:
    """A metric's unexecuted table and the policies it was computed with.

    ``table`` has the ``by`` column and ``period`` first when asked for, then ``value``
    (the headline figure) and any further statistics.
    """

    metric: str
    policy: dict[str, Any]
    scope: Scope
    table: ir.Table
    benchmarks: tuple[Benchmark, ...] = ()

    @property
    def grouped(self) -> bool:
        return self.scope.by is not None or self.scope.period is not None


@dataclass(frozen=True)
class Request:
    """One metric to compute in a batch: its name, policies and scope.

    The batch runner (``revloop.engine.compute_metrics``) builds the tables several
    requests share once.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    by: str | None = None
    period: Period | None = None
    start: DateLike | None = None
    end: DateLike | None = None
    as_of: DateLike | None = None

    @property
    def scope(self) -> Scope:
        return Scope(
            by=self.by, period=self.period, start=self.start, end=self.end, as_of=self.as_of
        )


_REGISTRY: dict[str, MetricDef] = {}


def metric(
    name: str,
    *,
    family: Family,
    tables: Sequence[str],
    policies: Sequence[Policy] = (),
    benchmarks: Sequence[Benchmark] = (),
    optional_tables: Sequence[str] = (),
    shared: SharedTables | None = None,
    implies: PolicyRule | None = None,
) -> Callable[[MetricFn], MetricFn]:
    """Register a metric function under ``name`` (see the module docs for its signature)."""

    def register(fn: MetricFn) -> MetricFn:
        if name in _REGISTRY:
            raise ConfigError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = MetricDef(
            name=name,
            family=family,
            tables=tuple(tables),
            policies=tuple(policies),
            fn=fn,
            doc=(fn.__doc__ or "").strip(),
            benchmarks=tuple(benchmarks),
            optional_tables=tuple(optional_tables),
            shared=shared,
            implies=implies,
        )
        return fn

    return register


def get_metric(name: str) -> MetricDef:
    """The registered metric called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown metric {name!r}. Registered metrics: {sorted(_REGISTRY)}."
        ) from None


def list_metrics(family: Family | None = None) -> list[str]:
    """Names of the registered metrics, optionally of one family."""
    return sorted(k for k, v in _REGISTRY.items() if family is None or v.family == family)


def _check_tables(name: str, definition: MetricDef, tables: Mapping[str, ir.Table]) -> None:
    """Raise :class:`SchemaError` naming every canonical table ``name`` needs and lacks."""
    missing = [t for t in definition.tables if t not in tables]
    if missing:
        raise SchemaError(
            f"{name} needs the table(s) {missing}; given {sorted(tables)}. "
            f"Add {', '.join(m + '.csv' for m in missing)} to the folder."
        )


def shared_tables(
    name: str,
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    **params: Any,
) -> dict[str, SharedBuild]:
    """The intermediate tables metric ``name`` would build that others build alike.

    ``{key: builder of the unexecuted table}`` (a :data:`SharedBuild`, called with the
    tables available so far); empty for a metric that shares nothing. Keys are cheap
    to list; a builder runs only for a key not yet built. A runner materialises each
    distinct key once (``revloop.engine.compute_metrics``) and adds it to ``tables``
    under its key before calling :func:`compute`. A missing canonical table raises
    :class:`SchemaError` here, before any runner builds anything.
    """
    definition = get_metric(name)
    _check_tables(name, definition, tables)
    if definition.shared is None:
        return {}
    policy = definition.resolve(params)
    return definition.shared(tables, scope=scope, **policy)


def compute(
    name: str,
    tables: Mapping[str, ir.Table],
    *,
    by: str | None = None,
    period: Period | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    as_of: DateLike | None = None,
    **params: Any,
) -> MetricResult:
    """Build metric ``name`` over canonical ``tables`` (unexecuted).

    Parameters
    ----------
    name
        A registered metric (:func:`list_metrics`).
    tables
        Canonical tables by name; the metric says which it needs.
    by, period, start, end, as_of
        The :class:`Scope`.
    **params
        The metric's policies; anything not given takes its documented default.

    Examples
    --------
    >>> import ibis
    >>> import revloop.metrics  # registers the metric families
    >>> opp = ibis.memtable({"opportunity_id": ["o1", "o2"], "status": ["won", "won"],
    ...                      "created_at": ["2024-01-01", "2024-01-02"],
    ...                      "closed_at": ["2024-02-01", "2024-03-01"], "amount": [100.0, 300.0]})
    >>> result = compute("average_deal_size", {"opportunities": opp}, statistic="median")
    >>> result.policy
    {'statistic': 'median', 'reporting_currency': 'USD'}
    >>> sorted(result.table.columns)
    ['closed_without_date', 'deals', 'value', 'won_amount', 'won_without_amount']
    """
    definition = get_metric(name)
    _check_tables(name, definition, tables)
    policy = definition.resolve(params)
    scope = Scope(by=by, period=period, start=start, end=end, as_of=as_of)
    table = definition.fn(tables, scope=scope, **policy)
    return MetricResult(
        metric=name, policy=policy, scope=scope, table=table, benchmarks=definition.benchmarks
    )
