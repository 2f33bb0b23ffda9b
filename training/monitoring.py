"""Monitoring a served model month by month: pure functions of a feature frame, a model and its
training reference (I/O, MLflow and the command line live in training/monitor_run.py).

For every index month up to the as-of date:
- **drift**: the population stability index (PSI) of each model feature and of the score against
  the model's reference, PSI = sum over bins (a - e) ln(a / e) with e the reference's and a the
  month's share of rows in a bin. Numeric values use the reference's quantile bins plus one bin for
  missing values; categorical ones their categories plus one for anything else or missing. A
  share of 0 counts as 1e-4 (an empty bin would make the PSI infinite). Each feature's PSI is also
  taken against the month's own recent past (the `step_months` index months before it, same
  bins): a top feature's drift breaches when it is large against the reference *and* came as a
  step (a code recorded differently, a system migration, a service stopped), not when it built up
  over years (a slowly changing population the model still fits; that is listed as a notice, and
  if it hurts the model, the score PSI and the realised calibration say so).
- **alert rate**: the share of the month's eligible rows at or above the model's alert threshold.
- **performance**: where the month's outcomes are complete (index month + horizon <= as-of), the
  realised AUROC, observed/expected and calibration slope with customer-bootstrap intervals
  (training/evaluate.py); always, an *estimate* from the calibrated scores alone
  (confidence-based performance estimation: if the probabilities are right, the expected number
  of outcomes is their sum and the expected AUROC the chance that a random outcome row outscores
  a random non-outcome row, each row being an outcome with its own probability). The estimate is
  only as good as the calibration it assumes: it cannot see a shift in how features relate to
  outcomes, which is why realised figures follow once outcomes are in.
- **steps in recorded codes** (given the feature build's code counts): a code a model feature
  reads recorded far less or far more often in a month than in the months before
  (training/code_steps.py), the first sign of a coding change: a long-window feature drifts a
  twelfth a month, the code's count at once. A step in a code a top feature reads breaches at the
  first index month whose features read the stepped month; from then on, for `step_months`, a
  complete month whose O/E interval lies wholly on one side of 1 breaches too (the cause is
  known; no run of months is waited for, as oe_sustained_months does when none is).
- **CRM feedback** (attach_feedback, given the outbox's counts by the caller): the cards sent that
  named the problem at the month's index dates, and the shares of them the coordinators accepted
  and overrode; "no feedback" where no card has a verdict.

The reference (`reference_from`) is made when a model is trained and travels in its metadata
(`monitoring_reference`): feature bins and shares from the training period's rows, the score's
from the validation period's (held-out scores: in-sample scores of a boosted model are sharper
than any later month's, so a training-period score reference would show drift that is not there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from training.evaluate import auroc, bootstrap_performance_ci, calibration_slope, observed_expected
from training.data import FeatureTableError
from training.spec import ExperimentSpec, Monitoring

REFERENCE_VERSION = 2  # 2: last-record values dated by their companion (dated_by)
PSI_FLOOR = 1e-4
SCORE = "score"


# ---------------------------------------------------------------------------------------------
# Reference distributions and PSI


# Features measured in days since something (the last ER visit, the start of home care, the last
# supply) grow with the length of the recorded history: at the extract's first index dates no value
# can exceed the warm-up, later ones can, and "none on record" turns into "long ago" as history
# accumulates, with nothing changed in the world. Every index date has at least the feature
# tables' 365-day warm-up of history (features/build.py index_dates), so values up to it mean the
# same at every date; above it they share the missing bin ("more than a year ago, or never").
# The same holds for values read from the last record of a kind (the last interRAI score, the
# last PHQ-9, the length of the last hospital stay, the change between the last two): their
# "never on record" share shrinks as history grows. Such a value counts only when its record lies
# within the warm-up, as its companion days-since feature tells (`dated_by`); otherwise it shares
# the missing bin too.
HISTORY_DAYS = 365.0
_LAST_VALUE_SUFFIXES = ("_last", "_change", "_last_stay")


@lru_cache(maxsize=1)
def dated_by() -> dict[str, str]:
    """Every last-record feature (name ending _last, _change or _last_stay) and the days-since
    feature of its family whose codes include its codes (the fewest codes if several): the age of
    the record the value was read from."""
    from features import catalogue

    entries = catalogue()
    since = [e for e in entries if e.name.endswith("_days_since")]
    out = {}
    for entry in entries:
        if not entry.name.endswith(_LAST_VALUE_SUFFIXES) or not entry.codes:
            continue
        found = [s for s in since if s.family == entry.family and set(entry.codes) <= set(s.codes)]
        if found:
            out[entry.name] = min(found, key=lambda s: len(s.codes)).name
    return out


def history_bounded(name: str) -> bool:
    """Whether a feature is a time length in days (features' catalogue unit), read with HISTORY_DAYS
    (a last-record value in days, the last stay's length, is dated by its companion instead)."""
    from features import catalogue

    return name not in dated_by() and any(info.name == name and info.unit_en == "days" for info in catalogue())


def needed_columns(names: list[str]) -> list[str]:
    """The model features `names` and the companions that date them."""
    companions = dated_by()
    return list(dict.fromkeys([*names, *(companions[n] for n in names if n in companions)]))


def dated_values(values, age, cap: float = HISTORY_DAYS) -> np.ndarray:
    """`values` where the record they were read from is at most `cap` days old (`age`), else NaN."""
    x = np.asarray(values, dtype=float)
    return np.where(np.asarray(age, dtype=float) <= cap, x, np.nan)


def feature_entry(name: str, frame: pd.DataFrame, bins: int, categories: list[str] | None = None) -> dict[str, Any]:
    """The reference entry of one feature from the rows of `frame` (its companion column too when
    the feature is dated by one)."""
    if categories is not None:
        return categorical_entry(frame[name], categories)
    companion = dated_by().get(name)
    if companion is not None and companion in frame.columns:  # a table without it: the value undated
        entry = numeric_entry(dated_values(frame[name].to_numpy(dtype=float, na_value=np.nan),
                                           frame[companion].to_numpy(dtype=float, na_value=np.nan)), bins)
        return {**entry, "dated_by": companion, "cap": HISTORY_DAYS}
    return numeric_entry(frame[name].to_numpy(dtype=float, na_value=np.nan), bins,
                         HISTORY_DAYS if history_bounded(name) else None)


def entry_values(entry: dict[str, Any], name: str, frame: pd.DataFrame):
    """The values of feature `name` in `frame` as its entry reads them (dated by the companion)."""
    if entry.get("dated_by"):
        if entry["dated_by"] not in frame.columns:
            raise FeatureTableError(f"feature {name} is dated by {entry['dated_by']} in the model's monitoring "
                                    "reference, and the feature table has no such column")
        return dated_values(frame[name].to_numpy(dtype=float, na_value=np.nan),
                            frame[entry["dated_by"]].to_numpy(dtype=float, na_value=np.nan), entry["cap"])
    return frame[name]


def numeric_entry(values: np.ndarray, bins: int, cap: float | None = None) -> dict[str, Any]:
    """Quantile bin edges of the non-missing values and the shares of every bin (the last bin:
    missing, and values above `cap` when one is given). A value equal to an edge falls in the bin
    below it, so a mass point (0 visits) keeps its own bin."""
    values = np.asarray(values, dtype=float)
    if cap is not None:
        values = np.where(values > cap, np.nan, values)
    present = values[~np.isnan(values)]
    if len(present):
        edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    else:
        edges = np.zeros(0)
    entry: dict[str, Any] = {"kind": "numeric", "edges": [float(e) for e in edges]}
    if cap is not None:
        entry["cap"] = cap
    entry["shares"] = [float(s) for s in shares(entry, values)]
    return entry


def categorical_entry(values: pd.Series, categories: list[str]) -> dict[str, Any]:
    entry = {"kind": "categorical", "categories": [str(c) for c in categories]}
    entry["shares"] = [float(s) for s in shares(entry, values)]
    return entry


def bin_index(entry: dict[str, Any], values) -> np.ndarray:
    """The reference bin of every value (numeric: quantile bins, then missing; categorical: the
    categories, then anything else or missing)."""
    if entry["kind"] == "numeric":
        x = np.asarray(values, dtype=float)
        if entry.get("cap") is not None and not entry.get("dated_by"):
            x = np.where(x > entry["cap"], np.nan, x)
        edges = np.asarray(entry["edges"], dtype=float)
        index = np.searchsorted(edges, x, side="left")
        return np.where(np.isnan(x), len(edges) + 1, index)
    categories = entry["categories"]
    codes = pd.Categorical(pd.Series(values, dtype="object").astype("string"), categories=categories).codes
    return np.where(codes < 0, len(categories), codes)


def n_bins(entry: dict[str, Any]) -> int:
    return len(entry["edges"]) + 2 if entry["kind"] == "numeric" else len(entry["categories"]) + 1


def shares(entry: dict[str, Any], values) -> np.ndarray:
    index = bin_index(entry, values)
    counts = np.bincount(index, minlength=n_bins(entry)).astype(float)
    return counts / counts.sum() if counts.sum() else counts


def psi(expected, actual) -> float:
    """Population stability index of the shares `actual` against `expected` (same bins)."""
    e = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_rows(expected, actual) -> np.ndarray:
    """psi(expected, row) for every row of the share matrix `actual` (rows of zeros: NaN)."""
    actual = np.asarray(actual, dtype=float)
    e = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    a = np.maximum(actual, PSI_FLOOR)
    out = np.sum((a - e) * np.log(a / e), axis=1)
    return np.where(actual.sum(axis=1) > 0, out, np.nan)


def reference_from(model, train: pd.DataFrame, validation: pd.DataFrame, bins: int, source: str) -> dict[str, Any]:
    """The model's monitoring reference: every feature's bins and shares on `train` (the training
    period's usable rows), the score's on `validation`, and the features ranked by gain."""
    features = {name: feature_entry(name, train, bins, list(model.categories[name]) if name in model.categories else None) for name in model.feature_names}
    gain = model.booster.feature_importance(importance_type="gain")
    ranked = [model.feature_names[i] for i in np.argsort(-np.asarray(gain), kind="stable")]
    return {
        "version": REFERENCE_VERSION,
        "source": source,
        "bins": bins,
        "train_rows": int(len(train)),
        "train_first": str(pd.Timestamp(train["prediction_time"].min()).date()),
        "train_end": str((pd.Timestamp(train["prediction_time"].max()) + pd.DateOffset(months=1)).date()),
        "score_rows": int(len(validation)),
        "features": features,
        "score": numeric_entry(model.predict_proba(validation), bins),
        "importance": ranked,
    }


# ---------------------------------------------------------------------------------------------
# Performance from scores alone


def expected_auroc(p) -> float:
    """AUROC expected if each row is an outcome with its own probability p (confidence-based
    performance estimation): sum over pairs (i, j), i != j, of p_i (1 - p_j) [s_i > s_j] (ties
    half), over sum of p_i (1 - p_j), i != j. The score is p itself."""
    p = np.asarray(p, dtype=float)
    if len(p) < 2:
        return float("nan")
    values, groups = np.unique(p, return_inverse=True)
    pos = np.bincount(groups, p, len(values))
    neg = np.bincount(groups, 1 - p, len(values))
    below = np.cumsum(neg) - neg  # non-outcome mass strictly below each score
    self_pairs = float(np.sum(p * (1 - p)))
    numerator = float(np.sum(pos * (below + 0.5 * neg))) - 0.5 * self_pairs
    denominator = float(pos.sum() * neg.sum()) - self_pairs
    return numerator / denominator if denominator > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# The monthly run


@dataclass
class MonitorReport:
    problem: str
    model_version: str
    as_of: pd.Timestamp
    reference_source: str
    months: pd.DataFrame  # one row per index month (drift, alert rate, estimate, realised figures, breaches, notices)
    feature_psi: pd.DataFrame  # feature x month PSI against the reference, the top features first
    top_features: list[str]
    thresholds: Monitoring
    notes: list[str] = field(default_factory=list)
    feature_step_psi: pd.DataFrame = field(default_factory=pd.DataFrame)  # feature x month PSI against the recent past
    run_id: str = ""  # the MLflow run that recorded it (training/monitor_run.py), once recorded
    region: str = ""  # the region of a multi-region features folder it monitored; "" for the home's one region

    @property
    def breaches(self) -> list[str]:
        rows = self.months[self.months["breaches"] != ""]
        return [f"{row.month:%Y-%m}: {row.breaches}" for row in rows.itertuples()]


def outcomes_complete(month, horizon_days: int, as_of) -> bool:
    """Whether every label window of index month `month` has closed by `as_of` (month + horizon <=
    as_of): the months whose realised figures monitoring shows, and those the promotion of a
    retrained model compares on (training/retrain.py)."""
    return pd.Timestamp(month) + pd.Timedelta(days=horizon_days) <= pd.Timestamp(as_of)


def recent_complete_months(months, horizon_days: int, as_of, count: int) -> list[pd.Timestamp]:
    """The `count` latest of `months` (index months) whose outcomes are complete as of `as_of`."""
    complete = sorted({pd.Timestamp(m) for m in months if outcomes_complete(m, horizon_days, as_of)})
    return complete[-count:] if count > 0 else []


def first_monitored_month(reference: dict[str, Any], spec: ExperimentSpec) -> pd.Timestamp:
    """The first index month none of whose rows lies inside a training row's label window (the
    split's gap rule): before it, outcomes the trees learnt from would flatter the realised figures."""
    return month_on_or_after(pd.Timestamp(reference["train_end"]) + pd.Timedelta(days=spec.horizon_days))


def month_on_or_after(time) -> pd.Timestamp:
    """The first month start at or after `time`."""
    start = pd.Timestamp(time).to_period("M").to_timestamp()
    return start if start == pd.Timestamp(time) else start + pd.DateOffset(months=1)


def _month_counts(entry: dict[str, Any], values, month_code: np.ndarray, n_months: int) -> np.ndarray:
    """Rows per (month, reference bin): one pass over all months' rows."""
    bins = n_bins(entry)
    index = month_code * bins + bin_index(entry, values)
    return np.bincount(index, minlength=n_months * bins).reshape(n_months, bins).astype(float)


def _shares(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


# A PSI measured on n rows against N has a sampling spread of its own: with no change at all,
# PSI * (1/n + 1/N)^-1 is about chi-square with (bins - 1) degrees of freedom. A month is judged
# against the larger of the threshold and this noise floor (its 99.9th percentile): at region size
# (thousands of rows a month) the floor is far below 0.2; a small region's month of a hundred
# rows would otherwise breach on noise alone.
NOISE_QUANTILE = 0.999


def noise_floor(bins: int, rows, against) -> np.ndarray:
    """The PSI that sampling alone exceeds with probability 1 - NOISE_QUANTILE."""
    from scipy.stats import chi2

    rows, against = np.asarray(rows, dtype=float), np.asarray(against, dtype=float)
    with np.errstate(divide="ignore"):
        scale = 1 / rows + 1 / against
    return chi2.ppf(NOISE_QUANTILE, max(bins - 1, 1)) * scale


def _step_psi(counts: np.ndarray, calendar: np.ndarray, months: int) -> tuple[np.ndarray, np.ndarray]:
    """Every month's PSI against the pooled rows of the `months` index months before it (NaN where
    there are none), and those pooled rows' count."""
    before = (calendar[None, :] < calendar[:, None]) & (calendar[None, :] >= calendar[:, None] - months)
    past = before.astype(float) @ counts
    out = np.full(len(counts), np.nan)
    for m in np.flatnonzero(past.sum(axis=1) > 0):
        out[m] = psi(past[m] / past[m].sum(), counts[m] / counts[m].sum()) if counts[m].sum() else np.nan
    return out, past.sum(axis=1)


def monitor(model, spec: ExperimentSpec, frame: pd.DataFrame, reference: dict[str, Any], as_of: pd.Timestamp,
            thresholds: Monitoring, *, first_month: pd.Timestamp | None = None, seed: int = 0,
            code_volumes: pd.DataFrame | None = None) -> MonitorReport:
    """Every index month from `first_month` (default: first_monitored_month, the end of the
    reference's training period plus the horizon) through `as_of`: drift, alert rate, estimated and
    (where complete) realised performance, and the month's breaches of `thresholds`. `frame` is the
    segment's feature table (the model's features, their companions (needed_columns) and the
    problem's key, label, censor and eligibility columns suffice); only its rows eligible for the
    problem and at or before `as_of` are read (those of the `step_months` before the first month
    only as the first months' recent past), and outcomes only where index month + horizon <= as_of
    (the data as it stood then). `code_volumes` (features/code_volumes.py, the feature build's events
    per code and month): steps in the codes the model's features read (model_code_steps) are judged
    at the first index month whose features read the stepped month; None: not judged, and a note
    says so."""
    as_of = pd.Timestamp(as_of)
    first = pd.Timestamp(first_month) if first_month is not None else first_monitored_month(reference, spec)
    past_start = first - pd.DateOffset(months=thresholds.step_months)
    times = frame["prediction_time"]
    eligible = frame[spec.eligible_column].fillna(False).astype(bool)
    names = [n for n in model.feature_names if n in reference["features"]]
    companions = [c for c in needed_columns(list(model.feature_names)) if c not in model.feature_names and c in frame]
    columns = ["subject_id", "prediction_time", spec.label_column, spec.censor_column, *model.feature_names, *companions]
    # the columns first: a row selection copies every column it is given (a region's table has ~190)
    rows = frame[list(dict.fromkeys(columns))].loc[(eligible & (times >= past_start) & (times <= as_of)).to_numpy()]
    threshold = float(model.metadata["threshold"])
    top = [n for n in reference.get("importance", names) if n in names][: thresholds.top_features]

    all_months, month_code = np.unique(rows["prediction_time"].to_numpy(), return_inverse=True)
    all_months = pd.DatetimeIndex(all_months)
    calendar = np.asarray(all_months.year * 12 + all_months.month)
    shown = np.flatnonzero(all_months >= first)  # the monitored months among all_months
    psi_ref, psi_step, limit_ref, limit_step = {}, {}, {}, {}
    train_rows = float(reference.get("train_rows") or np.inf)
    for name in names:
        entry = reference["features"][name]
        counts = _month_counts(entry, entry_values(entry, name, rows), month_code, len(all_months))
        psi_ref[name] = psi_rows(entry["shares"], _shares(counts))[shown]
        psi_step[name], past_rows = _step_psi(counts, calendar, thresholds.step_months)
        psi_step[name] = psi_step[name][shown]
        month_rows = counts.sum(axis=1)[shown]
        used = int(np.count_nonzero(entry["shares"]))
        limit_ref[name] = np.maximum(thresholds.max_feature_psi, noise_floor(used, month_rows, train_rows))
        limit_step[name] = np.maximum(thresholds.step_feature_psi, noise_floor(used, month_rows, past_rows[shown]))

    monitored = np.isin(month_code, shown)
    part = rows.loc[monitored]
    codes = month_code[monitored]
    p_all = score_rows(model, part)
    score_counts = _month_counts(reference["score"], p_all, codes, len(all_months))
    score_psi = psi_rows(reference["score"]["shares"], _shares(score_counts))
    score_limit = np.maximum(thresholds.max_score_psi, noise_floor(
        int(np.count_nonzero(reference["score"]["shares"])), score_counts.sum(axis=1),
        float(reference.get("score_rows") or np.inf)))
    ids_all = part["subject_id"].to_numpy()
    usable_all = (part[spec.censor_column].isna() & part[spec.label_column].notna()).to_numpy()
    y_all = part[spec.label_column].to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], shown, side="left"), np.searchsorted(codes[order], shown, side="right")

    steps_by_month = ({} if code_volumes is None else
                      model_code_steps(model.feature_names, top, code_volumes, as_of, thresholds))
    records, psi_columns, step_columns = [], {}, {}
    for i, m in enumerate(shown):
        month = all_months[m]
        index = order[bounds[0][i]:bounds[1][i]]
        p = p_all[index]
        feature_psi = {n: float(psi_ref[n][i]) for n in names}
        step = {n: float(psi_step[n][i]) for n in names}
        psi_columns[month], step_columns[month] = feature_psi, step
        worst_top = max(top, key=lambda n: feature_psi[n]) if top else ""
        complete = outcomes_complete(month, spec.horizon_days, as_of)
        record: dict[str, Any] = {
            "month": month, "rows": len(index), "customers": len(np.unique(ids_all[index])),
            "alert_rate": float(np.mean(p >= threshold)), "mean_score": float(np.mean(p)),
            "score_psi": float(score_psi[m]), "top_feature_psi": feature_psi.get(worst_top, np.nan),
            "top_feature_step_psi": step.get(worst_top, np.nan), "top_feature": worst_top,
            "max_feature_psi": max(feature_psi.values()) if feature_psi else np.nan,
            "max_feature": max(feature_psi, key=feature_psi.get) if feature_psi else "",
            "estimated_events": float(np.sum(p)), "estimated_auroc": expected_auroc(p), "complete": complete,
        }
        if complete:
            usable = usable_all[index]
            record.update(_realised(ids_all[index][usable], y_all[index][usable].astype(bool), p[usable],
                                    thresholds, seed))
        limits = {"score": float(score_limit[m]), "feature": {n: float(limit_ref[n][i]) for n in names},
                  "step": {n: float(limit_step[n][i]) for n in names}}
        # an index date's features read the events before it: the month just before is the newest they see
        code_steps_ = steps_by_month.get(month - pd.DateOffset(months=1), [])
        breaches, notices, kinds = _breaches(record, feature_psi, step, top, thresholds, limits, previous=records,
                                             code_steps=code_steps_)
        record["breaches"], record["notices"] = "; ".join(breaches), "; ".join(notices)
        record.update(kinds)
        records.append(record)
    columns = ["month", "rows", "customers", "alert_rate", "mean_score", "score_psi", "top_feature_psi",
               "top_feature_step_psi", "top_feature", "max_feature_psi", "max_feature", "estimated_events",
               "estimated_auroc", "complete", "labelled", "events", "auroc", "auroc_ci_low", "auroc_ci_high",
               "observed_expected", "observed_expected_ci_low", "observed_expected_ci_high", "calibration_slope",
               "calibration_slope_ci_low", "calibration_slope_ci_high", "breaches", "notices", "breach_kinds",
               "drift_features", "gradual_features", "other_step_features", "code_steps", "step_since"]
    months = pd.DataFrame.from_records(records).reindex(columns=columns)
    order_names = top + [n for n in names if n not in top]

    def table(columns_: dict) -> pd.DataFrame:
        out = pd.DataFrame(columns_).reindex(order_names) if columns_ else pd.DataFrame(index=order_names)
        out.columns = [f"{m:%Y-%m}" for m in out.columns]
        return out

    notes = [] if len(shown) else [f"no eligible rows between {first.date()} and {as_of.date()}"]
    if code_volumes is None:
        notes.append("code counts not judged: the features folder has none (built before they were kept); a change "
                     "in how a code is recorded shows only when features drift (build the features again)")
    return MonitorReport(spec.problem, str(model.metadata.get("model_version", "")), as_of,
                         str(reference.get("source", "")), months, table(psi_columns), top, thresholds, notes,
                         table(step_columns))


PREDICT_CHUNK = 25_000  # rows scored at a time: a region's months at once make a matrix of ~0.5 GB, twice as slow


def score_rows(model, rows: pd.DataFrame, *, raw: bool = False) -> np.ndarray:
    """The model's probabilities for `rows` (its booster's raw scores, log-odds, when `raw`), scored
    in chunks (the same numbers as in one go)."""
    if not len(rows):
        return np.zeros(0)
    score = model.raw_score if raw else model.predict_proba
    return np.concatenate([score(rows.iloc[i:i + PREDICT_CHUNK]) for i in range(0, len(rows), PREDICT_CHUNK)])


def _realised(ids: np.ndarray, y: np.ndarray, q: np.ndarray, thresholds: Monitoring, seed: int) -> dict[str, Any]:
    """Realised figures of a complete month on its usable rows (eligible, not censored, labelled)."""
    out: dict[str, Any] = {"labelled": int(len(y)), "events": int(y.sum())}
    if out["events"] == 0 or out["events"] == len(y):
        return out
    out["auroc"] = auroc(y, q)
    out["observed_expected"] = observed_expected(y, q)
    out["calibration_slope"] = calibration_slope(y, q)
    for name, (low, high) in bootstrap_performance_ci(ids, y, q, thresholds.bootstrap_samples, seed).items():
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
    return out


def _outside(value: float, low: float, high: float, band: tuple[float, float]) -> bool:
    """The whole interval outside the band (the mirror of the promotion gates, which need it
    inside): a month is judged on evidence, not on its point. With two figures a month over two
    years of months, a point outside the band or an interval merely clear of 1 raises several
    false alarms a year on a region's monthly numbers."""
    if np.isnan(value) or np.isnan(low) or np.isnan(high):
        return False
    return bool(low > band[1] or high < band[0])


def oe_side(record: dict[str, Any], min_events: int) -> int:
    """+1 when a complete month's O/E interval lies wholly above 1 (under-prediction), -1 wholly
    below, 0 otherwise (not complete, too few events, an interval holding 1)."""
    if not record.get("complete") or record.get("events", 0) < min_events:
        return 0
    low, high = record.get("observed_expected_ci_low", np.nan), record.get("observed_expected_ci_high", np.nan)
    if np.isnan(low) or np.isnan(high):
        return 0
    return 1 if low > 1 else -1 if high < 1 else 0


def sustained_oe(record: dict[str, Any], previous: list[dict[str, Any]], t: Monitoring) -> bool:
    """This month and the `oe_sustained_months` - 1 months before it (consecutive index months) all
    have their O/E interval on the same side of 1. Chosen on seed 42's region (development data):
    with no shift, one month clear of 1 came 5 times in 98 complete problem-months and two in a row
    twice (children 2026-03, acute 2026-09, the second only at the rounding edge), three in a row
    never; with health centre nurse visits no longer recorded from 2026-01, three in a row came from
    the fourth affected month of elderly hospitalisation (README, Monitoring in production)."""
    n = t.oe_sustained_months
    side = oe_side(record, t.min_events)
    if n < 1 or side == 0 or len(previous) < n - 1:
        return False
    before = previous[len(previous) - (n - 1):] if n > 1 else []
    months = [pd.Timestamp(r["month"]) for r in before] + [pd.Timestamp(record["month"])]
    consecutive = all(b == a + pd.DateOffset(months=1) for a, b in zip(months, months[1:]))
    return consecutive and all(oe_side(r, t.min_events) == side for r in before)


def _breaches(record: dict[str, Any], feature_psi: dict[str, float], step_psi: dict[str, float], top: list[str],
              t: Monitoring, limits: dict[str, Any] | None = None,
              previous: list[dict[str, Any]] | None = None,
              code_steps: list[dict[str, Any]] | None = None) -> tuple[list[str], list[str], dict[str, str]]:
    """The month's breaches and notices as sentences, and as data for pages and alerts
    (`breach_kinds`: code, score, feature, oe, oe_after_step, oe_sustained, slope; `drift_features`,
    `gradual_features`, `other_step_features` (a step in a feature outside the top ones: a notice):
    names, each comma-separated; `code_steps`: the month's steps in recorded codes as JSON;
    `step_since`: the index month of the step an oe_after_step breach follows). A top
    feature beyond max_feature_psi against the reference breaches when it also moved beyond
    step_feature_psi against its own recent past (or has no recent past to compare with); drift
    that built up slowly is a notice. A step in a code a top feature reads breaches (`code_steps`,
    model_code_steps); in a code only other features read, a notice."""
    import json

    found, notices, kinds = [], [], []
    since = ""  # the index month of the step an oe_after_step breach follows
    code_steps = code_steps or []
    read_by_top = [s for s in code_steps if s["top_features"]]
    if read_by_top:
        kinds.append("code")
        found.append("; ".join(_code_step_sentence(s) for s in read_by_top))
    for s in code_steps:
        if not s["top_features"]:
            notices.append(_code_step_sentence(s) + " (no top feature reads it)")
    # the thresholds, raised to each month's noise floor where it is higher (noise_floor)
    limits = limits or {}
    score_limit = limits.get("score", t.max_score_psi)
    ref_limit = {n: limits.get("feature", {}).get(n, t.max_feature_psi) for n in feature_psi}
    step_limit = {n: limits.get("step", {}).get(n, t.step_feature_psi) for n in feature_psi}
    if record["score_psi"] > score_limit:
        kinds.append("score")
        found.append(f"score drift (PSI {record['score_psi']:.2f})")
    drifted = [n for n in top if feature_psi[n] > ref_limit[n]]
    stepped = [n for n in drifted if not step_psi[n] <= step_limit[n]]  # NaN: no recent past, judged on the reference
    if stepped:
        kinds.append("feature")
        found.append("feature drift (" + ", ".join(
            f"{n} PSI {feature_psi[n]:.2f}" + ("" if np.isnan(step_psi[n]) else f", {step_psi[n]:.2f} against the "
                                               f"previous {t.step_months} months") for n in stepped) + ")")
    gradual = [n for n in drifted if n not in stepped]
    # a step in a feature the model hardly uses breaches nothing (the score says whether it matters)
    # but is a change in the data someone should know of: a code recorded differently, say
    others = [n for n in feature_psi if n not in top and feature_psi[n] > ref_limit[n] and step_psi[n] > step_limit[n]]
    if others:
        notices.append("a step in less important feature(s) (" + ", ".join(
            f"{n} PSI {feature_psi[n]:.2f}, {step_psi[n]:.2f} against the previous {t.step_months} months"
            for n in others) + ")")
    if gradual:
        notices.append("gradual drift (" + ", ".join(
            f"{n} PSI {feature_psi[n]:.2f}, {step_psi[n]:.2f} against the previous {t.step_months} months"
            for n in gradual) + ")")
    if record.get("complete") and record.get("events", 0) >= t.min_events:
        oe = record.get("observed_expected", np.nan)
        if _outside(oe, record.get("observed_expected_ci_low", np.nan), record.get("observed_expected_ci_high", np.nan),
                    t.oe_band):
            kinds.append("oe")
            found.append(f"calibration: O/E {oe:.2f} [{record['observed_expected_ci_low']:.2f}, "
                         f"{record['observed_expected_ci_high']:.2f}] outside {t.oe_band[0]}-{t.oe_band[1]}")
        elif t.oe_after_code_step and oe_side(record, t.min_events) != 0 and (
                after := (f"{pd.Timestamp(record['month']):%Y-%m}" if "code" in kinds else
                          stepped_since(previous or [], record["month"], t.step_months))):
            kinds.append("oe_after_step")
            since = after
            found.append(f"calibration: O/E {oe:.2f} [{record['observed_expected_ci_low']:.2f}, "
                         f"{record['observed_expected_ci_high']:.2f}] {'above' if oe > 1 else 'below'} 1 since the step "
                         f"in recording seen in {after}")
        elif sustained_oe(record, previous or [], t):
            kinds.append("oe_sustained")
            found.append(f"calibration: O/E {oe:.2f} [{record['observed_expected_ci_low']:.2f}, "
                         f"{record['observed_expected_ci_high']:.2f}], the {t.oe_sustained_months} complete months to "
                         f"this one all {'above' if oe_side(record, t.min_events) > 0 else 'below'} 1")
        slope = record.get("calibration_slope", np.nan)
        if _outside(slope, record.get("calibration_slope_ci_low", np.nan), record.get("calibration_slope_ci_high", np.nan),
                    t.slope_band):
            kinds.append("slope")
            found.append(f"calibration: slope {slope:.2f} [{record['calibration_slope_ci_low']:.2f}, "
                         f"{record['calibration_slope_ci_high']:.2f}] outside {t.slope_band[0]}-{t.slope_band[1]}")
    return found, notices, {"breach_kinds": ",".join(kinds), "drift_features": ",".join(stepped),
                            "gradual_features": ",".join(gradual), "other_step_features": ",".join(others),
                            "code_steps": json.dumps(code_steps) if code_steps else "", "step_since": since}


def stepped_since(previous: list[dict[str, Any]], month, window_months: int) -> str:
    """The index month ('YYYY-MM') of the latest step in a code a top feature reads among the
    months `previous` that lies within `window_months` before `month`; '' when there is none (a
    step long ago explains no new miscalibration: the step_months rule of the features)."""
    start = pd.Timestamp(month) - pd.DateOffset(months=window_months)
    for r in reversed(previous):
        if pd.Timestamp(r["month"]) >= start and "code" in str(r.get("breach_kinds") or "").split(","):
            return f"{pd.Timestamp(r['month']):%Y-%m}"
    return ""


def _code_step_sentence(step: dict[str, Any]) -> str:
    readers = step["top_features"] + step["other_features"]
    return (f"a step in recording: {step['code']} {step['events']:,} times in {step['month']} against "
            f"{step['previous_low']:,}-{step['previous_high']:,} a month in the {step['previous_months']} months before "
            f"({step['direction']}); read by " + ", ".join(readers))


# ---------------------------------------------------------------------------------------------
# Steps in recorded codes, linked to a model's features


def model_code_steps(feature_names, top: list[str], volumes: pd.DataFrame, as_of, t: Monitoring
                     ) -> dict[pd.Timestamp, list[dict[str, Any]]]:
    """The steps (training/code_steps.py) in codes the model's features read (the feature
    catalogue's codes), by the calendar month of the step; each with the features that read it,
    the top ones apart."""
    from features import catalogue
    from training.code_steps import StepRule, code_steps

    readers: dict[str, list[str]] = {}
    names = set(feature_names)
    for entry in catalogue():
        if entry.name in names:
            for code in entry.codes or ():
                readers.setdefault(code, []).append(entry.name)
    rule = StepRule(window=t.step_months, min_history=t.step_months, ratio=t.code_step_ratio,
                    min_events=t.code_step_min_events,
                    p_value=t.code_step_p_value)
    steps = code_steps(volumes, as_of, rule, codes=readers)
    out: dict[pd.Timestamp, list[dict[str, Any]]] = {}
    rank = {name: i for i, name in enumerate(top)}
    for row in steps.itertuples(index=False):
        reading = readers[row.code]
        out.setdefault(pd.Timestamp(row.month), []).append({
            "code": row.code, "month": f"{pd.Timestamp(row.month):%Y-%m}", "events": int(row.events),
            "previous_low": int(row.previous_low), "previous_high": int(row.previous_high),
            "previous_months": int(row.previous_months), "direction": row.direction,
            "top_features": sorted((n for n in reading if n in rank), key=rank.get),
            "other_features": sorted(n for n in reading if n not in rank)})
    return out


# ---------------------------------------------------------------------------------------------
# CRM feedback beside the figures

FEEDBACK_COLUMNS = ("crm_sent", "crm_feedback", "crm_accepted", "crm_overridden", "crm_accepted_share",
                    "crm_overridden_share")


def attach_feedback(report: MonitorReport, rows: list[Any] | None, source: str = "") -> MonitorReport:
    """The report with each month's CRM feedback on the cards naming its problem (alerts/feedback.py
    monthly_feedback: items with problem, month 'YYYY-MM', sent, with_feedback, accepted, overridden):
    cards sent, cards with a verdict, accepted and overridden, and their shares of the cards with a
    verdict. A month with no verdict has counts of 0 and no share (NaN): "no feedback", never 0 %.
    `rows` None: feedback unknown (no outbox), every column NaN and a note saying so.

    The cards are those the served model raised at the month's index dates, whichever version it
    was; the monitored version's own figures are the rest of the row."""
    months = report.months.copy()
    if rows is None:
        for name in FEEDBACK_COLUMNS:
            months[name] = np.nan
        report.notes.append(f"CRM feedback unknown: {source or 'no outbox'}")
        report.months = months
        return report
    mine = {row.month: row for row in rows if row.problem == report.problem}
    keys = [f"{m:%Y-%m}" for m in months["month"]] if len(months) else []
    found = [mine.get(k) for k in keys]
    months["crm_sent"] = [r.sent if r else 0 for r in found]
    months["crm_feedback"] = [r.with_feedback if r else 0 for r in found]
    months["crm_accepted"] = [r.accepted if r else 0 for r in found]
    months["crm_overridden"] = [r.overridden if r else 0 for r in found]
    with np.errstate(invalid="ignore", divide="ignore"):
        judged = months["crm_feedback"].to_numpy(dtype=float)
        months["crm_accepted_share"] = np.where(judged > 0, months["crm_accepted"] / np.maximum(judged, 1), np.nan)
        months["crm_overridden_share"] = np.where(judged > 0, months["crm_overridden"] / np.maximum(judged, 1), np.nan)
    report.months = months
    if len(months) and not months["crm_feedback"].sum():
        sent = int(months["crm_sent"].sum())
        report.notes.append("no CRM feedback on the cards of the months shown"
                            + (f" ({sent:,} cards sent)" if sent else " (no cards sent in them)"))
    return report
