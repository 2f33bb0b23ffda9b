"""Choosing and fitting the calibrator on the validation period.

Isotonic and Platt are compared by cross-fitting on validation, with folds by customer (rows of
one customer stay together): each method is fitted on one fold and scored (Brier, log loss) on
the other. The method with the lower out-of-fold Brier wins (log loss breaks ties); it is then
refitted on all of validation. The out-of-fold probabilities of the winner are also returned,
so the alert threshold is chosen on probabilities the calibrator has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss

from models.calibration import ScoreCalibrator

METHODS = ("isotonic", "platt")


@dataclass
class CalibrationChoice:
    calibrator: ScoreCalibrator
    method: str
    scores: dict[str, float]  # e.g. calibration_cv_brier_isotonic
    out_of_fold: np.ndarray  # winner's cross-fitted probabilities on validation rows


def customer_folds(subject_ids, folds: int, seed: int) -> np.ndarray:
    """Fold number per row; a customer's rows share a fold (seeded, order independent)."""
    customers, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    assignment = np.random.default_rng(seed).permutation(len(customers)) % folds
    return assignment[codes]


def choose_calibrator(raw_score, outcome, subject_ids, seed: int, folds: int = 2) -> CalibrationChoice:
    raw_score = np.asarray(raw_score, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    fold = customer_folds(subject_ids, folds, seed)
    scores: dict[str, float] = {}
    oof_by_method: dict[str, np.ndarray] = {}
    for method in METHODS:
        oof = np.empty_like(raw_score)
        for k in range(folds):
            held = fold == k
            fitted = ScoreCalibrator(method).fit(raw_score[~held], outcome[~held])
            oof[held] = fitted.transform(raw_score[held])
        oof_by_method[method] = oof
        scores[f"calibration_cv_brier_{method}"] = float(brier_score_loss(outcome, oof))
        scores[f"calibration_cv_logloss_{method}"] = float(log_loss(outcome, np.clip(oof, 1e-6, 1 - 1e-6), labels=[0, 1]))
    best = min(METHODS, key=lambda m: (scores[f"calibration_cv_brier_{m}"], scores[f"calibration_cv_logloss_{m}"]))
    return CalibrationChoice(ScoreCalibrator(best).fit(raw_score, outcome), best, scores, oof_by_method[best])
