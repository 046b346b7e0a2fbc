"""Canonical tables: schemas, conformance and validation (spec layer)."""

from __future__ import annotations

from revloop.schema._tables import TABLES as TABLES
from revloop.schema._tables import Column as Column
from revloop.schema._tables import TableSpec as TableSpec
from revloop.schema._tables import get_spec as get_spec
from revloop.schema._tables import schema as schema
from revloop.schema._validate import Issue as Issue
from revloop.schema._validate import ValidationReport as ValidationReport
from revloop.schema._validate import conform as conform
from revloop.schema._validate import validate as validate

__all__ = [
    "TABLES",
    "Column",
    "Issue",
    "TableSpec",
    "ValidationReport",
    "conform",
    "get_spec",
    "schema",
    "validate",
]
