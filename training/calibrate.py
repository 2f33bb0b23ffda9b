"""Choosing and fitting the calibrator on the validation period.

Isotonic and Platt are compared by cross-fitting on validation, with folds by customer (rows of
one customer stay together): each method is fitted on one fold and scored (Brier, log loss) on
the other. The method with the lower out-of-fold Brier wins (log loss breaks ties); it is then
refitted on all of validation. The out-of-fold probabilities of the winner are also returned,
so the alert threshold is chosen on probabilities the calibrator has not seen.

Folds are stratified by customer outcome: customers with at least one outcome row are dealt
round-robin over the folds separately from the others, so every fold gets outcomes whenever
validation has at least `folds` customers with one (an unstratified split of a small region left
one class in a fold and scikit-learn failed). Two folds stay the minimum: with one there is no
held-out data to choose the method or set the threshold on, and in-sample isotonic always wins.
When a fold would still be fitted on fewer than MIN_FOLD_OUTCOMES outcomes (or non-outcomes),
calibration is refused with the counts: a calibrator fitted on a handful of events is noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss

from models.calibration import ScoreCalibrator
from base.errors import SoteRiskError

METHODS = ("isotonic", "platt")
# fewest outcomes (and non-outcomes) a fold's calibrator may be fitted on
MIN_FOLD_OUTCOMES = 5


class CalibrationError(SoteRiskError):
    """Validation has too few outcomes to fit and choose a calibrator."""


@dataclass
class CalibrationChoice:
    calibrator: ScoreCalibrator
    method: str
    scores: dict[str, float]  # e.g. calibration_cv_brier_isotonic
    out_of_fold: np.ndarray  # winner's cross-fitted probabilities on validation rows


def customer_folds(subject_ids, folds: int, seed: int, outcome=None) -> np.ndarray:
    """Fold number per row; a customer's rows share a fold (seeded, order independent).

    With `outcome`, customers with any outcome row and the others are dealt over the folds
    separately (stratified), so outcomes reach every fold when there are enough of them."""
    customers, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    rng = np.random.default_rng(seed)
    if outcome is None:
        return (rng.permutation(len(customers)) % folds)[codes]
    positive = np.zeros(len(customers), dtype=bool)
    positive[codes[np.asarray(outcome, dtype=float) > 0]] = True
    assignment = np.empty(len(customers), dtype=np.int64)
    for stratum in (positive, ~positive):
        members = np.flatnonzero(stratum)
        assignment[rng.permutation(members)] = np.arange(len(members)) % folds
    return assignment[codes]


VALIDATION_HINT = "use a larger region or a longer validation period"


def check_folds(outcome: np.ndarray, fold: np.ndarray, subject_ids, folds: int, what: str, rows_of: str = "validation",
                hint: str = VALIDATION_HINT) -> None:
    """Refuse (with the counts) when some fold's calibrator would see too few of either class.
    `rows_of` names the rows in the message ("validation"), `hint` says what would give more."""
    for k in range(folds):
        fitted_on = outcome[fold != k]
        events = int(fitted_on.sum())
        if min(events, len(fitted_on) - events) < MIN_FOLD_OUTCOMES:
            customers = np.asarray(subject_ids)
            with_outcome = len(np.unique(customers[outcome > 0]))
            raise CalibrationError(
                f"{what}: too few outcomes to calibrate: {rows_of} has {len(outcome):,} rows, "
                f"{int(outcome.sum()):,} outcomes in {with_outcome:,} of {len(np.unique(customers)):,} customers; "
                f"each of {folds} customer folds needs >= {MIN_FOLD_OUTCOMES} outcomes and non-outcomes to fit on "
                f"({hint})"
            )


def choose_calibrator(raw_score, outcome, subject_ids, seed: int, folds: int = 2, what: str = "calibration",
                      rows_of: str = "validation", hint: str = VALIDATION_HINT) -> CalibrationChoice:
    raw_score = np.asarray(raw_score, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    fold = customer_folds(subject_ids, folds, seed, outcome)
    check_folds(outcome, fold, subject_ids, folds, what, rows_of, hint)
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
