"""Loading registered models by alias (never by "latest"), with a feature-pipeline check.

A model trained on features from one pipeline version gives wrong answers on another, so
loading refuses a mismatch: the caller says which version its features are
(features.pipeline_version(); models/ sits below features/ and does not ask it itself).
"""

from __future__ import annotations

import os
from pathlib import Path

from models.risk_model import RiskModel
from base.settings import home
from base.errors import SoteRiskError


MODEL_PREFIX = "sote-risk-"


class ModelNotFoundError(SoteRiskError):
    """No registered model / alias for a problem."""


class PipelineVersionMismatch(SoteRiskError):
    """The model was trained on features from another feature-pipeline version."""


def model_name(problem: str) -> str:
    return f"{MODEL_PREFIX}{problem}"


def configure_tracking(tracking_uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at the home folder's SQLite unless told otherwise.

    Called by every entry point that talks to MLflow, never at import. MLFLOW_TRACKING_URI wins
    over the home folder (see base.settings).
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    uri = tracking_uri or home().mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # mlflow.set_*_uri also exports MLFLOW_*_URI to the environment; undo that, or the next call
    # would mistake our own choice for the user's and ignore a changed SOTE_RISK_HOME
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return uri


def check_pipeline_version(model: RiskModel, expected: str) -> None:
    if str(expected) != str(model.pipeline_version):
        raise PipelineVersionMismatch(
            f"model {model.problem} was trained on feature pipeline {model.pipeline_version!r} but the "
            f"features are {expected!r}; retrain (sote-risk train --problem {model.problem}) or rebuild the features"
        )


def resolve_version(problem: str, alias: str):
    """The ModelVersion behind `alias`, or a clear error."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name = model_name(problem)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ModelNotFoundError(
            f"no version of {name} has alias {alias!r} (train with `sote-risk train --problem {problem}`, "
            f"promote with `sote-risk promote --problem {problem}`)"
        ) from None


def load_model(
    problem: str,
    alias: str = "champion",
    *,
    expected_pipeline_version: str,
    tracking_uri: str | None = None,
) -> RiskModel:
    """The RiskModel registered as `sote-risk-<problem>@<alias>`, checked against the pipeline."""
    import mlflow

    configure_tracking(tracking_uri)
    version = resolve_version(problem, alias)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model_name(problem)}@{alias}")
    model: RiskModel = pyfunc.unwrap_python_model().risk_model
    model.metadata = {**model.metadata, "model_version": str(version.version), "alias": alias}
    check_pipeline_version(model, expected_pipeline_version)
    return model
