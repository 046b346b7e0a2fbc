"""ChannelAttribution 2.2.5 ``heuristic_models`` from raw touchpoints (runs in benches/.venvs/ca).

Phases:
- ``read``: both Parquet files into pandas (only the columns needed).
- ``prepare``: what a ChannelAttribution user has to write (vectorised pandas/numpy,
  see ``build_paths``): order touches by person and time, build one ``"a>b>c"`` path
  string per journey, attach the person's conversions (count and value), and aggregate
  to distinct paths with ``total_conversions``, ``total_conversion_value`` and
  ``total_null`` (the input ``markov_model`` also takes).
- ``models``: ``heuristic_models`` (first touch, last touch, linear; conversions and value
  in one call), with ``flg_pro=False`` so it does not print its Pro banner.
"""

from __future__ import annotations

from importlib.metadata import version

import ChannelAttribution as ca  # prints a Pro banner on import
import numpy as np
import pandas as pd

from _measure import Recorder, channel_table, runner_args, write_result


def build_paths(tp: pd.DataFrame, cv: pd.DataFrame) -> pd.DataFrame:
    """Distinct ``a>b>c`` paths with ``total_conversions, total_conversion_value, total_null``.

    Vectorised: persons are factorised to integer codes, touches ordered with one
    ``np.lexsort`` and the path strings grown one position at a time over all journeys
    that are that long. (The textbook ``sort_values(...).groupby(person)["channel"]
    .agg(">".join)`` is a Python call per journey and was 3-4x slower here.)
    """
    person, people = pd.factorize(tp["person_id"])
    order = np.lexsort((tp["occurred_at"].to_numpy(), person))
    person = person[order]
    names = np.asarray(tp["channel"].cat.categories, dtype=object)
    channel = names[tp["channel"].cat.codes.to_numpy()[order]]
    del order
    starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    lengths = np.diff(np.r_[starts, person.size])
    path = channel[starts].copy()
    for k in range(1, int(lengths.max())):  # one pass per position, over longer journeys only
        longer = np.flatnonzero(lengths > k)
        path[longer] = path[longer] + ">" + channel[starts[longer] + k]
    # each journey's conversions (a person converts at most once here, but count them all)
    owner = people.get_indexer(cv["person_id"])
    known = owner >= 0  # conversions of people without touches have no path
    n_people = len(people)
    conversions = np.bincount(owner[known], minlength=n_people)[person[starts]]
    value = np.bincount(owner[known], weights=cv["value"].to_numpy()[known], minlength=n_people)[
        person[starts]
    ]
    journeys = pd.DataFrame(
        {
            "path": path,
            "total_conversions": conversions.astype("int64"),
            "total_conversion_value": value,
            "total_null": (conversions == 0).astype("int64"),
        }
    )
    return journeys.groupby("path", sort=False, as_index=False).sum()


def main() -> None:
    args = runner_args(__doc__.splitlines()[0])
    rec = Recorder("ChannelAttribution")

    with rec.phase("read"):
        tp = pd.read_parquet(
            args.touchpoints,
            columns=["person_id", "occurred_at", "channel"],
            read_dictionary=["channel"],
        )
        cv = pd.read_parquet(args.conversions, columns=["person_id", "value"])

    with rec.phase("prepare"):
        paths = build_paths(tp, cv)
        del tp, cv

    with rec.phase("models"):
        res = ca.heuristic_models(
            paths,
            "path",
            "total_conversions",
            var_value="total_conversion_value",
            sep=">",
            flg_pro=False,
        )

    conversions: dict[str, dict[str, float]] = {}
    value: dict[str, dict[str, float]] = {}
    for model in ("first_touch", "last_touch", "linear_touch"):
        name = model.replace("_touch", "")
        conversions[name] = dict(zip(res["channel_name"], res[f"{model}_conversions"], strict=True))
        value[name] = dict(zip(res["channel_name"], res[f"{model}_value"], strict=True))

    write_result(
        args.out,
        rec.result(
            version=version("ChannelAttribution"),
            pandas=pd.__version__,
            models=["first_touch", "last_touch", "linear_touch"],
            input_rows=len(paths),
            input_conversions=int(paths["total_conversions"].sum()),
            conversions=channel_table(conversions),
            value=channel_table(value),
        ),
    )


if __name__ == "__main__":
    main()
