"""Column checks shared by the touchpoints functions: fail early, name the fix."""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import SchemaError

__all__ = ["column_or_null", "fill_optional", "require_columns"]


def _type_ok(actual: dt.DataType, expected: str) -> bool:
    if actual.is_null():
        return True
    if expected == "timestamp":
        return bool(actual.is_timestamp())
    if expected == "json":
        return bool(actual.is_json() or actual.is_string())
    if expected == "string":
        return bool(actual.is_string())
    return True


def require_columns(
    table: ir.Table, table_name: str, columns: Mapping[str, str], *, purpose: str
) -> None:
    """Raise :class:`SchemaError` listing every missing or mistyped column."""
    problems: list[str] = []
    schema = table.schema()
    for name, kind in columns.items():
        if name not in schema:
            problems.append(
                f"{table_name} is missing column {name!r} ({kind}), needed by {purpose}"
            )
        elif not _type_ok(schema[name], kind):
            problems.append(
                f"{table_name}.{name} is {schema[name]}, expected {kind} (needed by {purpose})"
            )
    if problems:
        raise SchemaError(
            "; ".join(problems) + f". Found columns: {list(schema.names)}. Rename or cast with "
            f"revloop.schema.conform({table_name}, {table_name!r}, column_map={{'<canonical>': '<yours>'}})."
        )


def fill_optional(table: ir.Table, columns: Mapping[str, str]) -> ir.Table:
    """Add each absent optional column as typed nulls (as ``conform`` would)."""
    missing = {name: ibis.null(kind) for name, kind in columns.items() if name not in table.columns}
    return table.mutate(**missing) if missing else table


def column_or_null(table: ir.Table, name: str, kind: str = "string") -> ir.Value:
    """``table[name]``, or a typed null when the (optional) column is absent."""
    return table[name] if name in table.columns else ibis.null(kind)
