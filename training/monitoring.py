"""Monitoring a served model month by month: pure functions of a feature frame, a model and its
training reference (I/O, MLflow and the command line live in training/monitor_run.py).

For every index month up to the as-of date:
- **drift**: the population stability index (PSI) of each model feature and of the score against
  the model's reference, PSI = sum over bins (a - e) ln(a / e) with e the reference's and a the
  month's share of rows in a bin. Numeric values use the reference's quantile bins plus one bin for
  missing values; categorical ones their categories plus one for anything else or missing. A
  share of 0 counts as 1e-4 (an empty bin would make the PSI infinite).
- **alert rate**: the share of the month's eligible rows at or above the model's alert threshold.
- **performance**: where the month's outcomes are complete (index month + horizon <= as-of), the
  realised AUROC, observed/expected and calibration slope with customer-bootstrap intervals
  (training/evaluate.py); always, an *estimate* from the calibrated scores alone
  (confidence-based performance estimation: if the probabilities are right, the expected number
  of outcomes is their sum and the expected AUROC the chance that a random outcome row outscores
  a random non-outcome row, each row being an outcome with its own probability). The estimate is
  only as good as the calibration it assumes: it cannot see a shift in how features relate to
  outcomes, which is why realised figures follow once outcomes are in.

The reference (`reference_from`) is made when a model is trained and travels in its metadata
(`monitoring_reference`): feature bins and shares from the training period's rows, the score's
from the validation period's (held-out scores: in-sample scores of a boosted model are sharper
than any later month's, so a training-period score reference would show drift that is not there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.evaluate import auroc, bootstrap_auroc_ci, bootstrap_oe_slope_ci, calibration_slope, observed_expected
from training.spec import ExperimentSpec, Monitoring

REFERENCE_VERSION = 1
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
HISTORY_DAYS = 365.0


def history_bounded(name: str) -> bool:
    """Whether a feature is a time length in days (features' catalogue unit), read with HISTORY_DAYS."""
    from features import catalogue

    return any(info.name == name and info.unit_en == "days" for info in catalogue())


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
        if entry.get("cap") is not None:
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


def reference_from(model, train: pd.DataFrame, validation: pd.DataFrame, bins: int, source: str) -> dict[str, Any]:
    """The model's monitoring reference: every feature's bins and shares on `train` (the training
    period's usable rows), the score's on `validation`, and the features ranked by gain."""
    features: dict[str, Any] = {}
    for name in model.feature_names:
        if name in model.categories:
            features[name] = categorical_entry(train[name], model.categories[name])
        else:
            features[name] = numeric_entry(train[name].to_numpy(dtype=float, na_value=np.nan), bins,
                                           HISTORY_DAYS if history_bounded(name) else None)
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
    months: pd.DataFrame  # one row per index month (drift, alert rate, estimate, realised figures, breaches)
    feature_psi: pd.DataFrame  # feature x month PSI, the top features first
    top_features: list[str]
    thresholds: Monitoring
    notes: list[str] = field(default_factory=list)

    @property
    def breaches(self) -> list[str]:
        rows = self.months[self.months["breaches"] != ""]
        return [f"{row.month:%Y-%m}: {row.breaches}" for row in rows.itertuples()]


def first_monitored_month(reference: dict[str, Any], spec: ExperimentSpec) -> pd.Timestamp:
    """The first index month none of whose rows lies inside a training row's label window (the
    split's gap rule): before it, outcomes the trees learnt from would flatter the realised figures."""
    clear = pd.Timestamp(reference["train_end"]) + pd.Timedelta(days=spec.horizon_days)
    month = clear.to_period("M").to_timestamp()
    return month if month == clear else month + pd.DateOffset(months=1)


def _month_psi(reference: dict[str, Any], names: list[str], frame: pd.DataFrame) -> dict[str, float]:
    return {name: psi(reference["features"][name]["shares"], shares(reference["features"][name], frame[name]))
            for name in names}


def monitor(model, spec: ExperimentSpec, frame: pd.DataFrame, reference: dict[str, Any], as_of: pd.Timestamp,
            thresholds: Monitoring, *, first_month: pd.Timestamp | None = None, seed: int = 0) -> MonitorReport:
    """Every index month from `first_month` (default: first_monitored_month, the end of the
    reference's training period plus the horizon) through `as_of`: drift, alert rate, estimated and (where complete) realised performance, and the
    month's breaches of `thresholds`. `frame` is the segment's feature table; only its rows eligible
    for the problem and at or before `as_of` are read, and outcomes only where index month + horizon
    <= as_of (the data as it stood then)."""
    as_of = pd.Timestamp(as_of)
    first = pd.Timestamp(first_month) if first_month is not None else first_monitored_month(reference, spec)
    times = frame["prediction_time"]
    eligible = frame[spec.eligible_column].fillna(False).astype(bool)
    rows = frame.loc[eligible & (times >= first) & (times <= as_of)]
    threshold = float(model.metadata["threshold"])
    names = [n for n in model.feature_names if n in reference["features"]]
    top = [n for n in reference.get("importance", names) if n in names][: thresholds.top_features]
    horizon = pd.Timedelta(days=spec.horizon_days)

    p_all = model.predict_proba(rows) if len(rows) else np.zeros(0)
    records, psi_columns = [], {}
    for month, index in rows.groupby("prediction_time", sort=True).indices.items():
        month = pd.Timestamp(month)
        part = rows.iloc[index]
        p = p_all[index]
        feature_psi = _month_psi(reference, names, part)
        psi_columns[month] = feature_psi
        score_psi = psi(reference["score"]["shares"], shares(reference["score"], p))
        worst_top = max(top, key=lambda n: feature_psi[n]) if top else ""
        complete = month + horizon <= as_of
        record: dict[str, Any] = {
            "month": month, "rows": len(part), "customers": int(part["subject_id"].nunique()),
            "alert_rate": float(np.mean(p >= threshold)), "mean_score": float(np.mean(p)),
            "score_psi": score_psi, "top_feature_psi": feature_psi.get(worst_top, np.nan), "top_feature": worst_top,
            "max_feature_psi": max(feature_psi.values()) if feature_psi else np.nan,
            "max_feature": max(feature_psi, key=feature_psi.get) if feature_psi else "",
            "estimated_events": float(np.sum(p)), "estimated_auroc": expected_auroc(p), "complete": complete,
        }
        record.update(_realised(part, p, spec, thresholds, seed) if complete else {})
        record["breaches"] = "; ".join(_breaches(record, feature_psi, top, thresholds))
        records.append(record)
    columns = ["month", "rows", "customers", "alert_rate", "mean_score", "score_psi", "top_feature_psi", "top_feature",
               "max_feature_psi", "max_feature", "estimated_events", "estimated_auroc", "complete", "labelled", "events",
               "auroc", "auroc_ci_low", "auroc_ci_high", "observed_expected", "observed_expected_ci_low",
               "observed_expected_ci_high", "calibration_slope", "calibration_slope_ci_low", "calibration_slope_ci_high",
               "breaches"]
    months = pd.DataFrame.from_records(records).reindex(columns=columns)
    order = top + [n for n in names if n not in top]
    feature_psi = pd.DataFrame(psi_columns).reindex(order) if psi_columns else pd.DataFrame(index=order)
    feature_psi.columns = [f"{m:%Y-%m}" for m in feature_psi.columns]
    notes = [] if len(rows) else [f"no eligible rows between {first.date()} and {as_of.date()}"]
    return MonitorReport(spec.problem, str(model.metadata.get("model_version", "")), as_of,
                         str(reference.get("source", "")), months, feature_psi, top, thresholds, notes)


def _realised(part: pd.DataFrame, p: np.ndarray, spec: ExperimentSpec, thresholds: Monitoring, seed: int) -> dict[str, Any]:
    """Realised figures of a complete month on its usable rows (eligible, not censored, labelled)."""
    usable = (part[spec.censor_column].isna() & part[spec.label_column].notna()).to_numpy()
    y = part[spec.label_column].to_numpy()[usable].astype(bool)
    q = p[usable]
    ids = part["subject_id"].to_numpy()[usable]
    out: dict[str, Any] = {"labelled": int(usable.sum()), "events": int(y.sum())}
    if out["events"] == 0 or out["events"] == len(y):
        return out
    out["auroc"] = auroc(y, q)
    out["auroc_ci_low"], out["auroc_ci_high"] = bootstrap_auroc_ci(ids, y, q, thresholds.bootstrap_samples, seed)
    out["observed_expected"] = observed_expected(y, q)
    out["calibration_slope"] = calibration_slope(y, q)
    for name, (low, high) in bootstrap_oe_slope_ci(ids, y, q, thresholds.bootstrap_samples, seed).items():
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


def _breaches(record: dict[str, Any], feature_psi: dict[str, float], top: list[str], t: Monitoring) -> list[str]:
    found = []
    if record["score_psi"] > t.max_score_psi:
        found.append(f"score drift (PSI {record['score_psi']:.2f})")
    drifted = [n for n in top if feature_psi[n] > t.max_feature_psi]
    if drifted:
        found.append("feature drift (" + ", ".join(f"{n} PSI {feature_psi[n]:.2f}" for n in drifted) + ")")
    if record.get("complete") and record.get("events", 0) >= t.min_events:
        oe = record.get("observed_expected", np.nan)
        if _outside(oe, record.get("observed_expected_ci_low", np.nan), record.get("observed_expected_ci_high", np.nan),
                    t.oe_band):
            found.append(f"calibration: O/E {oe:.2f} [{record['observed_expected_ci_low']:.2f}, "
                         f"{record['observed_expected_ci_high']:.2f}] outside {t.oe_band[0]}-{t.oe_band[1]}")
        slope = record.get("calibration_slope", np.nan)
        if _outside(slope, record.get("calibration_slope_ci_low", np.nan), record.get("calibration_slope_ci_high", np.nan),
                    t.slope_band):
            found.append(f"calibration: slope {slope:.2f} [{record['calibration_slope_ci_low']:.2f}, "
                         f"{record['calibration_slope_ci_high']:.2f}] outside {t.slope_band[0]}-{t.slope_band[1]}")
    return found
