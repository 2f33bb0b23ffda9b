"""The per-customer what-if: the estimated change in a customer's risk of unplanned hospitalisation
if an intervention started now, with its interval, and whether the estimate is supported for them.

The effect comes from the data, never from the simulator: the matched sequential-trial design of
training/interventions.py gives, for the matched starters, the rate of unplanned admissions in the
90 days after time zero with the intervention and (their rate minus the difference in
differences) without it. Their ratio is a rate ratio RR, estimated with the same customer
bootstrap as the design's interval (same seed, same replicates). A customer's risk p (the model's
calibrated probability of an unplanned admission within 90 days) becomes, with the intervention,

    p_with = 1 - (1 - p) ** RR

(the rate ratio acting as a hazard ratio over the horizon, the usual way of carrying a trial's
relative effect to one person's baseline risk), so the change and its interval are p_with - p at
RR and at the RR interval's ends (monotone in RR, so the percentiles carry through).

Supported for a customer only when they are in the population the estimate was learned from:
eligible by the trial's own rules at time zero = the view's date (resident for 90 days, not in
24-hour care, never started it, home care running or 65+), in a matching cell (age band, crisis
flags, interRAI groups) with at least MIN_CELL_STARTERS matched starters, aged within those
starters' range, and the estimate itself resting on at least interventions.MIN_MATCHED starters.
Otherwise a reason, never a number. docs/INTERVENTIONS.md, "Per-customer what-if".

The stored estimate (`WhatIfEstimate`, JSON in <home>/interventions/<name>.json) is written by
`sote-risk evaluate-intervention --store` and read by the customer view (serving/pages.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from training.interventions import (
    MIN_MATCHED,
    WINDOW,
    Intervention,
    InterventionError,
    intervention,
    matched_att,
    matched_rows,
)

OUTCOME_CODE = "ADMIT/UNPLANNED"  # the problems' outcome the estimate speaks to (the design's admissions)
OUTCOME_KEY = "unplanned_admissions"
MIN_CELL_STARTERS = 10  # matched starters a customer's matching cell needs for the estimate to be shown
FORMAT = "sote-risk what-if estimate 1"


class Cell(BaseModel):
    """One matching cell's matched starters (over all trial months)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: tuple[int, ...]  # the values of the intervention's match_on covariates, in that order
    starters: int
    age_min: float
    age_max: float


class WhatIfEstimate(BaseModel):
    """What the customer view needs of one intervention's design-based effect."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["sote-risk what-if estimate 1"] = FORMAT
    intervention: str
    outcome_code: str = OUTCOME_CODE
    horizon_days: int = WINDOW.days
    dataset_customers: int  # the dataset it was learned from (the view refuses another's)
    dataset_events: int
    extract_start: dt.date
    extract_end: dt.date
    created: dt.datetime
    bootstrap: int
    seed: int
    level: float
    starters: int  # eligible starters
    matched: int  # matched starters: what the estimate rests on
    control_customers: int
    first_month: dt.date  # trial months of the matched starters
    last_month: dt.date
    rate_ratio: float | None  # unplanned admissions in 90 days, with / without, for the matched starters
    rate_ratio_low: float | None  # (None: not estimable, e.g. no admissions without it)
    rate_ratio_high: float | None
    effect_per_100: float  # the design's difference in differences (admissions per 100 starters)
    match_on: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, key: tuple[int, ...]) -> Cell | None:
        return next((c for c in self.cells if c.key == key), None)


def estimate(rows: pd.DataFrame, iv: Intervention, *, dataset_customers: int, dataset_events: int,
             extract_start: pd.Timestamp, extract_end: pd.Timestamp, bootstrap: int = 500, seed: int = 0,
             level: float = 0.95, created: dt.datetime | None = None) -> WhatIfEstimate:
    """The rate ratio of unplanned admissions for the matched starters of the trial rows
    (interventions.trial_rows), with the design's customer bootstrap (same seed as matched_did, so
    the same replicates), and the matched starters' cells."""
    sub, cell_u, st, cust_u, cust = matched_rows(rows, iv)
    if not st.sum():
        raise InterventionError(f"no starter of {iv.words} has a comparable not-yet-starter: no estimate to store")
    diff = (sub[f"{OUTCOME_KEY}_post"] - sub[f"{OUTCOME_KEY}_pre"]).to_numpy(dtype="float64")
    post = sub[f"{OUTCOME_KEY}_post"].to_numpy(dtype="float64")

    def ratio(weight: np.ndarray) -> float:
        att = matched_att(cell_u, st, weight, diff)
        with_it = float(np.sum(weight * st * post) / np.sum(weight * st))
        without = with_it - att
        return with_it / without if without > 0 else float("nan")

    point = ratio(np.ones(len(sub)))
    rng = np.random.default_rng(seed)  # the replicates of interventions.matched_did
    draws = np.empty(bootstrap)
    for b in range(bootstrap):
        w = np.bincount(rng.integers(0, len(cust_u), len(cust_u)), minlength=len(cust_u))[cust].astype("float64")
        draws[b] = ratio(w)
    alpha = (1.0 - level) / 2.0
    low, high = (np.nanquantile(draws, [alpha, 1 - alpha]) if bootstrap and np.isfinite(draws).any()
                 else (float("nan"), float("nan")))
    starters = sub.loc[st]
    cells = tuple(Cell(key=tuple(int(v) for v in (key if isinstance(key, tuple) else (key,))), starters=len(group),
                       age_min=round(float(group["age"].min()), 2), age_max=round(float(group["age"].max()), 2))
                  for key, group in starters.groupby(list(iv.match_on), sort=True))
    months = pd.DatetimeIndex(starters["month"])
    return WhatIfEstimate(
        intervention=iv.name, dataset_customers=dataset_customers, dataset_events=dataset_events,
        extract_start=pd.Timestamp(extract_start).date(), extract_end=pd.Timestamp(extract_end).date(),
        created=created or dt.datetime.now(dt.timezone.utc).replace(microsecond=0), bootstrap=bootstrap, seed=seed,
        level=level, starters=int(rows["starter"].sum()), matched=len(starters),
        control_customers=int(sub.loc[~st, "subject_id"].nunique()),
        first_month=months.min().date(), last_month=months.max().date(),
        rate_ratio=_finite(point), rate_ratio_low=_finite(low), rate_ratio_high=_finite(high),
        effect_per_100=100 * matched_att(cell_u, st, np.ones(len(sub)), diff), match_on=iv.match_on, cells=cells,
    )


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Storing and reading


def estimate_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{intervention(name).name}.json"


def write_estimate(folder: Path, found: WhatIfEstimate) -> Path:
    """<folder>/<intervention>.json, written to a temporary file and renamed."""
    from base.atomic import atomic_write_text

    Path(folder).mkdir(parents=True, exist_ok=True)
    return atomic_write_text(estimate_path(folder, found.intervention), found.model_dump_json(indent=1) + "\n")


def read_estimates(folder: Path) -> dict[str, WhatIfEstimate]:
    """The stored estimates in `folder` (none when it does not exist); a file that is not one is
    an error naming it."""
    from training.interventions import INTERVENTIONS

    out = {}
    for name in INTERVENTIONS:
        path = Path(folder) / f"{name}.json"
        if not path.is_file():
            continue
        try:
            out[name] = WhatIfEstimate.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as error:
            raise InterventionError(f"{path}: not a what-if estimate this version reads ({str(error).splitlines()[0]})") from None
    return out


# ---------------------------------------------------------------------------------------------
# One customer

Reason = Literal["no_estimate", "other_data", "outcome", "too_few", "already_on", "care24h", "left", "new_resident",
                 "no_home_care", "age", "no_similar", "age_range"]


@dataclass(frozen=True)
class WhatIf:
    """The estimated change of one customer's risk, or why there is none (`reason`, no numbers)."""

    intervention: str
    reason: Reason | None = None
    detail: int | None = None  # no_similar: the matched starters in the customer's cell
    risk: float = float("nan")
    risk_with: float = float("nan")
    change: float = float("nan")  # risk_with - risk
    change_low: float = float("nan")
    change_high: float = float("nan")
    estimate: WhatIfEstimate | None = None

    @property
    def supported(self) -> bool:
        return self.reason is None


def risk_with(risk: float | np.ndarray, rate_ratio: float | np.ndarray) -> float | np.ndarray:
    """The risk within the horizon with a hazard ratio: 1 - (1 - p) ** RR."""
    return 1.0 - np.power(1.0 - np.asarray(risk, dtype="float64"), rate_ratio)


def support(found: WhatIfEstimate | None, covariates: pd.Series) -> tuple[Reason | None, int | None]:
    """Why the estimate does not hold for this customer (a customer_covariates() row), or None."""
    if found is None:
        return "no_estimate", None
    iv = intervention(found.intervention)
    if found.matched < MIN_MATCHED or None in (found.rate_ratio, found.rate_ratio_low, found.rate_ratio_high):
        return "too_few", found.matched
    if not pd.isna(covariates[f"started_{iv.name}"]):
        return "already_on", None
    if covariates["exited"]:
        return "left", None
    if covariates["care24h"]:
        return "care24h", None
    if not covariates["resident"]:
        return "new_resident", None
    if iv.home_care_at_baseline and not covariates["home_care"]:
        return "no_home_care", None
    if covariates["age"] < iv.min_age:
        return "age", None
    cell = found.cell(tuple(int(covariates[k]) for k in iv.match_on))
    if cell is None or cell.starters < MIN_CELL_STARTERS:
        return "no_similar", 0 if cell is None else cell.starters
    if not cell.age_min <= covariates["age"] <= cell.age_max:
        return "age_range", None
    return None, None


def customer_whatif(found: WhatIfEstimate | None, name: str, covariates: pd.Series, risk: float,
                    outcome_code: str, horizon_days: int) -> WhatIf:
    """The what-if of one intervention for one customer and problem (risk: the problem's calibrated
    probability now; covariates: the customer's customer_covariates() row at the view's date)."""
    if found is not None and (outcome_code != found.outcome_code or horizon_days != found.horizon_days):
        return WhatIf(name, "outcome", estimate=found)
    reason, detail = support(found, covariates)
    if reason is not None:
        return WhatIf(name, reason, detail, estimate=found)
    with_it = float(risk_with(risk, found.rate_ratio))
    low, high = (float(risk_with(risk, r)) - risk for r in (found.rate_ratio_low, found.rate_ratio_high))
    return WhatIf(name, None, None, risk, with_it, with_it - risk, low, high, found)


# ---------------------------------------------------------------------------------------------
# A population (the check against the simulator's truth: benchmarks/bench_whatif.py)


def population_whatifs(estimates: dict[str, WhatIfEstimate], events: pd.DataFrame, customers: pd.DataFrame,
                       risk: pd.Series, at: pd.Timestamp) -> pd.DataFrame:
    """Every customer of `risk` (subject_id -> risk of an unplanned admission within 90 days at
    `at`) and intervention: the reason there is no estimate, or the estimated change [interval].
    The same rules as the customer view, one customer_covariates() pass for all."""
    from training.interventions import INTERVENTIONS, customer_covariates

    subject = risk.index.to_numpy(dtype="int64")
    covariates = customer_covariates(events, customers, subject, at)
    p = risk.to_numpy(dtype="float64")
    frames = []
    for name in INTERVENTIONS:
        found = [customer_whatif(estimates.get(name), name, row, p[i], OUTCOME_CODE, WINDOW.days)
                 for i, (_, row) in enumerate(covariates.iterrows())]
        frames.append(pd.DataFrame({
            "subject_id": subject, "intervention": name, "reason": [f.reason for f in found],
            "risk": p, "change": [f.change for f in found], "change_low": [f.change_low for f in found],
            "change_high": [f.change_high for f in found]}))
    return pd.concat(frames, ignore_index=True)


def calibration_by_decile(supported: pd.DataFrame, deciles: int = 10) -> pd.DataFrame:
    """Supported customers (change, change_low, change_high, true_change) grouped by decile of the
    estimated change: count and the mean of each, per decile and (last row, decile "all") overall."""
    frame = supported[["change", "change_low", "change_high", "true_change"]].astype("float64")
    ranks = frame["change"].rank(method="first")
    k = min(deciles, len(frame)) or 1
    frame = frame.assign(decile=np.ceil(ranks * k / len(frame)).astype("int64") if len(frame) else [])
    table = frame.groupby("decile").agg(customers=("change", "size"), estimated=("change", "mean"),
                                         low=("change_low", "mean"), high=("change_high", "mean"),
                                         true=("true_change", "mean")).reset_index()
    table["decile"] = table["decile"].astype(str)
    overall = pd.DataFrame([{"decile": "all", "customers": len(frame), "estimated": frame["change"].mean(),
                             "low": frame["change_low"].mean(), "high": frame["change_high"].mean(),
                             "true": frame["true_change"].mean()}])
    return pd.concat([table, overall], ignore_index=True)
