"""Calibrator choice on validation: stratified customer folds, and a clear refusal when a small
region leaves too few outcomes to calibrate on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.calibrate import MIN_FOLD_OUTCOMES, CalibrationError, choose_calibrator, customer_folds


def _rare_outcomes(customers: int, rows_each: int, positive_customers: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(customers) * 7 + 11, rows_each)
    y = np.zeros(len(ids))
    chosen = rng.choice(customers, positive_customers, replace=False)
    for c in chosen:  # one outcome row per chosen customer
        y[c * rows_each + rng.integers(rows_each)] = 1
    raw = rng.normal(0, 1, len(ids)) + 1.5 * y
    return raw, y, ids


def test_stratified_folds_keep_customers_together_and_spread_outcomes():
    raw, y, ids = _rare_outcomes(customers=400, rows_each=6, positive_customers=12)
    for seed in range(20):
        fold = customer_folds(ids, 2, seed, y)
        assert (pd.Series(fold).groupby(ids).nunique() == 1).all()  # a customer's rows share a fold
        per_fold = [int(y[fold == k].sum()) for k in range(2)]
        assert per_fold == [6, 6]  # 12 customers with an outcome, dealt evenly
        assert abs((fold == 0).sum() - (fold == 1).sum()) <= 6  # the other customers split evenly too


def test_unstratified_folds_can_leave_a_fold_without_outcomes():
    """Why stratification: at a small region's counts a plain customer split loses a class now and then."""
    _, y, ids = _rare_outcomes(customers=400, rows_each=6, positive_customers=3)
    empty = sum(min(y[customer_folds(ids, 2, seed) == k].sum() for k in range(2)) == 0 for seed in range(200))
    assert empty > 10
    assert all(min(y[customer_folds(ids, 2, seed, y) == k].sum() for k in range(2)) > 0 for seed in range(200))


def test_calibration_succeeds_with_few_but_enough_outcomes():
    raw, y, ids = _rare_outcomes(customers=400, rows_each=6, positive_customers=2 * MIN_FOLD_OUTCOMES)
    choice = choose_calibrator(raw, y, ids, seed=5, what="children-hospitalisation")
    assert choice.method in ("isotonic", "platt") and choice.out_of_fold.shape == y.shape
    assert np.all((choice.out_of_fold >= 0) & (choice.out_of_fold <= 1))


def test_too_few_outcomes_is_refused_naming_the_problem_and_counts():
    raw, y, ids = _rare_outcomes(customers=300, rows_each=6, positive_customers=7)
    with pytest.raises(CalibrationError) as error:
        choose_calibrator(raw, y, ids, seed=5, what="depression-hospitalisation (validation [2025-01-01, 2025-07-01))")
    message = str(error.value)
    assert message.startswith("depression-hospitalisation (validation [2025-01-01, 2025-07-01)): too few outcomes")
    assert "1,800 rows, 7 outcomes in 7 of 300 customers" in message and f">= {MIN_FOLD_OUTCOMES}" in message
