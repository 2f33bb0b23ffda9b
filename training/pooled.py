"""Pooled training over several regions: the trainer's side (no Spark here).

scaleout/pooled.py builds a `PooledTable` on Spark from a multi-region features folder: every
region's usable rows of the three periods, the training period thinned to all its positives and a
fraction F of its negatives. This module trains on it with the single-region trainer
(training/pipeline.train_on_split: the same tuning, calibration, threshold and evaluation),
evaluates the pooled model region by region, and runs leave-one-region-out folds.

Why the weight 1/F keeps probabilities right. Keeping each negative of the training period with
probability F, independently of its features, multiplies the odds of the outcome among the kept
rows by 1/F in every cell of feature space: a model fitted to them unweighted learns
logit p + log(1/F), i.e. probabilities too high (observed/expected about F at a rare outcome).
Giving each kept negative the weight 1/F makes the weighted log-likelihood of the kept rows an
unbiased estimate of the full training period's log-likelihood (each negative stands for 1/F
negatives, in expectation exactly the ones dropped), so the booster's gradients, hessians, leaf
values and hessian-based limits (min_sum_hessian_in_leaf) are those of the whole population in
expectation, and its raw probabilities estimate the population's. The validation period (early
stopping, calibrator, alert threshold) and every evaluation period are never thinned, so the
calibrator is fitted on the population as it is; it would also absorb a pure intercept shift,
which is why the test (tests/test_pooled_training.py) checks the booster's own probabilities:
with the weights their O/E on the test period is within noise of 1 and of the unthinned model's,
without them it is far below 1. `min_data_in_leaf` counts kept rows, not weights: at F = 0.1 a
leaf of 200 rows stands for about 2,000 population rows of negatives, so the specs' search ranges
mean somewhat coarser leaves on a thinned table.

The draw that keeps a negative is a hash of (subject_id, prediction_time, seed): the same rows are
kept whatever engine, partitioning or region subset computes it, so a leave-one-region-out fold's
training rows are exactly the pooled table's rows of its regions.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from base.atomic import atomic_write_text
from base.errors import SoteRiskError
from training.spec import ExperimentSpec
from training.splits import ResolvedPeriod, Split, check_period

REGION = "region"
WEIGHT = "sample_weight"
Progress = Callable[[str], None]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class PooledTrainingError(SoteRiskError):
    """A pooled table or fold that cannot be trained on (a region missing, too few regions, a bad fraction)."""


def check_fraction(fraction: float) -> float:
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1 and math.isfinite(fraction)):
        raise PooledTrainingError(f"--negatives-fraction must be in (0, 1] (got {fraction!r})")
    return float(fraction)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 (wrapping arithmetic): a well-mixed 64-bit hash."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def keep_draw(subject_id, prediction_time, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per row, a pure function of (subject_id, prediction_time, seed).

    A row is kept as a negative when its draw < F: seeded, reproducible, independent of row order
    and of which other rows are present. prediction_time is taken to the microsecond since 1970."""
    ids = np.asarray(subject_id, dtype=np.int64).astype(np.uint64)
    times = pd.to_datetime(pd.Series(prediction_time))
    if isinstance(times.dtype, pd.DatetimeTZDtype):  # a session time zone's stamp: the naive UTC time
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    times = times.astype("datetime64[us]").to_numpy().astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(ids + np.uint64((seed * _GOLDEN) & _MASK64))
        x = _mix(x ^ (times + np.uint64(_GOLDEN)))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def training_weights(label, draw, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(kept, weight) for training-period rows: every positive kept at weight 1; a negative kept
    when its draw < fraction, at weight 1 / fraction."""
    label = np.asarray(label, dtype=bool)
    kept = label | (np.asarray(draw, dtype=float) < fraction)
    weight = np.where(label, 1.0, 1.0 / fraction)
    return kept, weight[kept]


@dataclass
class PooledTable:
    """Usable rows of every region's three periods, each frame with a `region` column and sorted
    by (region, subject_id, prediction_time); the training period thinned (train_weight per row)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    train_weight: np.ndarray
    periods: tuple[ResolvedPeriod, ResolvedPeriod, ResolvedPeriod]
    anchor: pd.Timestamp
    regions: tuple[str, ...]
    negatives_fraction: float
    seed: int
    pipeline_version: str
    span: str  # the index dates of the table, for messages
    # training-period usable rows and outcomes per region before thinning
    train_rows_before: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        """What the MLflow run and the model's metadata record about the pooling."""
        return {"pooled_regions": ",".join(self.regions), "negatives_fraction": self.negatives_fraction,
                "negatives_seed": self.seed, "train_rows_before_thinning": int(sum(self.train_rows_before.values())),
                "train_rows_kept": len(self.train)}


def _rows_of(frame: pd.DataFrame, regions: Sequence[str]) -> np.ndarray:
    return frame[REGION].astype(str).isin(list(regions)).to_numpy()


def fold_split(table: PooledTable, spec: ExperimentSpec, train_regions: Sequence[str],
               test_regions: Sequence[str]) -> tuple[Split, np.ndarray]:
    """(Split, training weights): train and validation rows of `train_regions`, test rows of
    `test_regions`; each period checked as split_table checks it (both classes present)."""
    unknown = [r for r in (*train_regions, *test_regions) if r not in table.regions]
    if unknown:
        raise PooledTrainingError(f"no region(s) {', '.join(unknown)} in the pooled table (regions: {', '.join(table.regions)})")
    if not train_regions or not test_regions:
        raise PooledTrainingError("a fold needs at least one training and one test region")
    keep = _rows_of(table.train, train_regions)
    train = table.train.loc[keep].reset_index(drop=True)
    validation = table.validation.loc[_rows_of(table.validation, train_regions)].reset_index(drop=True)
    test = table.test.loc[_rows_of(table.test, test_regions)].reset_index(drop=True)
    for part, period in zip((train, validation, test), table.periods):
        check_period(part, period, spec, table.span, table.anchor)
    return Split(train, validation, test, table.periods, table.anchor), table.train_weight[keep]


def fingerprint(split: Split, spec: ExperimentSpec, weight: np.ndarray, version: str, about: str) -> str:
    """A content hash of the rows, labels and weights a fold trains and is judged on (names its study)."""
    digest = hashlib.sha256()
    for part in (split.train, split.validation, split.test):
        keys = part[["subject_id", "prediction_time", spec.label_column]].copy()
        keys[spec.label_column] = keys[spec.label_column].astype("boolean").astype("Int8")
        digest.update(pd.util.hash_pandas_object(keys, index=False).values.tobytes())
    digest.update(np.ascontiguousarray(weight, dtype=np.float64).tobytes())
    digest.update(f"{version}|{about}".encode())
    return digest.hexdigest()


# the figures `evaluate` prints, with their intervals, one row per region or fold
FIGURES = ("test_rows", "test_events", "test_auroc", "test_auroc_ci_low", "test_auroc_ci_high", "baseline_auroc",
           "gain_over_baseline", "gain_over_baseline_ci_low", "gain_over_baseline_ci_high", "oracle_auroc",
           "test_observed_expected", "test_observed_expected_ci_low", "test_observed_expected_ci_high",
           "test_calibration_slope", "test_calibration_slope_ci_low", "test_calibration_slope_ci_high",
           "test_customer_auroc", "test_customer_auroc_ci_low", "test_customer_auroc_ci_high")


def figures_row(metrics: dict[str, float], **about: object) -> dict[str, object]:
    return {**about, **{k: float(metrics.get(k, float("nan"))) for k in FIGURES}}


def per_region_evaluation(result, spec: ExperimentSpec, table: PooledTable, truth: pd.DataFrame | None,  # noqa: ANN001
                          progress: Progress) -> pd.DataFrame:
    """The trained pooled model's test-period figures in each region (baselines fitted on the
    same pooled, weighted training rows as the model), each logged as a nested `evaluate` run."""
    import mlflow

    from training import tracking
    from training.report import evaluation_report

    rows = []
    threshold = float(result.model.metadata["threshold"])
    for region in table.regions:
        split, weight = fold_split(table, spec, table.regions, [region])
        progress(f"{spec.problem}: evaluating on {region}'s test period ({len(split.test):,} rows)")
        with mlflow.start_run(experiment_id=tracking.experiment_id(spec.problem), nested=True,
                              run_name=f"evaluate-{spec.problem}-{region}"):
            mlflow.set_tags({"problem": spec.problem, "kind": "evaluate-region", "region": region,
                             "model_version": result.model_version, "train_run_id": result.run_id})
            with tempfile.TemporaryDirectory() as tmp:
                report = evaluation_report(result.model, spec, split, truth, Path(tmp), threshold, train_weight=weight)
                mlflow.log_metrics(tracking.clean_metrics(report.metrics))
        rows.append(figures_row(report.metrics, region=region, trained_on=",".join(table.regions)))
    return pd.DataFrame(rows)


def train_pooled(spec: ExperimentSpec, table: PooledTable, truth: pd.DataFrame | None, *,
                 progress: Progress) -> tuple[object, pd.DataFrame]:
    """Train on every region's rows, register as `challenger`, then evaluate region by region.
    Returns (TrainResult, per-region figures); the figures are also the run's per_region.csv."""
    import mlflow

    from training.pipeline import train_on_split

    split, weight = fold_split(table, spec, table.regions, table.regions)
    about = table.describe()
    data_hash = fingerprint(split, spec, weight, table.pipeline_version, str(about))
    result = train_on_split(spec, split, version=table.pipeline_version, data_hash=data_hash, truth=truth,
                            train_weight=weight, extra_params=about, extra_tags={"pooled": "yes"}, progress=progress)
    with mlflow.start_run(run_id=result.run_id):
        per_region = per_region_evaluation(result, spec, table, truth, progress)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "per_region.csv"
            per_region.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
    return result, per_region


def region_folds(table: PooledTable, held_out: Sequence[str] | None = None) -> list[tuple[tuple[str, ...], str]]:
    """Leave-one-region-out folds: (training regions, held-out region) for each region (or the chosen ones)."""
    if len(table.regions) < 2:
        raise PooledTrainingError(f"leave-one-region-out needs at least 2 regions (the folder holds {len(table.regions)})")
    chosen = list(held_out) if held_out else list(table.regions)
    return [(tuple(r for r in table.regions if r != region), region) for region in chosen]


def train_fold(spec: ExperimentSpec, table: PooledTable, truth: pd.DataFrame | None, train_regions: Sequence[str],
               test_region: str, *, kind: str, progress: Progress) -> dict[str, object]:
    """One fold as a nested MLflow run (no model registered): trained on `train_regions`' training
    and validation periods, judged on `test_region`'s test period. Returns its figures row."""
    from training.pipeline import train_on_split

    if test_region in train_regions:
        raise PooledTrainingError(f"fold tests on {test_region}, which it also trains on")
    split, weight = fold_split(table, spec, train_regions, [test_region])
    about = {**table.describe(), "pooled_regions": ",".join(train_regions), "held_out_region": test_region,
             "train_rows_before_thinning": int(sum(table.train_rows_before.get(r, 0) for r in train_regions)),
             "train_rows_kept": len(split.train)}
    data_hash = fingerprint(split, spec, weight, table.pipeline_version, str(about))
    result = train_on_split(spec, split, version=table.pipeline_version, data_hash=data_hash, truth=truth,
                            train_weight=weight, register=False, nested=True,
                            run_name=f"{kind}-{spec.problem}-{test_region}-from-{len(train_regions)}",
                            extra_params=about, extra_tags={"kind": kind, "held_out_region": test_region}, progress=progress)
    return figures_row(result.metrics, held_out=test_region, trained_on=",".join(train_regions),
                       train_regions=len(train_regions), train_rows=len(split.train),
                       train_events=int(split.train[spec.label_column].astype(bool).sum()),
                       validation_auroc=float(result.model.metadata["validation_auroc"]), run_id=result.run_id)


def leave_one_region_out(spec: ExperimentSpec, table: PooledTable, truth: pd.DataFrame | None, *,
                         held_out: Sequence[str] | None = None, progress: Progress) -> tuple[str, pd.DataFrame]:
    """Every fold of region_folds under one parent MLflow run `loro-<problem>`; returns (parent
    run id, one row per held-out region). The table is also logged as the parent's loro.csv."""
    import mlflow

    from training import tracking

    tracking.configure(None)
    rows = []
    with mlflow.start_run(experiment_id=tracking.experiment_id(spec.problem), run_name=f"loro-{spec.problem}") as parent:
        mlflow.set_tags({"problem": spec.problem, "kind": "loro"})
        mlflow.log_params({k: v for k, v in table.describe().items() if k != "train_rows_kept"})
        for train_regions, region in region_folds(table, held_out):
            progress(f"{spec.problem}: fold {region} (trained on {', '.join(train_regions)})")
            rows.append(train_fold(spec, table, truth, train_regions, region, kind="loro", progress=progress))
        frame = pd.DataFrame(rows)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "loro.csv"
            frame.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
    return parent.info.run_id, frame


def interval(row: dict, key: str, digits: int = 3, signed: bool = False) -> str:
    value, low, high = (row.get(k, float("nan")) for k in (key, f"{key}_ci_low", f"{key}_ci_high"))
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"{form.format(value)} [{form.format(low)}, {form.format(high)}]"


def table_lines(frame: pd.DataFrame, label: str) -> list[str]:
    """A markdown table of figures rows: each figure with its 95 % customer-bootstrap interval."""
    lines = [f"| {label} | trained on | test rows | outcomes | AUROC [95% CI] | best baseline | gain [95% CI] | "
             "oracle | O/E [95% CI] | slope [95% CI] |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in frame.to_dict("records"):
        lines.append(
            f"| {row.get(label, '')} | {row.get('trained_on', '')} | {int(row['test_rows']):,} | {int(row['test_events']):,} | "
            f"{interval(row, 'test_auroc')} | {row['baseline_auroc']:.3f} | {interval(row, 'gain_over_baseline', signed=True)} | "
            f"{row['oracle_auroc']:.3f} | {interval(row, 'test_observed_expected', 2)} | "
            f"{interval(row, 'test_calibration_slope', 2)} |")
    return lines


def write_report(frame: pd.DataFrame, out: str | os.PathLike[str], title: str, label: str, notes: Sequence[str] = ()) -> tuple[Path, Path]:
    """OUT.csv (every figure, full precision) and OUT.md (the table, the title and the notes), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = atomic_write_text(out.with_suffix(".csv"), frame.to_csv(index=False))
    text = "\n".join([f"# {title}", "", *table_lines(frame, label), "", *[f"- {n}" for n in notes], ""])
    md = atomic_write_text(out.with_suffix(".md"), text)
    return csv, md
