"""The command line's side of pooled training: `train` and `evaluate --leave-one-region-out` on a
multi-region features folder (scaleout/pooled.py builds the table on Spark, training/pooled.py
trains on it). Called by sote_risk/commands/training.py; heavy imports inside the functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import typer

from base.errors import SoteRiskError
from sote_risk.status import status_progress

DEFAULT_FRACTION = 0.25
FRACTION_HELP = ("Multi-region features only: keep this share of the training period's negatives (a seeded hash of "
                 "subject and index date; every positive kept), each weighted 1/F so probabilities stay right "
                 f"(docs/POOLED.md). Validation and test are never thinned. Default {DEFAULT_FRACTION}.")


def check_single_region_options(negatives_fraction: float | None, leave_one_region_out: bool = False) -> None:
    """The pooled options mean nothing on a single-region folder: refuse them in one line."""
    if negatives_fraction is not None:
        raise SoteRiskError("--negatives-fraction applies to a multi-region features folder only "
                            "(FEATURES/features.json of format sote-risk/multi-region-features/1)")
    if leave_one_region_out:
        raise SoteRiskError("--leave-one-region-out needs a multi-region features folder (from "
                            "`sote-risk features build --engine spark`); this one holds a single region")


def dataset_for(features_dir: Path, dataset: Path | None) -> Path | None:
    """The multi-region dataset whose truth gives the oracle: --dataset, else the one the
    features manifest names as its source (when it is still there)."""
    from scaleout.layout import is_multi_region, read_features_manifest

    if dataset is not None:
        if not is_multi_region(dataset):
            raise SoteRiskError(f"--dataset {dataset}: not a multi-region dataset (no regions.json); pooled training "
                                "reads each region's truth/ from one")
        return dataset
    source = read_features_manifest(features_dir).get("source") or {}
    named = source.get("data") if isinstance(source, dict) else None
    return Path(named) if named and is_multi_region(named) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def region_line(row: dict, label: str) -> str:
    from training.pooled import interval

    return (f"  {label} {row.get(label)}: {int(row['test_rows']):,} test rows, {int(row['test_events']):,} outcomes; AUROC "
            f"{interval(row, 'test_auroc')} baseline {row['baseline_auroc']:.3f} gain {interval(row, 'gain_over_baseline', signed=True)} "
            f"oracle {row['oracle_auroc']:.3f} O/E {interval(row, 'test_observed_expected', 2)} "
            f"slope {interval(row, 'test_calibration_slope', 2)}")


def train_pooled_problems(specs, features_dir: Path, dataset: Path | None, negatives_fraction: float | None,  # noqa: ANN001
                          master: str, console, echo: Callable[[str], None] = typer.echo) -> list[str]:
    """`train` on a multi-region folder: one Spark session; per problem the pooled table, the
    registered model and its figures in each region. Returns the failed problems."""
    from sote_risk.memory import release_memory
    from sote_risk.spark_options import spark_settings
    from scaleout.pooled import build_pooled_table, read_pooled_truth
    from scaleout.session import require_java, spark_session
    from training.pooled import check_fraction, train_pooled

    fraction = check_fraction(DEFAULT_FRACTION if negatives_fraction is None else negatives_fraction)
    dataset_dir = dataset_for(features_dir, dataset)
    require_java()
    failed = []
    with spark_session(spark_settings(master)) as spark:
        for spec in specs:
            release_memory()
            started = time.perf_counter()
            try:
                with status_progress(console, f"{spec.problem}: building the pooled table on Spark") as progress:
                    table = build_pooled_table(spark, features_dir, spec, negatives_fraction=fraction)
                    progress(f"{spec.problem}: pooled table of {', '.join(table.regions)}: {len(table.train):,} training rows "
                             f"kept of {sum(table.train_rows_before.values()):,} (negatives at F={fraction:g}, weight "
                             f"{1 / fraction:g}), {len(table.validation):,} validation, {len(table.test):,} test")
                    truth = read_pooled_truth(dataset_dir, spec, table.regions)
                    result, per_region = train_pooled(spec, table, truth, progress=progress)
            except SoteRiskError as error:
                failed.append(spec.problem)
                echo(f"{spec.problem}: failed: {_one_line(str(error))}")
                continue
            m = result.metrics
            from training.pooled import figures_row

            row = figures_row(m, pooled="all regions")
            echo(f"{spec.problem}: trained version {result.model_version} (challenger) on {len(table.regions)} regions "
                 f"(negatives at F={fraction:g}, weight {1 / fraction:g}) in {time.perf_counter() - started:.0f} s; pooled test period:")
            echo(region_line(row, "pooled"))
            for region_row in per_region.to_dict("records"):
                echo(region_line(region_row, "region"))
    return failed


def leave_one_region_out(specs, features_dir: Path, dataset: Path | None, negatives_fraction: float | None,  # noqa: ANN001
                         master: str, held_out: list[str] | None, out: Path | None, console,
                         echo: Callable[[str], None] = typer.echo) -> None:
    """`evaluate --leave-one-region-out`: per problem, one fold per region, the table printed and
    written to OUT/loro-<problem>.csv and .md (default: the home's reports/)."""
    from base.settings import home
    from scaleout.pooled import build_pooled_table, read_pooled_truth
    from scaleout.session import require_java, spark_session
    from sote_risk.spark_options import spark_settings
    from training.pooled import check_fraction, leave_one_region_out as run_folds, write_report

    fraction = check_fraction(DEFAULT_FRACTION if negatives_fraction is None else negatives_fraction)
    dataset_dir = dataset_for(features_dir, dataset)
    out = out or (home().root / "reports")
    require_java()
    with spark_session(spark_settings(master)) as spark:
        for spec in specs:
            started = time.perf_counter()
            with status_progress(console, f"{spec.problem}: building the pooled table on Spark") as progress:
                table = build_pooled_table(spark, features_dir, spec, negatives_fraction=fraction)
                truth = read_pooled_truth(dataset_dir, spec, table.regions)
                run_id, frame = run_folds(spec, table, truth, held_out=held_out, progress=progress)
            notes = [f"{spec.problem}: each fold trained on the other regions' training period (negatives at F={fraction:g}, "
                     f"weight {1 / fraction:g}, seed {table.seed}) and validation period, tested on the held-out region's "
                     f"test period {table.periods[2].describe()}; {spec.search.trials} Optuna trial(s) a fold",
                     "intervals: 95 % customer bootstrap (gain: paired, model minus the best baseline on the same resamples)",
                     f"MLflow parent run {run_id}", f"wall time {time.perf_counter() - started:.0f} s"]
            csv, md = write_report(frame, out / f"loro-{spec.problem}", f"Leave-one-region-out: {spec.problem}", "held_out", notes)
            echo(f"== {spec.problem}: leave-one-region-out over {', '.join(table.regions)}")
            for row in frame.to_dict("records"):
                echo(region_line(row, "held_out"))
            echo(f"wrote {csv} and {md}")
