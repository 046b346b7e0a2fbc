"""revloop: closed-loop B2B revenue attribution, RevOps vital signs and predictable revenue."""

from __future__ import annotations

from revloop import schema as schema
from revloop.engine import connect as connect
from revloop.engine import execute as execute
from revloop.engine import to_sql as to_sql
from revloop.exceptions import RevloopError as RevloopError
from revloop.exceptions import SchemaError as SchemaError

__version__ = "0.1.0"

__all__ = [
    "RevloopError",
    "SchemaError",
    "__version__",
    "connect",
    "execute",
    "schema",
    "to_sql",
]
