"""Calibrators that map the booster's raw score (log-odds) to a probability.

Fitted on the validation period only; the method (isotonic or Platt) is chosen by training and
travels with the model.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CalibrationMethod = Literal["isotonic", "platt"]


class ScoreCalibrator:
    """sklearn-style: parameters in __init__, fitted state ends in `_`."""

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        self.method = method

    def fit(self, raw_score: np.ndarray, outcome: np.ndarray) -> "ScoreCalibrator":
        raw_score = np.asarray(raw_score, dtype=float)
        outcome = np.asarray(outcome, dtype=float)
        if raw_score.shape != outcome.shape or raw_score.ndim != 1:
            raise ValueError("raw_score and outcome must be 1-D arrays of the same length")
        if self.method == "isotonic":
            self.model_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw_score, outcome)
        elif self.method == "platt":
            self.model_ = LogisticRegression(C=1e6).fit(raw_score.reshape(-1, 1), outcome)
        else:
            raise ValueError(f"unknown calibration method {self.method!r}; use 'isotonic' or 'platt'")
        return self

    def transform(self, raw_score: np.ndarray) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise RuntimeError("ScoreCalibrator is not fitted")
        raw_score = np.asarray(raw_score, dtype=float)
        if self.method == "isotonic":
            return np.clip(self.model_.predict(raw_score), 0.0, 1.0)
        if getattr(self.model_, "coef_", np.empty(0)).shape == (1, 1) and len(self.model_.classes_) == 2:
            return _platt(self.model_, raw_score)
        return self.model_.predict_proba(raw_score.reshape(-1, 1))[:, 1]


def _platt(model: LogisticRegression, raw_score: np.ndarray) -> np.ndarray:
    """LogisticRegression.predict_proba(x)[:, 1] for one binary feature, as sklearn 1.9 computes
    it (x @ coef.T + intercept, then expit) but without its input validation, which costs ~0.6 ms
    per call: the service calls this once per problem per request. Equality to predict_proba is
    tested (tests/test_risk_model.py)."""
    scores = np.ascontiguousarray(raw_score, dtype=np.float64).reshape(-1, 1) @ model.coef_.T + model.intercept_
    return expit(scores.reshape(-1))
