"""Recalibration on recent months (`sote-risk retrain --recalibrate`): the champion's trees kept,
its calibrator refitted on the latest months whose outcomes are known, judged on the months after.

Why: after a change in the world (a code no longer recorded, a service cut) a full retrain cannot
both learn from the months after the change and be tested on them until many months later: the
spec's split puts every recent month in its test period, so its calibrator is fitted on months
before the change. What can be done at once is to keep the booster (its ranking of customers) and
refit the map from its raw score to a probability on recent months, testing on the months after.

1. **Compared months**: exactly a retrain's (retrain.compared_months: the `monitoring.compare_months`
   latest index months whose outcomes are complete at the as-of date and in the data).
2. **Calibration months**: the `monitoring.recalibration_months` latest eligible index months whose
   label windows (t, t + horizon] close before the first compared month (t + horizon < its first
   day): no calibration row knows anything of the compared months' outcomes. Its rows are the
   usable ones (eligible, labelled, uncensored) of those months in the table as it stood at the date.
3. **Fit**: the calibrator chosen and fitted as in training (training/calibrate.choose_calibrator:
   isotonic or Platt by customer-fold cross-fitting, refused with the counts when a fold would see
   too few outcomes), the alert threshold chosen on its out-of-fold probabilities by the spec's
   alert policy (training/evaluate.threshold_for_policy).
4. **Register and judge**: the new model (the champion's booster, features, categories and stored
   spec; the new calibrator and threshold) is evaluated on the compared months as its test period
   (training/report.evaluation_report: the test figures the gates read, the baselines, the subgroup
   audit), registered as `challenger` with tags saying what it is (`recalibrated_from`,
   `recalibration_months`, its rows and outcomes, and the evidence in `retrain`), compared with the
   champion on the same rows as a retrain is (retrain.record_comparison) and judged by the same
   gates (training/promotion.py; its test AUROC is held against the champion's on those same rows).

Held out: the compared months are held out from the challenger when they lie after the calibration
months' label windows and after those of the periods its trees learnt from (the champion's recorded
train and validation periods, with the split's gap: end + horizon). A champion that does not record
them (an older model) cannot show it: the comparison says so and the gates refuse.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from base.errors import SoteRiskError
from training.calibrate import CalibrationChoice, choose_calibrator
from training.evaluate import threshold_for_policy
from training.monitoring import month_on_or_after, score_rows
from training.retrain import Evidence, Retrained, compare_rows, compared_months
from training.spec import ExperimentSpec
from training.splits import ResolvedPeriod, Split, anchor_time, parse_period, resolve_periods, usable_rows

KIND = "recalibrate"
LEARNT = ("train", "validation")  # the periods whose labels the trees learnt from (early stopping reads validation)


class RecalibrationError(SoteRiskError):
    """The champion cannot be recalibrated on recent months (no champion, no months, too few rows)."""


# ---------------------------------------------------------------------------------------------
# Which months (pure)


def month_after(time: pd.Timestamp) -> pd.Timestamp:
    """The first month start strictly after `time`."""
    return pd.Timestamp(time).to_period("M").to_timestamp() + pd.DateOffset(months=1)


def calibration_months(frame: pd.DataFrame, spec: ExperimentSpec, first_compared: pd.Timestamp,
                       count: int) -> list[pd.Timestamp]:
    """The `count` latest eligible index months of `frame` whose label windows (t, t + horizon]
    close before `first_compared` (t + horizon < it), oldest first; fewer when the table has fewer."""
    eligible = frame.loc[frame[spec.eligible_column].fillna(False).astype(bool).to_numpy(), "prediction_time"]
    horizon = pd.Timedelta(days=spec.horizon_days)
    closed = sorted({pd.Timestamp(m) for m in eligible.unique() if pd.Timestamp(m) + horizon < pd.Timestamp(first_compared)})
    return closed[-count:] if count > 0 else []


def learnt_until(periods: list[str] | None, horizon_days: int) -> pd.Timestamp | None:
    """The first index month clear of the label windows of the periods the trees learnt from (the
    recorded train and validation periods; the split's gap rule: end + horizon), or None when the
    model does not record them."""
    learnt = [p for p in (parse_period(text) for text in periods or []) if p is not None and p.name in LEARNT]
    if not learnt:
        return None
    return month_on_or_after(max(p.end for p in learnt) + pd.Timedelta(days=horizon_days))


def held_out_period(months: list[pd.Timestamp], compared: list[pd.Timestamp], learnt_clear: pd.Timestamp | None,
                    horizon_days: int) -> ResolvedPeriod | None:
    """The recalibrated model's test period: from the first month clear of both the calibration
    months' label windows and the trees' (learnt_until), to the end of the compared months. None
    when the trees' periods are unknown (then nothing can show the compared months held out)."""
    if learnt_clear is None or not months or not compared:
        return None
    start = max(month_after(months[-1] + pd.Timedelta(days=horizon_days)), learnt_clear)
    return ResolvedPeriod("test", start, compared[-1] + pd.DateOffset(months=1))


def months_span(months: list[pd.Timestamp]) -> str:
    return f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}" if months else "none"


# ---------------------------------------------------------------------------------------------
# The new calibrator and model (pure but for the booster's predictions)


@dataclass
class Fitted:
    choice: CalibrationChoice
    threshold: float
    rows: int
    customers: int
    events: int


def fit_on_months(champion, rows: pd.DataFrame, spec: ExperimentSpec, months: list[pd.Timestamp]) -> Fitted:  # noqa: ANN001
    """Choose and fit a calibrator for the champion's raw scores on `rows` (the calibration months'
    usable rows) and the alert threshold on its out-of-fold probabilities; CalibrationError (one
    line, with the counts) when a fold would see too few outcomes."""
    y = rows[spec.label_column].astype(bool).to_numpy().astype(float)
    choice = choose_calibrator(score_rows(champion, rows, raw=True), y, rows["subject_id"], spec.seed,
                               what=f"{spec.problem}: recalibration", rows_of=f"the calibration period {months_span(months)}",
                               hint="raise monitoring.recalibration_months in the spec, or use a larger region")
    threshold = threshold_for_policy(y, choice.out_of_fold, spec.alert_policy)
    return Fitted(choice, threshold, len(rows), int(rows["subject_id"].nunique()), int(y.sum()))


def recalibrated_model(champion, fitted: Fitted, metadata: dict):  # noqa: ANN001, ANN201 (RiskModel)
    """The champion's booster, features, categories, pipeline and stored spec with the new
    calibrator and threshold; `metadata` says what it is (the champion's own figures are dropped:
    they are not this model's)."""
    from models.risk_model import RiskModel

    kept = {k: v for k, v in champion.metadata.items()
            if k not in ("model_version", "alias", "metrics", "monitoring_reference", "validation_auroc")}
    return RiskModel(problem=champion.problem, booster=champion.booster, calibrator=fitted.choice.calibrator,
                     feature_names=list(champion.feature_names), categories=dict(champion.categories),
                     pipeline_version=champion.pipeline_version, spec=dict(champion.spec),
                     metadata={**kept, "threshold": fitted.threshold, "calibration_method": fitted.choice.method,
                               **metadata})


def trees_train_period(periods: list[str] | None, spec: ExperimentSpec, anchor: pd.Timestamp) -> ResolvedPeriod:
    """The period the baselines are fitted on (and the features' monitoring reference taken from):
    the champion's recorded train period (`periods`), or the spec's train period at the as-of date
    (`anchor`) when the champion does not record one."""
    for text in periods or []:
        period = parse_period(text)
        if period is not None and period.name == "train":
            return period
    return resolve_periods(spec, anchor)[0]


# ---------------------------------------------------------------------------------------------
# One problem recalibrated (MLflow, the registry)


@dataclass
class Plan:
    """What a recalibration uses, chosen from the table as of the date (pure: plan())."""

    compared: list[pd.Timestamp]
    months: list[pd.Timestamp]  # the calibration months
    split: Split  # train: the baselines' period; validation: the calibration rows; test: the compared rows
    test_period: ResolvedPeriod | None  # held out from the challenger (None: cannot be shown)


def plan(frame: pd.DataFrame, spec: ExperimentSpec, as_of: pd.Timestamp, periods: list[str] | None) -> Plan:
    """The compared and calibration months of the table as of `as_of` and their rows (module
    docstring); `periods`: the champion's recorded periods. RecalibrationError when there are no
    compared months or fewer calibration months than `monitoring.recalibration_months`."""
    compared = compared_months(frame, spec, as_of, spec.monitoring.compare_months)
    if not compared:
        raise RecalibrationError(f"{spec.problem}: no index month has complete outcomes at {as_of.date()} to compare "
                                 f"on: nothing to recalibrate against")
    count = spec.monitoring.recalibration_months
    months = calibration_months(frame, spec, compared[0], count)
    if len(months) < count:
        raise RecalibrationError(
            f"{spec.problem}: {len(months)} index month(s) ({months_span(months)}) have label windows closed before "
            f"the first compared month {compared[0]:%Y-%m}; monitoring.recalibration_months asks for {count}")
    anchor = anchor_time(frame, spec)
    train_period = trees_train_period(periods, spec, anchor)
    usable = usable_rows(frame, spec)
    split = Split(usable.loc[train_period.mask(usable["prediction_time"]).to_numpy()].reset_index(drop=True),
                  compare_rows(frame, spec, months).reset_index(drop=True),
                  compare_rows(frame, spec, compared).reset_index(drop=True),
                  (train_period, ResolvedPeriod("calibration", months[0], months[-1] + pd.DateOffset(months=1)),
                   ResolvedPeriod("test", compared[0], compared[-1] + pd.DateOffset(months=1))), anchor)
    clear = learnt_until(periods, spec.horizon_days)
    return Plan(compared, months, split, held_out_period(months, compared, clear, spec.horizon_days))


def recalibrate_problem(spec: ExperimentSpec, features_dir, as_of: pd.Timestamp, *, evidence: Evidence | None,  # noqa: ANN001
                        dataset_dir=None, progress=lambda _: None) -> Retrained:  # noqa: ANN001
    """Refit the champion's calibrator on the recent calibration months of the table as of
    `as_of`, register the result as `challenger`, compare it with the champion on the compared
    months and read the gates (module docstring)."""
    from features import pipeline_version
    from models.registry import ModelNotFoundError, load_model
    from training.data import fingerprint, read_feature_table, read_truth
    from training.retrain import gates_now, record_comparison, retrain_tag
    from training.splits import table_as_of

    try:
        champion = load_model(spec.problem, "champion", expected_pipeline_version=pipeline_version())
    except ModelNotFoundError:
        raise RecalibrationError(f"{spec.problem}: no champion to recalibrate (register and promote a model first)") from None
    source, periods = str(champion.metadata["model_version"]), champion.metadata.get("periods")
    frame = table_as_of(read_feature_table(features_dir, spec), spec, as_of)
    chosen = plan(frame, spec, as_of, periods)
    progress(f"{spec.problem}: refitting the calibrator of version {source} on {len(chosen.split.validation):,} rows "
             f"of index months {months_span(chosen.months)} (compared months {months_span(chosen.compared)})")
    fitted = fit_on_months(champion, chosen.split.validation, spec, chosen.months)
    recalibration = {"recalibrated_from": source, "recalibration_as_of": str(as_of.date()),
                     "recalibration_months": [f"{m:%Y-%m}" for m in chosen.months], "recalibration_rows": fitted.rows,
                     "recalibration_customers": fitted.customers, "recalibration_events": fitted.events,
                     "calibration_method": fitted.choice.method, "threshold": fitted.threshold}
    learnt = [text for text in periods or [] if getattr(parse_period(text), "name", "") in LEARNT]
    model = recalibrated_model(champion, fitted, {
        **recalibration, "data_fingerprint": fingerprint(frame, spec),
        "periods": [*learnt, *(period.describe() for period in chosen.split.periods[1:])]})
    tag = retrain_tag(as_of, source, evidence, kind=KIND, recalibration_months=recalibration["recalibration_months"])
    version = _register(spec, model, chosen.split, fitted, tag, read_truth(dataset_dir, spec), progress)
    if chosen.test_period is None:
        progress(f"{spec.problem}: version {source} does not record the periods its trees learnt from: the compared "
                 "months cannot be shown held out")
    progress(f"{spec.problem}: comparing version {version} with the champion (version {source}) on the compared months")
    comparison = record_comparison(spec, model, version, champion, frame, as_of, tag, test_period=chosen.test_period)
    return Retrained(spec.problem, version, as_of, comparison, gates_now(spec.problem, version),
                     dict(model.metadata["metrics"]), recalibration)


def _register(spec: ExperimentSpec, model, split: Split, fitted: Fitted, tag: str, truth, progress) -> str:  # noqa: ANN001
    """Evaluate `model` on the compared months (its test period), log it as an MLflow run of kind
    `recalibrate` and register it as `challenger` with its tags; its version."""
    import mlflow
    from mlflow import MlflowClient

    from models.pyfunc import log_risk_model
    from models.registry import model_name
    from training import tracking
    from training.monitoring import reference_from
    from training.pipeline import flagged_subgroups, metric_tags
    from training.report import evaluation_report

    problem, metadata = spec.problem, model.metadata
    # what monitoring compares later months against: the features on the trees' training period,
    # the score (the new calibrator's) on the calibration months
    metadata["monitoring_reference"] = reference_from(
        model, split.train, split.validation, spec.monitoring.bins,
        "stored at recalibration: features on the trees' training period, the score on the calibration months")
    tracking.configure()
    with mlflow.start_run(experiment_id=tracking.experiment_id(problem), run_name=f"{KIND}-{problem}") as run:
        mlflow.set_tags({"problem": problem, "kind": KIND, "pipeline_version": model.pipeline_version,
                         "data_fingerprint": metadata["data_fingerprint"], "recalibrated_from": metadata["recalibrated_from"],
                         "as_of": metadata["recalibration_as_of"], "retrain": tag})
        mlflow.log_params({"calibration_method": fitted.choice.method, "alert_threshold": fitted.threshold,
                           "recalibration_months": ",".join(metadata["recalibration_months"]),
                           **{f"period_{p.name}": p.describe() for p in split.periods}})
        mlflow.log_metrics({**fitted.choice.scores, "alert_threshold": fitted.threshold,
                            "recalibration_rows": fitted.rows, "recalibration_events": fitted.events})
        progress(f"{problem}: evaluating on the compared months ({len(split.test):,} rows)")
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluation_report(model, spec, split, truth, Path(tmp), fitted.threshold)
            mlflow.log_metrics(tracking.clean_metrics(report.metrics))
            tracking.log_files(report.files, Path(tmp))
        metadata["metrics"] = tracking.clean_metrics(report.metrics)
        if report.notes:
            mlflow.set_tag("notes", " | ".join(report.notes)[:4900])
        info = log_risk_model(model, registered_model_name=model_name(problem))
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(model_name(problem), "challenger", version)
    tags = metric_tags(report.metrics)
    tags.update({"problem": problem, "pipeline_version": model.pipeline_version,
                 "data_fingerprint": metadata["data_fingerprint"], "run_id": run.info.run_id,
                 "gates": json.dumps(spec.gates.model_dump()), "subgroup_flagged": flagged_subgroups(report.subgroup_table) or "none",
                 "as_of": metadata["recalibration_as_of"], "retrain": tag, "recalibrated_from": metadata["recalibrated_from"],
                 "recalibration_months": ",".join(metadata["recalibration_months"]),
                 "recalibration_rows": str(fitted.rows), "recalibration_events": str(fitted.events),
                 "calibration_method": fitted.choice.method})
    for key, value in tags.items():
        client.set_model_version_tag(model_name(problem), version, key, value)
    return version
