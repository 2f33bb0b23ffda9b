"""Batch build: every customer at every monthly index date -> per-segment tables with labels.

Cohorts are computed once for all customers x index dates; then, per segment, the members'
rows go through compute_features (the same function the service calls) and the label pass.
Pure: takes a History and dates, yields frames; reading and writing live in features/io.py.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from features import cohorts, labels
from features.engine import run
from features.history import History, to_micros
from features.pipeline import VERSION_COLUMN, TimeOutsideDataError, compute_features, label_frame
from features.spec import segment_names, segment_outcomes
from features.version import pipeline_version
from features.labels import FutureWindow
from features.past import over_past
from features.windows import Timeline

Progress = Callable[[str, int], None]  # (what, how many steps done) for the CLI's progress bar


def index_dates(extract_start, extract_end, *, warmup_days: int = 365) -> list[pd.Timestamp]:
    """First-of-month 00:00 times t with extract_start + warmup_days <= t < extract_end.

    The warm-up keeps index dates whose 365-day feature windows would reach before the extract
    (so every row sees a full year of history); 0 uses every month in the extract.
    """
    start = pd.Timestamp(extract_start) + pd.Timedelta(days=warmup_days)
    first = start.normalize().replace(day=1)
    if first < start:
        first = first + pd.DateOffset(months=1)
    dates = pd.date_range(first, pd.Timestamp(extract_end), freq="MS", inclusive="left")
    return [pd.Timestamp(d) for d in dates]


def build_tables(
    history: History,
    extract_start,
    extract_end,
    *,
    segments: Sequence[str] | None = None,
    times: Sequence[pd.Timestamp] | None = None,
    warmup_days: int = 365,
    workers: int = 2,
    progress: Progress | None = None,
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (segment, table) with subject_id, prediction_time, features, label_/censor_/eligible_/
    outcome_time_ per outcome and pipeline_version; rows sorted by (subject_id, prediction_time)."""
    segments = list(segments or segment_names())
    for s in segments:
        segment_outcomes(s)  # an unknown segment fails before any work
    times = list(times) if times is not None else index_dates(extract_start, extract_end, warmup_days=warmup_days)
    if not times:
        raise TimeOutsideDataError(f"no monthly index dates between {extract_start} and {extract_end} after a {warmup_days}-day warm-up")
    micros_t = to_micros(times)
    start, end = int(to_micros([extract_start])[0]), int(to_micros([extract_end])[0])
    if micros_t.min() < start or micros_t.max() > end:
        raise TimeOutsideDataError(f"index dates must lie within the extract {extract_start} .. {extract_end}")
    tick = progress or (lambda what, n: None)

    n_c, n_t = history.n_customers, len(micros_t)
    customer = np.repeat(np.arange(n_c, dtype=np.int64), n_t)  # sorted by (customer, time)
    when = np.tile(micros_t, n_c)
    cohort = run(history, customer, when, over_past(cohorts.compute), workers=workers)
    tick("cohorts", 1)

    for segment in segments:
        rows = np.flatnonzero(cohort[f"in_{segment}"])
        c, t = customer[rows], when[rows]
        table = compute_features(None, None, history.subject_ids[c], t.astype("datetime64[us]"), segment,
                                 history=history, span=(extract_start, extract_end), workers=workers)
        tick(f"{segment} features", 1)
        outcomes = segment_outcomes(segment)

        def label_pass(tl: Timeline, outcomes: tuple[str, ...] = outcomes) -> dict[str, np.ndarray]:
            out = {}
            for outcome in outcomes:
                out[f"status_{outcome}"], out[f"reason_{outcome}"], out[f"time_{outcome}"] = labels.compute(FutureWindow(tl), outcome, end)
            return out

        cols = run(history, c, t, label_pass, workers=workers)
        selected = {name: values[rows] for name, values in cohort.items()}
        cols.update(cohorts.eligibility(selected, segment))
        version = table.pop(VERSION_COLUMN)
        table = pd.concat([table, label_frame(cols, segment), version], axis=1)
        table.attrs[VERSION_COLUMN] = pipeline_version()
        tick(f"{segment} labels", 1)
        yield segment, table


def meds_labels(table: pd.DataFrame, segment: str) -> pd.DataFrame:
    """MEDS label shape for every outcome of a segment table: eligible rows only.

    Columns subject_id, prediction_time, boolean_value (null when censored), problem
    (`<segment>-<outcome>`, so the segment is in it) and censor (the reason or null), as the
    labels contract in data_contracts/schemas.py allows.
    """
    parts = []
    for outcome in segment_outcomes(segment):
        eligible = table[f"eligible_{outcome}"].to_numpy(dtype=bool)
        part = pd.DataFrame({
            "subject_id": table["subject_id"].to_numpy()[eligible],
            "prediction_time": table["prediction_time"].to_numpy()[eligible],
            "boolean_value": table[f"label_{outcome}"].array[eligible],
            "problem": f"{segment}-{outcome}",
            "censor": table[f"censor_{outcome}"].array[eligible],
        })
        parts.append(part)
    return pd.concat(parts, ignore_index=True)

