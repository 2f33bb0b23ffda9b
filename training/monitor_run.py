"""The monthly monitoring run of a registered model (the I/O edge of training/monitoring.py):
load the model by alias, its reference (or compute one from the current feature table when the
model predates references), read the segment's feature table, run the monitor, record it in
MLflow (a run of kind `monitor`, tagged with the model version) and tag the version with its
latest result."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

from training.monitoring import MonitorReport, monitor, reference_from
from training.spec import ExperimentSpec, Monitoring, SpecError, load_spec, parse_stored_spec

Progress = Callable[[str], None]
COMPUTED_NOW = ("computed now from the training period of the current feature table "
                "(the model was registered before references were stored with models)")
MONITOR_TAG = "monitor"


def thresholds_for(problem: str, stored: ExperimentSpec, experiments: Path | None = None) -> Monitoring:
    """The spec file's monitoring thresholds (operational: may change without retraining), else
    the ones stored with the model, else the defaults."""
    try:
        return load_spec(problem, experiments).monitoring
    except SpecError:
        return stored.monitoring


def training_reference(model, spec: ExperimentSpec, frame: pd.DataFrame, bins: int) -> dict:
    """The model's stored reference, or one computed from the current table's training period."""
    stored = model.metadata.get("monitoring_reference")
    if stored:
        return stored
    from training.splits import split_table

    split = split_table(frame, spec)
    return reference_from(model, split.train, split.validation, bins, COMPUTED_NOW)


def monitor_registered(problem: str, features_dir: Path, as_of: pd.Timestamp, *, alias: str = "champion",
                       frame: pd.DataFrame | None = None, tracking_uri: str | None = None,
                       experiments: Path | None = None, record: bool = True,
                       progress: Progress = lambda _: None) -> MonitorReport:
    from features import pipeline_version
    from models.registry import load_model, model_name
    from training.data import read_feature_table

    model = load_model(problem, alias, expected_pipeline_version=pipeline_version(), tracking_uri=tracking_uri)
    spec = parse_stored_spec(model.spec, f"spec inside {model_name(problem)}@{alias}")
    thresholds = thresholds_for(problem, spec, experiments)
    if frame is None:
        frame = read_feature_table(features_dir, spec)
    data_end = pd.Timestamp(frame["prediction_time"].max())
    if as_of > data_end:
        progress(f"{problem}: the feature table ends at {data_end.date()}; monitoring up to it")
    reference = training_reference(model, spec, frame, thresholds.bins)
    progress(f"{problem}: monitoring version {model.metadata['model_version']} ({alias}) up to {as_of.date()}")
    report = monitor(model, spec, frame, reference, as_of, thresholds, seed=spec.seed)
    if record:
        record_run(report, alias)
    return report


def _step(month: pd.Timestamp) -> int:
    return (month.year - 2000) * 12 + month.month - 1


SERIES = ("rows", "alert_rate", "mean_score", "score_psi", "top_feature_psi", "max_feature_psi", "estimated_events",
          "estimated_auroc", "events", "auroc", "auroc_ci_low", "auroc_ci_high", "observed_expected",
          "observed_expected_ci_low", "observed_expected_ci_high", "calibration_slope", "calibration_slope_ci_low",
          "calibration_slope_ci_high")


def record_run(report: MonitorReport, alias: str) -> str:
    """One MLflow run for this monitoring run: each monthly figure as a metric series (step: months
    since 2000-01), the tables as CSV, the thresholds; and the version's `monitor` tag."""
    import math

    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from models.registry import model_name
    from training import tracking

    months = report.months
    with mlflow.start_run(experiment_id=tracking.experiment_id(report.problem),
                          run_name=f"monitor-{report.problem}-{report.as_of:%Y-%m}") as run:
        mlflow.set_tags({"problem": report.problem, "kind": "monitor", "alias": alias,
                         "model_version": report.model_version, "as_of": str(report.as_of.date()),
                         "reference": report.reference_source[:250], "breached_months": str(len(report.breaches)),
                         "breaches": " | ".join(report.breaches)[:4900] or "none"})
        mlflow.log_dict(report.thresholds.model_dump(mode="json"), "monitoring/thresholds.json")
        metrics = []
        for row in months.itertuples():
            stamp = int(row.month.timestamp() * 1000)
            for name in SERIES:
                value = getattr(row, name)
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    metrics.append(Metric(f"monitor_{name}", float(value), stamp, _step(row.month)))
        client = MlflowClient()
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1,000 metrics a batch
            client.log_batch(run.info.run_id, metrics=metrics[start:start + 900])
        with tempfile.TemporaryDirectory() as tmp:
            months.to_csv(Path(tmp) / "months.csv", index=False)
            report.feature_psi.to_csv(Path(tmp) / "feature_psi.csv", index_label="feature")
            mlflow.log_artifacts(tmp, artifact_path="monitoring")
    tag = {"as_of": str(report.as_of.date()), "run_id": run.info.run_id, "breached_months": len(report.breaches),
           "last_breach": report.breaches[-1] if report.breaches else ""}
    client.set_model_version_tag(model_name(report.problem), report.model_version, MONITOR_TAG,
                                 json.dumps(tag, separators=(",", ":"))[:4900])
    return run.info.run_id
