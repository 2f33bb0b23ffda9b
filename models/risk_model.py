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
from sote_risk.errors import SoteRiskError

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

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds, before calibration."""
        return self.booster.predict(self.prepare(frame), raw_score=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the outcome within the horizon, one per row."""
        return self.calibrator.transform(self.raw_score(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds (LightGBM's pred_contrib), one column per
        feature plus `bias` (the expected raw score); each row sums to raw_score."""
        values = self.booster.predict(self.prepare(frame), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.feature_names, BIAS_COLUMN], index=frame.index)


def prepare_features(
    frame: pd.DataFrame, feature_names: list[str], categories: dict[str, list[str]], problem: str = "model"
) -> pd.DataFrame:
    """The one input preparation shared by training (before a booster exists) and RiskModel.

    Selects and orders `feature_names`, coerces categoricals to the fixed category lists and the
    rest to float64; missing columns and unknown categories are errors naming them.
    """
    missing = [name for name in feature_names if name not in frame.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise FeatureMismatchError(
            f"model {problem}: input lacks {len(missing)} feature(s) it was trained on: {shown}"
        )
    prepared = frame.loc[:, feature_names].copy()
    for name, allowed in categories.items():
        column = prepared[name]
        values = column.astype("string")
        unknown = sorted(set(values.dropna().unique()) - set(allowed))
        if unknown:
            raise FeatureMismatchError(
                f"model {problem}: feature {name!r} has unknown categories {unknown[:5]}; "
                f"allowed: {allowed}"
            )
        prepared[name] = pd.Categorical(values, categories=allowed)
    for name in feature_names:
        if name not in categories:
            prepared[name] = pd.to_numeric(prepared[name], errors="raise").astype("float64")
    return prepared
