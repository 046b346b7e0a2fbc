"""Conform raw tables to the canonical schemas and report every problem at once."""

from __future__ import annotations

import datetime as _dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import SchemaError
from revloop.schema._tables import Column, TableSpec, get_spec

__all__ = ["Issue", "ValidationReport", "conform", "validate"]

Severity = Literal["error", "warning"]
Problem = Literal[
    "missing_column",
    "wrong_type",
    "unparseable",
    "null_key",
    "duplicate_key",
    "future_timestamp",
    "negative_value",
    "out_of_range",
    "unknown_value",
    "out_of_order",
]


@dataclass(frozen=True)
class Issue:
    """One problem found in one column of one table.

    ``rows`` is how many rows are affected (0 for a whole-column problem),
    ``example`` one offending value, and ``fix`` what to do about it.
    """

    table: str
    column: str | None
    problem: Problem
    message: str
    fix: str
    rows: int = 0
    example: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        example = f" (e.g. {self.example!r})" if self.example is not None else ""
        count = f" in {self.rows:,} row{'s' if self.rows != 1 else ''}" if self.rows else ""
        return f"{where}: {self.message}{count}{example}. {self.fix}"


@dataclass
class ValidationReport:
    """Every issue found while validating one or more tables.

    ``ok`` is true when no issue is an error; warnings do not block loading.
    """

    issues: list[Issue] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: ValidationReport) -> ValidationReport:
        self.issues.extend(other.issues)
        self.rows.update(other.rows)
        return self

    def raise_for_errors(self) -> None:
        """Raise one :class:`SchemaError` listing every error, if there is any."""
        if self.ok:
            return
        lines = "\n".join(f"  - {i}" for i in self.errors)
        n = len(self.errors)
        raise SchemaError(f"{n} problem{'s' if n != 1 else ''} in the input:\n{lines}", self)

    def __str__(self) -> str:
        if not self.issues:
            tables = ", ".join(f"{k} ({v:,} rows)" for k, v in self.rows.items())
            return f"no issues: {tables}" if tables else "no issues"
        return "\n".join(f"[{i.severity}] {i}" for i in self.issues)


_PARSEABLE_FROM_STRING = (dt.Timestamp, dt.Date, dt.Floating, dt.Integer, dt.Boolean, dt.JSON)


def _suggest(spec: TableSpec, missing: str, available: list[str]) -> str:
    close = difflib.get_close_matches(missing, available, n=1, cutoff=0.5)
    if not close:
        # common vendor spellings: created -> created_at, id -> lead_id
        stem = missing.removesuffix("_at").removesuffix("_id")
        close = [a for a in available if a.lower() == stem or stem in a.lower()][:1]
    if close:
        return f"Pass column_map={{{missing!r}: {close[0]!r}}}."
    return f"Add a column {missing!r} ({spec.column(missing).dtype}) or map one with column_map={{{missing!r}: '<your column>'}}."


def _cast(col: ir.Value, target: Column) -> ir.Value:
    src = col.type()
    tgt = target.ibis_type
    if src == tgt:
        return col
    if tgt.is_timestamp() and src.is_timestamp():
        # UTC convention: drop the zone after converting (DuckDB stores tz-aware values as UTC instants)
        return col.cast(dt.Timestamp())
    if tgt.is_string():
        return col.cast("string")
    if src.is_string() and tgt.is_timestamp():
        # parse offsets ('+02:00', 'Z') as instants, then keep the UTC wall clock
        return col.try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())
    if src.is_string() or (src.is_numeric() and tgt.is_numeric()):
        return col.try_cast(tgt)
    if tgt.is_date() and src.is_timestamp():
        return col.date()
    if tgt.is_timestamp() and src.is_date():
        return col.cast(dt.Timestamp())
    return col.try_cast(tgt)


def _compatible(src: dt.DataType, target: Column) -> bool:
    tgt = target.ibis_type
    if src.is_null() or src == tgt or tgt.is_string():
        return True
    if src.is_string():
        return isinstance(tgt, _PARSEABLE_FROM_STRING)
    if tgt.is_numeric():
        return bool(src.is_numeric() or src.is_boolean())
    if tgt.is_timestamp():
        return bool(src.is_timestamp() or src.is_date())
    if tgt.is_date():
        return bool(src.is_date() or src.is_timestamp())
    return False


def _renamed(table: ir.Table, spec: TableSpec, column_map: Mapping[str, str] | None) -> ir.Table:
    if not column_map:
        return table
    unknown = [k for k in column_map if k not in spec.names]
    if unknown:
        raise SchemaError(
            f"{spec.name}: column_map names {unknown} which are not columns of {spec.name}. "
            f"Keys are canonical names: {list(spec.names)}; values are your column names."
        )
    absent = {k: v for k, v in column_map.items() if v not in table.columns}
    if absent:
        raise SchemaError(
            f"{spec.name}: column_map points at {sorted(absent.values())} which the input lacks. "
            f"Found: {list(table.columns)}."
        )
    # a canonical name may already exist under its own name; the mapped column wins
    mapped_sources = set(column_map.values())
    keep = [c for c in table.columns if c not in column_map or c in mapped_sources]
    renames = {canon: src for canon, src in column_map.items() if canon != src}
    return table.select(*keep).rename(renames)


def conform(table: ir.Table, name: str, *, column_map: Mapping[str, str] | None = None) -> ir.Table:
    """Return ``table`` in canonical form: renamed, cast, optional columns filled.

    Columns are put in canonical order and cast to the canonical types (text that
    does not parse becomes null; :func:`validate` counts those rows). Optional
    columns that are absent are added as typed nulls; extra columns are kept after
    the canonical ones. Missing required columns raise :class:`SchemaError`.

    Examples
    --------
    >>> t = ibis.memtable({"touchpoint_id": ["t1"], "person_id": ["p1"],
    ...                    "ts": ["2024-01-02 03:04:05"], "channel": ["Email"]})
    >>> conform(t, "touchpoints", column_map={"occurred_at": "ts"}).schema()["occurred_at"]
    Timestamp(timezone=None, scale=None, nullable=True)
    """
    spec = get_spec(name)
    t = _renamed(table, spec, column_map)
    missing = [c for c in spec.required if c not in t.columns]
    if missing:
        report = ValidationReport()
        report.issues.extend(_missing_issues(spec, missing, list(t.columns)))
        report.raise_for_errors()
    cols: list[ir.Value] = []
    for c in spec.columns:
        if c.name in t.columns:
            cols.append(_cast(t[c.name], c).name(c.name))
        else:
            cols.append(ibis.null(c.ibis_type).name(c.name))
    extras = [t[c] for c in t.columns if c not in spec.names]
    return t.select(*cols, *extras)


def _missing_issues(spec: TableSpec, missing: list[str], available: list[str]) -> list[Issue]:
    return [
        Issue(
            spec.name,
            m,
            "missing_column",
            f"missing required column {m!r} ({spec.column(m).dtype}); found {available}",
            _suggest(spec, m, available),
        )
        for m in missing
    ]


def _example(cond: ir.BooleanValue, value: ir.Value) -> ir.Value:
    return ibis.cases((cond, value.cast("string")), else_=ibis.null("string")).min()


def validate(
    table: ir.Table,
    name: str,
    *,
    column_map: Mapping[str, str] | None = None,
    now: _dt.datetime | None = None,
) -> ValidationReport:
    """Check ``table`` against canonical table ``name`` and collect every issue.

    Checks: required columns present; each column's type is or parses to the
    canonical type (text that does not parse is counted, with an example); keys
    and required values not null; the unique key has no duplicates; timestamps of
    things that happened are not in the future; money and counts are not
    negative; closed sets (``status``, ``kind``, ``interval`` ...) hold only known
    values; a row's end does not precede its start (a subscription row's ``ends_at``
    and ``starts_at``: an error; a deal's ``closed_at`` and ``created_at``: a warning).
    Runs two aggregate queries on the table's backend.

    Parameters
    ----------
    table
        The raw table, as read.
    name
        The canonical table it should be (``"leads"``, ``"opportunities"``, ...).
    column_map
        ``{canonical_name: your_column}`` for columns named differently.
    now
        The reference instant for the future-timestamp check (default: now, UTC).

    Examples
    --------
    >>> t = ibis.memtable({"touchpoint_id": ["t1", "t1"], "person_id": ["p1", None],
    ...                    "occurred_at": ["2024-01-02", "soon"], "channel": ["Email", "Direct"]})
    >>> for issue in validate(t, "touchpoints").issues:
    ...     print(issue)
    touchpoints.person_id: null values in 1 row. Every row needs a person_id; fill it or drop those rows before loading.
    touchpoints.occurred_at: text that does not parse as timestamp in 1 row (e.g. 'soon'). Use ISO 8601 such as '2024-05-01 13:45:00' (UTC), or fix those rows.
    touchpoints: duplicate key (touchpoint_id) in 2 rows (e.g. 't1'). Each touchpoint_id must be unique; remove or merge the duplicates.
    """
    from revloop.engine import execute

    spec = get_spec(name)
    t = _renamed(table, spec, column_map)
    report = ValidationReport()
    present = [c for c in spec.columns if c.name in t.columns]
    missing = [c for c in spec.required if c not in t.columns]
    report.issues.extend(_missing_issues(spec, missing, list(t.columns)))

    usable: list[Column] = []
    for c in present:
        src = t[c.name].type()
        if _compatible(src, c):
            usable.append(c)
        else:
            report.issues.append(
                Issue(
                    name,
                    c.name,
                    "wrong_type",
                    f"has type {src}, expected {c.dtype}",
                    f"Convert {c.name} to {c.dtype} before loading, or map another column with column_map.",
                )
            )

    now_ts = ibis.literal(
        (now or _dt.datetime.now(_dt.UTC)).replace(tzinfo=None), type=dt.Timestamp()
    )
    aggs: dict[str, ir.Value] = {"__rows": t.count()}
    checks: list[tuple[str, Column, Problem, str, str, Severity]] = []

    def add(
        key: str,
        c: Column,
        problem: Problem,
        cond: ir.BooleanValue,
        raw: ir.Value,
        message: str,
        fix: str,
        severity: Severity = "error",
    ) -> None:
        aggs[f"{key}__n"] = cond.sum()
        aggs[f"{key}__ex"] = _example(cond, raw)
        checks.append((key, c, problem, message, fix, severity))

    for i, c in enumerate(usable):
        raw = t[c.name]
        val = _cast(raw, c)
        src = raw.type()
        if src.is_string() and not c.ibis_type.is_string():
            fmt = {
                "timestamp": "Use ISO 8601 such as '2024-05-01 13:45:00' (UTC), or fix those rows.",
                "date": "Use ISO dates such as '2024-05-01', or fix those rows.",
            }.get(c.dtype, "Remove currency signs and thousands separators, or fix those rows.")
            add(
                f"c{i}_parse",
                c,
                "unparseable",
                raw.notnull() & (raw.strip() != "") & val.isnull(),
                raw,
                f"text that does not parse as {c.dtype}",
                fmt,
            )
        if c.must_be_present:
            add(
                f"c{i}_null",
                c,
                "null_key",
                raw.isnull() if not src.is_string() else (raw.isnull() | (raw.strip() == "")),
                raw,
                "null values",
                f"Every row needs a {c.name}; fill it or drop those rows before loading.",
            )
        if c.past and (c.ibis_type.is_timestamp()):
            add(
                f"c{i}_future",
                c,
                "future_timestamp",
                val > now_ts,
                val,
                "timestamps in the future",
                "Check the time zone (revloop expects UTC) and the export date.",
            )
        if c.nonnegative:
            add(
                f"c{i}_neg",
                c,
                "negative_value",
                val < 0,
                val,
                "negative values",
                f"{c.name} cannot be negative; refunds and credits belong in their own rows or tables.",
            )
        if c.at_least is not None:
            add(
                f"c{i}_low",
                c,
                "out_of_range",
                val < c.at_least,
                val,
                f"values below {c.at_least:g}",
                f"{c.name} must be at least {c.at_least:g}; fix those rows before loading.",
            )
        if c.at_most is not None:
            add(
                f"c{i}_high",
                c,
                "out_of_range",
                val > c.at_most,
                val,
                f"values above {c.at_most:g}",
                f"{c.name} must be at most {c.at_most:g} (a share: 0.2 is 20 % off, not 20); "
                "fix those rows before loading.",
            )
        if c.values is not None:
            allowed = list(c.values)
            add(
                f"c{i}_enum",
                c,
                "unknown_value",
                val.notnull() & ~val.cast("string").isin(allowed),
                val,
                "unknown values",
                f"Allowed values: {allowed}. Map yours to these before loading.",
            )

        if c.not_before is not None and any(u.name == c.not_before for u in usable):
            other = _cast(t[c.not_before], spec.column(c.not_before))
            early = val.date() < other.date() if c.order_by_day else val < other
            # the example names the row: its key, both values
            key_cols = [
                k for k in spec.unique if k in t.columns and k not in (c.name, c.not_before)
            ]
            ex = ibis.literal("").concat(
                *[
                    part
                    for k in key_cols
                    for part in (
                        ibis.literal(f"{k}="),
                        t[k].cast("string").fill_null(""),
                        ibis.literal(" "),
                    )
                ],
                ibis.literal(f"{c.name}="),
                val.cast("string"),
                ibis.literal(f" {c.not_before}="),
                other.cast("string"),
            )
            add(
                f"c{i}_order",
                c,
                "out_of_order",
                early,
                ex,
                f"values earlier than {c.not_before} on the same row"
                + (" (a day before it)" if c.order_by_day else ""),
                c.order_fix,
                severity=c.order_severity,
            )

    result = execute(t.aggregate(**aggs))
    row = result.iloc[0]
    report.rows[name] = int(row["__rows"])
    for key, c, problem, message, fix, severity in checks:
        n = int(row[f"{key}__n"] or 0)
        if n:
            ex = row[f"{key}__ex"]
            report.issues.append(
                Issue(
                    name,
                    c.name,
                    problem,
                    message,
                    fix,
                    rows=n,
                    example=None if ex is None else str(ex),
                    severity=severity,
                )
            )

    key_cols = [k for k in spec.unique if k in t.columns and any(u.name == k for u in usable)]
    if key_cols and len(key_cols) == len(spec.unique):
        keyed = t.select(**{k: _cast(t[k], spec.column(k)) for k in key_cols})
        dup = keyed.group_by(key_cols).aggregate(__n=keyed.count()).filter(lambda g: g.__n > 1)
        ex_key = (
            ibis.literal("|").join([dup[k].cast("string").fill_null("") for k in key_cols])
            if len(key_cols) > 1
            else dup[key_cols[0]].cast("string")
        )
        d = execute(dup.aggregate(n=dup.__n.sum(), ex=ex_key.min())).iloc[0]
        n = int(d["n"] or 0)
        if n:
            keys = ", ".join(key_cols)
            report.issues.append(
                Issue(
                    name,
                    None,
                    "duplicate_key",
                    f"duplicate key ({keys})",
                    f"Each {keys} must be unique; remove or merge the duplicates.",
                    rows=n,
                    example=str(d["ex"]),
                )
            )
    return report
