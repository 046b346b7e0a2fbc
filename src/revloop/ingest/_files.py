"""Read folders of CSV or Parquet exports named after the canonical tables."""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

import ibis.expr.types as ir

from revloop.engine import Backend
from revloop.exceptions import SchemaError
from revloop.schema import TABLES, ValidationReport, conform, validate

__all__ = ["Dataset", "find_files", "read_dir", "read_table"]

_SUFFIXES = (".csv", ".parquet", ".csv.gz", ".tsv")


class Dataset(Mapping[str, ir.Table]):
    """Canonical tables by name, also reachable as attributes (``data.leads``).

    ``report`` is the validation report the tables were loaded with.
    """

    def __init__(
        self, tables: Mapping[str, ir.Table], report: ValidationReport | None = None
    ) -> None:
        self._tables = dict(tables)
        self.report = report if report is not None else ValidationReport()

    def __getitem__(self, name: str) -> ir.Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(
                f"no table {name!r} in this dataset; it has {sorted(self._tables)}"
            ) from None

    def __getattr__(self, name: str) -> ir.Table:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._tables[name]
        except KeyError:
            raise AttributeError(
                f"no table {name!r} in this dataset; it has {sorted(self._tables)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def __repr__(self) -> str:
        return f"Dataset({sorted(self._tables)})"


def find_files(path: str | Path) -> dict[str, Path]:
    """Canonical table name → file in folder ``path`` (``leads.csv``, ``spend.parquet`` ...).

    Files whose name is not a canonical table are ignored; two files for one
    table (``leads.csv`` and ``leads.parquet``) are an error.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SchemaError(
            f"{str(folder)!r} is not a folder. Pass the folder that holds the exports."
        )
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        name = next((f.name[: -len(s)] for s in _SUFFIXES if f.name.endswith(s)), None)
        if name is None or name not in TABLES:
            continue
        if name in found:
            raise SchemaError(
                f"two files for table {name!r}: {found[name].name} and {f.name}. Keep one."
            )
        found[name] = f
    return found


def read_table(con: Backend, path: str | Path, *, table_name: str | None = None) -> ir.Table:
    """Register one CSV or Parquet file as a (lazy) table, with types as the reader detects them."""
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"file {str(p)!r} does not exist.")
    name = table_name or f"__raw_{p.name.split('.')[0]}_{uuid.uuid4().hex[:8]}"
    if p.name.endswith(".parquet"):
        return con.read_parquet(p, table_name=name)
    kwargs: dict[str, object] = {"table_name": name}
    if p.name.endswith(".tsv"):
        kwargs["delim"] = "\t"
    return con.read_csv(p, **kwargs)


def read_dir(
    con: Backend,
    path: str | Path,
    *,
    column_map: Mapping[str, Mapping[str, str]] | None = None,
    load: bool = True,
    now: _dt.datetime | None = None,
    only: Collection[str] | None = None,
) -> Dataset:
    """Read, validate and load every canonical table found in folder ``path``.

    All files are validated before anything is loaded: on any blocking issue one
    :class:`~revloop.exceptions.SchemaError` lists every issue of every file, and
    no table is created. Warnings are kept on the returned dataset's ``report``.

    Parameters
    ----------
    con
        Backend to load into (``revloop.connect()``).
    path
        Folder with files named after the canonical tables: ``leads.csv``,
        ``opportunities.parquet``, ``touchpoints.csv`` ...
    column_map
        Per table, ``{canonical_column: your_column}``, e.g.
        ``{"leads": {"created_at": "CreateDate"}}``.
    load
        Create the conformed tables in ``con`` under their canonical names
        (``False``: return lazy conformed expressions over the files).
    now
        Reference instant for the future-timestamp check (default: now).
    only
        Read only these canonical tables (those present); other files are left alone.

    Returns
    -------
    Dataset
        Canonical name → conformed table; ``dataset.report`` is the validation report.
    """
    files = find_files(path)
    if only is not None:
        found = sorted(files)
        files = {k: v for k, v in files.items() if k in set(only)}
        if found and not files:
            raise SchemaError(
                f"none of the tables asked for ({', '.join(sorted(only))}) is in "
                f"{str(path)!r}, which has {', '.join(found)}. Add them as .csv or .parquet "
                "files named after the tables."
            )
    if not files:
        raise SchemaError(
            f"no canonical table files in {str(path)!r}. Name files after the tables: "
            f"{', '.join(sorted(TABLES))} (.csv or .parquet)."
        )
    column_map = column_map or {}
    unknown = sorted(set(column_map) - set(TABLES))
    if unknown:
        raise SchemaError(
            f"column_map names unknown tables {unknown}; tables are {sorted(TABLES)}."
        )
    report = ValidationReport()
    raw: dict[str, ir.Table] = {}
    for name, f in files.items():
        raw[name] = read_table(con, f)
        report.extend(validate(raw[name], name, column_map=column_map.get(name), now=now))
    report.raise_for_errors()
    tables: dict[str, ir.Table] = {}
    created: list[str] = []
    try:
        for name, t in raw.items():
            conformed = conform(t, name, column_map=column_map.get(name))
            if load:
                tables[name] = con.create_table(name, conformed, overwrite=True)
                created.append(name)
            else:
                tables[name] = conformed
    except Exception:
        for name in created:  # nothing half-loaded
            con.drop_table(name, force=True)
        raise
    return Dataset(tables, report)
