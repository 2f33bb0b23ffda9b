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
                       table: str | None = None) -> dict:
    """The model's stored reference, or one computed from the current table's training period (the
    model predates stored references, or its reference is of an older kind). A computed one is kept
    in `cache` (the home's cache folder: safe to delete), valid while the model version, the
    reference's kind and bins and the feature table's files (`table`: their identity, from
    SegmentTables.identity: paths, sizes and modification times) are the same: computing it splits
    the whole table and scores the validation period, seconds a month's run need not repeat. A
    multi-region folder's regions have a reference each, from their own table, as each region's
    own home would."""
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


def _reference_key(model, spec: ExperimentSpec, bins: int, table: str) -> str:
    import hashlib

    parts = [spec.problem, str(model.metadata.get("model_version", "")), str(model.metadata.get("run_id", "")),
             model.pipeline_version, str(REFERENCE_VERSION), str(bins), table]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def file_identity(paths: list[Path]) -> str:
    """Files' paths, sizes and modification times: changes when any of them is rewritten."""
    parts = []
    for path in paths:
        stat = Path(path).stat()
        parts.extend([str(Path(path).resolve()), str(stat.st_size), str(stat.st_mtime_ns)])
    return "|".join(parts)


def monitor_columns(model, spec: ExperimentSpec) -> list[str]:
    """The feature-table columns a monitoring run of `model` needs (the companions that date some
    of its features are read where the table has them: monitor_companions)."""
    return ["subject_id", "prediction_time", spec.eligible_column, spec.label_column, spec.censor_column,
            *model.feature_names]


def monitor_companions(model) -> tuple[str, ...]:
    return tuple(c for c in needed_columns(list(model.feature_names)) if c not in model.feature_names)


def monitored_model(problem: str, alias: str = "champion", tracking_uri: str | None = None):  # noqa: ANN201
    """(RiskModel, its stored ExperimentSpec): the model a monitoring run judges. A multi-region
    run loads it once and monitors every region with it (the regions are served by one champion)."""
    from features import pipeline_version
    from models.registry import load_model, model_name

    model = load_model(problem, alias, expected_pipeline_version=pipeline_version(), tracking_uri=tracking_uri)
    return model, parse_stored_spec(model.spec, f"spec inside {model_name(problem)}@{alias}")


def monitor_registered(problem: str, features_dir: Path, as_of: pd.Timestamp, *, alias: str = "champion",
                       frame: pd.DataFrame | None = None, tables: "SegmentTables | None" = None,
                       tracking_uri: str | None = None, experiments: Path | None = None, record: bool = True,
                       feedback: list | None = None, feedback_note: str = "not read (no outbox given)",
                       progress: Progress = lambda _: None, loaded=None) -> MonitorReport:  # noqa: ANN001
    """Monitor `problem`'s model under `alias`. The feature table comes from `frame`, else from
    `tables` (columns read once per segment across problems; a region's tables for one region of a
    multi-region folder, whose name the report then carries), else from `features_dir`. `feedback`:
    the outbox's CRM feedback by problem and month (alerts/feedback.py monthly_feedback), shown
    beside each month's figures; None: unknown, `feedback_note` says why. `loaded`: the
    (model, spec) of monitored_model, when the caller already has them."""
    model, spec = loaded if loaded is not None else monitored_model(problem, alias, tracking_uri)
    thresholds = thresholds_for(problem, spec, experiments)
    from_tables = frame is None  # a computed reference is cached only for the table files' own rows
    region = ""
    if from_tables:
        tables = tables if tables is not None else SegmentTables(features_dir)
        region = tables.region
        frame = tables.read(spec, monitor_columns(model, spec), monitor_companions(model))
    where = f"{problem} in {region}" if region else problem
    data_end = pd.Timestamp(frame["prediction_time"].max())
    if as_of > data_end:
        progress(f"{where}: the feature table ends at {data_end.date()}; monitoring up to it")
    reference = training_reference(model, spec, frame, thresholds.bins, cache=home().cache,
                                   table=tables.identity(spec.segment) if from_tables else None)
    progress(f"{where}: monitoring version {model.metadata['model_version']} ({alias}) up to {as_of.date()}")
    if from_tables:
        volumes = tables.code_months()
    else:
        from features.io import read_code_months

        volumes = read_code_months(features_dir) if features_dir is not None else None
    report = attach_feedback(monitor(model, spec, frame, reference, as_of, thresholds, seed=spec.seed,
                                     code_volumes=volumes), feedback, feedback_note)
    report.region = region
    if record:
        report.run_id = record_run(report, alias)
        write_latest(home().monitoring, report, alias, report.run_id)
    return report


REGION_FOLDER = "region={}"  # <home>/monitoring/<problem>/region=<name>/: the layout's own spelling of a region


def latest_path(folder: Path, problem: str, alias: str, region: str = "") -> Path:
    """<folder>/<problem>/<alias>.json for the home's one region; <folder>/<problem>/region=<name>/<alias>.json
    for a region of a multi-region features folder (regions never overwrite each other)."""
    base = Path(folder) / problem
    return (base / REGION_FOLDER.format(region) if region else base) / f"{alias}.json"


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
        "problem": report.problem, **({"region": report.region} if report.region else {}),
        "alias": alias, "model_version": report.model_version,
        "as_of": f"{report.as_of:%Y-%m-%d}", "run_id": run_id, "reference": report.reference_source,
        "thresholds": report.thresholds.model_dump(mode="json"), "top_features": top, "months": months,
        "feature_psi": {n: [clean(v) for v in report.feature_psi.loc[n]] for n in top if n in report.feature_psi.index},
        "feature_step_psi": {n: [clean(v) for v in report.feature_step_psi.loc[n]] for n in top
                             if n in report.feature_step_psi.index},
        "breaches": report.breaches, "notes": report.notes,
    }


def write_latest(folder: Path, report: MonitorReport, alias: str, run_id: str) -> Path:
    """<home>/monitoring/<problem>/[region=<name>/]<alias>.json: the latest run's figures (written
    whole or not at all)."""
    from base.atomic import atomic_write_text

    path = latest_path(folder, report.problem, alias, report.region)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report_record(report, alias, run_id), ensure_ascii=False))
    return path


def read_latest(folder: Path, problem: str, alias: str = "champion", region: str = "") -> dict | None:
    """The latest monitoring run of `problem`'s `alias` model (in `region` of a multi-region
    folder), or None if there has been none."""
    path = latest_path(folder, problem, alias, region)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def read_region_latest(folder: Path, problem: str, alias: str = "champion") -> dict[str, dict]:
    """Region -> the latest monitoring run of `problem`'s `alias` model in that region of a
    multi-region folder, in region-name order ({} when no region was ever monitored)."""
    prefix = REGION_FOLDER.format("")
    found = {}
    for folder_ in sorted((Path(folder) / problem).glob(f"{prefix}*/")):
        record = read_latest(folder, problem, alias, folder_.name.removeprefix(prefix))
        if record is not None:
            found[folder_.name.removeprefix(prefix)] = record
    return found


class SegmentTables:
    """Feature-table columns read once per segment: a problem's run reads the columns it needs,
    and the next problem of the segment reads only those not read yet.

    This class reads a single-region folder's <segment>.parquet; a region of a multi-region folder
    is read by a subclass (scaleout/monitoring.py RegionTables) that says where its rows are
    (`region`, `schema`, `read_columns`, `identity`): the caching and the checks stay here."""

    region = ""  # the home's one region

    def __init__(self, features_dir: Path):
        self.features_dir = Path(features_dir)
        self._frames: dict[str, pd.DataFrame] = {}
        self._code_months: pd.DataFrame | None = None
        self._code_months_read = False

    def code_months(self) -> pd.DataFrame | None:
        """The folder's events per code and month (features/io.py read_code_months), read once."""
        if not self._code_months_read:
            from features.io import read_code_months

            self._code_months, self._code_months_read = read_code_months(self.counts_folder()), True
        return self._code_months

    def counts_folder(self) -> Path:
        """Where the code counts of these tables are (a region's folder in a multi-region one)."""
        return self.features_dir

    def schema(self, segment: str) -> set[str] | None:
        """The segment table's columns, or None when it has no table (read_columns then says so)."""
        import pyarrow.parquet as pq

        from training.data import feature_table_path

        path = feature_table_path(self.features_dir, segment)
        return set(pq.read_schema(path).names) if path.exists() else None

    def read_columns(self, spec: ExperimentSpec, columns: list[str]) -> pd.DataFrame:
        """These columns (and the ones every reader needs) of the segment's table, checked for `spec`."""
        from training.data import read_feature_table

        return read_feature_table(self.features_dir, spec, columns)

    def identity(self, segment: str) -> str | None:
        """What a cached reference computed from the segment's table is valid for (its file)."""
        from training.data import feature_table_path

        path = feature_table_path(self.features_dir, segment)
        return file_identity([path]) if path.exists() else None

    def read(self, spec: ExperimentSpec, columns: list[str], optional: tuple[str, ...] = ()) -> pd.DataFrame:
        """The segment's table with at least `columns` (and those of `optional` the file has)."""
        held = self._frames.get(spec.segment)
        if optional:
            present = self.schema(spec.segment)
            if present is not None:
                columns = [*columns, *(c for c in optional if c in present)]
        missing = [c for c in columns if held is None or c not in held.columns]
        if missing:
            new = self.read_columns(spec, missing)
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
    where = f"{report.problem}-{report.region}" if report.region else report.problem
    with mlflow.start_run(experiment_id=tracking.experiment_id(report.problem),
                          run_name=f"monitor-{where}-{report.as_of:%Y-%m}") as run:
        mlflow.set_tags({"problem": report.problem, "kind": "monitor", "alias": alias,
                         "model_version": report.model_version, "as_of": str(report.as_of.date()),
                         "reference": report.reference_source[:250], "breached_months": str(len(report.breaches)),
                         "breaches": " | ".join(report.breaches)[:4900] or "none",
                         **({"region": report.region} if report.region else {})})
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
    name = model_name(report.problem)
    previous = client.get_model_version(name, report.model_version).tags.get(MONITOR_TAG) if report.region else None
    client.set_model_version_tag(name, report.model_version, MONITOR_TAG,
                                 tag_text(version_tag(report, run.info.run_id, previous)))
    return run.info.run_id


TAG_LIMIT = 4900  # MLflow keeps 5,000 characters of a tag value


def version_tag(report: MonitorReport, run_id: str, previous: str | None = None) -> dict:
    """The model version's `monitor` tag after this run (what `models list` shows).

    The home's one region: this run's date, run, breached months and last breach. A region of a
    multi-region folder: the same over every region monitored on this date, this region's entry
    replacing its own in the `previous` tag (one run a region: a breach in any region is a breach
    of the problem): `regions` maps each to [breached months, last breached month or ""],
    `breached_months` is their sum and `last_breach` the newest breach, led by its region's name
    (`last_breach_region`; only its month when its words went with an earlier tag: the tag keeps
    one breach's words, not every region's). A previous tag of another date, or of the home's one
    region, is replaced."""
    as_of = str(report.as_of.date())
    last = report.breaches[-1][:1000] if report.breaches else ""
    mine = {"as_of": as_of, "run_id": run_id, "breached_months": len(report.breaches), "last_breach": last}
    if not report.region:
        return mine
    try:
        before = json.loads(previous) if previous else {}
    except ValueError:
        before = {}
    same_date = isinstance(before, dict) and before.get("as_of") == as_of and isinstance(before.get("regions"), dict)
    regions = dict(before["regions"]) if same_date else {}
    regions[report.region] = [len(report.breaches), last[:7]]
    kept = before.get("last_breach_region") if same_date else None
    candidates = [(last[:7], report.region, last)] if last else []
    for name, (count, month) in regions.items():
        if name != report.region and int(count):  # another region's: its words if the previous tag kept them
            kept_text = str(before.get("last_breach", "")).removeprefix(f"{kept}: ") if name == kept else ""
            candidates.append((month, name, kept_text if kept_text.startswith(month) else month))
    month, region, text = max(candidates) if candidates else ("", "", "")
    return {"as_of": as_of, "run_id": run_id, "breached_months": sum(int(n) for n, _ in regions.values()),
            "last_breach": f"{region}: {text}" if text else "", "last_breach_region": region,
            "regions": dict(sorted(regions.items()))}


def tag_text(tag: dict) -> str:
    """The tag as compact JSON (a region's entry takes ~30 characters: ~150 regions fit MLflow's limit)."""
    return json.dumps(tag, separators=(",", ":"), ensure_ascii=False)[:TAG_LIMIT]
