"""Evaluation metrics: pure functions of labels, probabilities and row keys.

Row-level metrics treat every (customer, index month) as a case; customer-level metrics take the
maximum risk per customer over the period against "any outcome in the period", which is what a
coordinator experiences. Alert metrics use one threshold, chosen on validation by the spec's
alert policy and then applied unchanged to test.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from training.spec import AlertPolicy

NAN = float("nan")


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(np.sum(y)) < len(y)


def auroc(y, p) -> float:
    y = np.asarray(y, dtype=int)
    return float(roc_auc_score(y, p)) if _both_classes(y) else NAN


def auprc(y, p) -> float:
    y = np.asarray(y, dtype=int)
    return float(average_precision_score(y, p)) if _both_classes(y) else NAN


def brier(y, p) -> float:
    return float(brier_score_loss(np.asarray(y, dtype=int), np.asarray(p, dtype=float)))


def expected_calibration_error(y, p, bins: int = 10, weights=None) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by bin size.

    Equal-count (quantile) bins because risks are skewed: equal-width bins would leave almost
    every row in the first bin. `weights` (rows' counts in a bootstrap resample) weigh rows and
    bins; the bins stay those of the unweighted rows, so resamples are comparable.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if len(y) == 0 or w.sum() == 0:
        return NAN
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(order))):
        mass = w[chunk].sum()
        if len(chunk) and mass > 0:
            total += mass * abs(np.dot(w[chunk], y[chunk]) / mass - np.dot(w[chunk], p[chunk]) / mass)
    return float(total / w.sum())


def observed_expected(y, p, weights=None) -> float:
    """Calibration-in-the-large: outcomes observed / outcomes the probabilities expect (1 = right
    on average; above 1 = the model under-predicts)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    expected = float(np.dot(w, p))
    return float(np.dot(w, y) / expected) if expected > 0 else NAN


def calibration_curve(y, p, bins: int = 10) -> pd.DataFrame:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    rows = [
        {"mean_predicted": p[c].mean(), "observed": y[c].mean(), "rows": len(c)}
        for c in np.array_split(order, min(bins, len(order)))
        if len(c)
    ]
    return pd.DataFrame(rows)


def threshold_for_policy(y, p, policy: AlertPolicy) -> float:
    """The alert threshold on validation: at most K alerts per 1,000 customer-months and/or the
    lowest threshold reaching the target PPV; with both, the stricter (higher) one."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    thresholds = []
    if policy.max_alerts_per_1000_per_month is not None:
        budget = int(math.floor(len(p) * policy.max_alerts_per_1000_per_month / 1000))
        ranked = np.sort(p)[::-1]
        if budget <= 0:
            thresholds.append(np.nextafter(ranked[0], np.inf))
        elif budget >= len(p):
            thresholds.append(ranked[-1])
        else:
            # ties at the cut would overshoot the budget: step just above the first excluded score
            cut = ranked[budget]
            thresholds.append(np.nextafter(cut, np.inf) if ranked[budget - 1] <= cut else ranked[budget - 1])
    if policy.target_ppv is not None:
        order = np.argsort(-p, kind="stable")
        ppv = np.cumsum(y[order]) / np.arange(1, len(p) + 1)
        reach = np.flatnonzero(ppv >= policy.target_ppv)
        thresholds.append(p[order][reach.max()] if len(reach) else np.nextafter(p.max(), np.inf))
    return float(max(thresholds))


def alert_metrics(y, p, threshold: float, prefix: str = "") -> dict[str, float]:
    y = np.asarray(y, dtype=bool)
    alert = np.asarray(p, dtype=float) >= threshold
    tp = int(np.sum(alert & y))
    return {
        f"{prefix}ppv": tp / alert.sum() if alert.any() else NAN,
        f"{prefix}sensitivity": tp / y.sum() if y.any() else NAN,
        f"{prefix}alert_rate": float(alert.mean()) if len(alert) else NAN,
    }


def customer_level(keys: pd.DataFrame, y, p) -> pd.DataFrame:
    """Max risk and any outcome per customer over the period."""
    frame = pd.DataFrame({"subject_id": keys["subject_id"].to_numpy(), "y": np.asarray(y, bool), "p": np.asarray(p, float)})
    return frame.groupby("subject_id", sort=True).agg(y=("y", "max"), p=("p", "max"))


def median_lead_days(keys: pd.DataFrame, outcome_time: pd.Series | None, y, p, threshold: float) -> float:
    """Median days from an alerting index date to the outcome event, over true-positive alerts."""
    if outcome_time is None:
        return NAN
    hit = (np.asarray(p, float) >= threshold) & np.asarray(y, bool) & outcome_time.notna().to_numpy()
    if not hit.any():
        return NAN
    lead = pd.to_datetime(outcome_time.to_numpy()[hit]) - pd.to_datetime(keys["prediction_time"].to_numpy()[hit])
    return float(np.median(lead / pd.Timedelta(days=1)))


def _weighted_auroc(groups: np.ndarray, n_groups: int, y: np.ndarray, w: np.ndarray) -> float:
    """AUROC with row weights; `groups` are dense ranks of the scores (ties share a group)."""
    pos = np.bincount(groups, weights=w * y, minlength=n_groups)
    neg = np.bincount(groups, weights=w * (1 - y), minlength=n_groups)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return NAN
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (total_pos * total_neg))


def _dense_ranks(p) -> tuple[np.ndarray, int]:
    """Dense ranks of the scores (ties share a group) and the number of groups, for _weighted_auroc."""
    _, groups = np.unique(np.asarray(p, float), return_inverse=True)
    return groups, int(groups.max()) + 1 if len(groups) else 0


def _customer_bootstrap(subject_ids, samples: int, seed: int, level: float,
                        statistic: Callable[[np.ndarray], float]) -> tuple[float, float]:
    """Percentile interval of statistic(row weights) over resamples of customers (all of a
    customer's rows together, because rows of one customer are correlated); a row's weight is how
    often its customer was drawn, which avoids copying the rows."""
    customers, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        counts = np.bincount(rng.integers(0, len(customers), len(customers)), minlength=len(customers))
        value = statistic(counts[codes].astype(float))
        if not math.isnan(value):
            values.append(value)
    if not values:
        return NAN, NAN
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_auroc_ci(subject_ids, y, p, samples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of AUROC, resampling customers."""
    y = np.asarray(y, dtype=float)
    groups, n_groups = _dense_ranks(p)
    return _customer_bootstrap(subject_ids, samples, seed, level, lambda w: _weighted_auroc(groups, n_groups, y, w))


def bootstrap_auroc_gain_ci(subject_ids, y, p, q, samples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of AUROC(p) - AUROC(q) on the same rows, resampling customers and scoring
    both on each resample (paired): the two AUROCs share most of their sampling noise, so the
    interval of the gain is much narrower than the two intervals side by side would suggest, and it
    says whether a model beats its baseline beyond the test sample's luck."""
    y = np.asarray(y, dtype=float)
    groups_p, n_p = _dense_ranks(p)
    groups_q, n_q = _dense_ranks(q)
    return _customer_bootstrap(
        subject_ids, samples, seed, level,
        lambda w: _weighted_auroc(groups_p, n_p, y, w) - _weighted_auroc(groups_q, n_q, y, w))


def bootstrap_calibration_ci(subject_ids, y, p, samples: int, seed: int, bins: int = 10,
                             level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile intervals of ECE and observed/expected, resampling customers (one set of draws
    for both, as for AUROC)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    return {
        "ece": _customer_bootstrap(subject_ids, samples, seed, level, lambda w: expected_calibration_error(y, p, bins, w)),
        "observed_expected": _customer_bootstrap(subject_ids, samples, seed, level, lambda w: observed_expected(y, p, w)),
    }


def score_metrics(y, p, prefix: str, bins: int = 10) -> dict[str, float]:
    return {
        f"{prefix}auroc": auroc(y, p),
        f"{prefix}auprc": auprc(y, p),
        f"{prefix}brier": brier(y, p),
        f"{prefix}ece": expected_calibration_error(y, p, bins),
    }


def evaluate_test(
    keys: pd.DataFrame,
    y,
    p,
    threshold: float,
    *,
    outcome_time: pd.Series | None = None,
    bootstrap_samples: int = 200,
    seed: int = 0,
    bins: int = 10,
) -> dict[str, float]:
    """Every test metric of the model (names as logged to MLflow)."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    metrics = score_metrics(y, p, "test_", bins)
    low, high = bootstrap_auroc_ci(keys["subject_id"], y, p, bootstrap_samples, seed)
    metrics["test_auroc_ci_low"], metrics["test_auroc_ci_high"] = low, high
    metrics["test_observed_expected"] = observed_expected(y, p)
    for name, (low, high) in bootstrap_calibration_ci(keys["subject_id"], y, p, bootstrap_samples, seed, bins).items():
        metrics[f"test_{name}_ci_low"], metrics[f"test_{name}_ci_high"] = low, high
    metrics.update(alert_metrics(y, p, threshold, "test_"))
    metrics["test_alerts_per_1000_per_month"] = metrics["test_alert_rate"] * 1000
    metrics["test_median_lead_days"] = median_lead_days(keys, outcome_time, y, p, threshold)
    per_customer = customer_level(keys, y, p)
    metrics["test_customer_auroc"] = auroc(per_customer["y"], per_customer["p"])
    metrics["test_customer_auprc"] = auprc(per_customer["y"], per_customer["p"])
    metrics.update(alert_metrics(per_customer["y"], per_customer["p"], threshold, "test_customer_"))
    metrics["test_rows"] = float(len(y))
    metrics["test_customers"] = float(len(per_customer))
    metrics["test_outcome_rate"] = float(y.mean())
    return metrics
