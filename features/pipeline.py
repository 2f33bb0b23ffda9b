"""The one feature function, plus cohorts and labels, for given customers at given times.

Training (via `features build`), batch scoring and the service all call compute_features; the
service passes a prebuilt `history` (features.history.History) so an online call does no pandas
work on the region's events. Every output carries the feature-pipeline version.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd

from features import cohorts, labels
from features.catalogue import FeatureInfo, catalogue, feature_info
from features.engine import in_query_order, run, run_blocks
from features.families import FAMILIES
from features.history import History, to_micros
from features.spec import segment_families, segment_names, segment_outcomes
from features.version import pipeline_version
from features.labels import FutureWindow
from features.past import PastWindow, over_past
from features.windows import Timeline
from base.errors import SoteRiskError

ID_COLUMNS = ("subject_id", "prediction_time")
VERSION_COLUMN = "pipeline_version"


class TimeOutsideDataError(SoteRiskError):
    """A prediction time outside the span the data covers."""


def feature_names(segment: str) -> list[str]:
    """The segment's feature columns, in catalogue order (= column order of every output)."""
    return list(_feature_names(segment))


@lru_cache(maxsize=None)
def _feature_names(segment: str) -> tuple[str, ...]:
    families = set(segment_families(segment))
    return tuple(e.name for e in catalogue() if e.family in families)


def compute_features(
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    subject_ids: Sequence[int] | np.ndarray,
    times: Sequence | np.ndarray | pd.Series,
    segment: str,
    *,
    history: History | None = None,
    span: tuple | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Features of `segment` for the pairs (subject_ids[i], times[i]), from events at or before times[i].

    Returns subject_id, prediction_time, the segment's feature columns (float64; categoricals
    with the catalogue's fixed categories) and pipeline_version, one row per pair, in the order
    given. `history` replaces events/customers when already built (the precomputed state).
    `span=(start, end)` (either may be None) bounds the allowed times; by default times may not
    precede the first event of the data (an open upper end lets the service score "now").
    """
    history, customer, micros = _prepare(events, customers, subject_ids, times, history, span)
    columns = _feature_columns(history, customer, micros, segment, workers)
    return _frame(history.subject_ids[customer], micros, columns)


def feature_columns(history: History, subject_ids: Sequence[int] | np.ndarray, times: Sequence | np.ndarray,
                    segment: str) -> dict[str, np.ndarray]:
    """compute_features' values without the frame: name -> array in feature_names(segment) order,
    floats as float64 and categoricals as their int8 codes in the catalogue's categories (-1 =
    missing). For the service, where building a 135-column pandas frame for one row costs more
    than computing it; compute_features is this plus _frame, so both give the same values."""
    _, customer, micros = _prepare(None, None, subject_ids, times, history, None)
    return _feature_columns(history, customer, micros, segment, 1)


def _feature_columns(history: History, customer: np.ndarray, micros: np.ndarray, segment: str,
                     workers: int) -> dict[str, np.ndarray]:
    feature_names(segment)  # validates the segment first
    return run(history, customer, micros, over_past(lambda past: segment_features(past, segment)), workers=workers)


def segment_features(past: PastWindow, segment: str, computed: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """The segment's feature columns for the window's queries, in feature_names order.
    `computed` (family -> columns, for this very window) lets segments that share families and
    queries compute each family once."""
    computed = {} if computed is None else computed
    out: dict[str, np.ndarray] = {}
    for family in segment_families(segment):
        if family not in computed:
            computed[family] = FAMILIES[family](past)
        out.update(computed[family])
    return {name: out[name] for name in _feature_names(segment)}


@lru_cache(maxsize=None)
def _no_rows(segment: str) -> dict[str, np.ndarray]:
    """The segment's feature columns for no query at all (their names and dtypes)."""
    columns = feature_columns(History.from_frames(*_empty_frames()), [], [], segment)
    for values in columns.values():
        values.setflags(write=False)  # shared between calls
    return columns


def _empty_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from features.history import CUSTOMER_COLUMNS, EVENT_COLUMNS

    events = pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "time" else ("int64" if c == "subject_id" else object))
                           for c in EVENT_COLUMNS})
    customers = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("subject_id", "birth_year", "birth_month") else object)
                              for c in CUSTOMER_COLUMNS})
    return events, customers


@dataclass(frozen=True)
class ScoringRows:
    """What scoring takes from the feature path for some (customer, time) pairs.

    cohorts: in_<segment> and eligible_<segment>-<outcome>, one value per pair (cohort_columns);
    members[segment]: positions (ascending) of the pairs eligible for a requested problem of it;
    features[segment]: its feature columns for those pairs, as feature_columns gives them.
    """

    cohorts: dict[str, np.ndarray]
    members: dict[str, np.ndarray]
    features: dict[str, dict[str, np.ndarray]]


def scoring_rows(history: History, subject_ids: Sequence[int] | np.ndarray, times: Sequence | np.ndarray,
                 problems: Sequence[str], *, workers: int = 1) -> ScoringRows:
    """Cohorts of every pair, and each requested problem's segment features for the pairs
    eligible for it, in one pass: each block of customers' timeline is read once, its cohorts
    computed for every pair and its features for the members only (Timeline.subset shares the
    events). The values equal cohort_columns and feature_columns on the same pairs (tested)."""
    _, customer, micros = _prepare(None, None, subject_ids, times, history, None)
    wanted: dict[str, list[str]] = {}
    for problem in problems:
        segment, _, outcome = problem.partition("-")
        if outcome not in segment_outcomes(segment):
            raise SoteRiskError(f"unknown problem {problem!r}: {segment} has no outcome {outcome!r}")
        wanted.setdefault(segment, []).append(f"eligible_{problem}")

    def computation(tl: Timeline) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]]:
        past = PastWindow(tl)
        cohort = _cohort_values(cohorts.compute(past))
        rows = {}
        shared: dict[bytes, tuple[PastWindow, dict]] = {}  # member set -> its window and the families computed on it
        for segment, eligible in wanted.items():
            inside = np.flatnonzero(np.logical_or.reduce([cohort[name] for name in eligible]))
            if not len(inside):
                rows[segment] = (inside, _no_rows(segment))
                continue
            view, computed = shared.setdefault(inside.tobytes(), (past if len(inside) == past.n else past.subset(inside), {}))
            rows[segment] = (inside, segment_features(view, segment, computed))
        return cohort, rows

    parts = run_blocks(history, customer, micros, computation, workers=workers)
    cohort = in_query_order([p for p, _ in parts], [c for _, (c, _) in parts])
    members, features = {}, {}
    for segment in wanted:
        positions = [block[rows[segment][0]] for block, (_, rows) in parts]
        columns = in_query_order(positions, [rows[segment][1] for _, (_, rows) in parts])
        members[segment] = np.sort(np.concatenate(positions))
        features[segment] = columns
    return ScoringRows(cohort, members, features)


def compute_cohorts(
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    subject_ids: Sequence[int] | np.ndarray,
    times: Sequence | np.ndarray | pd.Series,
    *,
    history: History | None = None,
    span: tuple | None = None,
) -> pd.DataFrame:
    """Segment membership and eligibility per pair: in_<segment> and eligible_<segment>-<outcome>."""
    history, customer, micros = _prepare(events, customers, subject_ids, times, history, span)
    frame = _ids(history.subject_ids[customer], micros)
    columns = pd.DataFrame(_cohort_columns(history, customer, micros))
    frame = pd.concat([frame, columns], axis=1)
    frame[VERSION_COLUMN] = pipeline_version()
    return frame


def cohort_columns(history: History, subject_ids: Sequence[int] | np.ndarray, times: Sequence | np.ndarray,
                   *, population: bool = False, span: tuple | None = None) -> dict[str, np.ndarray]:
    """compute_cohorts' in_<segment> and eligible_<segment>-<outcome> columns as boolean arrays
    (no frame: the service asks for one customer at a time). `population=True` adds `population`:
    born, alive and living in the region at the time (what every segment requires; the cost view
    counts residents with it). `span`: as compute_features' (default: no time before the first event)."""
    _, customer, micros = _prepare(None, None, subject_ids, times, history, span)
    if not population:
        return _cohort_columns(history, customer, micros)
    cols = run(history, customer, micros, over_past(cohorts.compute))
    return {"population": cols["population"], **_cohort_values(cols)}


def _cohort_columns(history: History, customer: np.ndarray, micros: np.ndarray) -> dict[str, np.ndarray]:
    return _cohort_values(run(history, customer, micros, over_past(cohorts.compute)))


def _cohort_values(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """in_<segment> and eligible_<segment>-<outcome> from cohorts.compute()'s columns."""
    out: dict[str, np.ndarray] = {}
    for segment in segment_names():
        out[f"in_{segment}"] = cols[f"in_{segment}"]
        for name, values in cohorts.eligibility(cols, segment).items():
            out[f"{name.replace('eligible_', f'eligible_{segment}-')}"] = values
    return out


def compute_labels(
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    subject_ids: Sequence[int] | np.ndarray,
    times: Sequence | np.ndarray | pd.Series,
    segment: str,
    *,
    extract_end,
    history: History | None = None,
) -> pd.DataFrame:
    """label_/censor_/eligible_<outcome> for every outcome of the segment (shape of the feature table)."""
    segment_outcomes(segment)  # an unknown segment fails here, naming the known ones
    history, customer, micros = _prepare(events, customers, subject_ids, times, history, None)
    end = int(to_micros([extract_end])[0])

    def computation(tl: Timeline) -> dict[str, np.ndarray]:
        return label_columns(tl, segment, end)

    cols = run(history, customer, micros, computation)
    frame = _ids(history.subject_ids[customer], micros)
    return pd.concat([frame, label_frame(cols, segment)], axis=1)


def label_columns(tl: Timeline, segment: str, extract_end: int) -> dict[str, np.ndarray]:
    """Raw label arrays (status, reason, outcome time, eligible) per outcome of the segment for a Timeline."""
    out = {}
    eligible = cohorts.eligibility(cohorts.compute(PastWindow(tl)), segment)
    for outcome in segment_outcomes(segment):
        status, reason, when = labels.compute(FutureWindow(tl), outcome, extract_end)
        out[f"status_{outcome}"], out[f"reason_{outcome}"], out[f"time_{outcome}"] = status, reason, when
        out[f"eligible_{outcome}"] = eligible[f"eligible_{outcome}"]
    return out


def label_frame(cols: dict[str, np.ndarray], segment: str) -> pd.DataFrame:
    """label_<o> (nullable boolean), censor_<o> (string or null), eligible_<o> and outcome_time_<o>
    (datetime64[us]: the first outcome event in the label window when label_<o> is true, else NaT)
    per outcome."""
    frame = {}
    reasons = np.array([labels.CENSOR_NAMES.get(code) for code in range(max(labels.CENSOR_NAMES) + 1)], dtype=object)
    for outcome in segment_outcomes(segment):
        status, reason, eligible = cols[f"status_{outcome}"], cols[f"reason_{outcome}"], cols[f"eligible_{outcome}"]
        known = eligible & (status != labels.CENSORED)
        value = pd.array(status == labels.POSITIVE, dtype="boolean")
        value[~known] = pd.NA
        frame[f"label_{outcome}"] = value
        censor = np.where(eligible & (status == labels.CENSORED), reasons[reason], None)
        frame[f"censor_{outcome}"] = pd.array(censor, dtype="string")
        frame[f"eligible_{outcome}"] = np.asarray(eligible, dtype=bool)
        when = np.where(known & (status == labels.POSITIVE), cols[f"time_{outcome}"], labels.NO_TIME)
        frame[f"outcome_time_{outcome}"] = when.astype(np.int64).view("datetime64[us]")
    return pd.DataFrame(frame)


# -- helpers ---------------------------------------------------------------------------------------
def _prepare(events, customers, subject_ids, times, history, span):
    if history is None:
        if events is None or customers is None:
            raise SoteRiskError("compute_features needs events and customers, or a prebuilt history")
        history = History.from_frames(events, customers)
    ids = np.asarray(subject_ids, dtype=np.int64).reshape(-1)
    micros = to_micros(times)
    if len(ids) != len(micros):
        raise SoteRiskError(f"{len(ids)} subject ids but {len(micros)} prediction times; give one time per id")
    _check_span(micros, history, span)
    return history, history.customer_index(ids), micros


def _check_span(micros: np.ndarray, history: History, span) -> None:
    if not len(micros):
        return
    start, end = span if span is not None else (None, None)
    low = int(to_micros([start])[0]) if start is not None else (history.time_min if span is None and history.n_events else None)
    high = int(to_micros([end])[0]) if end is not None else None
    for limit, bad, word in ((low, micros.min(), "before"), (high, micros.max(), "after")):
        if limit is None or (word == "before" and bad >= limit) or (word == "after" and bad <= limit):
            continue
        shown = pd.Timestamp(np.datetime64(int(bad), "us"))
        raise TimeOutsideDataError(
            f"prediction time {shown} is {word} the data's span "
            f"({'start' if word == 'before' else 'end'} {pd.Timestamp(np.datetime64(limit, 'us'))})"
        )


def _ids(subject_ids: np.ndarray, micros: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": np.asarray(subject_ids, dtype=np.int64),
        "prediction_time": micros.astype("datetime64[us]"),
    })


def _frame(subject_ids: np.ndarray, micros: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Assemble the feature frame: ids, float64 features, categoricals from positions, version.

    Consecutive float columns become one 2-D block (one pandas block instead of one per
    column), and the column indexes are cached per layout: building a 135-column frame column
    by column cost ~1 ms per online call.
    """
    n = len(micros)
    head: dict[str, object] = {
        "subject_id": np.asarray(subject_ids, dtype=np.int64),
        "prediction_time": micros.astype("datetime64[us]"),
    }
    layout = _layout(tuple(columns))
    while layout and layout[0][2] is not None:  # leading categoricals join the id columns' frame
        name, dtype = layout[0][0][0], layout[0][2]
        head[name] = pd.Categorical.from_codes(np.asarray(columns[name], dtype=np.int8), dtype=dtype)
        layout = layout[1:]
    pieces = [pd.DataFrame(head)]
    for names, index, dtype in layout:
        if dtype is None:
            block = np.empty((len(names), n), dtype=np.float64)  # pandas' own block layout: no copy
            for j, name in enumerate(names):
                block[j] = columns[name]
            pieces.append(pd.DataFrame(block.T, columns=index, copy=False))
        else:
            codes = np.asarray(columns[names[0]], dtype=np.int8)
            pieces.append(pd.DataFrame({names[0]: pd.Categorical.from_codes(codes, dtype=dtype)}))
    pieces.append(pd.DataFrame({VERSION_COLUMN: np.full(n, pipeline_version(), dtype=object)}))
    frame = pd.concat(pieces, axis=1)
    frame.attrs[VERSION_COLUMN] = pipeline_version()
    return frame


@lru_cache(maxsize=64)
def _layout(names: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], pd.Index | None, pd.CategoricalDtype | None], ...]:
    """Runs of consecutive float columns (with a prebuilt Index) and single categorical columns."""
    runs: list = []
    current: list[str] = []
    for name in names:
        dtype = _categorical_dtype(name)
        if dtype is None:
            current.append(name)
            continue
        if current:
            runs.append((tuple(current), pd.Index(current), None))
            current = []
        runs.append(((name,), None, dtype))
    if current:
        runs.append((tuple(current), pd.Index(current), None))
    return tuple(runs)


@lru_cache(maxsize=None)
def _categorical_dtype(name: str) -> pd.CategoricalDtype | None:
    info: FeatureInfo = feature_info(name)
    return pd.CategoricalDtype(list(info.categories)) if info.kind == "categorical" else None
