"""External validation: a registered model scored on another region's data, and recalibration there.

A model is trained on one region (Eksote) and may be used in another, whose people and services
differ. `evaluate_external` scores a registered version on another region's test period (the
model's own spec's split, placed on that region's calendar) and reports what changes when a
model moves: discrimination (AUROC, rows and customers), calibration-in-the-large (observed /
expected), the calibration slope and intercept, each with a customer-bootstrap interval, and the
same per subgroup (sex, age band, language and the region's own municipalities). The figures go
to an MLflow run (kind `external`) and, compactly, to the model version's tag
`external_<region>`, which the served model card shows.

`recalibrate` refits only the calibrator on that region's validation period (the booster, its
features and its trees unchanged), chooses the alert threshold there the way training does, and
evaluates the result on the same test period as the original, so before and after are comparable.
The recalibrated model is registered as a new version with the alias `recalibrated-<region>` and
tags saying what it came from; it is not a champion anywhere until someone promotes it, and its
gates read the figures of the region it was recalibrated for.

Every period is the model spec's: choices are made on validation (the calibrator, the
threshold), figures are reported on test. The features of an external dataset are built once
(through the contracts) into `<home>/external/<dataset key>/` and reused.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from base.errors import SoteRiskError
from training.evaluate import (
    _customer_bootstrap,
    _dense_ranks,
    _intercept_fit,
    _logit,
    _recalibration,
    _weighted_auroc,
    auroc,
    calibration_intercept,
    calibration_slope,
    evaluate_test,
    observed_expected,
)
from training.spec import ExperimentSpec
from training.splits import Split
from training.subgroups import SMALL, attributes, audit, audit_metrics, shown_count

Progress = Callable[[str], None]

# the figures a version's `external_<region>` tag keeps (the whole set is in the MLflow run)
TAGGED = ("test_rows", "test_customers", "test_outcome_rate", "test_auroc", "test_auroc_ci_low", "test_auroc_ci_high",
          "test_customer_auroc", "test_customer_auroc_ci_low", "test_customer_auroc_ci_high", "test_observed_expected", "test_observed_expected_ci_low",
          "test_observed_expected_ci_high", "test_calibration_slope", "test_calibration_slope_ci_low",
          "test_calibration_slope_ci_high", "test_calibration_intercept", "test_calibration_intercept_ci_low",
          "test_calibration_intercept_ci_high", "test_alert_rate", "test_ppv", "test_sensitivity", "oracle_auroc")
SUBGROUP_BOOTSTRAP = 200  # per-subgroup intervals: enough for a 95 % percentile interval, 5x cheaper


class ExternalDataError(SoteRiskError):
    """The external dataset cannot be evaluated on (not a dataset folder, no test rows, ...)."""


@dataclass
class ExternalReport:
    problem: str
    region: str
    dataset: str
    model_version: str
    alias: str
    metrics: dict[str, float]
    subgroups: pd.DataFrame
    periods: list[str]
    notes: list[str] = field(default_factory=list)
    flagged: str = "none"  # the subgroups the promotion gates' audit flags on this region

    def tag(self) -> dict[str, object]:
        """The compact record kept on the model version (and read by the model card)."""
        figures = {k: round(float(self.metrics[k]), 6) for k in TAGGED
                   if k in self.metrics and not np.isnan(self.metrics[k])}
        return {"region": self.region, "dataset": self.dataset, "test_period": self.periods[-1],
                "evaluated": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d"), **figures}


def tag_name(region: str) -> str:
    return f"external_{region}"


def recalibrated_alias(region: str) -> str:
    return f"recalibrated-{region}"


# --- pure: figures from labels, probabilities and groups -------------------------------------------

def subgroup_calibration(groups: pd.DataFrame, y, p, subject_ids, *, samples: int = SUBGROUP_BOOTSTRAP,
                         seed: int = 0, min_events: int = 20) -> pd.DataFrame:
    """Per (attribute, value): rows, customers, events, AUROC, O/E, calibration slope and intercept,
    each with a customer-bootstrap 95 % interval. A group with fewer than `min_events` outcomes gets
    its figures but no intervals (they would be noise), and one with fewer than 5 customers shows
    nothing but '<5' (small-cell suppression, as everywhere else)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    ids = np.asarray(subject_ids)
    x = _logit(p)
    rows = []
    for attribute in groups.columns:
        values = groups[attribute].to_numpy()
        for value in sorted(pd.unique(values)):
            m = values == value
            ym, pm, xm, idm = y[m], p[m], x[m], ids[m]
            customers = len(np.unique(idm))
            row: dict[str, object] = {"attribute": attribute, "value": str(value), "rows": int(m.sum()),
                                      "customers": customers, "events": int(ym.sum())}
            if customers < SMALL:
                rows.append({**row, "rows": None, "customers": shown_count(customers), "events": None})
                continue
            row.update(auroc=auroc(ym, pm), o_e=observed_expected(ym, pm), slope=calibration_slope(ym, pm),
                       intercept=calibration_intercept(ym, pm))
            if ym.sum() >= min_events:
                groups_p, n_p = _dense_ranks(pm)
                full = _recalibration(ym, xm, np.ones(len(ym)))

                def slope(w: np.ndarray, ym=ym, xm=xm, full=full) -> float:
                    fit = _recalibration(ym, xm, w, start=full)
                    return np.nan if fit is None else fit[1]

                for name, statistic in (
                    ("auroc", lambda w, ym=ym, g=groups_p, n=n_p: _weighted_auroc(g, n, ym, w)),
                    ("o_e", lambda w, ym=ym, pm=pm: observed_expected(ym, pm, w)),
                    ("slope", slope),
                    ("intercept", lambda w, ym=ym, xm=xm: _intercept_fit(ym, xm, w)),
                ):
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = _customer_bootstrap(idm, samples, seed, 0.95, statistic)
            row["events"] = shown_count(int(ym.sum()))
            rows.append(row)
    columns = ["attribute", "value", "rows", "customers", "events"]
    for name in ("auroc", "o_e", "slope", "intercept"):
        columns += [name, f"{name}_ci_low", f"{name}_ci_high"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for column in ("rows", "customers", "events"):  # whole numbers stay whole beside "<5" and blanks
        table[column] = pd.Series([None if v is None or (isinstance(v, float) and np.isnan(v)) else v if isinstance(v, str)
                                   else int(v) for v in table[column]], index=table.index, dtype=object)
    return table


def external_groups(test: pd.DataFrame, spec: ExperimentSpec, municipality: pd.Series | None) -> pd.DataFrame:
    """The spec's subgroup attributes, with the region's own municipality per customer in place of
    the model's (which knows Eksote's municipalities only, so every other region's is missing)."""
    groups = attributes(test, spec.subgroups)
    if municipality is not None and "municipality" in groups.columns:
        groups["municipality"] = (test["subject_id"].map(municipality).astype("string").fillna("missing").to_numpy())
    return groups


def external_metrics(split: Split, spec: ExperimentSpec, p: np.ndarray, threshold: float,
                     oracle: np.ndarray | None) -> dict[str, float]:
    """The test-period figures of probabilities `p` on an external split (names as in training)."""
    test = split.test
    y = test[spec.label_column].astype(bool).to_numpy()
    outcome_time = test[spec.outcome_time_column] if spec.outcome_time_column in test.columns else None
    metrics = evaluate_test(test, y, p, threshold, outcome_time=outcome_time,
                            bootstrap_samples=spec.evaluation.bootstrap_samples, seed=spec.seed,
                            bins=spec.evaluation.calibration_bins)
    metrics["test_events"] = float(y.sum())
    if oracle is not None:
        covered = ~np.isnan(oracle)
        if covered.any():
            metrics["oracle_auroc"] = auroc(y[covered], oracle[covered])
            metrics["oracle_coverage"] = float(covered.mean())
    return metrics


# --- I/O edge -------------------------------------------------------------------------------------

def dataset_key(dataset_dir: Path) -> tuple[dict, str]:
    """(dataset.json, a short key of it and the feature pipeline) naming the cached feature folder."""
    from features.version import pipeline_version

    path = Path(dataset_dir) / "dataset.json"
    if not Path(dataset_dir).is_dir():
        raise ExternalDataError(f"{dataset_dir}: not a folder (give a dataset folder: events.parquet, "
                                f"customers.parquet, dataset.json, e.g. from `sote-risk simulate --region kainuu`)")
    try:
        text = path.read_text(encoding="utf-8")
        metadata = json.loads(text)
    except (OSError, ValueError) as error:
        raise ExternalDataError(f"{dataset_dir}: dataset.json cannot be read ({error.__class__.__name__}: "
                                f"{error})") from None
    if not isinstance(metadata, dict):
        raise ExternalDataError(f"{dataset_dir}: dataset.json must be an object")
    digest = hashlib.sha256(text.encode() + pipeline_version().encode()).hexdigest()[:12]
    return metadata, digest


def external_features(dataset_dir: Path, cache_root: Path, progress: Progress) -> tuple[Path, dict]:
    """The feature folder of an external dataset, built (validated by the contracts) on first use."""
    from data_contracts.regions import UnknownRegionError, region

    metadata, digest = dataset_key(dataset_dir)
    name = str(metadata.get("name") or "dataset")
    try:
        region_name = region(metadata.get("region")).name
    except UnknownRegionError as error:
        raise ExternalDataError(f"{dataset_dir}: dataset.json: region: {error}") from None
    folder = Path(cache_root) / f"{region_name}-{digest}" / "features"
    if (folder / "features.json").is_file():
        progress(f"features of {name} ({region_name}) from {folder}")
        return folder, metadata
    from features import io
    from features.build import build_tables

    progress(f"building the features of {name} ({region_name}) into {folder}")
    loaded = io.load(dataset_dir, validate=True)
    tables = build_tables(loaded.history, loaded.extract_start, loaded.extract_end, warmup_days=365, workers=2)
    io.write_tables(folder, tables, source={"data": str(dataset_dir), "name": name, "region": region_name,
                                            "extract_start": str(loaded.extract_start),
                                            "extract_end": str(loaded.extract_end), "warmup_days": 365},
                    code_months=loaded.code_months)
    return folder, metadata


def _region_municipalities(dataset_dir: Path) -> pd.Series | None:
    path = Path(dataset_dir) / "customers.parquet"
    if not path.is_file():
        return None
    customers = pd.read_parquet(path, columns=["subject_id", "municipality"])
    return customers.set_index("subject_id")["municipality"]


@dataclass
class _Prepared:
    model: object
    spec: ExperimentSpec
    split: Split
    truth: pd.DataFrame | None
    metadata: dict
    region: str
    municipality: pd.Series | None


def _prepare(problem: str, dataset_dir: Path, alias: str, tracking_uri: str | None, progress: Progress) -> _Prepared:
    from base.settings import home
    from data_contracts.regions import region
    from features import pipeline_version
    from models.registry import load_model, model_name
    from training.data import read_feature_table, read_truth
    from training.spec import parse_stored_spec
    from training.splits import split_table

    dataset_key(dataset_dir)  # a folder that is no dataset fails before the model is read
    model = load_model(problem, alias, expected_pipeline_version=pipeline_version(), tracking_uri=tracking_uri)
    spec = parse_stored_spec(model.spec, f"spec inside {model_name(problem)}@{alias}")
    features_dir, metadata = external_features(dataset_dir, home().root / "external", progress)
    frame = read_feature_table(features_dir, spec)
    split = split_table(frame, spec)
    if split.test.empty or split.test[spec.label_column].astype(bool).sum() == 0:
        raise ExternalDataError(f"{problem}: the test period of {metadata.get('name')} ({split.periods[-1].describe()}) "
                                f"has {len(split.test)} rows and no outcome: nothing to evaluate on")
    return _Prepared(model, spec, split, read_truth(dataset_dir, spec), metadata, region(metadata.get("region")).name,
                     _region_municipalities(dataset_dir))


def _report(prep: _Prepared, model, alias: str, version: str) -> ExternalReport:
    from training.evaluate import bootstrap_auroc_gain_ci
    from training.pipeline import flagged_subgroups
    from training.report import fit_baselines, oracle_probabilities

    notes: list[str] = []
    test, spec = prep.split.test, prep.spec
    p = model.predict_proba(test)
    oracle = oracle_probabilities(prep.truth, test, notes)
    metrics = external_metrics(prep.split, spec, p, float(model.metadata["threshold"]), oracle)
    y = test[spec.label_column].astype(bool).to_numpy()
    # the bar a model must clear in this region: the spec's simple baselines fitted on its own train period
    baselines = {name: estimator.predict_proba(test)[:, 1] for name, estimator in fit_baselines(spec, prep.split.train, notes).items()}
    scored = {name: value for name, q in baselines.items() if not np.isnan(value := auroc(y, q))}
    if scored:
        best = max(scored, key=scored.get)
        metrics["baseline_auroc"] = scored[best]
        metrics["gain_over_baseline"] = metrics["test_auroc"] - scored[best]
        metrics["gain_over_baseline_ci_low"], metrics["gain_over_baseline_ci_high"] = bootstrap_auroc_gain_ci(
            test["subject_id"], y, p, baselines[best], spec.evaluation.bootstrap_samples, spec.seed)
    groups = external_groups(test, spec, prep.municipality)
    table = subgroup_calibration(groups, y, p, test["subject_id"].to_numpy(), seed=spec.seed,
                                 min_events=spec.gates.min_subgroup_events)
    # the promotion gates' own subgroup audit on this region, so a recalibrated version carries its flags
    audited = audit(groups, y, p, float(model.metadata["threshold"]), spec.gates, test["subject_id"].to_numpy())
    metrics.update({k: v for k, v in audit_metrics(audited).items() if k.startswith("subgroup_flags_")})
    metrics_flagged = flagged_subgroups(audited)
    return ExternalReport(spec.problem, prep.region, str(prep.metadata.get("name") or ""), version, alias, metrics, table,
                          [period.describe() for period in prep.split.periods], notes, metrics_flagged or "none")


def _record(report: ExternalReport, kind: str, extra_tags: dict[str, str] | None = None) -> None:
    """An MLflow run with every figure and the subgroup table; the compact tag on the version."""
    import mlflow
    from mlflow import MlflowClient

    from models.registry import model_name
    from training import tracking

    with mlflow.start_run(experiment_id=tracking.experiment_id(report.problem),
                          run_name=f"{kind}-{report.problem}-{report.region}"):
        mlflow.set_tags({"problem": report.problem, "kind": kind, "region": report.region, "dataset": report.dataset,
                         "model_version": report.model_version, "alias": report.alias, **(extra_tags or {})})
        mlflow.log_metrics({f"external_{k}": v for k, v in tracking.clean_metrics(report.metrics).items()})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"external_{report.region}_subgroups.csv"
            report.subgroups.to_csv(path, index=False)
            mlflow.log_artifact(str(path), artifact_path="external")
    MlflowClient().set_model_version_tag(model_name(report.problem), report.model_version, tag_name(report.region),
                                         json.dumps(report.tag(), separators=(",", ":")))


def evaluate_external(problem: str, dataset_dir: Path, *, alias: str = "champion", tracking_uri: str | None = None,
                      progress: Progress = lambda _: None) -> ExternalReport:
    """Score the registered `alias` version on another region's test period; record and return it."""
    prep = _prepare(problem, dataset_dir, alias, tracking_uri, progress)
    progress(f"{problem}: version {prep.model.metadata['model_version']} ({alias}) on {len(prep.split.test):,} test rows "
             f"of {prep.metadata.get('name')} ({prep.region})")
    report = _report(prep, prep.model, alias, str(prep.model.metadata["model_version"]))
    _record(report, "external")
    return report


@dataclass
class Recalibration:
    before: ExternalReport
    after: ExternalReport
    version: str
    alias: str
    method: str


def recalibrate(problem: str, dataset_dir: Path, *, alias: str = "champion", tracking_uri: str | None = None,
                progress: Progress = lambda _: None) -> Recalibration:
    """Refit the calibrator of `alias` on another region's validation period, choose its threshold
    there, evaluate before and after on that region's test period, and register the result."""
    import mlflow
    from mlflow import MlflowClient

    from models.pyfunc import log_risk_model
    from models.registry import model_name
    from models.risk_model import RiskModel
    from training import tracking
    from training.calibrate import choose_calibrator
    from training.evaluate import threshold_for_policy
    from training.pipeline import metric_tags

    prep = _prepare(problem, dataset_dir, alias, tracking_uri, progress)
    spec, validation, original = prep.spec, prep.split.validation, prep.model
    progress(f"{problem}: recalibrating version {original.metadata['model_version']} on {len(validation):,} validation "
             f"rows of {prep.metadata.get('name')} ({prep.split.periods[1].describe()})")
    source_version = str(original.metadata["model_version"])
    before = _report(prep, original, alias, source_version)
    y_valid = validation[spec.label_column].astype(bool).to_numpy().astype(float)
    choice = choose_calibrator(original.raw_score(validation), y_valid, validation["subject_id"], spec.seed,
                               what=f"{problem} on {prep.region} ({prep.split.periods[1].describe()})")
    threshold = threshold_for_policy(y_valid, choice.out_of_fold, spec.alert_policy)
    metadata = {k: v for k, v in original.metadata.items() if k not in ("model_version", "alias", "metrics")}
    metadata.update({"threshold": threshold, "calibration_method": choice.method, "recalibrated_from": source_version,
                     "recalibrated_for": prep.region, "recalibration_dataset": str(prep.metadata.get("name") or ""),
                     "periods": [period.describe() for period in prep.split.periods]})
    model = RiskModel(problem=original.problem, booster=original.booster, calibrator=choice.calibrator,
                      feature_names=list(original.feature_names), categories=dict(original.categories),
                      pipeline_version=original.pipeline_version, spec=dict(original.spec), metadata=metadata)
    after = _report(prep, model, recalibrated_alias(prep.region), "")  # its version exists once registered
    model.metadata["metrics"] = tracking.clean_metrics(after.metrics)

    tracking.configure(tracking_uri)
    with mlflow.start_run(experiment_id=tracking.experiment_id(problem), run_name=f"recalibrate-{problem}-{prep.region}"):
        mlflow.set_tags({"problem": problem, "kind": "recalibrate", "region": prep.region,
                         "recalibrated_from": source_version, "dataset": after.dataset})
        mlflow.log_params({"calibration_method": choice.method, "alert_threshold": threshold})
        mlflow.log_metrics({**choice.scores, **{f"before_{k}": v for k, v in tracking.clean_metrics(before.metrics).items()},
                            **{f"after_{k}": v for k, v in tracking.clean_metrics(after.metrics).items()}})
        info = log_risk_model(model, registered_model_name=model_name(problem))
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(model_name(problem), recalibrated_alias(prep.region), version)
    tags = metric_tags(after.metrics)  # its gates read the region it was recalibrated for
    tags.update({"problem": problem, "pipeline_version": model.pipeline_version, "recalibrated_from": source_version,
                 "recalibrated_for": prep.region, "gates": json.dumps(spec.gates.model_dump()), "subgroup_flagged": after.flagged})
    for key, value in tags.items():
        client.set_model_version_tag(model_name(problem), version, key, value)
    after.model_version = version
    _record(before, "external")
    _record(after, "external", {"recalibrated_from": source_version})
    return Recalibration(before, after, version, recalibrated_alias(prep.region), choice.method)
