"""The evaluation report of one model on its test period: metrics, baselines, oracle, subgroups,
plots, the model card and the test-period predictions in MEDS prediction format
(predictions/<problem>/test.parquet), written into a folder (the caller logs it to MLflow).

Shared by `train` (right after fitting) and `evaluate` (a registered model on the latest data),
so both report exactly the same things under the same names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.meds_tasks import prediction_table, write_predictions
from models.baselines import CLINICAL_SCORES, LogisticBaseline
from models.risk_model import RiskModel
from training import plots
from training.evaluate import auprc, auroc, bootstrap_auroc_gain_ci, brier, evaluate_test, score_metrics
from training.model_card import card_context, render_card
from training.spec import ExperimentSpec
from training.splits import Split
from training.subgroups import attributes, audit, audit_metrics, published

log = logging.getLogger(__name__)

PREDICTIONS_DIR = "predictions"  # <run artifacts>/predictions/<problem>/test.parquet (MEDS prediction format)


@dataclass
class Report:
    metrics: dict[str, float]
    subgroup_table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def fit_baselines(spec: ExperimentSpec, train: pd.DataFrame, notes: list[str],
                  sample_weight: np.ndarray | None = None) -> dict[str, object]:
    """Baselines fitted on the training period; columns absent from the table are noted, not fatal
    (the feature table evolves; the note lands in the model card). `sample_weight`: the training
    rows' weights when the model's are weighted (pooled training), so both learn the same population."""
    y = train[spec.label_column].astype(bool).to_numpy()
    fitted: dict[str, object] = {}
    wanted = spec.baselines.logistic.features
    present = [c for c in wanted if c in train.columns]
    if len(present) < len(wanted):
        notes.append(f"logistic baseline: columns not in the feature table: {', '.join(sorted(set(wanted) - set(present)))}")
    if present:
        fitted["logistic"] = LogisticBaseline(features=present).fit(train, y, sample_weight=sample_weight)
    clinical = spec.baselines.clinical_score
    missing = [c for c in clinical.columns.values() if c not in train.columns]
    if missing:
        notes.append(f"clinical score ({clinical.kind}) skipped: columns not in the feature table: {', '.join(missing)}")
    else:
        fitted["clinical"] = CLINICAL_SCORES[clinical.kind](columns=dict(clinical.columns)).fit(train, y, sample_weight=sample_weight)
    return fitted


def oracle_probabilities(truth: pd.DataFrame | None, keys: pd.DataFrame, notes: list[str]) -> np.ndarray | None:
    """True probabilities aligned to the test rows (NaN where the simulator has none)."""
    if truth is None:
        notes.append("oracle metrics not computed: no simulator truth for this data")
        return None
    left = keys[["subject_id", "prediction_time"]].astype({"prediction_time": "datetime64[us]"})
    right = truth.astype({"prediction_time": "datetime64[us]"}).drop_duplicates(["subject_id", "prediction_time"])
    merged = left.merge(right, on=["subject_id", "prediction_time"], how="left")
    return merged["true_probability"].to_numpy(dtype=float)


def evaluation_report(
    model: RiskModel,
    spec: ExperimentSpec,
    split: Split,
    truth: pd.DataFrame | None,
    outdir: Path,
    threshold: float,
    train_weight: np.ndarray | None = None,
) -> Report:
    notes: list[str] = []
    test = split.test
    y = test[spec.label_column].astype(bool).to_numpy()
    p = model.predict_proba(test)
    outcome_time = test[spec.outcome_time_column] if spec.outcome_time_column in test.columns else None
    if outcome_time is None:
        notes.append(f"the feature table has no {spec.outcome_time_column} column: lead time not computed, and "
                     "per-customer figures use each customer's rows up to their first positive row only")
    metrics = evaluate_test(
        test, y, p, threshold,
        outcome_time=outcome_time,
        bootstrap_samples=spec.evaluation.bootstrap_samples,
        seed=spec.seed,
        bins=spec.evaluation.calibration_bins,
    )
    for name, part in (("train", split.train), ("validation", split.validation), ("test", test)):
        metrics[f"{name}_rows"] = float(len(part))
        metrics[f"{name}_events"] = float(part[spec.label_column].astype(bool).sum())

    curves = {"model": p}
    baselines = fit_baselines(spec, split.train, notes, train_weight)
    for name, estimator in baselines.items():
        q = estimator.predict_proba(test)[:, 1]
        curves[f"baseline {name}"] = q
        metrics.update({f"baseline_{name}_{k}": v for k, v in score_metrics(y, q, "", spec.evaluation.calibration_bins).items()})
    baseline_aurocs = {n: metrics[f"baseline_{n}_auroc"] for n in baselines if not np.isnan(metrics[f"baseline_{n}_auroc"])}
    metrics["baseline_auroc"] = max(baseline_aurocs.values()) if baseline_aurocs else float("nan")
    if baseline_aurocs:
        best = max(baseline_aurocs, key=baseline_aurocs.get)
        metrics["gain_over_baseline"] = metrics["test_auroc"] - metrics["baseline_auroc"]
        metrics["gain_over_baseline_ci_low"], metrics["gain_over_baseline_ci_high"] = bootstrap_auroc_gain_ci(
            test["subject_id"], y, p, curves[f"baseline {best}"], spec.evaluation.bootstrap_samples, spec.seed)

    oracle = oracle_probabilities(truth, test, notes)
    if oracle is not None:
        covered = ~np.isnan(oracle)
        metrics["oracle_coverage"] = float(covered.mean())
        if covered.mean() < 1:
            notes.append(f"oracle covers {covered.mean():.1%} of test rows; oracle metrics use those rows only")
        if covered.any():
            metrics["oracle_auroc"] = auroc(y[covered], oracle[covered])
            metrics["oracle_auprc"] = auprc(y[covered], oracle[covered])
            metrics["oracle_brier"] = brier(y[covered], oracle[covered])
            metrics["test_auroc_on_oracle_rows"] = auroc(y[covered], p[covered])
            if covered.all():
                curves["oracle (true risk)"] = oracle

    groups = attributes(test, spec.subgroups)
    table = audit(groups, y, p, threshold, spec.gates, test["subject_id"].to_numpy())
    metrics.update(audit_metrics(table))

    outdir = Path(outdir)
    plot_dir = outdir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    files = [
        plots.roc_plot(y, curves, plot_dir / "roc.png", f"{spec.problem}: ROC (test)"),
        plots.pr_plot(y, curves, plot_dir / "pr.png", f"{spec.problem}: precision-recall (test)"),
        plots.calibration_plot(y, {k: v for k, v in curves.items() if k != "oracle (true risk)"}, plot_dir / "calibration.png",
                               f"{spec.problem}: calibration (test)", spec.evaluation.calibration_bins),
    ]
    # SHAP on a seeded sample only: contributions are exact but plots need no more rows
    sample = test.sample(n=min(spec.evaluation.shap_sample, len(test)), random_state=spec.seed)
    files.append(plots.shap_summary_plot(model.contributions(sample), sample[model.feature_names], plot_dir / "shap_summary.png"))
    table_path = outdir / "subgroups.csv"
    published(table).to_csv(table_path, index=False)  # counts under 5 suppressed; the gates read `table`
    files.append(table_path)
    files.append(write_predictions(outdir / PREDICTIONS_DIR / spec.problem / "test.parquet",
                                   prediction_table(test, y, p, threshold)))

    context = card_context(
        spec=spec.as_dict(), metrics=metrics, metadata={**model.metadata, "pipeline_version": model.pipeline_version},
        feature_names=model.feature_names, subgroup_table=table,
        periods=[period.describe() for period in split.periods], notes=notes,
    )
    markdown, html = render_card(context)
    (outdir / "model_card.md").write_text(markdown, encoding="utf-8")
    (outdir / "model_card.html").write_text(html, encoding="utf-8")
    files += [outdir / "model_card.md", outdir / "model_card.html"]
    for note in notes:
        log.info("%s: %s", spec.problem, note)
    return Report(metrics, table, notes, files)
