"""The risk model: everything needed to turn a feature frame into calibrated, explainable risk.

One object is used by evaluation, batch scoring, the pyfunc wrapper and the service, so every
path gives the same probability for the same row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import ScoreCalibrator
from models.inputs import FeatureBlock, model_input

BIAS_COLUMN = "bias"


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

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input matrix for a feature frame (models/inputs.py, the one builder):
        the model's features in its order, categoricals as its category codes, NaN when missing.
        Extra columns are ignored; missing features and unknown categories are errors naming them."""
        return model_input(self, FeatureBlock.from_frame(frame, self.feature_names, self.categories, self.problem))

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

    # The same three on a model-input matrix (models/inputs.model_input, which matrix() calls):
    # scoring builds its matrices from feature blocks without a pandas frame.

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
