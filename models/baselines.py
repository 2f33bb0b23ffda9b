"""Baselines reported beside every model, with scikit-learn conventions.

- LogisticBaseline: logistic regression on a few standard utilisation features.
- LaceLikeScore: points in the spirit of LACE (Length of stay, Acuity, Comorbidity, Emergency
  visits), adapted to a population setting (bed days and ER visits over a look-back window
  instead of one index admission). Hospitalisation problems.
- MapleLikeScore: an interRAI MAPLe-like priority rule (MAPLe level, else a level derived from
  cognition and ADL, plus a fall bump). Home-care failure.

Scores map to probabilities with a one-feature logistic fit on the training rows, so Brier and
calibration are comparable; AUROC depends only on the points. Parameters live in __init__,
fitted state ends in `_`, and predict checks the feature names with a clear message.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.inputs import FeatureMismatchError


def _columns(frame: pd.DataFrame, needed: list[str], who: str) -> pd.DataFrame:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise FeatureMismatchError(f"{who}: input lacks column(s) {', '.join(missing)}")
    return frame.loc[:, needed]


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """Median-imputed, standardised logistic regression on `features` (numeric columns)."""

    def __init__(self, features: list[str] | tuple[str, ...] = (), C: float = 1.0) -> None:
        self.features = features
        self.C = C

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        frame = _columns(X, list(self.features), type(self).__name__)
        for name in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[name]):
                raise FeatureMismatchError(f"{type(self).__name__}: feature {name!r} is not numeric")
        return frame.to_numpy(dtype=float)

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "LogisticBaseline":
        if not self.features:
            raise ValueError("LogisticBaseline needs at least one feature")
        self.feature_names_in_ = np.asarray(list(self.features), dtype=object)
        self.pipeline_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=1000),
        ).fit(self._matrix(X), np.asarray(y, dtype=int), logisticregression__sample_weight=sample_weight)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.predict_proba(self._matrix(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class _PointsScore(ClassifierMixin, BaseEstimator):
    """A points score plus a one-feature logistic map from points to probability."""

    roles: tuple[str, ...] = ()

    def __init__(self, columns: dict[str, str] | None = None) -> None:
        self.columns = columns

    def _inputs(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        columns = self.columns or {}
        unknown = sorted(set(columns) - set(self.roles))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown role(s) {unknown}; roles: {list(self.roles)}")
        absent_roles = [r for r in self.roles if r not in columns]
        if absent_roles:
            raise ValueError(f"{type(self).__name__}: no column given for role(s) {absent_roles}")
        frame = _columns(X, [columns[r] for r in self.roles], type(self).__name__)
        return {r: frame[columns[r]].to_numpy(dtype=float) for r in self.roles}

    def points(self, X: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.points(X)

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "_PointsScore":
        points = self.points(X).reshape(-1, 1)
        self.link_ = LogisticRegression(C=1e6).fit(points, np.asarray(y, dtype=int), sample_weight=sample_weight)
        self.classes_ = self.link_.classes_
        self.feature_names_in_ = np.asarray([self.columns[r] for r in self.roles], dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.link_.predict_proba(self.points(X).reshape(-1, 1))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class LaceLikeScore(_PointsScore):
    """Roles: length_of_stay (bed days), acuity (unplanned admissions), comorbidity (count of
    chronic conditions), emergency (ER visits). Missing values score 0 points."""

    roles = ("length_of_stay", "acuity", "comorbidity", "emergency")

    def points(self, X: pd.DataFrame) -> np.ndarray:
        v = {k: np.nan_to_num(a, nan=0.0) for k, a in self._inputs(X).items()}
        # LACE length-of-stay points: 0,1,2,3 days -> 0..3; 4-6 -> 4; 7-13 -> 5; 14+ -> 7
        los = np.select([v["length_of_stay"] >= 14, v["length_of_stay"] >= 7, v["length_of_stay"] >= 4],
                        [7.0, 5.0, 4.0], default=np.floor(np.clip(v["length_of_stay"], 0, 3)))
        acuity = np.where(v["acuity"] >= 1, 3.0, 0.0)
        comorbidity = np.where(v["comorbidity"] >= 4, 5.0, np.floor(np.clip(v["comorbidity"], 0, 3)))
        emergency = np.floor(np.clip(v["emergency"], 0, 4))
        return los + acuity + comorbidity + emergency


class MapleLikeScore(_PointsScore):
    """Roles: maple (interRAI MAPLe 1-5), cps (0-6), adl (ADL-H 0-6), falls (fall alarms).
    Without a MAPLe value the level is derived: 1 + [cps >= 2] + [cps >= 3] + [adl >= 3] + [adl >= 5]."""

    roles = ("maple", "cps", "adl", "falls")

    def points(self, X: pd.DataFrame) -> np.ndarray:
        v = self._inputs(X)
        cps = np.nan_to_num(v["cps"], nan=0.0)
        adl = np.nan_to_num(v["adl"], nan=0.0)
        derived = 1.0 + (cps >= 2) + (cps >= 3) + (adl >= 3) + (adl >= 5)
        level = np.where(np.isnan(v["maple"]), np.minimum(derived, 5.0), v["maple"])
        return level + 0.5 * (np.nan_to_num(v["falls"], nan=0.0) > 0)


CLINICAL_SCORES = {"lace_like": LaceLikeScore, "maple_like": MapleLikeScore}
