"""Connect to a backend and run expressions: the only module that executes queries.

Every compute function in revloop returns an unexecuted :class:`ibis.Table`; this
module turns one into data. DuckDB in memory is the default; a file path opens a
DuckDB database file, and any Ibis backend URL works (``duckdb:///revloop.duckdb``,
``postgres://...``, ``bigquery://...``), as does an already-connected backend such
as ``ibis.pyspark.connect(session)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import ibis
import ibis.backends.duckdb  # the default engine: load it with revloop, not on first connect
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from revloop.exceptions import EngineError

if TYPE_CHECKING:
    from revloop.metrics import MetricResult, Request, SharedBuild

__all__ = [
    "Backend",
    "MetricFrame",
    "compute_metrics",
    "connect",
    "execute",
    "explain",
    "to_pandas",
    "to_pyarrow",
    "to_sql",
]

Backend: TypeAlias = BaseBackend


def connect(url: str | Path | None = None, *, threads: int | None = None) -> BaseBackend:
    """Open a backend.

    Parameters
    ----------
    url
        ``None`` for an in-memory DuckDB database; a path ending in ``.duckdb`` or
        ``.db`` (or any path without ``://``) for a DuckDB file; otherwise an Ibis
        connection URL such as ``duckdb:///revloop.duckdb`` or ``postgres://u:p@h/db``.
    threads
        DuckDB only: the number of worker threads (default: all cores).

    Examples
    --------
    >>> con = connect()
    >>> con.name
    'duckdb'
    """
    try:
        if url is None:
            con = ibis.duckdb.connect()
        elif isinstance(url, Path) or "://" not in str(url):
            con = ibis.duckdb.connect(str(url))
        else:
            con = ibis.connect(str(url))
    except Exception as exc:  # the backend's own error is the cause
        raise EngineError(
            f"could not connect to {str(url)!r}: {exc}. "
            "Pass None for in-memory DuckDB, a file path, or an Ibis URL such as 'duckdb:///file.duckdb'."
        ) from exc
    if con.name == "duckdb":
        # timestamps are UTC throughout revloop (DESIGN.md): never the machine's zone
        con.raw_sql("SET TimeZone = 'UTC'")
        if threads is not None:
            con.raw_sql(f"SET threads TO {int(threads)}")
    return con


def _backend_for(expr: ir.Expr, con: BaseBackend | None) -> BaseBackend | None:
    if con is not None:
        return con
    try:
        return expr._find_backend(use_default=False)
    except Exception:  # unbound expression or several backends
        return None


def execute(expr: ir.Expr, con: BaseBackend | None = None, **kwargs: Any) -> Any:
    """Run ``expr`` and return a pandas object (DataFrame, Series or scalar).

    ``con`` is needed only for an expression built on unbound tables.
    """
    backend = _backend_for(expr, con)
    if backend is None:
        return expr.execute(**kwargs)
    return backend.execute(expr, **kwargs)


def to_pyarrow(expr: ir.Expr, con: BaseBackend | None = None) -> pa.Table:
    """Run a table expression and return a :class:`pyarrow.Table`."""
    backend = _backend_for(expr, con)
    result = expr.to_pyarrow() if backend is None else backend.to_pyarrow(expr)
    if not isinstance(result, pa.Table):
        raise EngineError(f"expected a table expression, got {type(expr).__name__}")
    return result


def to_pandas(expr: ir.Table, con: BaseBackend | None = None) -> pd.DataFrame:
    """Run a table expression and return a :class:`pandas.DataFrame`."""
    out = execute(expr, con)
    assert isinstance(out, pd.DataFrame)
    return out


def to_sql(expr: ir.Expr, dialect: str | None = None, *, pretty: bool = True) -> str:
    """The SQL an expression compiles to, for its own backend or for ``dialect``.

    Examples
    --------
    >>> t = ibis.table({"channel": "string", "value": "float64"}, name="credits")
    >>> print(to_sql(t.group_by("channel").aggregate(v=t.value.sum()), "duckdb"))
    SELECT
      "t0"."channel",
      SUM("t0"."value") AS "v"
    FROM "credits" AS "t0"
    GROUP BY
      1
    """
    return str(ibis.to_sql(expr, dialect=dialect, pretty=pretty))


def explain(expr: ir.Expr, con: BaseBackend | None = None) -> str:
    """The backend's query plan for ``expr`` (DuckDB's ``EXPLAIN``), or its SQL elsewhere."""
    backend = _backend_for(expr, con)
    if backend is None or backend.name != "duckdb":
        return to_sql(expr)
    sql = to_sql(expr, "duckdb", pretty=False)
    rows = backend.raw_sql(f"EXPLAIN {sql}").fetchall()
    return "\n".join(str(r[1]) for r in rows)


@dataclass(frozen=True, eq=False)
class MetricFrame:
    """A computed metric: its :class:`~revloop.metrics.MetricResult` and the executed rows."""

    request: Request
    result: MetricResult
    frame: pd.DataFrame


def compute_metrics(
    con: BaseBackend,
    tables: Mapping[str, ir.Table],
    requests: Sequence[Request | str],
    *,
    on_done: Callable[[MetricFrame], None] | None = None,
) -> list[MetricFrame]:
    """Compute several metrics, building the tables they share only once.

    Each distinct intermediate the requests declare (the MRR ledger of one set of
    policies and one window, see :func:`revloop.metrics.shared_tables`) is
    materialised in the backend once, read by every metric that needs it, and
    released at the end. The figures are the same as computing each metric alone.

    On DuckDB the next requests' expressions are built and compiled to SQL in a
    background thread while the current one runs (DuckDB releases the GIL while it
    executes), so Python's share of the work overlaps the engine's. While it runs,
    Ibis's ``sql.fuse_selects`` option is off (:func:`_unfused`): the SQL nests its
    selects instead of merging them, which the engine plans the same and Ibis
    compiles about a quarter faster.

    Parameters
    ----------
    con
        The backend the tables live in.
    tables
        Canonical tables by name.
    requests
        :class:`revloop.metrics.Request` objects, or metric names (default policies).
    on_done
        Called with each result as it is computed (progress bars).
    """
    from revloop import metrics

    reqs = [metrics.Request(r) if isinstance(r, str) else r for r in requests]
    pending: dict[str, metrics.SharedBuild] = {}
    for r in reqs:
        shared = metrics.shared_tables(r.name, tables, scope=r.scope, **dict(r.params))
        for key, build in shared.items():
            pending.setdefault(key, build)
    duckdb = con.name == "duckdb"
    with _unfused() if duckdb else contextlib.nullcontext():
        return _compute_all(con, tables, reqs, pending, duckdb, on_done)


def _compute_all(
    con: BaseBackend,
    tables: Mapping[str, ir.Table],
    reqs: Sequence[Request],
    pending: Mapping[str, SharedBuild],
    duckdb: bool,
    on_done: Callable[[MetricFrame], None] | None,
) -> list[MetricFrame]:
    """The body of :func:`compute_metrics`: build the shared tables, then every request."""
    from revloop import metrics

    cached: dict[str, ir.Table] = {}
    try:
        for key, build in pending.items():
            cached[key] = build({**tables, **cached}).cache()
        available = {**tables, **cached}

        def prepare(r: Request) -> tuple[MetricResult, str | None]:
            result = metrics.compute(
                r.name,
                available,
                by=r.by,
                period=r.period,
                start=r.start,
                end=r.end,
                as_of=r.as_of,
                **dict(r.params),
            )
            return result, (con.compile(result.table) if duckdb else None)

        out: list[MetricFrame] = []

        def emit(r: Request, result: MetricResult, frame: pd.DataFrame) -> None:
            out.append(MetricFrame(request=r, result=result, frame=frame))
            if on_done is not None:
                on_done(out[-1])

        if not duckdb:
            for r in reqs:
                result, _ = prepare(r)
                emit(r, result, to_pandas(result.table, con))
            return out
        with ThreadPoolExecutor(max_workers=1) as ahead:
            prepared = [ahead.submit(prepare, r) for r in reqs]
            try:
                for r, job in zip(reqs, prepared, strict=True):
                    result, sql = job.result()
                    assert sql is not None
                    emit(r, result, _duckdb_frame(con, result.table, sql))
            finally:
                for job in prepared:
                    job.cancel()
        return out
    finally:
        for table in cached.values():
            table.release()


@contextlib.contextmanager
def _unfused() -> Iterator[None]:
    """Ibis's ``sql.fuse_selects`` off for the duration, restored after.

    Merging nested selects (Ibis's default) is the most expensive of its SQL rewrites
    (``merge_select_select``), about 0.7 s of CPU for the 47 requests of the metrics
    panel (``docs/benchmarks.md``); DuckDB's optimiser flattens the nested selects
    itself, so the plans and the figures are the same. The option is global: other
    threads compiling meanwhile get the nested form too, which is valid SQL alike.
    """
    before = ibis.options.sql.fuse_selects
    ibis.options.sql.fuse_selects = False
    try:
        yield
    finally:
        ibis.options.sql.fuse_selects = before


def _duckdb_frame(con: BaseBackend, expr: ir.Table, sql: str) -> pd.DataFrame:
    """What DuckDB's ``con.execute(expr)`` returns, from ``sql`` compiled beforehand.

    The same steps as ibis 12's DuckDB ``Backend.execute`` after its own compile:
    register the expression's in-memory tables, run the SQL into Arrow, convert each
    column as ibis does and cast to the expression's schema.
    """
    import pyarrow.types as pat
    from ibis.backends.duckdb.converter import DuckDBPandasData

    con._run_pre_execute_hooks(expr)
    table = con.con.sql(sql).to_arrow_table()
    df = pd.DataFrame(
        {
            name: (
                col.to_pylist()
                if pat.is_nested(col.type) or pat.is_dictionary(col.type) or col.null_count
                else col.to_pandas()
            )
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    out = expr.__pandas_result__(DuckDBPandasData.convert_table(df, expr.schema()))
    assert isinstance(out, pd.DataFrame)
    return out
