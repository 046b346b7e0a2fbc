"""The ``revloop`` command line: thin commands over the library, one error handler."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import ibis
import ibis.expr.types as ir
import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from revloop import attribution, engine
from revloop.exceptions import RevloopError, SchemaError
from revloop.ingest import find_files, read_dir, read_table
from revloop.schema import ValidationReport, conform, schema, validate

if TYPE_CHECKING:
    from revloop.metrics import Benchmark

__all__ = ["app", "main"]

app = typer.Typer(
    name="revloop",
    help="Closed-loop B2B revenue attribution, RevOps vital signs and predictable revenue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


class Kind(StrEnum):
    lead = "lead"
    opportunity = "opportunity"
    won = "won"


class By(StrEnum):
    channel = "channel"
    campaign = "campaign"
    conversion = "conversion"


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _fail(exc: BaseException) -> None:
    """Print one red line per issue and exit 1 (the traceback only with --debug)."""
    if _state["debug"]:
        err_console.print_exception()
    report = getattr(exc, "report", None)
    if isinstance(report, ValidationReport) and report.errors:
        for issue in report.errors:
            err_console.print(f"[red]error:[/red] {issue}", highlight=False, soft_wrap=True)
    else:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RevloopError as exc:
        _fail(exc)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["half_life=7 days", "first=0.3"]`` → ``{"half_life": "7 days", "first": 0.3}``.

    Values are read as JSON when they parse (numbers, lists, ``null``), else as text.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RevloopError(
                f"--param {item!r} is not key=value; e.g. --param half_life='7 days' "
                "or --param transforms=exposure"
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` through a temporary file, so a failure leaves nothing half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cell(v: Any) -> str:
    if isinstance(v, pd.Timestamp) and not pd.isna(v) and v == v.normalize():
        return v.date().isoformat()  # a period start, not an instant
    if isinstance(v, float):
        if pd.isna(v):
            return ""
        # shares and ratios (below 10) keep 4 significant digits, so a 1.37 % churn rate
        # or a 100.3 % NRR is not rounded to 0.01 or 1.00; amounts keep cents
        mag = abs(v)
        if 0 < mag < 10:
            decimals = min(6, max(2, 3 - math.floor(math.log10(mag))))
            return f"{v:,.{decimals}f}"
        return f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None or v is pd.NaT else str(v)


def _column_chunks(widths: list[int], keys: int, room: int) -> list[list[int]]:
    """Column positions per table so that each fits ``room`` characters.

    A Rich table of the default box spends a column's content width plus 3 (padding
    and its left rule) and 1 for the closing rule. The first ``keys`` columns (the
    period, stage or group a row stands for) open every chunk; the others are dealt
    out in order, at least one per chunk however wide it is.
    """
    key_cols = list(range(keys))
    base = 1 + sum(widths[i] + 3 for i in key_cols)
    chunks: list[list[int]] = []
    current: list[int] = []
    used = base
    for i in range(keys, len(widths)):
        w = widths[i] + 3
        if current and used + w > room:
            chunks.append(key_cols + current)
            current, used = [], base
        current.append(i)
        used += w
    if current or not chunks:
        chunks.append(key_cols + current)
    return chunks


def _print_table(df: pd.DataFrame, title: str | None = None, max_rows: int = 40) -> None:
    """``df`` as Rich tables that fit the terminal, never eliding a figure.

    A table wider than the console is split by columns (the leading text columns, the
    group and period a row stands for, repeated in each part), as pandas wraps a wide
    frame; a single wide row is shown as field | value. Longer frames show their first
    ``max_rows`` rows and say how many more there are.
    """
    shown = df.head(max_rows)
    names = [str(c) for c in df.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in df.columns
    ]
    rows = [[_cell(v) for v in row] for row in shown.itertuples(index=False)]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    room = console.width
    if len(rows) == 1 and len(names) > 2 and 1 + sum(w + 3 for w in widths) > room:
        table = Table(title=None if title is None else Text(title), header_style="bold")
        table.add_column("field", no_wrap=True)
        table.add_column("value", justify="right", overflow="fold")
        for name, value in zip(names, rows[0], strict=True):
            table.add_row(Text(name), Text(value))
        console.print(table)
        return
    keys = 0
    while keys < min(2, len(names) - 1) and not numeric[keys]:
        keys += 1
    chunks = _column_chunks(widths, keys, room)
    for part, cols in enumerate(chunks):
        # the title once, above the first part; the others say which part they are
        label = title
        if len(chunks) > 1:
            count = f"columns {part + 1}/{len(chunks)}"
            label = f"{title} [{count}]" if part == 0 and title else f"[{count}]"
        # Text, not markup: a "[...]" in a policy value or a cell is shown as it is
        table = Table(
            title=None if label is None else Text(label), show_lines=False, header_style="bold"
        )
        for i in cols:
            table.add_column(
                names[i],
                justify="right" if numeric[i] else "left",
                overflow="fold",
                min_width=min(widths[i], room // 2),
            )
        for r in rows:
            table.add_row(*(Text(r[i]) for i in cols))
        console.print(table)
    if len(df) > max_rows:
        console.print(f"… {len(df) - max_rows} more rows")


def _load_touchpoints(con: engine.Backend, path: Path) -> ir.Table:
    raw = read_table(con, path)
    if "touchpoint_id" not in raw.columns:
        # a touch is identified by its person, time and channel (and its row, for exact repeats)
        rn = ibis.row_number().over(
            ibis.window(order_by=[raw.person_id, raw.occurred_at, raw.channel])
        )
        raw = raw.mutate(touchpoint_id=raw.person_id.cast("string") + ":" + rn.cast("string"))
    report = validate(raw, "touchpoints")
    report.raise_for_errors()
    return conform(raw, "touchpoints")


def _load_conversions(con: engine.Backend, path: Path) -> ir.Table:
    raw = read_table(con, path)
    report = validate(raw, "conversions")
    report.raise_for_errors()
    return conform(raw, "conversions")


@app.command()
def attribute(
    touchpoints: Annotated[
        Path,
        typer.Argument(
            help="CSV/Parquet: person_id, occurred_at, channel [, campaign, touchpoint_id]."
        ),
    ],
    conversions: Annotated[
        Path,
        typer.Argument(help="CSV/Parquet: conversion_id, person_id, occurred_at, value [, kind]."),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help=f"One of: {', '.join(attribution.list_models())}.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Model parameter key=value (repeatable)."),
    ] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only conversions of this kind.")] = None,
    by: Annotated[
        By,
        typer.Option(
            help="Roll credits up by channel or campaign, or keep one row per conversion × touch."
        ),
    ] = By.channel,
) -> None:
    """Credit conversions to touchpoints with one model and write the result as CSV.

    People who appear only in TOUCHPOINTS are the non-converting paths.
    """
    with _errors(), _progress() as progress:
        m = attribution.get_model(model, **parse_params(param))
        task = progress.add_task("reading and validating inputs", total=None)
        con = engine.connect()
        tp = _load_touchpoints(con, touchpoints)
        cv = _load_conversions(con, conversions)
        if kind is not None:
            cv = cv.filter(cv.kind == kind.value)
        progress.update(task, description=f"crediting with {model}")
        credits = m.fit(tp).credit(cv)
        if by is By.conversion:
            expr = credits.select(
                "conversion_id", "touchpoint_id", "channel", "weight", "value"
            ).order_by(["conversion_id", "touchpoint_id"])
        else:
            expr = (
                credits.group_by(by.value)
                .aggregate(conversions=credits.weight.sum(), value=credits.value.sum())
                .order_by([ibis.desc("value"), by.value])
            )
        df = engine.to_pandas(expr, con)
        progress.update(task, description=f"writing {output}")
        _write_csv_atomic(df, output)
    if by is not By.conversion:
        _print_table(df, title=f"{model}: credited conversions and value by {by.value}")
    console.print(f"wrote {len(df):,} rows to {output}")


@app.command("validate")
def validate_cmd(
    folder: Annotated[
        Path, typer.Argument(help="Folder of CSV/Parquet files named after the canonical tables.")
    ],
    column_map: Annotated[
        str | None, typer.Option(help='JSON: {"leads": {"created_at": "CreateDate"}}.')
    ] = None,
) -> None:
    """Check every canonical table in FOLDER and list every problem (exit 1 if any blocks loading)."""
    with _errors():
        mapping = json.loads(column_map) if column_map else None
        con = engine.connect()
        try:
            ds = read_dir(con, folder, column_map=mapping, load=False)
        except SchemaError as exc:
            if exc.report is not None:
                for issue in exc.report.issues:
                    colour = "red" if issue.severity == "error" else "yellow"
                    err_console.print(
                        f"[{colour}]{issue.severity}:[/{colour}] {issue}",
                        highlight=False,
                        soft_wrap=True,
                    )
                raise typer.Exit(1) from None
            raise
        for issue in ds.report.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {issue}", highlight=False, soft_wrap=True)
        rows = pd.DataFrame({"table": list(ds.report.rows), "rows": list(ds.report.rows.values())})
        _print_table(rows, title="valid canonical tables")


@app.command()
def load(
    folder: Annotated[
        Path, typer.Argument(help="Folder of CSV/Parquet files named after the canonical tables.")
    ],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file to load into (created if absent).")],
    column_map: Annotated[
        str | None, typer.Option(help='JSON: {"leads": {"created_at": "CreateDate"}}.')
    ] = None,
) -> None:
    """Validate FOLDER and load its tables into a DuckDB file; nothing is loaded if any check fails."""
    with _errors(), _progress() as progress:
        progress.add_task(f"validating and loading {folder}", total=None)
        mapping = json.loads(column_map) if column_map else None
        con = engine.connect(db)
        ds = read_dir(con, folder, column_map=mapping)
        con.disconnect()
    _print_table(
        pd.DataFrame({"table": list(ds.report.rows), "rows": list(ds.report.rows.values())}),
        title=f"loaded into {db}",
    )


@app.command()
def explain(
    model: Annotated[str, typer.Argument(help="Attribution model lookup name.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Model parameter key=value.")
    ] = None,
    dialect: Annotated[
        str, typer.Option(help="SQL dialect: duckdb, postgres, bigquery, snowflake, trino, spark …")
    ] = "duckdb",
    summary: Annotated[
        bool, typer.Option(help="Explain the by-channel summary instead of per-touch credits.")
    ] = False,
) -> None:
    """Print the SQL that credits conversions with MODEL, over the canonical tables."""
    with _errors():
        m = attribution.get_model(model, **parse_params(param))
        tp = ibis.table(schema("touchpoints"), name="touchpoints")
        cv = ibis.table(schema("conversions"), name="conversions")
        expr = (
            attribution.summarize_many([m], tp, cv, by="channel")
            if summary
            else m.fit(tp).credit(cv)
        )
        sys.stdout.write(engine.to_sql(expr, dialect) + "\n")


@app.command()
def demo(
    people: Annotated[
        int, typer.Option("--people", "-n", min=100, help="People in the demo market.")
    ] = 20_000,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same company.")
    ] = 7,
    out: Annotated[
        Path,
        typer.Option(help="Folder for revloop.duckdb, data/*.csv, truth.json and report.html."),
    ] = Path("demo-output"),
    months: Annotated[int, typer.Option(min=3, help="Months of history.")] = 24,
) -> None:
    """Build the demo B2B company, close the loop and write the attribution report.

    Generates the company (web events, leads, activities, deals with stage history,
    subscriptions, spend), stitches visitors to leads, builds touchpoints and the
    lead / opportunity / won conversions, credits them with every rule-based model,
    computes every RevOps and subscription metric and writes a self-contained
    report.html.
    """
    from revloop import report
    from revloop._pipeline import closed_loop
    from revloop.forecast import PREDICTABLE_REVENUE_SEGMENTS
    from revloop.synthetic import demo_company

    with _errors(), _progress() as progress:
        out.mkdir(parents=True, exist_ok=True)
        task = progress.add_task(f"generating a company of {people:,} people", total=None)
        con = engine.connect(out / "revloop.duckdb")
        company = demo_company(con, seed=seed, n_people=people, months=months)
        progress.update(
            task, description="stitching visitors, building touchpoints and conversions"
        )
        loop = closed_loop(company.tables())
        derived = {"touchpoints": loop.touchpoints, "conversions": loop.conversions}
        if loop.identities is not None:
            derived = {"identities": loop.identities, **derived}
        tables = dict(company.tables())
        for name, expr in derived.items():
            tables[name] = con.create_table(name, expr, overwrite=True)
        progress.update(task, description="exporting canonical tables as CSV")
        data_dir = out / "data"
        data_dir.mkdir(exist_ok=True)
        for name, t in tables.items():
            con.to_csv(t, data_dir / f"{name}.csv")
        (out / "truth.json").write_text(json.dumps(company.truth.to_dict(), indent=2, default=str))
        progress.update(task, description="crediting conversions with every rule-based model")
        data = report.collect(
            con,
            touchpoints=tables["touchpoints"],
            conversions=tables["conversions"],
            spend=tables["spend"],
            title="Acme RevOps (revloop demo company)",
        )

        def tick(done: int, total: int, name: str) -> None:
            progress.update(task, description=f"RevOps metrics: {name} ({done}/{total})")

        progress.update(task, description="RevOps metrics")
        # coverage needs a target: the demo assumes last year's monthly won revenue + 30%;
        # the waterfall bridges the last 6 full months (both stated in the report)
        revops = report.collect_revops(
            con, company.tables(), target_growth=0.3, bridge_months=6, on_progress=tick
        )
        # the plan, forecast and backtest; the plan's target is assumed as the last full
        # quarter's won revenue + 30% (stated in the report)
        progress.update(task, description="planning, forecasting and backtesting")
        fc = report.collect_forecast(
            con,
            company.tables(),
            target_growth=0.3,
            segments=PREDICTABLE_REVENUE_SEGMENTS,
            on_progress=lambda step: progress.update(task, description=f"forecast: {step}"),
        )
        sections = [*report.revops_sections(revops), *report.forecast_sections(fc)]
        data = dataclasses.replace(data, sections=tuple(sections))
        progress.update(task, description="writing report.html")
        path = report.write_html(data, out / "report.html")
        headline = attribution.summarize_many(
            [attribution.get_model("first_touch"), attribution.get_model("last_touch")],
            tables["touchpoints"],
            tables["conversions"].filter(ibis._.kind == "won"),
        )
        df = engine.to_pandas(headline, con).pivot_table(
            index="channel", columns="model", values="value", aggfunc="sum"
        )
        con.disconnect()
    df = df.reset_index().sort_values("last_touch", ascending=False)
    _print_table(df, title="Won revenue by channel: first click vs last click")
    console.print(", ".join(f"{k}: {v:,}" for k, v in data.row_counts.items()))
    console.print(f"report: {path}\ndatabase: {out / 'revloop.duckdb'}\nCSV exports: {data_dir}/")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class PeriodOpt(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


def metric_payload(result: Any, df: pd.DataFrame) -> dict[str, Any]:
    """The JSON document of a metric: one figure as ``value``, several as ``rows``."""
    doc: dict[str, Any] = {
        "metric": result.metric,
        "policy": result.policy,
        "scope": result.scope.to_dict(),
    }
    records = json.loads(df.to_json(orient="records", date_format="iso"))
    # several rows without --by/--period (one per stage, a survival curve) are rows too
    if result.grouped or len(records) != 1:
        doc["rows"] = records
    else:
        row = records[0] if records else {}
        doc["value"] = row.pop("value", None)
        doc["stats"] = row
    # column (and variant): where the user's comparable figure is, when there is one
    doc["benchmarks"] = [dataclasses.asdict(b) for b in result.benchmarks]
    return doc


@app.command("metrics")
def metrics_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of canonical tables (CSV or Parquet).")],
    metric: Annotated[
        str, typer.Option("--metric", "-m", help="Metric name (see docs/metrics.md).")
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Policy key=value (repeatable).")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Group by this column (source, owner_id, segment …).")
    ] = None,
    period: Annotated[
        PeriodOpt | None, typer.Option(help="One figure per calendar period.")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Window start (inclusive), e.g. 2026-01-01.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Window end (exclusive).")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Use only what was known at this date.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Compute one RevOps or subscription metric over the canonical tables in FOLDER."""
    from revloop import metrics

    with _errors():
        definition = metrics.get_metric(metric)
        con = engine.connect()
        # only the tables the metric reads: a problem in another file does not block it
        present = find_files(folder) if folder.is_dir() else {}
        missing = [t for t in definition.tables if t not in present]
        if present and missing:
            raise SchemaError(
                f"{metric} needs the table(s) {missing}; {str(folder)!r} has {sorted(present)}. "
                f"Add {', '.join(m + '.csv' for m in missing)} to the folder."
            )
        data = read_dir(
            con, folder, load=False, only={*definition.tables, *definition.optional_tables}
        )
        result = metrics.compute(
            metric,
            dict(data),
            by=by,
            period=None if period is None else period.value,
            start=start,
            end=end,
            as_of=as_of,
            **parse_params(param),
        )
        df = engine.to_pandas(result.table, con)
        # what the figures cannot include, on stderr whatever the format
        for issue in data.report.warnings:
            err_console.print(f"warning: {issue}", highlight=False, markup=False, soft_wrap=True)
        for col, n, meaning in metrics.left_out(metric, df, by, result.policy):
            err_console.print(
                f"warning: {metric}: {n:,} {meaning} (column {col}).",
                highlight=False,
                markup=False,
                soft_wrap=True,  # one line each: grep-able
            )
        if fmt is Format.json:
            text = json.dumps(metric_payload(result, df), indent=2, default=str) + "\n"
        elif fmt is Format.csv:
            text = df.to_csv(index=False)
        else:
            text = ""
        if output is not None and text:
            output.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, output)
        elif text:
            sys.stdout.write(text)
    if fmt is Format.table:
        policy = ", ".join(f"{k}={v}" for k, v in result.policy.items())
        _print_table(df, title=f"{metric} ({policy})")
        for b in definition.benchmarks:
            console.print(
                f"benchmark: {b.label}: {b.value:g} {b.unit}{_yours(b, result.policy, df)} "
                f"({b.source})",
                highlight=False,
                markup=False,
            )


def _yours(b: Benchmark, policy: Mapping[str, Any], df: pd.DataFrame) -> str:
    """`` · yours X`` beside benchmark ``b``: the user's figure in ``b.column`` of a
    one-row result; else which column or policy to compare it with (``""``: none)."""
    if b.column is None or b.column not in df.columns:
        return ""
    if b.variant is not None and policy.get("variant") != b.variant:
        return f" · quoted for variant={b.variant}: add --param variant={b.variant} to compare"
    if len(df) == 1:
        return f" · yours {_cell(df[b.column].iloc[0])}"
    return f" · yours: column {b.column}"


def main() -> None:
    """Entry point of the ``revloop`` script."""
    app()


# commands defined in their own modules (they import the helpers above)
from revloop.cli._forecast import backtest_cmd, forecast_cmd  # noqa: E402
from revloop.cli._plan import plan_cmd  # noqa: E402

app.command("plan")(plan_cmd)
app.command("forecast")(forecast_cmd)
app.command("backtest")(backtest_cmd)
