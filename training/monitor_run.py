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

from base.settings import home
from training.monitoring import (FEEDBACK_COLUMNS, REFERENCE_VERSION, MonitorReport, attach_feedback, monitor,
                                 needed_columns, reference_from)
from training.spec import ExperimentSpec, Monitoring, SpecError, load_spec, parse_stored_spec

Progress = Callable[[str], None]
COMPUTED_NOW = ("computed now from the training period of the current feature table "
                "(the model was registered before references were stored with models)")
OLDER_KIND = ("computed now from the training period of the current feature table "
              "(the model's stored reference is of an older kind)")
MONITOR_TAG = "monitor"


def thresholds_for(problem: str, stored: ExperimentSpec, experiments: Path | None = None) -> Monitoring:
    """The spec file's monitoring thresholds (operational: may change without retraining), else
    the ones stored with the model, else the defaults."""
    try:
        return load_spec(problem, experiments).monitoring
    except SpecError:
        return stored.monitoring


def training_reference(model, spec: ExperimentSpec, frame: pd.DataFrame, bins: int, cache: Path | None = None,
                       table: Path | None = None) -> dict:
    """The model's stored reference, or one computed from the current table's training period (the
    model predates stored references, or its reference is of an older kind). A computed one is kept
    in `cache` (the home's cache folder: safe to delete), valid while the model version, the
    reference's kind and bins and the feature table file (`table`: size and modification time) are
    the same: computing it splits the whole table and scores the validation period, seconds a month's
    run need not repeat."""
    stored = model.metadata.get("monitoring_reference")
    if stored and stored.get("version") == REFERENCE_VERSION:
        return stored
    key = _reference_key(model, spec, bins, table) if cache is not None and table is not None else None
    path = Path(cache) / "monitoring" / f"reference-{key}.json" if key else None
    if path is not None and path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # unreadable: compute it again
    from training.splits import split_table

    columns = [c for c in [*monitor_columns(model, spec), *monitor_companions(model)] if c in frame.columns]
    split = split_table(frame[list(dict.fromkeys(columns))], spec)
    reference = reference_from(model, split.train, split.validation, bins, COMPUTED_NOW if not stored else OLDER_KIND)
    if path is not None:
        from base.atomic import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(reference))
    return reference


def _reference_key(model, spec: ExperimentSpec, bins: int, table: Path) -> str:
    import hashlib

    stat = Path(table).stat()
    parts = [spec.problem, str(model.metadata.get("model_version", "")), str(model.metadata.get("run_id", "")),
             model.pipeline_version, str(REFERENCE_VERSION), str(bins), str(Path(table).resolve()), str(stat.st_size),
             str(stat.st_mtime_ns)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def monitor_columns(model, spec: ExperimentSpec) -> list[str]:
    """The feature-table columns a monitoring run of `model` needs (the companions that date some
    of its features are read where the table has them: monitor_companions)."""
    return ["subject_id", "prediction_time", spec.eligible_column, spec.label_column, spec.censor_column,
            *model.feature_names]


def monitor_companions(model) -> tuple[str, ...]:
    return tuple(c for c in needed_columns(list(model.feature_names)) if c not in model.feature_names)


def monitor_registered(problem: str, features_dir: Path, as_of: pd.Timestamp, *, alias: str = "champion",
                       frame: pd.DataFrame | None = None, tables: "SegmentTables | None" = None,
                       tracking_uri: str | None = None, experiments: Path | None = None, record: bool = True,
                       feedback: list | None = None, feedback_note: str = "not read (no outbox given)",
                       progress: Progress = lambda _: None) -> MonitorReport:
    """Monitor `problem`'s model under `alias`. The feature table comes from `frame`, else from
    `tables` (columns read once per segment across problems), else from `features_dir`. `feedback`:
    the outbox's CRM feedback by problem and month (alerts/feedback.py monthly_feedback), shown
    beside each month's figures; None: unknown, `feedback_note` says why."""
    from features import pipeline_version
    from models.registry import load_model, model_name

    model = load_model(problem, alias, expected_pipeline_version=pipeline_version(), tracking_uri=tracking_uri)
    spec = parse_stored_spec(model.spec, f"spec inside {model_name(problem)}@{alias}")
    thresholds = thresholds_for(problem, spec, experiments)
    from_file = frame is None  # a computed reference is cached only for the table file's own rows
    if frame is None:
        frame = (tables or SegmentTables(features_dir)).read(spec, monitor_columns(model, spec), monitor_companions(model))
    data_end = pd.Timestamp(frame["prediction_time"].max())
    if as_of > data_end:
        progress(f"{problem}: the feature table ends at {data_end.date()}; monitoring up to it")
    from training.data import feature_table_path

    table = feature_table_path(features_dir if tables is None else tables.features_dir, spec.segment)
    reference = training_reference(model, spec, frame, thresholds.bins, cache=home().cache,
                                   table=table if from_file and table.exists() else None)
    progress(f"{problem}: monitoring version {model.metadata['model_version']} ({alias}) up to {as_of.date()}")
    from features.io import read_code_months

    volumes = read_code_months(features_dir if tables is None else tables.features_dir)
    report = attach_feedback(monitor(model, spec, frame, reference, as_of, thresholds, seed=spec.seed,
                                     code_volumes=volumes), feedback, feedback_note)
    if record:
        report.run_id = record_run(report, alias)
        write_latest(home().monitoring, report, alias, report.run_id)
    return report


def latest_path(folder: Path, problem: str, alias: str) -> Path:
    return Path(folder) / problem / f"{alias}.json"


def report_record(report: MonitorReport, alias: str, run_id: str) -> dict:
    """The report as plain JSON data: what the monitoring page shows and the operator alert says."""
    import math

    def clean(value):  # noqa: ANN001, ANN202
        if isinstance(value, pd.Timestamp):
            return f"{value:%Y-%m-%d}"
        if isinstance(value, float) and math.isnan(value):
            return None
        if hasattr(value, "item"):  # numpy scalars
            return clean(value.item())
        return value

    months = [{k: clean(v) for k, v in row.items()} for row in report.months.to_dict("records")]
    top = report.top_features
    return {
        "problem": report.problem, "alias": alias, "model_version": report.model_version,
        "as_of": f"{report.as_of:%Y-%m-%d}", "run_id": run_id, "reference": report.reference_source,
        "thresholds": report.thresholds.model_dump(mode="json"), "top_features": top, "months": months,
        "feature_psi": {n: [clean(v) for v in report.feature_psi.loc[n]] for n in top if n in report.feature_psi.index},
        "feature_step_psi": {n: [clean(v) for v in report.feature_step_psi.loc[n]] for n in top
                             if n in report.feature_step_psi.index},
        "breaches": report.breaches, "notes": report.notes,
    }


def write_latest(folder: Path, report: MonitorReport, alias: str, run_id: str) -> Path:
    """<home>/monitoring/<problem>/<alias>.json: the latest run's figures (written whole or not at all)."""
    from base.atomic import atomic_write_text

    path = latest_path(folder, report.problem, alias)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report_record(report, alias, run_id), ensure_ascii=False))
    return path


def read_latest(folder: Path, problem: str, alias: str = "champion") -> dict | None:
    """The latest monitoring run of `problem`'s `alias` model, or None if there has been none."""
    path = latest_path(folder, problem, alias)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


class SegmentTables:
    """Feature-table columns read once per segment: a problem's run reads the columns it needs,
    and the next problem of the segment reads only those not read yet."""

    def __init__(self, features_dir: Path):
        self.features_dir = Path(features_dir)
        self._frames: dict[str, pd.DataFrame] = {}

    def read(self, spec: ExperimentSpec, columns: list[str], optional: tuple[str, ...] = ()) -> pd.DataFrame:
        """The segment's table with at least `columns` (and those of `optional` the file has)."""
        import pyarrow.parquet as pq

        from training.data import feature_table_path, read_feature_table

        held = self._frames.get(spec.segment)
        path = feature_table_path(self.features_dir, spec.segment)
        if optional and path.exists():
            present = set(pq.read_schema(path).names)
            columns = [*columns, *(c for c in optional if c in present)]
        missing = [c for c in columns if held is None or c not in held.columns]
        if missing:
            new = read_feature_table(self.features_dir, spec, missing)
            if held is not None:
                new = pd.concat([held, new[[c for c in new.columns if c not in held.columns]]], axis=1)
            self._frames[spec.segment] = held = new
        return held


def _step(month: pd.Timestamp) -> int:
    return (month.year - 2000) * 12 + month.month - 1


SERIES = ("rows", "alert_rate", "mean_score", "score_psi", "top_feature_psi", "top_feature_step_psi", "max_feature_psi", "estimated_events",
          "estimated_auroc", "events", "auroc", "auroc_ci_low", "auroc_ci_high", "observed_expected",
          "observed_expected_ci_low", "observed_expected_ci_high", "calibration_slope", "calibration_slope_ci_low",
          "calibration_slope_ci_high", *FEEDBACK_COLUMNS)


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
                value = getattr(row, name, None)  # a report without feedback attached has no crm_ columns
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    metrics.append(Metric(f"monitor_{name}", float(value), stamp, _step(row.month)))
        client = MlflowClient()
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1,000 metrics a batch
            client.log_batch(run.info.run_id, metrics=metrics[start:start + 900])
        with tempfile.TemporaryDirectory() as tmp:
            months.to_csv(Path(tmp) / "months.csv", index=False)
            report.feature_psi.to_csv(Path(tmp) / "feature_psi.csv", index_label="feature")
            report.feature_step_psi.to_csv(Path(tmp) / "feature_step_psi.csv", index_label="feature")
            mlflow.log_artifacts(tmp, artifact_path="monitoring")
    tag = {"as_of": str(report.as_of.date()), "run_id": run.info.run_id, "breached_months": len(report.breaches),
           "last_breach": report.breaches[-1] if report.breaches else ""}
    client.set_model_version_tag(model_name(report.problem), report.model_version, MONITOR_TAG,
                                 json.dumps(tag, separators=(",", ":"))[:4900])
    return run.info.run_id
