"""Evaluating an intervention (remote visits, medication robot, home rehabilitation) from the events.

Three figures side by side (docs/INTERVENTIONS.md):

1. **The naive before/after table** the region's plan reports: for each customer's first start of
   the service, ER visits and unplanned admissions in the 90 days before and after it, as counts
   and per 100 users, and the change in percentage units (visits per 100 users).
2. **A design-based estimate**: a sequence of emulated target trials, one per calendar month M.
   Eligible at the start of month M: alive and resident (for at least the 90 days before time
   zero), not in 24-hour care, never started the service before, plus the service's own rule
   (home care running for remote visits and the medication robot; 65+ for home rehabilitation).
   Starters start during month M (the grace period); not-yet-starters do not start by its end.
   Time zero T is the first day of month M + 1 for both, so whatever prompted a start in month M
   (a discharge, an ER visit, a fall alarm) is baseline history, matched exactly. Each starter is
   compared with the not-yet-starters of the same month and cell (age band, the crisis flags of
   month M, interRAI groups, home care), weighted to the starters (coarsened exact matching, ATT);
   the estimate is the difference in differences of events in the 90 days after T and before it.
   The interval is a customer bootstrap (customers resampled with all their trial rows).
3. **The true effect** on simulated data: the same starters' events after T in the dataset and in
   its counterfactual twin (synthetic/counterfactual.py), the region simulated with the same random
   numbers but the intervention's effect off.

Pure functions over frames; reading the dataset and the twin is the caller's (sote_risk CLI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from base.errors import SoteRiskError

WINDOW = pd.Timedelta(days=90)


class InterventionError(SoteRiskError):
    """Bad input to an intervention evaluation (unknown intervention, nothing to evaluate)."""


@dataclass(frozen=True)
class Intervention:
    """One service whose effect is evaluated, and who may start it."""

    name: str
    start_code: str
    words: str
    home_care_at_baseline: bool  # eligible only while home care runs at the start of the trial month
    min_age: float
    match_on: tuple[str, ...]  # covariates matched exactly (with the trial month)


_CRISIS = ("age_band", "discharged", "admitted", "er_visit", "fall_alarm")

INTERVENTIONS: dict[str, Intervention] = {
    "remote_visits": Intervention("remote_visits", "REMOTE/START", "remote video visits", True, 0.0,
                                  _CRISIS + ("cps_group",)),
    "medication_robot": Intervention("medication_robot", "MEDROBOT/START", "the medication robot", True, 0.0,
                                     _CRISIS + ("cps_group", "drs_group")),
    "home_rehabilitation": Intervention("home_rehabilitation", "REHAB/START", "home rehabilitation", False, 65.0,
                                        _CRISIS + ("home_care", "cps_group")),
}

# (key, code, words)
OUTCOMES: tuple[tuple[str, str, str], ...] = (
    ("er_visits", "ENC/EMERGENCY", "ER visits"),
    ("unplanned_admissions", "ADMIT/UNPLANNED", "unplanned admissions"),
)

_CODES = ("ENC/EMERGENCY", "ADMIT/UNPLANNED", "ADMIT/PLANNED", "DISCHARGE", "HOMECARE/START", "HOMECARE/END",
          "IOT/FALL_ALARM", "RAI/CPS", "RAI/DRS", "CARE24H/START", "DEATH", "MOVE/OUT", "MOVE/IN")


# Every code customer_covariates() reads (a caller may pass only these events).
COVARIATE_CODES = _CODES + tuple(iv.start_code for iv in INTERVENTIONS.values())


def intervention(name: str) -> Intervention:
    """The intervention called `name`, or a one-line error naming the known ones."""
    try:
        return INTERVENTIONS[name]
    except KeyError:
        raise InterventionError(f"unknown intervention {name!r}: choose one of {', '.join(INTERVENTIONS)}") from None


# ---------------------------------------------------------------------------------------------
# Counting events in windows


def _relevant(events: pd.DataFrame, codes: tuple[str, ...]) -> pd.DataFrame:
    keep = events["code"].isin(codes).to_numpy()
    out = events.loc[keep, ["subject_id", "time", "code", "numeric_value"]].copy()
    out["code"] = out["code"].astype(str)
    out["time"] = out["time"].astype("datetime64[us]")
    return out.reset_index(drop=True)


class _Counter:
    """How many events of one code a customer has strictly before a time (merge_asof on running counts)."""

    def __init__(self, events: pd.DataFrame, code: str) -> None:
        ev = events.loc[events["code"] == code, ["subject_id", "time"]].sort_values(["subject_id", "time"], kind="stable")
        ev["n"] = ev.groupby("subject_id").cumcount().to_numpy() + 1
        self._events = ev.sort_values("time", kind="stable").reset_index(drop=True)

    def before(self, subject: np.ndarray, time: np.ndarray) -> np.ndarray:
        query = pd.DataFrame({"subject_id": np.asarray(subject, dtype="int64"),
                              "time": np.asarray(time, dtype="datetime64[us]"), "row": np.arange(len(subject))})
        query = query.sort_values("time", kind="stable")
        joined = pd.merge_asof(query, self._events, on="time", by="subject_id", allow_exact_matches=False,
                               direction="backward")
        out = np.zeros(len(subject), dtype="int64")
        out[joined["row"].to_numpy()] = joined["n"].fillna(0).to_numpy(dtype="int64")
        return out

    def between(self, subject: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Events in [lo, hi)."""
        return self.before(subject, hi) - self.before(subject, lo)


def _last_value(events: pd.DataFrame, code: str, subject: np.ndarray, time: np.ndarray) -> np.ndarray:
    """The value of the customer's last `code` event strictly before `time` (NaN when none)."""
    ev = events.loc[events["code"] == code, ["subject_id", "time", "numeric_value"]].sort_values("time", kind="stable")
    query = pd.DataFrame({"subject_id": np.asarray(subject, dtype="int64"),
                          "time": np.asarray(time, dtype="datetime64[us]"), "row": np.arange(len(subject))})
    joined = pd.merge_asof(query.sort_values("time", kind="stable"), ev, on="time", by="subject_id",
                           allow_exact_matches=False, direction="backward")
    out = np.full(len(subject), np.nan)
    out[joined["row"].to_numpy()] = joined["numeric_value"].to_numpy(dtype="float64")
    return out


def _first_time(events: pd.DataFrame, codes: tuple[str, ...]) -> pd.Series:
    hit = events.loc[events["code"].isin(codes)]
    return hit.groupby("subject_id")["time"].min()


def first_starts(events: pd.DataFrame, iv: Intervention) -> pd.Series:
    """Each customer's first start of the service (subject_id -> time)."""
    return _first_time(events, (iv.start_code,))


# ---------------------------------------------------------------------------------------------
# 1. The naive before/after table


@dataclass(frozen=True)
class NaiveRow:
    """ER visits (or admissions) of the users in the 90 days before and after their start."""

    outcome: str
    users: int
    before: int
    after: int
    users_before: int  # users with at least one event in the window
    users_after: int

    @property
    def per100_before(self) -> float:
        return 100.0 * self.before / self.users if self.users else float("nan")

    @property
    def per100_after(self) -> float:
        return 100.0 * self.after / self.users if self.users else float("nan")

    @property
    def change_units(self) -> float:
        """The plan's "percentage units": events per 100 users after minus before."""
        return self.per100_after - self.per100_before

    @property
    def change_percent(self) -> float:
        return 100.0 * (self.after - self.before) / self.before if self.before else float("nan")


def naive_before_after(events: pd.DataFrame, extract_start: pd.Timestamp, extract_end: pd.Timestamp,
                       iv: Intervention) -> list[NaiveRow]:
    """The plan's table: each customer's first start whose 90 days before ([t - 90 d, t)) and after
    ([t, t + 90 d)) lie inside the extract; events counted in each window."""
    ev = _relevant(events, (iv.start_code,) + tuple(code for _, code, _ in OUTCOMES))
    starts = first_starts(ev, iv)
    lo, hi = pd.Timestamp(extract_start) + WINDOW, pd.Timestamp(extract_end) - WINDOW
    starts = starts[(starts >= lo) & (starts <= hi)]
    subject = starts.index.to_numpy(dtype="int64")
    t = starts.to_numpy(dtype="datetime64[us]")
    rows = []
    for key, code, _ in OUTCOMES:
        counter = _Counter(ev, code)
        before = counter.between(subject, t - WINDOW.to_timedelta64(), t)
        after = counter.between(subject, t, t + WINDOW.to_timedelta64())
        rows.append(NaiveRow(key, len(subject), int(before.sum()), int(after.sum()),
                             int((before > 0).sum()), int((after > 0).sum())))
    return rows


# ---------------------------------------------------------------------------------------------
# 2. The design: sequential trials, matched difference in differences


def _age_years(customers: pd.DataFrame, subject: np.ndarray, at: np.ndarray) -> np.ndarray:
    c = customers.set_index("subject_id").reindex(subject)
    birth = c["birth_year"].to_numpy(dtype="float64") * 12 + c["birth_month"].to_numpy(dtype="float64") - 1
    at = pd.DatetimeIndex(at)
    return (at.year.to_numpy() * 12 + at.month.to_numpy() - 1 - birth) / 12.0


def trial_rows(events: pd.DataFrame, customers: pd.DataFrame, extract_start: pd.Timestamp,
               extract_end: pd.Timestamp, iv: Intervention) -> pd.DataFrame:
    """One row per (customer, trial month) eligible at its start: starter or not-yet-starter, the
    matching covariates at time zero T (the next month's first day) and events before and after T."""
    ev = _relevant(events, _CODES + (iv.start_code,))
    first_month = pd.Timestamp(extract_start).to_period("M").to_timestamp()
    months = pd.date_range(first_month, pd.Timestamp(extract_end), freq="MS")
    zero = months + pd.offsets.MonthBegin(1)
    ok = (zero - WINDOW >= pd.Timestamp(extract_start)) & (zero + WINDOW <= pd.Timestamp(extract_end))
    months, zero = months[ok], zero[ok]
    if not len(months):
        raise InterventionError("the extract is too short for a trial: it needs 90 days before and after a month")

    if iv.home_care_at_baseline:
        pool = np.unique(ev.loc[ev["code"] == "HOMECARE/START", "subject_id"].to_numpy())
    else:
        birth = customers["birth_year"].to_numpy() + (customers["birth_month"].to_numpy() - 1) / 12.0
        pool = customers.loc[birth <= zero[-1].year + (zero[-1].month - 1) / 12.0 - iv.min_age, "subject_id"].to_numpy()
    pool = np.sort(pool.astype("int64"))
    subject = np.repeat(pool, len(months))
    month = np.tile(months.to_numpy(dtype="datetime64[us]"), len(pool))
    t0 = np.tile(zero.to_numpy(dtype="datetime64[us]"), len(pool))
    rows = pd.DataFrame({"subject_id": subject, "month": month, "T": t0})

    def at(series: pd.Series) -> np.ndarray:  # the customers' times (NaT where they have none)
        wanted = rows["subject_id"].to_numpy()
        out = np.full(len(wanted), np.datetime64("NaT"), dtype="datetime64[us]")
        if len(series):
            keys = series.index.to_numpy(dtype="int64")  # sorted (a groupby's index)
            pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            hit = keys[pos] == wanted
            out[hit] = series.to_numpy(dtype="datetime64[us]")[pos[hit]]
        return out

    entry, exit_ = at(_first_time(ev, ("MOVE/IN",))), at(_first_time(ev, ("DEATH", "MOVE/OUT")))
    care24, start = at(_first_time(ev, ("CARE24H/START",))), at(first_starts(ev, iv))
    T, S = rows["T"].to_numpy(), rows["month"].to_numpy()
    window = WINDOW.to_timedelta64()
    age = _age_years(customers, rows["subject_id"].to_numpy(), T)
    keep = ((np.isnat(entry) | (entry <= T - window)) & (np.isnat(exit_) | (exit_ > T))
            & (np.isnat(care24) | (care24 >= T)) & (np.isnat(start) | (start >= S)) & (age >= iv.min_age))
    home = _home_care_running(ev, rows["subject_id"].to_numpy(), S)
    if iv.home_care_at_baseline:
        keep &= home
    rows = rows.loc[keep].reset_index(drop=True)
    rows["starter"] = start[keep] < T[keep]
    rows["home_care"] = home[keep]
    rows["age"] = age[keep]
    _add_covariates(ev, rows)
    sid, T = rows["subject_id"].to_numpy(), rows["T"].to_numpy()
    for key, code, _ in OUTCOMES:
        counter = _Counter(ev, code)
        rows[f"{key}_pre"] = counter.between(sid, T - window, T)
        rows[f"{key}_post"] = counter.between(sid, T, T + window)
    return rows


def _add_covariates(ev: pd.DataFrame, rows: pd.DataFrame) -> None:
    """The matching covariates of trial rows (subject_id, month S, time zero T, age), added in place:
    the age band, the crisis flags of [S, T) and the last interRAI CPS and DRS before T. One
    definition for the trials and for a customer's what-if (customer_covariates)."""
    sid, S, T = rows["subject_id"].to_numpy(), rows["month"].to_numpy(), rows["T"].to_numpy()
    rows["age_band"] = np.digitize(rows["age"].to_numpy(), [75.0, 85.0]).astype("int8")
    rows["discharged"] = _Counter(_unplanned_discharges(ev), "DISCHARGE").between(sid, S, T) > 0
    rows["admitted"] = _Counter(ev, "ADMIT/UNPLANNED").between(sid, S, T) > 0
    rows["er_visit"] = _Counter(ev, "ENC/EMERGENCY").between(sid, S, T) > 0
    rows["fall_alarm"] = _Counter(ev, "IOT/FALL_ALARM").between(sid, S, T) > 0
    cps = _last_value(ev, "RAI/CPS", sid, T)
    rows["cps_group"] = np.where(np.isnan(cps), 0, np.digitize(np.nan_to_num(cps), [1.0, 3.0]) + 1).astype("int8")
    drs = _last_value(ev, "RAI/DRS", sid, T)
    rows["drs_group"] = np.where(np.isnan(drs), 0, np.where(np.nan_to_num(drs) >= 3, 2, 1)).astype("int8")


def customer_covariates(events: pd.DataFrame, customers: pd.DataFrame, subject_ids: np.ndarray,
                        at: pd.Timestamp) -> pd.DataFrame:
    """Customers as a trial row with time zero `at` (the first day of a month; its grace month the
    month before): the trial's eligibility facts and the matching covariates, by the same rules as
    trial_rows(). Columns: subject_id, month, T, age, home_care (at the grace month's start and at
    `at`), resident (moved in at least 90 days before), exited, care24h, started_<intervention> (the
    time of the first start before `at`, NaT when none), and the covariates."""
    T = pd.Timestamp(at)
    S = T - pd.DateOffset(months=1)
    ev = _relevant(events, COVARIATE_CODES)
    ev = ev.loc[ev["time"] < np.datetime64(T, "us")]
    sid = np.asarray(subject_ids, dtype="int64")
    rows = pd.DataFrame({"subject_id": sid, "month": np.full(len(sid), np.datetime64(S, "us")),
                         "T": np.full(len(sid), np.datetime64(T, "us"))})
    rows["age"] = _age_years(customers, sid, rows["T"].to_numpy())
    at_s = _home_care_running(ev, sid, rows["month"].to_numpy())
    at_t = _home_care_running(ev, sid, rows["T"].to_numpy() - np.timedelta64(1, "us"))
    rows["home_care"] = at_s & at_t
    entry = _first_time(ev, ("MOVE/IN",)).reindex(sid)
    rows["resident"] = (entry.isna() | (entry <= T - WINDOW)).to_numpy()
    rows["exited"] = _first_time(ev, ("DEATH", "MOVE/OUT")).reindex(sid).notna().to_numpy()
    rows["care24h"] = _first_time(ev, ("CARE24H/START",)).reindex(sid).notna().to_numpy()
    for iv in INTERVENTIONS.values():
        rows[f"started_{iv.name}"] = first_starts(ev, iv).reindex(sid).to_numpy(dtype="datetime64[us]")
    _add_covariates(ev, rows)
    return rows


def one_customer_covariates(time: np.ndarray, code: np.ndarray, value: np.ndarray, birth_year: int, birth_month: int,
                            subject_id: int, at: pd.Timestamp) -> pd.Series:
    """customer_covariates() of one customer from their events as arrays (time datetime64[us] in
    the history's order, code strings, numeric values): the same rules without pandas joins, for a
    page read (tests/test_whatif.py holds it equal to customer_covariates on a region)."""
    T = np.datetime64(pd.Timestamp(at), "us")
    S = np.datetime64(pd.Timestamp(at) - pd.DateOffset(months=1), "us")
    before = time < T
    time, code, value = time[before], code[before], value[before]
    age = (pd.Timestamp(at).year * 12 + pd.Timestamp(at).month - 1 - (birth_year * 12 + birth_month - 1)) / 12.0

    def first(*codes: str) -> np.datetime64:
        hit = np.flatnonzero(np.isin(code, codes))
        return time[hit[0]] if len(hit) else np.datetime64("NaT", "us")

    def running(upto: np.datetime64) -> bool:  # the last home care START/END at or before `upto` is a START
        hit = np.flatnonzero(np.isin(code, ("HOMECARE/START", "HOMECARE/END")) & (time <= upto))
        return bool(len(hit)) and code[hit[-1]] == "HOMECARE/START"

    def within(*codes: str) -> bool:  # one of the codes in [S, T)
        return bool(np.any(np.isin(code, codes) & (time >= S)))

    def last(name: str) -> float:
        hit = np.flatnonzero(code == name)
        return float(value[hit[-1]]) if len(hit) else float("nan")

    stays = np.flatnonzero(np.isin(code, ("ADMIT/UNPLANNED", "ADMIT/PLANNED", "DISCHARGE")))
    stay_codes = code[stays]
    unplanned_dc = stays[1:][(stay_codes[1:] == "DISCHARGE") & (stay_codes[:-1] == "ADMIT/UNPLANNED")]
    entry = first("MOVE/IN")
    cps, drs = last("RAI/CPS"), last("RAI/DRS")
    row = {
        "subject_id": subject_id, "month": S, "T": T, "age": age,
        "home_care": running(S) and running(T - np.timedelta64(1, "us")),
        "resident": bool(np.isnat(entry) or entry <= T - WINDOW.to_timedelta64()),
        "exited": not np.isnat(first("DEATH", "MOVE/OUT")), "care24h": not np.isnat(first("CARE24H/START")),
        **{f"started_{iv.name}": first(iv.start_code) for iv in INTERVENTIONS.values()},
        "age_band": int(np.digitize(age, [75.0, 85.0])),
        "discharged": bool(np.any(time[unplanned_dc] >= S)), "admitted": within("ADMIT/UNPLANNED"),
        "er_visit": within("ENC/EMERGENCY"), "fall_alarm": within("IOT/FALL_ALARM"),
        "cps_group": 0 if np.isnan(cps) else int(np.digitize(cps, [1.0, 3.0])) + 1,
        "drs_group": 0 if np.isnan(drs) else (2 if drs >= 3 else 1),
    }
    return pd.Series(row, dtype=object)


def _home_care_running(ev: pd.DataFrame, subject: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether the customer's last home care START/END at or before `at` is a START."""
    hc = ev.loc[ev["code"].isin(["HOMECARE/START", "HOMECARE/END"]), ["subject_id", "time", "code"]]
    hc = hc.sort_values("time", kind="stable")
    query = pd.DataFrame({"subject_id": subject.astype("int64"), "time": at.astype("datetime64[us]"),
                          "row": np.arange(len(subject))}).sort_values("time", kind="stable")
    joined = pd.merge_asof(query, hc, on="time", by="subject_id", direction="backward")
    out = np.zeros(len(subject), dtype=bool)
    out[joined["row"].to_numpy()] = (joined["code"] == "HOMECARE/START").to_numpy()
    return out


def _unplanned_discharges(ev: pd.DataFrame) -> pd.DataFrame:
    """DISCHARGE events whose stay began with an unplanned admission."""
    stays = ev.loc[ev["code"].isin(["ADMIT/UNPLANNED", "ADMIT/PLANNED", "DISCHARGE"]), ["subject_id", "time", "code"]]
    stays = stays.sort_values(["subject_id", "time"], kind="stable")
    previous = stays.groupby("subject_id")["code"].shift(1)
    return stays.loc[(stays["code"] == "DISCHARGE") & (previous == "ADMIT/UNPLANNED")]


@dataclass(frozen=True)
class Effect:
    """An effect on events in the 90 days after time zero, per 100 starters (percentage units)."""

    outcome: str
    estimate: float
    low: float = float("nan")
    high: float = float("nan")
    relative: float = float("nan")  # % of the starters' events without the intervention

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


@dataclass(frozen=True)
class DesignEstimate:
    """The matched difference-in-differences estimate and what it rests on."""

    starters: int  # eligible starters (first starts with a trial)
    matched: int  # starters with at least one not-yet-starter in their cell
    control_rows: int  # not-yet-starter trial rows in the starters' cells
    control_customers: int
    effects: dict[str, Effect] = field(default_factory=dict)
    starter_rows: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # matched starters (subject_id, T)


def matched_rows(rows: pd.DataFrame, iv: Intervention
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trial rows in cells (month and iv.match_on) with both starters and not-yet-starters:
    (rows, cell number, starter flag, customers, each row's customer number)."""
    keys = ["month", *iv.match_on]
    cell = rows.groupby(keys, sort=True).ngroup().to_numpy()
    starter = rows["starter"].to_numpy()
    has1 = np.bincount(cell, weights=starter, minlength=cell.max() + 1 if len(cell) else 0) > 0
    has0 = np.bincount(cell, weights=~starter, minlength=cell.max() + 1 if len(cell) else 0) > 0
    used = has1[cell] & has0[cell]
    sub = rows.loc[used]
    cell_u = np.unique(cell[used], return_inverse=True)[1]
    cust_u, cust = np.unique(sub["subject_id"].to_numpy(), return_inverse=True)
    return sub, cell_u, sub["starter"].to_numpy(), cust_u, cust


def matched_att(cell_u: np.ndarray, st: np.ndarray, weight: np.ndarray, y: np.ndarray) -> float:
    """Starters' mean of y minus their cell's not-yet-starters' mean, weighted to the starters."""
    n_cells = cell_u.max() + 1
    n1 = np.bincount(cell_u, weights=weight * st, minlength=n_cells)
    n0 = np.bincount(cell_u, weights=weight * ~st, minlength=n_cells)
    s1 = np.bincount(cell_u, weights=weight * st * y, minlength=n_cells)
    s0 = np.bincount(cell_u, weights=weight * ~st * y, minlength=n_cells)
    ok = (n1 > 0) & (n0 > 0)
    return float(np.sum(n1[ok] * (s1[ok] / n1[ok] - s0[ok] / n0[ok])) / np.sum(n1[ok]))


def matched_did(rows: pd.DataFrame, iv: Intervention, *, bootstrap: int = 500, seed: int = 0,
                level: float = 0.95) -> DesignEstimate:
    """Coarsened exact matching of starters to not-yet-starters of the same month and cell, weighted
    to the starters, with a difference in differences; percentile interval of a customer bootstrap."""
    sub, cell_u, st, cust_u, cust = matched_rows(rows, iv)
    n_starters = int(rows["starter"].sum())
    if not len(sub):
        return DesignEstimate(n_starters, 0, 0, 0, {k: Effect(k, float("nan")) for k, _, _ in OUTCOMES}, sub[["subject_id", "T"]])
    diffs = {k: (sub[f"{k}_post"] - sub[f"{k}_pre"]).to_numpy(dtype="float64") for k, _, _ in OUTCOMES}
    posts = {k: sub[f"{k}_post"].to_numpy(dtype="float64") for k, _, _ in OUTCOMES}

    def att(weight: np.ndarray, y: np.ndarray) -> float:
        return matched_att(cell_u, st, weight, y)

    ones = np.ones(len(sub))
    point = {k: att(ones, diffs[k]) for k in diffs}
    rng = np.random.default_rng(seed)
    draws = {k: np.empty(bootstrap) for k in diffs}
    for b in range(bootstrap):
        w = np.bincount(rng.integers(0, len(cust_u), len(cust_u)), minlength=len(cust_u))[cust].astype("float64")
        for k in diffs:
            draws[k][b] = att(w, diffs[k])
    alpha = (1.0 - level) / 2.0
    effects = {}
    for k in diffs:
        mean_post = float(posts[k][st].mean())
        lo, hi = (np.quantile(draws[k], [alpha, 1 - alpha]) if bootstrap else (float("nan"), float("nan")))
        without = mean_post - point[k]
        effects[k] = Effect(k, 100 * point[k], 100 * float(lo), 100 * float(hi),
                            100 * point[k] / without if without > 0 else float("nan"))
    controls = sub.loc[~st]
    return DesignEstimate(n_starters, int(st.sum()), len(controls), int(controls["subject_id"].nunique()), effects,
                          sub.loc[st, ["subject_id", "T"]].reset_index(drop=True))


# ---------------------------------------------------------------------------------------------
# 3. The truth: the same starters in the counterfactual twin


def true_effects(starters: pd.DataFrame, events: pd.DataFrame, counterfactual_events: pd.DataFrame
                 ) -> tuple[dict[str, Effect], dict[str, float]]:
    """Events of the starters in [T, T + 90 d) as simulated minus in the twin without the effect, per
    100 starters; and the same difference over [T - 90 d, T), where the effect cannot act yet (a
    placebo: ~0, off by the few ER visits whose times within a month the twin draws anew)."""
    codes = tuple(code for _, code, _ in OUTCOMES)
    factual, twin = _relevant(events, codes), _relevant(counterfactual_events, codes)
    sid, T = starters["subject_id"].to_numpy(), starters["T"].to_numpy(dtype="datetime64[us]")
    window = WINDOW.to_timedelta64()
    effects, placebo = {}, {}
    for key, code, _ in OUTCOMES:
        here, there = _Counter(factual, code), _Counter(twin, code)
        with_it = here.between(sid, T, T + window).astype("float64")
        without = there.between(sid, T, T + window).astype("float64")
        if not len(sid):
            effects[key], placebo[key] = Effect(key, float("nan")), float("nan")
            continue
        diff = float(with_it.mean() - without.mean())
        effects[key] = Effect(key, 100 * diff, relative=100 * diff / without.mean() if without.mean() > 0 else float("nan"))
        placebo[key] = 100 * float((here.between(sid, T - window, T) - there.between(sid, T - window, T)).mean())
    return effects, placebo


def twin_agrees(events: pd.DataFrame, counterfactual_events: pd.DataFrame, iv: Intervention) -> float:
    """How alike the dataset and its twin are where the intervention cannot act: the unplanned
    admissions (subject, exact time) of customers who never start the service, as the share of the
    admissions in either that are in both. A true twin shares them all (admission times are drawn
    from the same random numbers); another seed, region or simulator version shares almost none."""
    a = _relevant(events, ("ADMIT/UNPLANNED", iv.start_code))
    b = _relevant(counterfactual_events, ("ADMIT/UNPLANNED", iv.start_code))
    treated = np.union1d(a.loc[a["code"] == iv.start_code, "subject_id"], b.loc[b["code"] == iv.start_code, "subject_id"])

    def admissions(frame: pd.DataFrame) -> pd.MultiIndex:
        keep = (frame["code"] == "ADMIT/UNPLANNED") & ~frame["subject_id"].isin(treated)
        return pd.MultiIndex.from_frame(frame.loc[keep, ["subject_id", "time"]])

    left, right = admissions(a), admissions(b)
    either = left.union(right)
    return float(len(left.intersection(right)) / len(either)) if len(either) else 1.0


# ---------------------------------------------------------------------------------------------
# The whole evaluation


@dataclass(frozen=True)
class InterventionReport:
    intervention: Intervention
    naive: list[NaiveRow]
    design: DesignEstimate
    truth: dict[str, Effect] | None
    notes: tuple[str, ...] = ()
    twin_agreement: float | None = None  # twin_agrees(), when a twin was given
    placebo: dict[str, float] | None = None  # true_effects()' difference before time zero, per 100 starters
    rows: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # the trial rows (for training.whatif)


MIN_MATCHED = 20  # fewer matched starters: no estimate (the sample does not support one)


def evaluate_intervention(events: pd.DataFrame, customers: pd.DataFrame, extract_start: pd.Timestamp,
                          extract_end: pd.Timestamp, name: str, *, counterfactual_events: pd.DataFrame | None = None,
                          bootstrap: int = 500, seed: int = 0) -> InterventionReport:
    """The naive table, the design-based estimate and, given the twin's events, the true effect."""
    iv = intervention(name)
    naive = naive_before_after(events, extract_start, extract_end, iv)
    rows = trial_rows(events, customers, extract_start, extract_end, iv)
    if int(rows["starter"].sum()) == 0:
        raise InterventionError(f"no customer starts {iv.words} with 90 days of history before and after: nothing to evaluate")
    design = matched_did(rows, iv, bootstrap=bootstrap, seed=seed)
    notes: list[str] = []
    if design.matched < MIN_MATCHED:
        notes.append(f"only {design.matched} starters have comparable not-yet-starters (fewer than {MIN_MATCHED}): "
                     "the estimate is not supported by this sample")
    truth, agree, placebo = None, None, None
    if counterfactual_events is not None:
        agree = twin_agrees(events, counterfactual_events, iv)
        if agree < 0.95:
            notes.append(f"the counterfactual twin shares only {agree:.1%} of the untreated customers' admissions with the data: "
                         "not the same simulated region; no true effect shown")
        else:
            truth, placebo = true_effects(design.starter_rows, events, counterfactual_events)
    return InterventionReport(iv, naive, design, truth, tuple(notes), agree, placebo, rows)
