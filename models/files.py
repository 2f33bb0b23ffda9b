"""RiskModel's on-disk form: the folder the MLflow model carries (models/pyfunc.py) as its
`risk_model` artifact, readable without MLflow.

`risk_model/` holds the booster as LightGBM text, the calibrator (pickle of a scikit-learn
object) and `model.json` with the ordered feature list, category lists, feature-pipeline version,
the experiment spec and metadata (threshold, metrics). Kept apart from the pyfunc wrapper so that
a serving worker can load a champion from its registered folder (scoring/champion_record.py)
without importing MLflow, which costs seconds of every worker's start.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import lightgbm as lgb

from models.risk_model import RiskModel

ARTIFACT_KEY = "risk_model"  # the folder's name among the MLflow model's artifacts
FILES = ("booster.txt", "calibrator.pkl", "model.json")


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
