"""The cost view as one long CSV table (what `sote-risk costs --csv` and /ui/costs.csv give).

One row per figure: year, table, row (all, a segment, none, or `group`), service_area, model,
top_percent, measure, value; the dimension columns a table does not use are empty. Written to a
temporary sibling and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os

import pandas as pd

from base.atomic import atomic_file
from costs.view import CostView

COLUMNS = ("year", "table", "row", "service_area", "model", "top_percent", "measure", "value")


def _melt(frame: pd.DataFrame, table: str, year: int, **fixed: object) -> pd.DataFrame:
    flat = frame.reset_index()
    dims = [c for c in flat.columns if c in ("row", "service_area", "model", "top_percent")]
    long = flat.melt(id_vars=dims, var_name="measure", value_name="value")
    long.insert(0, "table", table)
    long.insert(0, "year", year)
    for name, value in fixed.items():
        long[name] = value
    return long


def long_table(view: CostView) -> pd.DataFrame:
    parts = [
        _melt(view.segments, "segments", view.year),
        _melt(view.areas, "service_areas", view.year),
        _melt(view.concentration, "concentration", view.year),
        _melt(view.production, "production", view.year, row="all"),
    ]
    if view.group is not None:
        g = view.group
        summary = g.summary.to_frame().T.assign(row="group").set_index("row")
        parts += [
            _melt(summary, "segments", view.year),
            _melt(g.areas, "service_areas", view.year, row="group"),
            _melt(g.concentration, "concentration", view.year, row="group"),
            _melt(g.production, "production", view.year, row="group"),
        ]
    out = pd.concat(parts, ignore_index=True)
    for column in COLUMNS:
        if column not in out.columns:
            out[column] = pd.NA
    out["top_percent"] = out["top_percent"].astype("Int64")
    return out[list(COLUMNS)]


def csv_text(view: CostView) -> str:
    return long_table(view).to_csv(index=False, lineterminator="\n", float_format="%.15g")


def write_csv(view: CostView, path: str | os.PathLike[str]) -> None:
    text = csv_text(view)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
