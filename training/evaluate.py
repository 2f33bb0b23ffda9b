"""Evaluation metrics: pure functions of labels, probabilities and row keys.

Row-level metrics treat every (customer, index month) as a case; customer-level metrics take each
customer's highest risk before their first outcome against "any outcome in the period", which is
what a coordinator experiences (training/customers.py says why rows after the outcome do not
count). Alert metrics use one threshold, chosen on validation by the spec's alert policy and then
applied unchanged to test.

Calibration is measured as a ratio and a slope, so that it means the same at 0.4 % prevalence as
at 10 %: observed / expected outcomes (calibration-in-the-large) and the calibration slope (how
far the spread of the predictions should stretch or shrink). The expected calibration error is
absolute and is reported, not gated: at 0.36 % prevalence a constant 5 % prediction (14 times too
high) has an ECE of 0.046. Intervals resample customers (all of a customer's rows together).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from training.customers import customer_lead_days, customer_level
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
    return _binned_ece(y, p, w, _equal_count_bins(p, bins))


def _equal_count_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin number per row: equal-count bins of the predictions in (stable) sorted order."""
    order = np.argsort(p, kind="stable")
    index = np.empty(len(p), dtype=np.int64)
    for number, chunk in enumerate(np.array_split(order, min(bins, len(order)))):
        index[chunk] = number
    return index


def _binned_ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, index: np.ndarray) -> float:
    """ECE over given bins: a bin's mass times |its observed rate - its mean prediction| is
    |weighted outcomes - weighted predictions| in it (a bin no resample drew adds nothing)."""
    total = w.sum()
    if total == 0:
        return NAN
    n = int(index.max()) + 1
    outcomes, expected = np.bincount(index, w * y, n), np.bincount(index, w * p, n)
    return float(np.abs(outcomes - expected).sum() / total)


def observed_expected(y, p, weights=None) -> float:
    """Calibration-in-the-large: outcomes observed / outcomes the probabilities expect (1 = right
    on average; above 1 = the model under-predicts)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    expected = float((w * p).sum())  # sums of products, not np.dot (see calibration_slope)
    return float((w * y).sum() / expected) if expected > 0 else NAN


# probabilities are clipped this far from 0 and 1 before the logit: an isotonic calibrator gives
# exact zeros, whose logit would be -inf (the clip moves no probability a person could read)
LOGIT_CLIP = 1e-6
SLOPE_LIMIT = 1e3  # a slope beyond this means the fit ran off to infinity (the classes separate)


def _logit(p) -> np.ndarray:
    x = np.clip(np.asarray(p, dtype=float), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(x) - np.log1p(-x)


def _recalibration(y: np.ndarray, x: np.ndarray, w: np.ndarray, start: tuple[float, float] | None = None,
                   max_iter: int = 50) -> tuple[float, float] | None:
    """(a, b) of logit P(y) = a + b x by weighted maximum likelihood: Newton steps, halved while
    the likelihood does not rise, from `start` (a bootstrap resample starts from the full
    sample's fit and needs two or three steps) or the no-slope optimum. None when there is
    nothing to estimate (x constant, one class) or the fit does not converge (separation)."""
    used = w > 0
    y, x, w = y[used], x[used], w[used]
    total, events = w.sum(), float((w * y).sum())
    if total == 0 or events <= 0 or events >= total or np.ptp(x) == 0:
        return None
    beta = np.array(start if start is not None else (math.log(events / (total - events)), 0.0), dtype=float)

    def loglik(b: np.ndarray) -> float:
        eta = b[0] + b[1] * x
        return float((w * (y * eta - np.logaddexp(0.0, eta))).sum())

    current = loglik(beta)
    for _ in range(max_iter):
        mu = 1.0 / (1.0 + np.exp(-(beta[0] + beta[1] * x)))
        residual, v = w * (y - mu), w * mu * (1 - mu)
        # sums of products rather than dot products: BLAS threads for a 2x2 system only fight
        # over the cores (measured 20 times slower under load)
        vx = (v * x).sum()
        gradient = np.array([residual.sum(), (residual * x).sum()])
        hessian = np.array([[v.sum(), vx], [vx, (v * x * x).sum()]])
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return None
        for _ in range(30):
            trial = beta + step
            value = loglik(trial)
            if value >= current - 1e-12 * abs(current):
                break
            step = step / 2
        beta, current = trial, value
        if abs(beta[1]) > SLOPE_LIMIT:
            return None
        if np.max(np.abs(step)) < 1e-10 * (1 + np.max(np.abs(beta))):
            return float(beta[0]), float(beta[1])
    return None


def calibration_slope(y, p, weights=None) -> float:
    """b in logit P(y) = a + b logit(p), fitted by weighted maximum likelihood.

    1 = the predictions spread as far as the outcomes do; below 1 = too extreme (high risks too
    high and low ones too low: overfitting); above 1 = too timid. NaN when it cannot be
    estimated: every prediction the same (nothing to regress on), one outcome class only, or
    a fit that does not converge (separated classes). `weights` as for observed_expected."""
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    fit = _recalibration(y, _logit(p), w)
    return NAN if fit is None else fit[1]


def _intercept_fit(y: np.ndarray, x: np.ndarray, w: np.ndarray, max_iter: int = 50) -> float:
    """a in logit P(y) = a + x (x an offset: slope held at 1) by weighted maximum likelihood
    (Newton on one parameter, which is concave); NaN with nothing to estimate or no convergence."""
    used = w > 0
    y, x, w = y[used], x[used], w[used]
    total, events = w.sum(), float((w * y).sum())
    if total == 0 or events <= 0 or events >= total:
        return NAN
    a = 0.0
    for _ in range(max_iter):
        mu = 1.0 / (1.0 + np.exp(-(a + x)))
        gradient, curvature = float((w * (y - mu)).sum()), float((w * mu * (1 - mu)).sum())
        if curvature <= 0:
            return NAN
        step = gradient / curvature
        a += step
        if abs(step) < 1e-10 * (1 + abs(a)):
            return float(a)
    return NAN


def calibration_intercept(y, p, weights=None) -> float:
    """a in logit P(y) = a + logit(p): the calibration intercept with the slope held at 1
    (calibration-in-the-large on the log-odds scale). 0 = right on average; above 0 = the model
    under-predicts (its odds should be multiplied by e^a). NaN for one outcome class only."""
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    return _intercept_fit(y, _logit(p), w)


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
    often its customer was drawn, which avoids copying the rows.

    A resample where the statistic is undefined (no outcome drawn, say) is the extreme of a rare
    outcome's sampling, not a draw to skip: leaving such resamples out would narrow the interval
    exactly where the data are thinnest. When more of them than one tail's share occur, the tail
    cannot be placed and the interval is NaN (gates then refuse: nothing shown is not a pass)."""
    customers, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        counts = np.bincount(rng.integers(0, len(customers), len(customers)), minlength=len(customers))
        value = statistic(counts[codes].astype(float))
        if not math.isnan(value):
            values.append(value)
    tail = (1 - level) / 2 * 100
    if not values or (samples - len(values)) > samples * tail / 100:
        return NAN, NAN
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
    """Percentile intervals of ECE, observed/expected, the calibration slope and intercept,
    resampling customers (one set of draws for all, as for AUROC)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    index, x = _equal_count_bins(p, bins), _logit(p)  # once, not per resample
    full = _recalibration(y, x, np.ones(len(y)))

    def slope(w: np.ndarray) -> float:
        fit = _recalibration(y, x, w, start=full)
        return NAN if fit is None else fit[1]

    return {
        "ece": _customer_bootstrap(subject_ids, samples, seed, level, lambda w: _binned_ece(y, p, w, index)),
        "observed_expected": _customer_bootstrap(subject_ids, samples, seed, level, lambda w: observed_expected(y, p, w)),
        "calibration_slope": _customer_bootstrap(subject_ids, samples, seed, level, slope),
        "calibration_intercept": _customer_bootstrap(subject_ids, samples, seed, level, lambda w: _intercept_fit(y, x, w)),
    }


# the calibration slope's resamples are fitted on logits rounded to this grid (monitoring): a
# month's scores take about as many distinct values as it has rows, and the fit's cost is per
# distinct value. The point estimate itself uses the exact scores; the rounding (at most 0.0025 on
# the logit scale) moved interval ends by less than 0.001 in tests/test_monitoring.py, far below
# the width of any interval a month has.
SLOPE_LOGIT_GRID = 0.005


def bootstrap_performance_ci(subject_ids, y, p, samples: int, seed: int, level: float = 0.95,
                             chunk: int = 50) -> dict[str, tuple[float, float]]:
    """Percentile intervals of AUROC, observed/expected and the calibration slope from one set of
    customer resamples (monitoring runs it on every complete month of every problem). The draws are
    those of _customer_bootstrap (same seed): the AUROC and O/E intervals equal bootstrap_auroc_ci's
    and observed_expected's; the slope's equals _recalibration's up to SLOPE_LOGIT_GRID's rounding
    (tests/test_monitoring.py holds all three to the row-by-row versions).

    Fast because the statistics need only sums per distinct score, computed for `chunk` resamples
    at once: the resamples' customer counts (resamples x customers) times a sparse customers x
    distinct-scores matrix of rows (and of outcomes) give each resample's weight and outcomes per
    score; the AUROC and O/E follow from those, and the slope's logistic fit runs on the same sums
    per rounded logit for all resamples together (the same likelihood as on the rows)."""
    from scipy import sparse

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    values_p, groups = np.unique(p, return_inverse=True)
    exact = _logit(values_p)
    cells, cell_of_group = np.unique(np.round(exact / SLOPE_LOGIT_GRID).astype(np.int64), return_inverse=True)
    rows_per_value = np.bincount(groups, minlength=len(values_p)).astype(float)
    # each cell at the mean logit of its rows (exact where a cell holds one distinct score)
    x = (np.bincount(cell_of_group, weights=exact * rows_per_value, minlength=len(cells))
         / np.bincount(cell_of_group, weights=rows_per_value, minlength=len(cells)))
    customers, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    shape = (len(customers), len(values_p))
    rows_of = sparse.csr_matrix((np.ones(len(y)), (codes, groups)), shape=shape)
    events_of = sparse.csr_matrix((y, (codes, groups)), shape=shape)
    to_cell = sparse.csr_matrix((np.ones(len(values_p)), (np.arange(len(values_p)), cell_of_group)),
                                shape=(len(values_p), len(cells)))
    full_weight = np.asarray(rows_of.sum(axis=0)).ravel() @ to_cell
    full_events = np.asarray(events_of.sum(axis=0)).ravel() @ to_cell
    with np.errstate(divide="ignore", invalid="ignore"):
        full = _recalibration(np.where(full_weight > 0, full_events / full_weight, 0.0), x, full_weight)
    rng = np.random.default_rng(seed)
    values: dict[str, list[np.ndarray]] = {"auroc": [], "observed_expected": [], "calibration_slope": []}
    for first in range(0, samples, chunk):
        k = min(chunk, samples - first)
        draws = rng.integers(0, len(customers), (k, len(customers)))
        offsets = (np.arange(k) * len(customers))[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=k * len(customers)).reshape(k, -1).astype(float)
        weight = np.asarray((rows_of.T @ counts.T).T)
        events = np.asarray((events_of.T @ counts.T).T)
        values["auroc"].append(_auroc_of_groups(events, weight - events))
        expected = weight @ values_p
        with np.errstate(divide="ignore", invalid="ignore"):
            values["observed_expected"].append(np.where(expected > 0, events.sum(axis=1) / expected, NAN))
        values["calibration_slope"].append(_grouped_slopes(np.asarray((to_cell.T @ events.T).T),
                                                           np.asarray((to_cell.T @ weight.T).T), x, full))
    return {name: _percentile_interval(np.concatenate(v), samples, level) for name, v in values.items()}


def _grouped_slopes(events: np.ndarray, weight: np.ndarray, x: np.ndarray, start: tuple[float, float] | None,
                    max_iter: int = 50) -> np.ndarray:
    """The slope of _recalibration for each row of (events, weight): outcomes and weight per
    distinct logit `x`, one resample a row. The same Newton steps, step halving and stopping rule,
    run for all rows together; NaN where _recalibration gives None."""
    k = len(weight)
    out = np.full(k, NAN)
    total, n_events = weight.sum(axis=1), events.sum(axis=1)
    used = weight > 0
    spread = np.array([np.ptp(x[u]) > 0 if u.any() else False for u in used])
    active = (total > 0) & (n_events > 0) & (n_events < total) & spread
    if start is None or not active.any():  # the full sample's fit failed: so would the resamples' start
        return out
    beta = np.tile(np.asarray(start, dtype=float), (k, 1))

    def loglik(b: np.ndarray, rows: np.ndarray) -> np.ndarray:
        eta = b[:, :1] + b[:, 1:] * x
        return (events[rows] * eta - weight[rows] * np.logaddexp(0.0, eta)).sum(axis=1)

    current = np.full(k, NAN)
    current[active] = loglik(beta[active], np.flatnonzero(active))
    for _ in range(max_iter):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        b = beta[rows]
        with np.errstate(over="ignore"):  # exp overflowing to inf gives mu = 0, as it should
            mu = 1.0 / (1.0 + np.exp(-(b[:, :1] + b[:, 1:] * x)))
        residual = events[rows] - weight[rows] * mu
        v = weight[rows] * mu * (1 - mu)
        g0, g1 = residual.sum(axis=1), (residual * x).sum(axis=1)
        h00, h01, h11 = v.sum(axis=1), (v * x).sum(axis=1), (v * x * x).sum(axis=1)
        det = h00 * h11 - h01 * h01
        singular = det == 0
        active[rows[singular]] = False
        keep = ~singular
        rows, b, det = rows[keep], b[keep], det[keep]
        step = np.stack([(h11[keep] * g0[keep] - h01[keep] * g1[keep]) / det,
                         (h00[keep] * g1[keep] - h01[keep] * g0[keep]) / det], axis=1)
        trial = b + step
        value = loglik(trial, rows)
        for _ in range(29):
            worse = value < current[rows] - 1e-12 * np.abs(current[rows])
            if not worse.any():
                break
            step[worse] /= 2
            trial[worse] = b[worse] + step[worse]
            value[worse] = loglik(trial[worse], rows[worse])
        beta[rows], current[rows] = trial, value
        ran_off = np.abs(trial[:, 1]) > SLOPE_LIMIT
        active[rows[ran_off]] = False
        done = ~ran_off & (np.max(np.abs(step), axis=1) < 1e-10 * (1 + np.max(np.abs(trial), axis=1)))
        out[rows[done]] = trial[done, 1]
        active[rows[done]] = False
    return out


def _auroc_of_groups(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """_weighted_auroc of each row: outcome and non-outcome weight per distinct score (ascending)."""
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
    return np.where((total_pos > 0) & (total_neg > 0), out, NAN)


def _percentile_interval(values: np.ndarray, samples: int, level: float) -> tuple[float, float]:
    """_customer_bootstrap's interval of already computed resample values (NaN = undefined)."""
    values = values[~np.isnan(values)]
    tail = (1 - level) / 2 * 100
    if not len(values) or (samples - len(values)) > samples * tail / 100:
        return NAN, NAN
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


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
    """Every test metric of the model (names as logged to MLflow). `outcome_time` (the first
    outcome event in each positive row's label window) places each customer's first outcome; the
    per-customer figures use only the rows before it (training/customers.py)."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    metrics = score_metrics(y, p, "test_", bins)
    low, high = bootstrap_auroc_ci(keys["subject_id"], y, p, bootstrap_samples, seed)
    metrics["test_auroc_ci_low"], metrics["test_auroc_ci_high"] = low, high
    metrics["test_observed_expected"] = observed_expected(y, p)
    metrics["test_calibration_slope"] = calibration_slope(y, p)
    metrics["test_calibration_intercept"] = calibration_intercept(y, p)
    for name, (low, high) in bootstrap_calibration_ci(keys["subject_id"], y, p, bootstrap_samples, seed, bins).items():
        metrics[f"test_{name}_ci_low"], metrics[f"test_{name}_ci_high"] = low, high
    metrics.update(alert_metrics(y, p, threshold, "test_"))
    metrics["test_alerts_per_1000_per_month"] = metrics["test_alert_rate"] * 1000
    per_customer = customer_level(keys, y, p, outcome_time)
    metrics["test_customer_auroc"] = auroc(per_customer["y"], per_customer["p"])
    # one row per customer: resampling customers is resampling these rows
    metrics["test_customer_auroc_ci_low"], metrics["test_customer_auroc_ci_high"] = bootstrap_auroc_ci(
        per_customer.index.to_numpy(), per_customer["y"].to_numpy(), per_customer["p"].to_numpy(), bootstrap_samples, seed)
    metrics["test_customer_auprc"] = auprc(per_customer["y"], per_customer["p"])
    metrics.update(alert_metrics(per_customer["y"], per_customer["p"], threshold, "test_customer_"))
    metrics["test_customer_lead_days"] = customer_lead_days(keys, y, p, threshold, outcome_time)
    metrics["test_rows"] = float(len(y))
    metrics["test_customers"] = float(len(per_customer))
    metrics["test_outcome_rate"] = float(y.mean())
    return metrics
