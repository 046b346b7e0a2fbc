"""``revloop plan``: the predictable-revenue planner on the command line (edge layer).

Registered on the main app with ``app.command("plan")(plan_cmd)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import ibis.expr.types as ir
import pandas as pd
import typer

from revloop import engine
from revloop.cli._app import (
    Format,
    _errors,
    _print_table,
    _progress,
    _write_csv_atomic,
    console,
    err_console,
)
from revloop.exceptions import ConfigError, SchemaError
from revloop.forecast import (
    PREDICTABLE_REVENUE_SEGMENTS,
    Capacity,
    ExpansionCredit,
    Plan,
    PlanInputs,
    Prior,
    parse_period,
    plan,
    plan_inputs,
)
from revloop.ingest import find_files, read_dir

__all__ = ["plan_cmd", "plan_document"]

_BOOK = "seeds-nets-spears"
#: The canonical tables the planner reads; other files in the folder are not read.
_NEEDED = ("leads", "opportunities", "fx_rates", "stage_history")


class Show(StrEnum):
    summary = "summary"
    calendar = "calendar"
    rates = "rates"
    vs_actual = "vs-actual"


class CapacityStage(StrEnum):
    opportunities = "opportunities"
    leads = "leads"


def _targets(target: float | None, period: str | None, path: Path | None) -> dict[str, float]:
    if path is not None:
        if target is not None or period is not None:
            raise ConfigError("pass either --targets FILE or --target with --period, not both.")
        try:
            df = pd.read_csv(path, dtype={"period": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ConfigError(f"--targets {str(path)!r}: cannot read it as CSV ({exc}).") from exc
        if not {"period", "target"} <= set(df.columns):
            raise ConfigError(
                f"--targets {str(path)!r} has columns {list(df.columns)}; expected 'period' and "
                "'target', e.g. a row 2027Q1,2000000."
            )
        out: dict[str, float] = {}
        for p, t in zip(df["period"], df["target"], strict=True):
            if str(p) in out:
                raise ConfigError(f"--targets {str(path)!r} lists period {p!r} twice.")
            out[str(p)] = float(t) if pd.notna(t) else float("nan")
        return out
    if target is None or period is None:
        raise ConfigError(
            "give the revenue target and its period, e.g. --target 2000000 --period 2027Q1, "
            "or a CSV of period,target rows with --targets."
        )
    return {period: target}


def _checked(targets: dict[str, float]) -> dict[str, float]:
    """``targets`` with every period parsed: a typo fails before any data is read."""
    for key in targets:
        parse_period(key)
    return targets


def _segments(value: str | None) -> dict[str, list[str]] | None:
    if value is None:
        return None
    if value == _BOOK:
        return {k: list(v) for k, v in PREDICTABLE_REVENUE_SEGMENTS.items()}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigError(
            f"--segments {value!r}: expected '{_BOOK}' (the demo's sources as seeds, nets and "
            'spears) or a JSON mapping, e.g. \'{"seeds": ["Partner"], "spears": ["Outbound"]}\'.'
        )
    return parsed


def _weights(value: str | None) -> dict[str, float] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigError(
            f"--weights {value!r}: expected a JSON mapping of segment to share, e.g. "
            '\'{"seeds": 0.5, "nets": 0.3, "spears": 0.2}\'.'
        )
    return parsed


def _measured_credit(
    con: engine.Backend, data: dict[str, ir.Table], as_of: str | None, arr_base: float | None
) -> ExpansionCredit:
    """The expansion credit from the data: year-over-year NRR and ARR at ``as_of``.

    NRR is ``revloop.metrics`` ``nrr`` with ``variant=yoy`` (the same customers' MRR now ÷
    a year ago, revops.md §1.6); the base is ``arr`` (MRR × 12) at the last month known,
    unless ``--arr-base`` gives it.
    """
    from revloop import metrics

    if "subscriptions" not in data:
        raise SchemaError(
            "--nrr measured needs subscriptions.csv (or .parquet) in the folder; or give "
            "--nrr 1.08 --arr-base 1200000."
        )
    figures = {}
    requests: list[tuple[str, dict[str, Any]]] = [("nrr", {"variant": "yoy"}), ("arr", {})]
    for name, params in requests:
        result = metrics.compute(name, data, as_of=as_of, **params)
        value = engine.to_pandas(result.table, con)["value"]
        if value.empty or pd.isna(value.iloc[0]):
            raise ConfigError(
                f"--nrr measured: the data gives no {name} (a year of subscriptions is "
                "needed for year-over-year NRR); give --nrr and --arr-base instead."
            )
        figures[name] = float(value.iloc[0])
    base = arr_base if arr_base is not None else figures["arr"]
    return ExpansionCredit(nrr=figures["nrr"], base=base)


def _read_needed(
    con: engine.Backend, folder: Path, *, subscriptions: bool = False
) -> dict[str, ir.Table]:
    """Validate and load only the tables the planner reads (not events, touchpoints …)."""
    wanted = (*_NEEDED, "subscriptions") if subscriptions else _NEEDED
    files = {k: v for k, v in find_files(folder).items() if k in wanted}
    missing = [k for k in ("leads", "opportunities") if k not in files]
    if missing:
        raise SchemaError(
            f"{str(folder)!r} has no {' or '.join(missing)} file; the planner needs "
            "leads.csv and opportunities.csv (or .parquet) named after the canonical tables."
        )
    return dict(read_dir(con, folder, load=True, only=wanted))


def plan_document(result: Plan, targets: dict[str, float]) -> dict[str, object]:
    """The JSON document of a plan: targets, policy, notes and every frame as records."""
    return {"targets": targets, **result.to_dict()}


def _write_text_atomic(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pct(x: float) -> str:
    return "" if pd.isna(x) else f"{100 * x:.1f}%"


def _count(x: float) -> str:
    return "" if pd.isna(x) else f"{x:,.0f}"


def _summary_view(result: Plan, levels: list[float]) -> pd.DataFrame:
    s = result.summary
    out = pd.DataFrame(
        {
            "period": s["period"],
            "segment": s["segment"],
            "new bookings": s["new_bookings"].map(_count),
            "deal size": s["deal_size"].map(_count),
            "win rate": s["win_rate"].map(_pct),
            "lead→opp": s["lead_to_opportunity"].map(_pct),
            "deals": s["deals"].map(lambda v: f"{v:,.1f}"),
            "opps": s["opportunities"].map(_count),
            "leads": s["leads"].map(_count),
        }
    )
    for c in levels:
        lab = f"p{100 * c:g}".replace(".", "_")
        out[f"leads {lab}"] = s[f"leads_{lab}"].map(_count)
    out["leads from"] = s["leads_from"].astype(str).replace("NaT", "")
    out["until"] = s["leads_until"].astype(str).replace("NaT", "")
    return out


def _calendar_view(result: Plan, levels: list[float]) -> pd.DataFrame:
    cal = result.calendar
    tot = cal[cal["segment"] == "total"].set_index("month")
    segs = [s for s in cal["segment"].unique() if s != "total"]
    view = pd.DataFrame({"month": tot.index.astype(str), "status": tot["status"].to_numpy()})
    if len(segs) > 1:
        for s in segs:
            leads = cal[cal["segment"] == s].set_index("month")["leads"].reindex(tot.index)
            view[f"leads {s}"] = leads.map(_count).to_numpy()
    view["leads"] = tot["leads"].map(_count).to_numpy()
    for c in levels:
        lab = f"p{100 * c:g}".replace(".", "_")
        view[f"leads {lab}"] = tot[f"leads_{lab}"].map(_count).to_numpy()
    view["opps"] = tot["opportunities"].map(_count).to_numpy()
    view["deals"] = tot["deals"].map(lambda v: f"{v:,.1f}").to_numpy()
    view["revenue"] = tot["revenue"].map(_count).to_numpy()
    if "capacity" in tot.columns:
        view["capacity"] = tot["capacity"].map(_count).to_numpy()
        view["over"] = tot["over_capacity"].map(lambda b: "OVER" if b else "").to_numpy()
    busy = (tot["leads"] >= 0.5) | (tot["opportunities"] >= 0.5) | (tot["deals"] > 0)
    return view[busy.to_numpy()].reset_index(drop=True)


def _vs_actual_view(result: Plan) -> pd.DataFrame:
    v = result.vs_actual
    v = v[v["segment"] == "total"]
    out = pd.DataFrame({"month": v["month"].astype(str), "complete": v["complete"].map(str)})
    for what in ("leads", "opportunities", "deals", "revenue"):
        short = "opps" if what == "opportunities" else what
        out[f"{short} plan"] = v[f"{what}_planned"].map(_count)
        out[f"{short} actual"] = v[f"{what}_actual"].map(_count)
    return out.reset_index(drop=True)


def plan_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of canonical tables (CSV or Parquet).")],
    target: Annotated[
        float | None, typer.Option(help="Revenue target (new bookings), e.g. 2000000.")
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="Period of --target: 2027Q1, 2027-03 or 2027.")
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option("--targets", help="CSV of period,target rows (instead of --target)."),
    ] = None,
    segment: Annotated[
        str, typer.Option(help="Column of leads to plan per segment; 'none' for one segment.")
    ] = "source",
    segments: Annotated[
        str | None,
        typer.Option(
            help=f"Group segment values: '{_BOOK}' (the demo's sources) or a JSON mapping."
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(help="JSON share of the target per segment (default: won revenue share)."),
    ] = None,
    confidence: Annotated[
        list[float] | None,
        typer.Option(help="Confidence level (repeatable); default 0.5, 0.8 and 0.9."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Estimate from what was known at this date.")
    ] = None,
    lookback_months: Annotated[int, typer.Option(min=1, help="Months of history used.")] = 24,
    lead_window_days: Annotated[
        int, typer.Option(min=1, help="Days within which a lead must become an opportunity.")
    ] = 180,
    win_window_days: Annotated[
        int, typer.Option(min=1, help="Days within which an opportunity must be won.")
    ] = 180,
    qualified_stage: Annotated[
        str | None, typer.Option(help="Count only opportunities that reached this stage.")
    ] = None,
    prior_strength: Annotated[
        float, typer.Option(min=0, help="Pseudo-observations of the benchmark prior.")
    ] = 20.0,
    prior_lead_rate: Annotated[
        float, typer.Option(help="Benchmark lead→opportunity rate (Implisit 13%).")
    ] = 0.13,
    prior_win_rate: Annotated[float, typer.Option(help="Benchmark win rate.")] = 0.25,
    draws: Annotated[int, typer.Option(min=100, help="Monte Carlo draws.")] = 4000,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (same seed, same plan).")] = 0,
    reps: Annotated[
        int | None, typer.Option(min=0, help="Capacity check: fully ramped reps.")
    ] = None,
    per_rep: Annotated[
        float | None, typer.Option(help="Capacity check: opportunities (or leads) per rep-month.")
    ] = None,
    ramp_months: Annotated[int, typer.Option(min=0, help="Months for a new rep to ramp.")] = 0,
    hire: Annotated[
        list[str] | None,
        typer.Option(help="Capacity check: MONTH=N reps starting that month (repeatable)."),
    ] = None,
    capacity_stage: Annotated[
        CapacityStage, typer.Option(help="What reps' capacity is counted in.")
    ] = CapacityStage.opportunities,
    nrr: Annotated[
        str | None,
        typer.Option(
            help="Credit expected expansion at this NRR (1.08 = 108%), with --arr-base; or "
            "'measured': the year-over-year NRR and the ARR of subscriptions.csv."
        ),
    ] = None,
    arr_base: Annotated[
        float | None,
        typer.Option(help="Recurring revenue of existing customers at the start (with --nrr)."),
    ] = None,
    reporting_currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "USD",
    show: Annotated[
        Show, typer.Option(help="The frame written by --format csv (and shown by table).")
    ] = Show.calendar,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Work back from a revenue target to the leads, opportunities and deals it needs, by month.

    Uses the team's own conversion rates, deal sizes and lags (docs/planning.md).
    """
    with _errors(), _progress() as progress:
        wanted = _checked(_targets(target, period, targets))
        levels = sorted(confidence) if confidence else [0.5, 0.8, 0.9]
        capacity = None
        if reps is not None or per_rep is not None or hire:
            if reps is None or per_rep is None:
                raise ConfigError("a capacity check needs both --reps and --per-rep.")
            hires: dict[str, int] = {}
            for item in hire or []:
                month, sep, n = item.partition("=")
                if not sep or not n.strip().isdigit():
                    raise ConfigError(f"--hire {item!r}: expected MONTH=N, e.g. 2027-01=2.")
                hires[month.strip()] = int(n)
            capacity = Capacity(
                reps=reps,
                per_rep=per_rep,
                ramp_months=ramp_months,
                hires=hires,
                stage=capacity_stage.value,
            )
        measured = nrr is not None and nrr.strip().lower() == "measured"
        credit = None
        if not measured and (nrr is not None or arr_base is not None):
            if nrr is None or arr_base is None:
                raise ConfigError(
                    "an expansion credit needs both --nrr and --arr-base (or --nrr measured)."
                )
            try:
                credit = ExpansionCredit(nrr=float(nrr), base=arr_base)
            except ValueError:
                raise ConfigError(
                    f"--nrr {nrr!r}: give a ratio such as 1.08, or 'measured'."
                ) from None
        task = progress.add_task(f"reading {folder}", total=None)
        con = engine.connect()
        data = _read_needed(con, folder, subscriptions=measured)
        if measured:
            progress.update(task, description="measuring NRR and ARR from subscriptions")
            credit = _measured_credit(con, data, as_of, arr_base)
        progress.update(task, description="measuring rates, lags and deal sizes")
        queries = plan_inputs(
            data,
            segment=None if segment.lower() == "none" else segment,
            segments=_segments(segments),
            as_of=as_of,
            lookback_months=lookback_months,
            lead_window_days=lead_window_days,
            win_window_days=win_window_days,
            qualified_stage=qualified_stage,
            reporting_currency=reporting_currency,
        )
        frames = {k: engine.to_pandas(t, con) for k, t in queries.tables().items()}
        inputs = PlanInputs.from_frames(frames, queries.params())
        progress.update(task, description=f"simulating {draws:,} draws")
        result = plan(
            inputs,
            wanted,
            confidence=levels,
            prior=Prior(
                lead_to_opportunity=prior_lead_rate,
                win_rate=prior_win_rate,
                strength=prior_strength,
            ),
            draws=draws,
            seed=seed,
            weights=_weights(weights),
            capacity=capacity,
            expansion_credit=credit,
        )
        con.disconnect()
        frame = {
            Show.summary: result.summary,
            Show.calendar: result.calendar,
            Show.rates: result.rates,
            Show.vs_actual: result.vs_actual,
        }[show]
        if fmt is Format.json:
            text = json.dumps(plan_document(result, wanted), indent=2, default=str) + "\n"
        elif fmt is Format.csv:
            text = frame.to_csv(index=False)
        else:
            text = ""
        if output is not None and fmt is Format.csv:
            _write_csv_atomic(frame, output)
        elif output is not None and text:
            _write_text_atomic(text, output)
        elif text:
            typer.echo(text, nl=False)
    if fmt is not Format.table:
        if output is not None:
            console.print(f"wrote the plan to {output}")
        return
    label = ", ".join(f"{p} {v:,.0f}" for p, v in wanted.items())
    _print_table(_summary_view(result, levels), title=f"Plan for {label}", max_rows=60)
    if show is Show.rates:
        _print_table(result.rates, title="Rates per segment")
    elif show is Show.vs_actual:
        _print_table(
            _vs_actual_view(result),
            title="Plan versus actual (total; months up to the data's end)",
            max_rows=60,
        )
    else:
        _print_table(
            _calendar_view(result, levels),
            title="Lead calendar: what must arrive each month (total; status vs as-of)",
            max_rows=60,
        )
    policy = result.policy
    prior = policy["prior"]
    assert isinstance(prior, dict)
    console.print(
        f"as of {policy['as_of']}; prior: lead→opp {prior['lead_to_opportunity']:g}, win "
        f"{prior['win_rate']:g}, strength {prior['strength']:g}; {policy['draws']} draws, "
        f"seed {policy['seed']}; target split by {policy['weights']}",
        highlight=False,
    )
    for note in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
