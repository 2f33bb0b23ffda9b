"""MLflow plumbing: where runs go, experiment per problem, nested trial runs, model names.

Everything happens at call time: nothing here touches MLflow's global state on import.
SQLite in the home folder by default (artifacts in <home>/mlartifacts/<problem>); MLFLOW_TRACKING_URI
points elsewhere (a server).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Iterable

from models.registry import EXPERIMENT_PREFIX, artifact_root
from models.registry import configure_tracking as configure  # noqa: F401  (re-exported)
from models.registry import model_name  # noqa: F401  (re-exported)


def _local_artifact_root(uri: str) -> str | None:
    """With a local SQLite store, keep artifacts in the home folder, not in ./mlruns of the cwd.
    The location is absolute (MLflow's file store needs it); a moved home follows it
    (models.registry.follow_moved_home)."""
    if uri.startswith("sqlite:///"):
        root = artifact_root()
        root.mkdir(parents=True, exist_ok=True)
        return root.as_uri()
    return None


def experiment_id(problem: str) -> str:
    import mlflow

    name = f"{EXPERIMENT_PREFIX}{problem}"
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    root = _local_artifact_root(mlflow.get_tracking_uri())
    location = f"{root}/{problem}" if root else None
    return mlflow.create_experiment(name, artifact_location=location)


def clean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow rejects nothing numeric, but NaN metrics are useless in comparisons: drop them."""
    return {k: float(v) for k, v in metrics.items() if v is not None and not math.isnan(float(v))}


def log_files(files: Iterable[Path], root: Path) -> None:
    """Log each file under its folder relative to root (model_card.md at the top, plots/roc.png,
    predictions/<problem>/test.parquet)."""
    import mlflow

    for path in files:
        folder = Path(path).parent.relative_to(root).as_posix()
        mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)


def trial_logger(experiment: str, parent_run_id: str) -> Callable:
    """An Optuna callback that records each finished trial as a nested run of the parent."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    client = MlflowClient()

    def callback(study, trial) -> None:
        run = client.create_run(
            experiment,
            tags={MLFLOW_PARENT_RUN_ID: parent_run_id, MLFLOW_RUN_NAME: f"trial-{trial.number:03d}"},
        )
        now = int(time.time() * 1000)
        metrics = [Metric("validation_auc_step", v, now, int(step)) for step, v in sorted(trial.intermediate_values.items())]
        if trial.value is not None:
            metrics.append(Metric("validation_auc", float(trial.value), now, 0))
        if "best_iteration" in trial.user_attrs:
            metrics.append(Metric("best_iteration", float(trial.user_attrs["best_iteration"]), now, 0))
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, str(v)) for k, v in trial.params.items()],
            tags=[RunTag("optuna.state", trial.state.name), RunTag("optuna.study", study.study_name), RunTag("optuna.trial", str(trial.number))],
        )
        client.set_terminated(run.info.run_id, "FINISHED")

    return callback
