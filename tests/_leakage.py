"""Probes for the leakage test: copies of real customers' histories with events injected after t.

A probe is one event kind: a catalogue code (every code in data_contracts/codes.csv) with a value
(a code that carries a numeric_value is probed at both ends of its range, so a "last value" that
reads a probe differs from the history's last value at one end at least), a cost and a unit no
real event has. Each (pair, probe) becomes a customer of its own: the pair's customer's history
plus the probe at t + each offset (1 microsecond, 1 day and every horizon of the vocabulary),
queried at that pair's t only. A copy per pair and probe keeps one probe from hiding another (a
HOMECARE/END and a HOMECARE/START at one instant read as still running) and keeps probes for one
t out of another t's past.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.catalogue import load_code_catalogue
from features import History, cohort_columns, feature_columns, segment_names
from features.engine import run
from features.past import PastWindow, over_past
from features.pipeline import segment_features

PROBE_UNIT = "PROBE/UNIT"  # a unit of its own: a look-ahead in the distinct-units count shows
PROBE_COST = 1000.0  # a cost even on codes that cost nothing: a look-ahead in the cost sum shows


@dataclass(frozen=True)
class Probe:
    code: str
    value: float  # NaN for a code that carries no value


def probes() -> list[Probe]:
    """Every catalogue code; a value-bearing one (value_min/value_max in codes.csv) at both ends."""
    out = []
    for row in load_code_catalogue().itertuples(index=False):
        if pd.isna(row.value_min) and pd.isna(row.value_max):
            out.append(Probe(row.code, float("nan")))
        else:
            out.extend(Probe(row.code, float(v)) for v in (row.value_min, row.value_max))
    return out


def offsets() -> tuple[pd.Timedelta, ...]:
    """1 microsecond, 1 day and every outcome's horizon (vocabulary/problems.yaml) after t."""
    from vocabulary import vocabulary

    horizons = sorted({o.horizon_days for o in vocabulary().outcomes.values()})
    return (pd.Timedelta(microseconds=1), pd.Timedelta(days=1), *(pd.Timedelta(days=d) for d in horizons))


def columns(history: History, ids: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
    """Every segment's features and every cohort column ("cohort:<name>") for the pairs.

    The features are feature_columns' (tested equal to them): the same segment_features, run once
    over all segments so that a family two segments share is computed once.
    """
    def every_segment(past: PastWindow) -> dict[str, np.ndarray]:
        computed: dict[str, dict[str, np.ndarray]] = {}
        out: dict[str, np.ndarray] = {}
        for segment in segment_names():
            out.update(segment_features(past, segment, computed))
        return out

    customer, micros = history.customer_index(np.asarray(ids)), np.asarray(times, dtype="datetime64[us]").view(np.int64)
    out = run(history, customer, micros, over_past(every_segment))
    out.update({f"cohort:{name}": values for name, values in cohort_columns(history, ids, times).items()})
    return out


def public_columns(history: History, ids: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
    """What columns() gives, through the public feature_columns and cohort_columns."""
    out: dict[str, np.ndarray] = {}
    for segment in segment_names():
        out.update(feature_columns(history, ids, times, segment))
    out.update({f"cohort:{name}": values for name, values in cohort_columns(history, ids, times).items()})
    return out


@dataclass(frozen=True)
class Copies:
    """Copies of the pairs' customers: `history` (with the probes when probed), the copies' ids,
    and per copy the pair it copies (`pair`) and its probe (`probe`, position in the probe list)."""

    history: History
    ids: np.ndarray
    pair: np.ndarray
    probe: np.ndarray


def copies(customers: pd.DataFrame, events: pd.DataFrame, pair_ids: np.ndarray, pair_times: np.ndarray,
           kinds: list[Probe], after: tuple[pd.Timedelta, ...]) -> Copies:
    """One customer per (pair, probe): the pair's customer's events plus the probe at t + each offset."""
    n_pairs, n_probes = len(pair_ids), len(kinds)
    by_customer = events.groupby("subject_id").indices
    rows = [by_customer.get(int(s), np.zeros(0, dtype=np.int64)) for s in pair_ids]
    row_pair = np.repeat(np.arange(n_pairs), [len(r) for r in rows])
    rows_all = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    copy_pair = np.tile(np.arange(n_pairs), n_probes)  # copy c = probe * n_pairs + pair
    copy_probe = np.repeat(np.arange(n_probes), n_pairs)
    first_id = int(max(customers["subject_id"].max(), events["subject_id"].max())) + 1
    copy_ids = first_id + np.arange(n_pairs * n_probes, dtype=np.int64)

    history_rows = events.iloc[np.tile(rows_all, n_probes)].reset_index(drop=True)
    history_rows["subject_id"] = np.repeat(np.arange(n_probes) * n_pairs, len(rows_all)) + np.tile(row_pair, n_probes) + first_id

    catalogue = load_code_catalogue().set_index("code")
    code = np.array([k.code for k in kinds], dtype=object)[copy_probe]
    times = np.asarray(pair_times, dtype="datetime64[us]")[copy_pair]
    injected = pd.DataFrame({
        "subject_id": np.repeat(copy_ids, len(after)),
        "time": np.repeat(times, len(after)) + np.tile(np.array([a.to_timedelta64() for a in after], dtype="timedelta64[us]"), len(copy_ids)),
        "code": np.repeat(code, len(after)),
        "numeric_value": np.repeat(np.array([k.value for k in kinds])[copy_probe], len(after)),
        "service_area": np.repeat(catalogue.loc[code, "service_area"].to_numpy(), len(after)),
        "unit": PROBE_UNIT,
        "cost_eur": PROBE_COST,
    })
    probed = pd.concat([history_rows, injected.astype({"unit": history_rows["unit"].dtype})], ignore_index=True)

    index = customers.set_index("subject_id").loc[np.asarray(pair_ids)[copy_pair]].reset_index()
    index["subject_id"] = copy_ids
    return Copies(History.from_frames(probed, index), copy_ids, copy_pair, copy_probe)


def differences(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per column, a boolean per row: the values differ (exactly; NaN equals NaN)."""
    out = {}
    for name, values in want.items():
        a, b = got[name], values
        if a.dtype.kind == "f":
            out[name] = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        else:
            out[name] = a != b
    return out


def compare(copied: Copies, history: History, pair_ids: np.ndarray, pair_times: np.ndarray,
            ahead: pd.Timedelta | None = None) -> dict[str, np.ndarray]:
    """Per column, per copy: does the copy (probes included) differ from its pair's customer?

    Both are read at t, or at t + `ahead`: reading at t + 1 day is what a feature with a 1-day
    look-ahead does, so differences there show that the probes would catch such a feature.
    """
    at = np.asarray(pair_times, dtype="datetime64[us]")
    if ahead is not None:
        at = at + ahead.to_timedelta64().astype("timedelta64[us]")
    plain = columns(history, pair_ids, at)
    probed = columns(copied.history, copied.ids, at[copied.pair])
    return differences(probed, {name: values[copied.pair] for name, values in plain.items()})


def informative(values: np.ndarray) -> np.ndarray:
    """A value worth covering: not missing, not 0, not False (a categorical: any known category)."""
    if values.dtype.kind == "f":
        return ~np.isnan(values) & (values != 0)
    if values.dtype.kind == "b":
        return values
    return values >= 0


def covering_pairs(base: dict[str, np.ndarray]) -> list[int]:
    """Candidate positions, chosen greedily until every column that has an informative value for
    some candidate has one for a chosen pair (deterministic: ties go to the first candidate)."""
    names = sorted(base)
    hits = np.array([informative(base[name]) for name in names])
    wanted = hits.any(axis=1)
    chosen: list[int] = []
    while wanted.any():
        best = int(np.argmax(hits[wanted].sum(axis=0)))
        chosen.append(best)
        wanted &= ~hits[:, best]
    return chosen


def first_detecting(customers: pd.DataFrame, events: pd.DataFrame, history: History, ids: np.ndarray, times: np.ndarray,
                    kinds: list[Probe], after: tuple[pd.Timedelta, ...], ahead: pd.Timedelta, column: str,
                    batch: int = 256) -> int | None:
    """The first candidate pair at which some probe changes `column` read at t + ahead, or None."""
    for start in range(0, len(ids), batch):
        part = slice(start, start + batch)
        copied = copies(customers, events, ids[part], times[part], kinds, after)
        changed = compare(copied, history, ids[part], times[part], ahead)[column]
        if changed.any():
            return start + int(copied.pair[np.argmax(changed)])
    return None


def cut_at(customers: pd.DataFrame, events: pd.DataFrame, ids: np.ndarray, times: np.ndarray) -> tuple[History, np.ndarray]:
    """A copy of each pair's customer with only the events at or before its t: (history, copy ids)."""
    by_customer = events.groupby("subject_id").indices
    first_id = int(max(customers["subject_id"].max(), events["subject_id"].max())) + 1
    copy_ids = first_id + np.arange(len(ids), dtype=np.int64)
    rows = [by_customer.get(int(s), np.zeros(0, dtype=np.int64)) for s in ids]
    kept = events.iloc[np.concatenate(rows)].reset_index(drop=True)
    kept["subject_id"] = np.repeat(copy_ids, [len(r) for r in rows])
    cut = np.repeat(np.asarray(times, dtype="datetime64[us]"), [len(r) for r in rows])
    kept = kept[kept["time"].to_numpy(dtype="datetime64[us]") <= cut]
    index = customers.set_index("subject_id").loc[np.asarray(ids)].reset_index()
    index["subject_id"] = copy_ids
    return History.from_frames(kept, index), copy_ids
