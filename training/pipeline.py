"""Train or re-evaluate one problem end to end, recorded in MLflow (the I/O edge of training).

train_problem: read the feature table -> split once by index date -> tune (nested trial runs)
-> calibrate on validation -> threshold on validation -> evaluate on test beside baselines and
the oracle -> log metrics, plots, model card, the test predictions (MEDS format) and the pyfunc
model -> register the version with alias `challenger`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from models.pyfunc import log_risk_model
from models.registry import load_model, model_name
from models.risk_model import RiskModel
from base.settings import home
from training import tracking
from training.calibrate import choose_calibrator
from training.data import fingerprint, pipeline_version_of, read_feature_table, read_truth
from training.evaluate import threshold_for_policy
from training.monitoring import reference_from
from training.report import Report, evaluation_report
from training.spec import ExperimentSpec, parse_stored_spec
from training.splits import ResolvedPeriod, Split, select_features, split_table, table_as_of
from training.tuning import training_data, tune
from training.subgroups import shown_count

Progress = Callable[[str], None]

# version tags make `models list` and promotion cheap (no artifact downloads); the gates read
# every figure with an interval here (training/promotion.py)
TAGGED_METRICS = ("test_auroc", "test_auroc_ci_low", "test_auroc_ci_high", "test_ece", "test_brier", "baseline_auroc",
                  "oracle_auroc", "gain_over_baseline", "gain_over_baseline_ci_low", "gain_over_baseline_ci_high",
                  "test_observed_expected", "test_observed_expected_ci_low", "test_observed_expected_ci_high",
                  "test_calibration_slope", "test_calibration_slope_ci_low", "test_calibration_slope_ci_high",
                  "test_ppv", "test_alert_rate", "subgroup_flags_auroc", "subgroup_flags_calibration")


def metric_tags(metrics: dict[str, float]) -> dict[str, str]:
    """The tagged metrics a registered version carries; a figure that could not be computed (NaN)
    is left out, and the gate that needs it then refuses (training/promotion.py)."""
    return {k: f"{metrics[k]:.6g}" for k in TAGGED_METRICS if k in metrics and not np.isnan(metrics[k])}


@dataclass
class TrainResult:
    problem: str
    run_id: str
    model_version: str
    metrics: dict[str, float]
    model: RiskModel
    report: Report
    periods: tuple[ResolvedPeriod, ...] = ()


def _silent(_: str) -> None:
    pass


def flagged_subgroups(table: pd.DataFrame) -> str:
    """`attr=value:kind (measure, rows, events)` per flagged subgroup: the counts show at a glance
    whether a gap is a large group's real problem or a small group's sampling noise (counts
    under 5 as '<5', as in every artifact: a spec may judge groups that small)."""
    parts = []
    for row in table.itertuples():
        kinds = [k for k, f in (("auroc", row.flag_auroc), ("calibration", row.flag_calibration)) if f]
        if kinds:
            measures = ", ".join(f"auroc {row.auroc:.3f}" if k == "auroc" else f"O/E {row.o_e:.2f}" for k in kinds)
            rows, events = (f"{n:,}" if isinstance(n, int) else n for n in (shown_count(row.rows), shown_count(row.events)))
            parts.append(f"{row.attribute}={row.value}:{'+'.join(kinds)} ({measures}; {rows} rows, {events} events)")
    return "; ".join(parts)


def train_problem(
    spec: ExperimentSpec,
    features_dir: Path,
    *,
    dataset_dir: Path | None = None,
    tracking_uri: str | None = None,
    as_of: pd.Timestamp | None = None,
    extra_tags: dict[str, str] | None = None,
    progress: Progress = _silent,
) -> TrainResult:
    """Train, evaluate and register one problem on a single-region features folder. `as_of`: train
    on the table as it stood then (training/splits.table_as_of: no index date after it, no outcome
    known after it), the periods ending at its last complete month (what `sote-risk retrain` does).
    `extra_tags`: more tags for the run and the registered version."""
    frame = read_feature_table(features_dir, spec)
    if as_of is not None:
        frame = table_as_of(frame, spec, as_of)
    version = pipeline_version_of(frame)
    data_hash = fingerprint(frame, spec)
    split = split_table(frame, spec)
    del frame
    truth = read_truth(dataset_dir, spec)
    tags = {**({"as_of": str(pd.Timestamp(as_of).date())} if as_of is not None else {}), **(extra_tags or {})}
    return train_on_split(spec, split, version=version, data_hash=data_hash, truth=truth, tracking_uri=tracking_uri,
                          extra_tags=tags or None, progress=progress)


def train_on_split(
    spec: ExperimentSpec,
    split: Split,
    *,
    version: str,
    data_hash: str,
    truth: pd.DataFrame | None,
    train_weight: np.ndarray | None = None,
    register: bool = True,
    run_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
    extra_params: dict[str, object] | None = None,
    nested: bool = False,
    tracking_uri: str | None = None,
    progress: Progress = _silent,
) -> TrainResult:
    """Tune, calibrate, evaluate on the test period and (with `register`) log and register the
    model, from an already split table: a single-region table (train_problem) or a pooled one
    built elsewhere (training/pooled.py), whose training rows may carry `train_weight`.

    Without `register` (a leave-one-region-out fold) the run holds the figures but no model: a
    fold's model is a measurement, not something to serve. `model_version` is then ""."""
    import mlflow
    from mlflow import MlflowClient

    feature_names = select_features(list(split.train.columns), spec)
    data = training_data(split.train, split.validation, spec, feature_names, train_weight)
    progress(f"{spec.problem}: {len(split.train)} train / {len(split.validation)} validation / {len(split.test)} test rows, "
             f"{len(feature_names)} features")

    tracking.configure(tracking_uri)
    experiment = tracking.experiment_id(spec.problem)
    study_name = f"{spec.problem}-{spec.digest()[:10]}-{data_hash[:10]}"
    storage = f"sqlite:///{home().optuna_db.resolve()}"
    home().optuna_db.parent.mkdir(parents=True, exist_ok=True)

    with mlflow.start_run(experiment_id=experiment, run_name=run_name or f"train-{spec.problem}", nested=nested) as run:
        mlflow.set_tags({"problem": spec.problem, "kind": "train", "pipeline_version": version,
                         "data_fingerprint": data_hash, "spec_digest": spec.digest(), "optuna_study": study_name,
                         **(extra_tags or {})})
        mlflow.log_params({"segment": spec.segment, "outcome": spec.outcome, "horizon_days": spec.horizon_days,
                           "trials": spec.search.trials, "n_features": len(feature_names), "seed": spec.seed,
                           **{f"period_{p.name}": p.describe() for p in split.periods}, **(extra_params or {})})
        mlflow.log_dict(spec.as_dict(), "spec.json")
        mlflow.log_dict({"features": feature_names, "categories": data.categories}, "features.json")

        result = tune(
            spec, data, storage=storage, study_name=study_name,
            on_trial=tracking.trial_logger(experiment, run.info.run_id),
            progress=lambda done, total: progress(f"{spec.problem}: trial {done}/{total}"),
        )
        progress(f"{spec.problem}: best validation AUROC {result.best_value:.4f} at {result.best_iteration} rounds")
        mlflow.log_params({f"lgb_{k}": v for k, v in result.params.items() if k != "monotone_constraints"})

        raw_valid = result.booster.predict(data.valid_x, raw_score=True)
        choice = choose_calibrator(raw_valid, data.valid_y, split.validation["subject_id"], spec.seed,
                                   what=f"{spec.problem} ({split.periods[1].describe()})")
        threshold = threshold_for_policy(data.valid_y, choice.out_of_fold, spec.alert_policy)
        categories = data.categories
        del data  # the model-input matrices (a pooled table's are large): evaluation reads the frames
        model = RiskModel(
            problem=spec.problem,
            booster=result.booster,
            calibrator=choice.calibrator,
            feature_names=feature_names,
            categories=categories,
            pipeline_version=version,
            spec=spec.as_dict(),
            metadata={"threshold": threshold, "calibration_method": choice.method, "data_fingerprint": data_hash,
                      "best_iteration": result.best_iteration, "validation_auroc": result.best_value,
                      "params": {k: v for k, v in result.params.items() if k != "monotone_constraints"},
                      "periods": [p.describe() for p in split.periods], "optuna_study": study_name,
                      **({"pooled": extra_params} if extra_params else {})},
        )
        # what monitoring compares later months against (training/monitoring.py), stored with the model
        model.metadata["monitoring_reference"] = reference_from(
            model, split.train, split.validation, spec.monitoring.bins,
            "stored at training: features on the training period, the score on the validation period")
        mlflow.log_param("calibration_method", choice.method)
        mlflow.log_metrics({**choice.scores, "validation_auroc": result.best_value, "alert_threshold": threshold,
                            "trials_completed": result.trials_completed, "trials_pruned": result.trials_pruned})

        progress(f"{spec.problem}: evaluating on the test period")
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluation_report(model, spec, split, truth, Path(tmp), threshold, train_weight=train_weight)
            mlflow.log_metrics(tracking.clean_metrics(report.metrics))
            tracking.log_files(report.files, Path(tmp))
        model.metadata["metrics"] = tracking.clean_metrics(report.metrics)
        if report.notes:
            mlflow.set_tag("notes", " | ".join(report.notes)[:4900])
        if not register:
            return TrainResult(spec.problem, run.info.run_id, "", report.metrics, model, report)

        progress(f"{spec.problem}: logging and registering the model")
        info = log_risk_model(model, registered_model_name=model_name(spec.problem))  # a synthetic example, no test rows
        client = MlflowClient()
        registered = str(info.registered_model_version)
        client.set_registered_model_alias(model_name(spec.problem), "challenger", registered)
        tags = metric_tags(report.metrics)
        tags.update({"problem": spec.problem, "pipeline_version": version, "data_fingerprint": data_hash,
                     "run_id": run.info.run_id, "gates": json.dumps(spec.gates.model_dump()),
                     "subgroup_flagged": flagged_subgroups(report.subgroup_table) or "none",
                     **(extra_tags or {})})
        for key, value in tags.items():
            client.set_model_version_tag(model_name(spec.problem), registered, key, value)
    progress(f"{spec.problem}: registered {model_name(spec.problem)} version {registered} as challenger "
             f"(test_auroc {report.metrics['test_auroc']:.3f})")
    return TrainResult(spec.problem, run.info.run_id, registered, report.metrics, model, report, split.periods)


def evaluate_registered(
    problem: str,
    features_dir: Path,
    *,
    alias: str = "champion",
    dataset_dir: Path | None = None,
    tracking_uri: str | None = None,
    expected_pipeline_version: str | None = None,
    progress: Progress = _silent,
) -> Report:
    """Re-evaluate a registered model on the test period of the current feature table, with the
    model's own spec and threshold; logged as an `evaluate` run."""
    import mlflow

    from features import pipeline_version

    model = load_model(problem, alias, expected_pipeline_version=expected_pipeline_version or pipeline_version(),
                       tracking_uri=tracking_uri)
    spec = parse_stored_spec(model.spec, f"spec inside {model_name(problem)}@{alias}")
    frame = read_feature_table(features_dir, spec)
    split = split_table(frame, spec)
    truth = read_truth(dataset_dir, spec)
    progress(f"{problem}: evaluating version {model.metadata['model_version']} ({alias}) on {len(split.test)} test rows")
    with mlflow.start_run(experiment_id=tracking.experiment_id(problem), run_name=f"evaluate-{problem}-{alias}"):
        mlflow.set_tags({"problem": problem, "kind": "evaluate", "alias": alias,
                         "model_version": model.metadata["model_version"], "data_fingerprint": fingerprint(frame, spec)})
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluation_report(model, spec, split, truth, Path(tmp), float(model.metadata["threshold"]))
            mlflow.log_metrics(tracking.clean_metrics(report.metrics))
            tracking.log_files(report.files, Path(tmp))
    return report
