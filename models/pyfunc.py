"""The MLflow pyfunc wrapper around RiskModel.

What the model needs travels with it (STYLE 2): the pyfunc's `risk_model/` artifact is
RiskModel's on-disk form (models/files.py: booster, calibrator, model.json with features,
categories, pipeline version, spec and metadata). The pyfunc returns a frame with one column,
`probability`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlflow.pyfunc import PythonModel

from models.files import ARTIFACT_KEY, load_risk_model, save_risk_model
from models.inputs import FeatureBlock
from models.risk_model import RiskModel

OUTPUT_COLUMN = "probability"


def wire_frame(model: RiskModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs as plain columns (categoricals as strings) for signature and example."""
    prepared = FeatureBlock.from_frame(frame, model.feature_names, model.categories, model.problem).to_frame()
    for name in model.categories:
        prepared[name] = prepared[name].astype(object).where(prepared[name].notna(), None)
    return prepared.reset_index(drop=True)


class RiskModelPyfunc(PythonModel):
    """pyfunc flavour: load_context rebuilds the RiskModel from its artifact folder."""

    def load_context(self, context) -> None:
        self.risk_model = load_risk_model(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return pd.DataFrame({OUTPUT_COLUMN: self.risk_model.predict_proba(model_input)})


def pinned_requirements() -> list[str]:
    """Exact versions of what the wrapper imports; stating them skips MLflow's slow inference."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy")]


def training_ranges(model: RiskModel) -> dict[str, tuple[float, float] | None]:
    """Each feature's range in the training data as the booster recorded it (LightGBM's
    feature_infos: min and max per numeric feature; None for a feature it never split on)."""
    infos = model.booster.dump_model(num_iteration=1)["feature_infos"]
    ranges: dict[str, tuple[float, float] | None] = {}
    for name in model.feature_names:
        info = infos.get(name)
        low, high = (info or {}).get("min_value"), (info or {}).get("max_value")
        ranges[name] = None if low is None or high is None else (float(low), float(high))
    return ranges


def synthetic_example(model: RiskModel) -> pd.DataFrame:
    """The input example the registry keeps with a model: made up, never a customer's row.

    Artifacts outlive their data and are read by whoever reads the registry, so the example holds
    no one's record (issue 16: it held five test-period customers' rows). Row 0 is each numeric
    feature's midpoint of its training range (0 where the booster has none) and each categorical's
    first category; row 1 has every feature missing, as a customer with no such events has, so the
    signature marks every column optional. Built from the model alone: no rows needed to log it.
    """
    ranges = training_ranges(model)
    typical: dict[str, Any] = {}
    for name in model.feature_names:
        if name in model.categories:
            typical[name] = model.categories[name][0]
        else:
            span = ranges[name]
            typical[name] = 0.0 if span is None else (span[0] + span[1]) / 2
    missing = {name: (None if name in model.categories else np.nan) for name in model.feature_names}
    return wire_frame(model, pd.DataFrame([typical, missing], columns=model.feature_names))


def log_risk_model(model: RiskModel, registered_model_name: str | None = None):
    """Log (and optionally register) the model in the active run with a synthetic input example
    (synthetic_example) and the signature inferred from it; returns MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    example = synthetic_example(model)
    output = pd.DataFrame({OUTPUT_COLUMN: np.asarray(model.predict_proba(example), dtype=float)})
    signature = infer_signature(example, output)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_risk_model(model, Path(tmp) / ARTIFACT_KEY)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=RiskModelPyfunc(),
            artifacts={ARTIFACT_KEY: str(folder)},
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=pinned_requirements(),
        )
