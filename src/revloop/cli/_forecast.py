"""``revloop forecast`` and ``revloop backtest``: the pipeline forecast on the command line.

Registered on the main app at the bottom of :mod:`revloop.cli._app`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from revloop import engine
from revloop.cli._app import Format, _errors, _print_table, _progress, console
from revloop.exceptions import ConfigError
from revloop.forecast._backtest import (
    BacktestData,
    BacktestResult,
    Forecast,
    backtest,
    backtest_dates,
    forecast,
)
from revloop.forecast._forecasters import Forecaster, get_forecaster, list_forecasters
from revloop.forecast._snapshots import snapshots, stage_moves, won_deals
from revloop.ingest import read_dir

__all__ = ["backtest_cmd", "forecast_cmd", "load_forecast_data"]

_NEEDED = ("opportunities", "stage_history", "activities", "leads", "fx_rates")


class PeriodName(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


def load_forecast_data(
    con: engine.Backend,
    folder: Path,
    *,
    period: str,
    as_of: _dt.datetime | None = None,
    start: str | None = None,
) -> BacktestData:
    """Read the CRM tables of ``folder`` and fetch snapshots, moves and won deals.

    Snapshots are taken on :func:`~revloop.forecast.backtest_dates` from ``start`` (the
    first deal's creation by default) up to ``as_of`` (the last deal's), plus ``as_of``.
    Everything the forecast later reads is computed in the engine and fetched once.
    """
    tables = dict(read_dir(con, folder, load=True, only=_NEEDED))
    for name in ("opportunities", "stage_history"):
        if name not in tables:
            raise ConfigError(
                f"{str(folder)!r} has no {name} file; the forecast needs opportunities and "
                "stage_history (csv or parquet) named after the canonical tables."
            )
    opp = tables["opportunities"]
    lo = pd.Timestamp(con.execute(opp.created_at.min()))
    hi = pd.Timestamp(con.execute(opp.created_at.max()))
    first = pd.Timestamp(start) if start is not None else lo
    end = pd.Timestamp(as_of) if as_of is not None else hi + pd.Timedelta(days=1)
    dates = backtest_dates(first, end, period=period)
    if as_of is not None:
        dates.append(pd.Timestamp(as_of).to_pydatetime())
    if not dates:
        raise ConfigError(f"no {period} starts between {first.date()} and {end.date()}.")
    return BacktestData(
        snapshots=engine.to_pandas(snapshots(tables, dates, period=period), con),  # type: ignore[arg-type]
        moves=engine.to_pandas(stage_moves(tables), con),
        won=engine.to_pandas(won_deals(tables), con),
    )


def _forecasters(names: list[str] | None, stage_probabilities: str | None) -> list[Forecaster]:
    chosen = names or list_forecasters()
    mapping: dict[str, float] | None = None
    if stage_probabilities is not None:
        try:
            parsed = json.loads(stage_probabilities)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ConfigError(
                f"--stage-probabilities {stage_probabilities!r}: expected a JSON mapping, e.g. "
                '\'{"Discovery": 0.2, "Demo": 0.4}\'.'
            )
        mapping = {str(k): float(v) for k, v in parsed.items()}
    out = []
    for name in chosen:
        if name == "stage_weighted" and mapping is not None:
            out.append(get_forecaster(name, stage_probabilities=mapping))
        else:
            out.append(get_forecaster(name))
    return out


def _write(text: str, output: Path | None) -> None:
    if output is None:
        console.print(text, end="", highlight=False, soft_wrap=True, markup=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, output)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(df.to_json(orient="records", date_format="iso"))
    return out


def forecast_document(result: Forecast) -> dict[str, Any]:
    """The JSON document of ``revloop forecast``."""
    return {
        "settings": result.settings,
        "totals": _records(result.totals),
        "deals": _records(result.deals),
    }


def backtest_document(result: BacktestResult) -> dict[str, Any]:
    """The JSON document of ``revloop backtest``."""
    return {
        "settings": result.settings,
        "summary": _records(result.summary),
        "deals": _records(result.deals),
        "forecasts": _records(result.forecasts),
        "reliability": _records(result.reliability),
    }


def forecast_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of canonical tables (CSV or Parquet).")],
    as_of: Annotated[
        str, typer.Option("--as-of", help="Forecast with what was known at this date.")
    ],
    period: Annotated[PeriodName, typer.Option(help="The period forecast.")] = PeriodName.quarter,
    forecaster: Annotated[
        list[str] | None,
        typer.Option("--forecaster", "-f", help="Forecaster (repeatable); default: all."),
    ] = None,
    stage_probabilities: Annotated[
        str | None,
        typer.Option(help="JSON stage → CRM probability, when stage_history has none."),
    ] = None,
    draws: Annotated[int, typer.Option(min=100, help="Monte Carlo draws.")] = 2000,
    seed: Annotated[int, typer.Option(help="Monte Carlo seed.")] = 0,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    deals: Annotated[
        Path | None, typer.Option(help="Also write every open deal's probabilities (CSV).")
    ] = None,
) -> None:
    """Forecast the period's won revenue as of a date, with P10 / P50 / P90."""
    with _errors(), _progress() as progress:
        try:
            at = pd.Timestamp(as_of)
        except ValueError:
            raise ConfigError(f"--as-of {as_of!r} is not a date; write it as 2026-05-15.") from None
        task = progress.add_task("rebuilding the pipeline as it was", total=None)
        con = engine.connect()
        data = load_forecast_data(con, folder, period=period.value, as_of=at.to_pydatetime())
        progress.update(task, description="fitting the forecasters")
        result = forecast(
            data,
            _forecasters(forecaster, stage_probabilities),
            as_of=at,
            period=period.value,
            draws=draws,
            seed=seed,
        )
        if deals is not None:
            deals.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{deals.name}.", dir=deals.parent)
            os.close(fd)
            result.deals.to_csv(tmp, index=False)
            os.replace(tmp, deals)
    if fmt is Format.json:
        _write(json.dumps(forecast_document(result), indent=2) + "\n", output)
    elif fmt is Format.csv:
        _write(result.totals.to_csv(index=False), output)
    else:
        _print_table(
            result.totals, title=f"forecast of {result.totals['period'].iloc[0]} as of {at.date()}"
        )


def backtest_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of canonical tables (CSV or Parquet).")],
    period: Annotated[PeriodName, typer.Option(help="The period forecast.")] = PeriodName.quarter,
    forecaster: Annotated[
        list[str] | None,
        typer.Option("--forecaster", "-f", help="Forecaster (repeatable); default: all."),
    ] = None,
    weeks: Annotated[
        str, typer.Option(help="Checkpoints: weeks into each period, comma-separated.")
    ] = "1,4,8,12",
    min_train_periods: Annotated[
        int, typer.Option(min=1, help="Ended periods of history before the first tested one.")
    ] = 2,
    stage_probabilities: Annotated[
        str | None,
        typer.Option(help="JSON stage → CRM probability, when stage_history has none."),
    ] = None,
    draws: Annotated[int, typer.Option(min=100, help="Monte Carlo draws.")] = 2000,
    seed: Annotated[int, typer.Option(help="Monte Carlo seed.")] = 0,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
) -> None:
    """Backtest the forecasters on past periods: WAPE, bias, coverage, Brier, ECE."""
    with _errors(), _progress() as progress:
        try:
            checkpoints = [int(w) for w in weeks.split(",") if w.strip()]
        except ValueError:
            raise ConfigError(f"--weeks {weeks!r}: give whole weeks, e.g. 1,4,8,12.") from None
        if not checkpoints or min(checkpoints) < 1:
            raise ConfigError(f"--weeks {weeks!r}: give weeks >= 1, e.g. 1,4,8,12.")
        task = progress.add_task("rebuilding weekly snapshots from stage history", total=None)
        con = engine.connect()
        data = load_forecast_data(con, folder, period=period.value)
        result = backtest(
            data,
            _forecasters(forecaster, stage_probabilities),
            period=period.value,
            weeks=checkpoints,
            min_train_periods=min_train_periods,
            draws=draws,
            seed=seed,
            on_period=lambda s: progress.update(
                task, description=f"backtesting the {period.value} starting {s.date()}"
            ),
        )
    if fmt is Format.json:
        _write(json.dumps(backtest_document(result), indent=2) + "\n", output)
    elif fmt is Format.csv:
        _write(result.forecasts.to_csv(index=False), output)
    else:
        _print_table(result.summary, title="period totals: WAPE, signed bias, P10–P90 coverage")
        _print_table(result.deals, title="per deal: Brier score, log loss, calibration error")
