"""The full metric panel on a company-sized CRM: revloop on DuckDB against plain pandas.

    .venv/bin/python benches/bench_metrics.py --leads 1000000 --repeat 1

The same seeded exports (``benches/_crm.py``, cached under ``benches/data/crm-{leads}/``:
leads, activities, opportunities, stage history, subscriptions, FX rates) go through,
one after another, each in its own interpreter so that its peak memory is its own:

- ``revloop``: ``revloop.read_dir`` (validate the files and load them into an in-memory
  DuckDB; reported as ``read``), then ``metrics.panel`` + ``engine.compute_metrics`` over
  every request, a headline figure and a monthly trend per metric (``compute``, the timed
  figure), with the time of each request;
- ``pandas``: ``benches/pandas_panel.py``, a straightforward pandas script computing the
  same figures (``pd.read_parquet`` is ``read``, the metrics are ``compute``).

Then every figure of every request is compared (rows matched on their period, stage,
bucket or cohort) and a table of the headline values printed; results go to
``benches/results/metrics-<UTC time>.json`` and ``.md`` (and ``metrics-latest.*``).
Nothing is asserted: timings are recorded, not tested. ``--runner revloop`` is the
revloop side alone (what the driver runs in a subprocess).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from _crm import END, START, ensure_crm  # benches/ is on sys.path: it holds this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

#: Columns that identify a row of a metric with several rows (besides ``period``).
ROW_KEYS: dict[str, list[str]] = {
    "stage_conversion": ["stage"],
    "time_in_stage": ["stage"],
    "conversion_by_response_time": ["response_bucket"],
    "cohort_retention": ["cohort", "age"],
}
#: The column shown in the agreement table when a metric has no ``value``.
SHOWN_COLUMN = {"pipeline_waterfall": "end"}
#: Not compared: the waterfall's residual is rounding noise around 0 in both tools.
SKIP_COLUMNS = {"check"}
#: Two figures agree when |a - b| <= TOLERANCE × max(|a|, |b|) (or both are tiny or null).
TOLERANCE = 1e-6
ABS_TINY = 1e-9


def default_target(leads: int) -> float:
    """Revenue target per month for pipeline coverage: 10 USD per lead of the company."""
    return 10.0 * leads


# -- revloop runner --------------------------------------------------------------------------
def run_revloop(
    data: Path, start: str, end: str, target: float, threads: int | None
) -> dict[str, Any]:
    """Load the exports into DuckDB and compute the whole panel; timings and frames."""
    import revloop
    from _measure import Recorder
    from revloop import engine, metrics

    rec = Recorder("revloop")
    with rec.phase("read"):
        con = revloop.connect(threads=threads)
        tables = dict(revloop.read_dir(con, data))
    requests: list[dict[str, Any]] = []
    frames: list[tuple[tuple[str, str | None], pd.DataFrame]] = []
    with rec.phase("compute"):
        t0 = [time.perf_counter()]

        def done(m: engine.MetricFrame) -> None:
            now = time.perf_counter()
            requests.append(
                {
                    "metric": m.request.name,
                    "period": m.request.period,
                    "s": round(now - t0[0], 3),
                    "rows": len(m.frame),
                }
            )
            t0[0] = now

        p = metrics.panel(tables, period="month", start=start, end=end, target=target)
        out = engine.compute_metrics(con, tables, p.requests, on_done=done)
        frames = [((m.request.name, m.request.period), m.frame) for m in out]
    import duckdb
    import ibis

    return rec.result(
        versions={
            "revloop": _version("revloop"),
            "duckdb": duckdb.__version__,
            "ibis-framework": ibis.__version__,
            "pandas": pd.__version__,
        },
        threads=threads,
        skipped=dict(p.skipped),
        requests_s=requests,
        frames=frames_json(frames),
    )


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


# -- frames and agreement --------------------------------------------------------------------
def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Dates (revloop's ``datetime.date``, pandas' Timestamps) as ``YYYY-MM-DD`` text."""
    d = df.copy()
    for c in d.columns:
        col = d[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            d[c] = col.dt.strftime("%Y-%m-%d")
        elif col.dtype == object and col.map(lambda v: isinstance(v, _dt.date)).any():
            d[c] = pd.to_datetime(col).dt.strftime("%Y-%m-%d")
    return d


def frames_json(
    frames: Sequence[tuple[tuple[str, str | None], pd.DataFrame]],
) -> list[dict[str, Any]]:
    out = []
    for (name, period), df in frames:
        rows = json.loads(normalise(df).to_json(orient="records", double_precision=15))
        out.append({"metric": name, "period": period, "rows": rows})
    return out


def frames_from_json(items: list[dict[str, Any]]) -> dict[tuple[str, str | None], pd.DataFrame]:
    return {(i["metric"], i["period"]): pd.DataFrame(i["rows"]) for i in items}


def _rel(a: float, b: float) -> float:
    na, nb = a is None or math.isnan(a), b is None or math.isnan(b)
    if na or nb:
        return 0.0 if na and nb else math.inf
    diff = abs(a - b)
    if diff <= ABS_TINY:
        return 0.0
    return diff / max(abs(a), abs(b))


def compare_frames(
    name: str, period: str | None, ours: pd.DataFrame, theirs: pd.DataFrame
) -> dict[str, Any]:
    """Rows matched on their keys; the largest relative difference per column."""
    keys = ([] if period is None and name != "pipeline_waterfall" else ["period"]) + ROW_KEYS.get(
        name, []
    )
    a, b = normalise(ours), normalise(theirs)
    cols = [
        c
        for c in a.columns
        if c in b.columns
        and c not in keys
        and c not in SKIP_COLUMNS
        and pd.api.types.is_numeric_dtype(a[c])
        and not pd.api.types.is_bool_dtype(a[c])
    ]
    if keys:
        m = a[keys + cols].merge(b[keys + cols], on=keys, how="outer", suffixes=("", "_pd"))
    else:
        m = pd.concat(
            [a[cols].reset_index(drop=True), b[cols].add_suffix("_pd").reset_index(drop=True)],
            axis=1,
        )
    worst: dict[str, float] = {}
    for c in cols:
        x = pd.to_numeric(m[c], errors="coerce").astype(float)
        y = pd.to_numeric(m[f"{c}_pd"], errors="coerce").astype(float)
        worst[c] = max((_rel(u, v) for u, v in zip(x, y, strict=True)), default=0.0)
    worst_col = max(worst, key=lambda k: worst[k]) if worst else None
    show = SHOWN_COLUMN.get(name, "value")
    head = ours[show].iloc[0] if show in ours.columns and len(ours) else None
    head_pd = theirs[show].iloc[0] if show in theirs.columns and len(theirs) else None
    if not keys:
        shown = f"headline {show}" if show != "value" else "headline"
    elif name in ROW_KEYS:
        shown = f"first row ({', '.join(str(a[k].iloc[0]) for k in ROW_KEYS[name])})"
    else:
        shown = f"first period ({a['period'].iloc[0]})" if len(a) else "first period"
    if show != "value" and keys:
        shown += f", {show}"
    max_rel = max(worst.values(), default=0.0)
    return {
        "metric": name,
        "period": period,
        "rows_revloop": len(ours),
        "rows_pandas": len(theirs),
        "columns": len(cols),
        "shown": shown,
        "revloop": None if head is None or pd.isna(head) else float(head),
        "pandas": None if head_pd is None or pd.isna(head_pd) else float(head_pd),
        "value_rel_diff": worst.get("value", 0.0),
        "max_rel_diff": max_rel,
        "worst_column": worst_col if max_rel > 0 else None,
        "agree": len(ours) == len(theirs) and max_rel <= TOLERANCE,
    }


def agreement(
    ours: Mapping[tuple[str, str | None], pd.DataFrame],
    theirs: Mapping[tuple[str, str | None], pd.DataFrame],
) -> list[dict[str, Any]]:
    rows = []
    for key, df in ours.items():
        if key not in theirs:
            rows.append({"metric": key[0], "period": key[1], "agree": False, "error": "no pandas"})
            continue
        rows.append(compare_frames(key[0], key[1], df, theirs[key]))
    return rows


# -- driver ----------------------------------------------------------------------------------
def run_tool(
    tool: str, meta: dict[str, Any], args: argparse.Namespace, logs: Path, rep: int
) -> dict[str, Any]:
    out = logs / f"{tool}-{rep}.json"
    log = logs / f"{tool}-{rep}.log"
    common = [
        "--start",
        args.start,
        "--end",
        args.end,
        "--target",
        str(args.target),
        "--out",
        str(out),
    ]
    if tool == "revloop":
        cmd = [sys.executable, str(HERE / "bench_metrics.py"), "--runner", "revloop",
               "--data", meta["dir"], *common]  # fmt: skip
        if args.threads:
            cmd += ["--threads", str(args.threads)]
    else:
        cmd = [sys.executable, str(HERE / "pandas_panel.py"), meta["dir"], *common]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            code: int | str = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, timeout=args.timeout, cwd=ROOT
            ).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.perf_counter() - t0
    if code != 0 or not out.exists():
        print(f"  {tool}: FAILED ({code}); log {log}\n{log.read_text()[-3000:]}", file=sys.stderr)
        return {"tool": tool, "error": str(code), "log": str(log), "wall_s": round(wall, 2)}
    res: dict[str, Any] = json.loads(out.read_text())
    res["wall_s"] = round(wall, 2)
    print(
        f"  {tool}: read {res['phases_s']['read']:.2f} s, compute {res['phases_s']['compute']:.2f} s,"
        f" peak {res['peak_rss_mb'] / 1000:.2f} GB",
        file=sys.stderr,
    )
    return res


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    best = dict(min(ok, key=lambda r: r["phases_s"]["compute"]))
    best["repeats"] = len(ok)
    best["compute_s_all"] = [r["phases_s"]["compute"] for r in ok]
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
    return best


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 1e-3:
        return f"{x:.6g}"
    return f"{x:,.6g}"


def markdown(report: dict[str, Any]) -> str:
    d = report["data"]
    rl, pdr = report["tools"].get("revloop", {}), report["tools"].get("pandas", {})
    lines = [
        f"Data: {d['leads']:,} leads, "
        + ", ".join(f"{k} {v:,}" for k, v in d["rows"].items())
        + f"; {d['customers']:,} customers (seed {d['seed']}).",
        "",
        "| tool | read s | compute s | read + compute s | CPU s | peak RSS GB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in (("revloop (DuckDB)", rl), ("pandas", pdr)):
        if not res or "error" in res:
            lines.append(f"| {name} | failed | | | | |")
            continue
        ph = res["phases_s"]
        lines.append(
            f"| {name} | {ph['read']:.2f} | **{ph['compute']:.2f}** | {res['total_s']:.2f} | "
            f"{res['cpu_s']:.1f} | {res['peak_rss_mb'] / 1000:.2f} |"
        )
    t = report.get("target")
    if t:
        lines += [
            "",
            f"revloop compute {t['revloop_compute_s']:.2f} s (goal < 30 s); pandas ÷ revloop = "
            f"{t['ratio_compute']:.2f}× on compute, {t['ratio_total']:.2f}× with reading (goal ≥ 5×).",
        ]
    if rl and "requests_s" in rl:
        lines += ["", "revloop per request (s, in panel order; the first subscription request "
                  "includes building the shared MRR ledger):", ""]  # fmt: skip
        lines.append(
            ", ".join(
                f"{r['metric']}{'/month' if r['period'] else ''} {r['s']:.2f}"
                for r in rl["requests_s"]
            )
        )
    if pdr and "steps_s" in pdr:
        lines += [
            "",
            "pandas steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in pdr["steps_s"].items()),
        ]
    if report.get("agreement"):
        n_ok = sum(bool(r["agree"]) for r in report["agreement"])
        lines += [
            "",
            f"Agreement: {n_ok} of {len(report['agreement'])} requests agree on every compared "
            f"figure (relative difference ≤ {TOLERANCE:g}).",
            "",
            "| metric | period | value shown | revloop | pandas | rel. diff (value) | max rel. diff, all columns (worst) | rows |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in report["agreement"]:
            if "error" in r:
                lines.append(f"| {r['metric']} | {r['period'] or '–'} | {r['error']} | | | | | |")
                continue
            worst = f" ({r['worst_column']})" if r["worst_column"] else ""
            lines.append(
                f"| {r['metric']} | {r['period'] or '–'} | {r['shown']} | {_fmt(r['revloop'])} | "
                f"{_fmt(r['pandas'])} | {r['value_rel_diff']:.1e} | {r['max_rel_diff']:.1e}{worst} | "
                f"{r['rows_revloop']} / {r['rows_pandas']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool (the fastest is reported)")
    ap.add_argument(
        "--tools", nargs="+", choices=["revloop", "pandas"], default=["revloop", "pandas"]
    )
    ap.add_argument("--start", default=START)
    ap.add_argument("--end", default=END)
    ap.add_argument("--target", type=float, default=None, help="revenue target per month")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--max-busy", type=float, default=0.25)
    ap.add_argument("--max-wait", type=float, default=120)
    ap.add_argument("--runner", choices=["revloop"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.target is None:
        args.target = default_target(args.leads)

    if args.runner == "revloop":
        from _measure import write_result

        write_result(
            args.out, run_revloop(args.data, args.start, args.end, args.target, args.threads)
        )
        return 0

    from bench_rule_based import _warm, machine, wait_idle

    meta = ensure_crm(args.leads)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = RESULTS / f"metrics-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    _warm([str(Path(meta["dir"]) / f"{t}.parquet") for t in meta["rows"]])
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in args.tools}
    for rep in range(args.repeat):
        for tool in args.tools if rep % 2 == 0 else list(reversed(args.tools)):
            busy = wait_idle(args.max_busy, args.max_wait)
            res = run_tool(tool, meta, args, logs, rep)
            res["busy_cores_before"] = round(busy, 2)
            runs[tool].append(res)
    tools = {t: _best(r) for t, r in runs.items()}
    report: dict[str, Any] = {
        "benchmark": "metrics_panel",
        "command": " ".join(
            [Path(sys.executable).name, "benches/bench_metrics.py", *(argv or sys.argv[1:])]
        ),
        "machine": machine(),
        "data": {k: meta[k] for k in ("leads", "seed", "rows", "customers", "start", "end")},
        "window": {"start": args.start, "end": args.end, "target": args.target},
        "tools": {t: {k: v for k, v in r.items() if k != "frames"} for t, r in tools.items()},
    }
    rl, pdr = tools.get("revloop"), tools.get("pandas")
    if rl and pdr and "error" not in rl and "error" not in pdr:
        report["agreement"] = agreement(
            frames_from_json(rl["frames"]), frames_from_json(pdr["frames"])
        )
        report["target"] = {
            "revloop_compute_s": rl["phases_s"]["compute"],
            "pandas_compute_s": pdr["phases_s"]["compute"],
            "ratio_compute": pdr["phases_s"]["compute"] / rl["phases_s"]["compute"],
            "ratio_total": pdr["total_s"] / rl["total_s"],
        }
    md = markdown(report)
    print(md)
    RESULTS.mkdir(exist_ok=True)
    for name in (f"metrics-{stamp}", "metrics-latest"):
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (RESULTS / f"{name}.md").write_text(md + "\n")
    print(f"results: {RESULTS / f'metrics-{stamp}.json'} (and .md)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
