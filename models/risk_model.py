"""The risk model: everything needed to turn a feature frame into calibrated, explainable risk.

One object is used by evaluation, batch scoring, the pyfunc wrapper and the service, so every
path gives the same probability for the same row.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import ScoreCalibrator
from base.errors import SoteRiskError

BIAS_COLUMN = "bias"


class FeatureMismatchError(SoteRiskError):
    """The frame given to a model lacks features it was trained on, or has wrong categories."""


@dataclass
class RiskModel:
    """A trained problem model.

    problem: id like `elderly-hospitalisation`; feature_names: the booster's ordered inputs;
    categories: the fixed category list of every categorical feature (same as in training);
    pipeline_version: the feature pipeline that produced the training table; spec: the
    experiment spec as a plain dict; metadata: anything else worth carrying (metrics, threshold).
    """

    problem: str
    booster: lgb.Booster
    calibrator: ScoreCalibrator
    feature_names: list[str]
    categories: dict[str, list[str]]
    pipeline_version: str
    spec: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Select and order the model's features; coerce categoricals to the training categories.

        Extra columns are ignored (ids, labels); missing ones are an error naming them.
        Never mutates the caller's frame.
        """
        return prepare_features(frame, self.feature_names, self.categories, self.problem)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's inputs as a float64 matrix (categoricals as their category codes, NaN when
        missing): the same checks and values as prepare(), without building a pandas frame.

        Scoring goes through here because pandas conversion of a one-row, 130-column frame costs
        far more than the booster itself (measured: ~25 ms against ~0.1 ms).
        """
        return feature_matrix(frame, self.feature_names, self.categories, self.problem)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds, before calibration."""
        return self.raw_score_matrix(self.matrix(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the outcome within the horizon, one per row."""
        return self.predict_proba_matrix(self.matrix(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds (LightGBM's pred_contrib), one column per
        feature plus `bias` (the expected raw score); each row sums to raw_score."""
        values = self.contributions_matrix(self.matrix(frame))
        return pd.DataFrame(values, columns=[*self.feature_names, BIAS_COLUMN], index=frame.index)

    # The same three on a matrix from matrix() (or scoring.rows.model_input, which builds the
    # same float64s without pandas): the frame methods above are these after matrix().

    def raw_score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, raw_score=True, **_threads_for(matrix))

    def predict_proba_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return self.calibrator.transform(self.raw_score_matrix(matrix))

    def contributions_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """pred_contrib as an array: one row per input row, the features then the bias."""
        return self.booster.predict(matrix, pred_contrib=True, **_threads_for(matrix))


def _threads_for(matrix: np.ndarray) -> dict[str, int]:
    """One thread for a few rows: waking OpenMP's pool costs milliseconds on a busy machine,
    far more than scoring a row (the service runs many requests in parallel anyway)."""
    return {"num_threads": 1} if len(matrix) <= 64 else {}


def prepare_features(
    frame: pd.DataFrame, feature_names: list[str], categories: dict[str, list[str]], problem: str = "model"
) -> pd.DataFrame:
    """The one input preparation shared by training (before a booster exists) and RiskModel.

    Selects and orders `feature_names`, coerces categoricals to the fixed category lists and the
    rest to float64; missing columns and unknown categories are errors naming them.
    """
    require_features(frame.columns, feature_names, problem)
    prepared = frame.loc[:, feature_names].copy()
    for name, allowed in categories.items():
        prepared[name] = pd.Categorical(_category_strings(frame[name], name, allowed, problem), categories=allowed)
    for name in feature_names:
        if name not in categories:
            prepared[name] = pd.to_numeric(prepared[name], errors="raise").astype("float64")
    return prepared


def feature_matrix(
    frame: pd.DataFrame, feature_names: list[str], categories: dict[str, list[str]], problem: str = "model"
) -> np.ndarray:
    """prepare_features() as a float64 matrix in feature order, categoricals as category codes.

    LightGBM treats a categorical column given as numbers by its integer value, which is exactly
    the pandas category code it was trained on; a missing value is NaN either way.
    """
    require_features(frame.columns, feature_names, problem)
    numeric = [name for name in feature_names if name not in categories]
    matrix = np.empty((len(frame), len(feature_names)), dtype=np.float64)
    positions = {name: index for index, name in enumerate(feature_names)}
    try:
        matrix[:, [positions[name] for name in numeric]] = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        bad = next(name for name in numeric if pd.to_numeric(frame[name], errors="coerce").isna().sum() > frame[name].isna().sum())
        raise FeatureMismatchError(f"model {problem}: feature {bad!r} must be numeric") from None
    for name, allowed in categories.items():
        matrix[:, positions[name]] = _category_codes(frame[name], name, allowed, problem)
    return matrix


def _category_codes(column: pd.Series, name: str, allowed: list[str], problem: str) -> np.ndarray:
    """Category codes as float (NaN for missing); a dict lookup, because building a pandas
    Categorical costs ~1 ms however few rows there are."""
    code_of = {value: float(code) for code, value in enumerate(allowed)}
    codes = np.empty(len(column), dtype=np.float64)
    for row, value in enumerate(column.tolist()):
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            codes[row] = np.nan
            continue
        code = code_of.get(str(value))
        if code is None:
            _category_strings(column, name, allowed, problem)  # raises, naming every unknown value
        codes[row] = code
    return codes


def require_features(present: Container[str], feature_names: Sequence[str], problem: str) -> None:
    """Refuse an input that lacks any of the model's features, naming up to 10 (frames pass their
    columns, the service's numpy path its column names or the posted row)."""
    missing = [name for name in feature_names if name not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise FeatureMismatchError(
            f"model {problem}: input lacks {len(missing)} feature(s) it was trained on: {shown}"
        )


def _category_strings(column: pd.Series, name: str, allowed: list[str], problem: str) -> pd.Series:
    """The column as strings, refusing values outside the training categories (naming them)."""
    values = column.astype("string")
    unknown = sorted(set(values.dropna().unique()) - set(allowed))
    if unknown:
        raise FeatureMismatchError(
            f"model {problem}: feature {name!r} has unknown categories {unknown[:5]}; allowed: {allowed}"
        )
    return values
