"""Rules across columns and rows of events (and customers), vectorised with numpy.

Each rule is a pure function of arrays that returns a list of `Failure`s (empty when the rule
holds). Row numbers in failures are positions in the events frame as given. Rules assume the
columns they read passed the per-column schema (dtype, no nulls); validate.py only runs a rule
when that is so, which keeps these functions free of defensive clutter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.catalogue import DEATH_CODE, DISCHARGE_CODE, PAIRED_SERVICES
from data_contracts.errors import Failure, failure_at

TABLE = "events"


@dataclass(frozen=True)
class EventArrays:
    """The events as plain arrays, computed once and shared by every rule.

    `code_idx` is each event's row in the catalogue (-1 for an unknown code); `order` sorts the
    events by (subject_id, time) stably, so ties keep their file order (an ADMIT and a DISCHARGE
    at the same minute mean what the file order says). It is None when the frame is sorted.
    """

    subject_id: np.ndarray  # int64
    time: np.ndarray  # int64 microseconds
    code_idx: np.ndarray  # int64, -1 = unknown
    order: np.ndarray | None

    @classmethod
    def build(cls, events: pd.DataFrame, catalogue: pd.DataFrame) -> "EventArrays":
        subject = events["subject_id"].to_numpy()
        time = events["time"].to_numpy().view("int64")
        code_idx = pd.Index(catalogue["code"]).get_indexer(events["code"]).astype("int64")
        return cls(subject, time, code_idx, _sort_order(subject, time))

    def sorted_positions(self) -> np.ndarray:
        return np.arange(len(self.subject_id)) if self.order is None else self.order


def _sort_order(subject: np.ndarray, time: np.ndarray) -> np.ndarray | None:
    if len(subject) < 2:
        return None
    ds = np.diff(subject)
    in_order = bool(np.all((ds > 0) | ((ds == 0) & (np.diff(time) >= 0))))
    return None if in_order else np.lexsort((time, subject))


def sort_rule(ev: EventArrays) -> list[Failure]:
    """Events are stored sorted by subject_id, then time (MEDS needs this for streaming)."""
    if ev.order is None:
        return []
    ds = np.diff(ev.subject_id)
    bad = np.flatnonzero((ds < 0) | ((ds == 0) & (np.diff(ev.time) < 0))) + 1
    return [failure_at(TABLE, "time", "events must be sorted by subject_id, time", bad, ev.subject_id)]


def code_rules(ev: EventArrays, events: pd.DataFrame, catalogue: pd.DataFrame) -> list[Failure]:
    """Service area, value range and discharge cost must agree with the code's catalogue row."""
    failures: list[Failure] = []
    known = ev.code_idx >= 0
    idx = np.where(known, ev.code_idx, 0)

    areas = pd.Index(catalogue["service_area"].unique())
    expected_area = areas.get_indexer(catalogue["service_area"])[idx]
    given_area = areas.get_indexer(events["service_area"])
    bad = np.flatnonzero(known & (given_area != expected_area))
    if len(bad):
        failures.append(
            failure_at(TABLE, "service_area", "service_area must equal the catalogue's service_area for the code", bad, ev.subject_id)
        )

    value = events["numeric_value"].to_numpy(dtype="float64", na_value=np.nan)
    vmin = catalogue["value_min"].to_numpy(dtype="float64", na_value=np.nan)[idx]
    vmax = catalogue["value_max"].to_numpy(dtype="float64", na_value=np.nan)[idx]
    # NaN compares False, so a missing value or a code without a range never fails here.
    outside = known & ((value < vmin) | (value > vmax))
    bad = np.flatnonzero(outside)
    if len(bad):
        failures.append(
            failure_at(TABLE, "numeric_value", "numeric_value must be within the code's value_min..value_max", bad, ev.subject_id)
        )

    discharge = _code_mask(ev, catalogue, (DISCHARGE_CODE,))
    bad = np.flatnonzero(discharge & np.isnan(value))
    if len(bad):
        failures.append(failure_at(TABLE, "numeric_value", "DISCHARGE must carry the length of stay in days", bad, ev.subject_id))
    day_cost = float(catalogue.loc[catalogue["code"] == DISCHARGE_CODE, "unit_cost_eur"].iloc[0])
    cost = events["cost_eur"].to_numpy(dtype="float64", na_value=np.nan)
    wrong = discharge & ~np.isnan(value) & ~np.isclose(cost, value * day_cost, rtol=1e-6, atol=0.01)
    bad = np.flatnonzero(wrong)
    if len(bad):
        failures.append(
            failure_at(TABLE, "cost_eur", f"DISCHARGE cost_eur must be length_of_stay_days * {day_cost:g}", bad, ev.subject_id)
        )
    return failures


def _code_mask(ev: EventArrays, catalogue: pd.DataFrame, codes: tuple[str, ...]) -> np.ndarray:
    ids = pd.Index(catalogue["code"]).get_indexer(list(codes))
    return np.isin(ev.code_idx, ids[ids >= 0])


def stay_rules(ev: EventArrays, catalogue: pd.DataFrame) -> list[Failure]:
    """Paired services alternate open, close, open, ... per customer; the last may stay open.

    A close whose previous event of the same family (same customer) is not an open has no open
    start; an open whose previous one is an open overlaps a running stay or service.
    """
    failures: list[Failure] = []
    pos = ev.sorted_positions()
    code_sorted = ev.code_idx[pos]
    subject_sorted = ev.subject_id[pos]
    for name, (openers, closer) in PAIRED_SERVICES.items():
        open_ids = pd.Index(catalogue["code"]).get_indexer(list(openers))
        close_id = int(pd.Index(catalogue["code"]).get_indexer([closer])[0])
        is_open_all = np.isin(code_sorted, open_ids)
        family = np.flatnonzero(is_open_all | (code_sorted == close_id))
        if not len(family):
            continue
        subj = subject_sorted[family]
        is_open = is_open_all[family]
        same_subject = np.r_[False, subj[1:] == subj[:-1]]
        prev_open = np.r_[False, is_open[:-1]] & same_subject
        orphan = pos[family[~is_open & ~prev_open]]
        overlap = pos[family[is_open & prev_open]]
        if len(orphan):
            failures.append(
                failure_at(TABLE, "code", f"{closer} without an open {name} ({' or '.join(openers)})", np.sort(orphan), ev.subject_id)
            )
        if len(overlap):
            failures.append(
                failure_at(TABLE, "code", f"{' or '.join(openers)} while a {name} is already open (overlap)", np.sort(overlap), ev.subject_id)
            )
    return failures


def window_rule(ev: EventArrays, extract_start: pd.Timestamp, extract_end: pd.Timestamp) -> list[Failure]:
    """Every event lies in the extract window given in dataset.json."""
    lo, hi = _micros(extract_start), _micros(extract_end)
    bad = np.flatnonzero((ev.time < lo) | (ev.time > hi))
    if not len(bad):
        return []
    rule = f"time must be within the extract {extract_start:%Y-%m-%d %H:%M}..{extract_end:%Y-%m-%d %H:%M}"
    return [failure_at(TABLE, "time", rule, bad, ev.subject_id)]


def _micros(ts: pd.Timestamp) -> int:
    return int(np.datetime64(pd.Timestamp(ts).to_datetime64(), "us").astype("int64"))


def life_rules(ev: EventArrays, customers: pd.DataFrame, catalogue: pd.DataFrame) -> list[Failure]:
    """Every event belongs to a known customer, is not before birth, and not after death."""
    failures: list[Failure] = []
    cust_sid = customers["subject_id"].to_numpy()
    by_sid = np.argsort(cust_sid, kind="stable")
    sorted_sid = cust_sid[by_sid]
    # Look up each distinct subject once: events are (nearly always) grouped by subject.
    uniq, inverse = _runs(ev.subject_id)
    slot = np.searchsorted(sorted_sid, uniq)
    slot_c = np.minimum(slot, max(len(sorted_sid) - 1, 0))
    found_u = (slot < len(sorted_sid)) & (sorted_sid[slot_c] == uniq) if len(sorted_sid) else np.zeros(len(uniq), bool)
    found = found_u[inverse]
    bad = np.flatnonzero(~found)
    if len(bad):
        failures.append(failure_at(TABLE, "subject_id", "subject_id must be present in customers", bad, ev.subject_id))

    if len(sorted_sid):
        years = customers["birth_year"].to_numpy().astype("int64")[by_sid]
        months = customers["birth_month"].to_numpy().astype("int64")[by_sid]
        birth = ((years - 1970) * 12 + months - 1).astype("datetime64[M]").astype("datetime64[us]").view("int64")
        birth_u = np.where(found_u, birth[slot_c], np.iinfo("int64").min)
        bad = np.flatnonzero(ev.time < birth_u[inverse])
        if len(bad):
            failures.append(
                failure_at(TABLE, "time", "time must not be before the first day of the birth month", bad, ev.subject_id)
            )

    death_id = int(pd.Index(catalogue["code"]).get_indexer([DEATH_CODE])[0])
    death_rows = np.flatnonzero(ev.code_idx == death_id)
    if len(death_rows):
        dsid = ev.subject_id[death_rows]
        dtime = ev.time[death_rows]
        order = np.lexsort((dtime, dsid))
        dsid, dtime, death_rows = dsid[order], dtime[order], death_rows[order]
        first = np.r_[True, dsid[1:] != dsid[:-1]]
        repeated = np.sort(death_rows[~first])
        if len(repeated):
            failures.append(failure_at(TABLE, "code", "a customer can die only once (second DEATH)", repeated, ev.subject_id))
        dead_sid, death_time = dsid[first], dtime[first]
        slot = np.searchsorted(dead_sid, uniq)
        slot_c = np.minimum(slot, len(dead_sid) - 1)
        has_death = (slot < len(dead_sid)) & (dead_sid[slot_c] == uniq)
        limit = np.where(has_death, death_time[slot_c], np.iinfo("int64").max)
        bad = np.flatnonzero(ev.time > limit[inverse])
        if len(bad):
            failures.append(failure_at(TABLE, "time", "time must not be after the customer's DEATH", bad, ev.subject_id))
    return failures


def _runs(subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct subjects and, per event, which one it is; O(n) when events are grouped."""
    if len(subject) == 0:
        return subject, np.zeros(0, dtype="int64")
    starts = np.r_[True, subject[1:] != subject[:-1]]
    run_values = subject[starts]
    if np.all(np.diff(run_values) > 0):
        return run_values, np.cumsum(starts) - 1
    return np.unique(subject, return_inverse=True)
