"""The MLflow pyfunc wrapper around RiskModel, and RiskModel's on-disk form inside it.

What the model needs travels with it (STYLE 2): `risk_model/` holds the booster as LightGBM
text, the calibrator (pickle of a scikit-learn object) and `model.json` with the ordered feature
list, category lists, feature-pipeline version, the experiment spec and metadata (threshold,
metrics). The pyfunc returns a frame with one column, `probability`.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from mlflow.pyfunc import PythonModel

from models.inputs import FeatureBlock
from models.risk_model import RiskModel

ARTIFACT_KEY = "risk_model"
OUTPUT_COLUMN = "probability"


def save_risk_model(model: RiskModel, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "booster.txt").write_text(model.booster.model_to_string(), encoding="utf-8")
    with open(directory / "calibrator.pkl", "wb") as handle:
        pickle.dump(model.calibrator, handle)
    meta = {
        "problem": model.problem,
        "feature_names": list(model.feature_names),
        "categories": model.categories,
        "pipeline_version": model.pipeline_version,
        "spec": model.spec,
        "metadata": model.metadata,
    }
    (directory / "model.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return directory


def load_risk_model(directory: Path) -> RiskModel:
    directory = Path(directory)
    meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    booster = lgb.Booster(model_str=(directory / "booster.txt").read_text(encoding="utf-8"))
    with open(directory / "calibrator.pkl", "rb") as handle:
        calibrator = pickle.load(handle)  # written by save_risk_model only (our own artifact)
    return RiskModel(
        problem=meta["problem"],
        booster=booster,
        calibrator=calibrator,
        feature_names=meta["feature_names"],
        categories=meta["categories"],
        pipeline_version=meta["pipeline_version"],
        spec=meta["spec"],
        metadata=meta["metadata"],
    )


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


def log_risk_model(model: RiskModel, example_rows: pd.DataFrame, registered_model_name: str | None = None):
    """Log (and optionally register) the model in the active run; returns MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    example = wire_frame(model, example_rows.head(5))
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
