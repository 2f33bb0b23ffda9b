"""Learning curve over regions: one held-out region's TEST-period figures from models pooled over
1, 2, ... of the other regions (issue 17: does the gain over the best baseline keep rising with
more regions, and where does it level off?).

    SOTE_RISK_HOME=... .venv/bin/python benchmarks/pooled_curve.py --features FEATURES_MULTI \\
        --problem children-hospitalisation --held-out eksote-45 --trials 5 --negatives-fraction 0.25

The pooled table is built once on Spark (scaleout/pooled.py); each point is a leave-one-region-out
style fold (training/pooled.train_fold: the training regions' training and validation periods,
negatives at F with weight 1/F, the spec's tuning with --trials, calibration on the training
regions' validation period) judged on the held-out region's test period, so the last point (all
other regions) is `evaluate --leave-one-region-out`'s fold for that region (same rows, same study:
run in the same home, it is not tuned twice). Training regions are taken in the manifest's order.
Nothing here is chosen on the test figures it prints: F and the trial budget are arguments.

Prints one line per point (figures with 95 % customer-bootstrap intervals, training rows and
outcomes, validation AUROC, wall time) and the Python process's peak resident memory; writes
OUT.csv and OUT.md. The MLflow runs sit under one parent run `curve-<problem>-<held-out>`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not an installed copy's


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=Path, required=True, help="a multi-region features folder")
    parser.add_argument("--dataset", type=Path, default=None, help="its multi-region dataset (truth for the oracle; "
                        "default: the one the features manifest names)")
    parser.add_argument("--problem", required=True)
    parser.add_argument("--held-out", required=True, help="the region whose test period judges every point")
    parser.add_argument("--sizes", default=None, help="comma-separated numbers of training regions (default 1..n-1)")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--negatives-fraction", type=float, default=0.25)
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--out", type=Path, default=None, help="report stem (default: HOME/reports/curve-<problem>-<held-out>)")
    args = parser.parse_args()

    import mlflow

    from base.errors import SoteRiskError
    from base.settings import home
    from scaleout.pooled import build_pooled_table, read_pooled_truth
    from scaleout.session import spark_session
    from sote_risk.commands.pooled import dataset_for, region_line
    from sote_risk.spark_options import spark_settings
    from training import tracking
    from training.pooled import train_fold, write_report
    from training.spec import load_spec

    import pandas as pd

    try:
        spec = load_spec(args.problem).with_trials(args.trials)
        started = time.perf_counter()
        with spark_session(spark_settings(args.master)) as spark:
            table = build_pooled_table(spark, args.features, spec, negatives_fraction=args.negatives_fraction)
        built = time.perf_counter() - started
        if args.held_out not in table.regions:
            sys.exit(f"error: no region {args.held_out} (regions: {', '.join(table.regions)})")
        others = [r for r in table.regions if r != args.held_out]
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(range(1, len(others) + 1))
        truth = read_pooled_truth(dataset_for(args.features, args.dataset), spec, table.regions)
        print(f"{spec.problem}: pooled table of {', '.join(table.regions)} built on Spark in {built:.0f} s: "
              f"{len(table.train):,} training rows kept of {sum(table.train_rows_before.values()):,} "
              f"(F={table.negatives_fraction:g}), {len(table.validation):,} validation, {len(table.test):,} test; "
              f"peak RSS {peak_gb():.1f} GB", flush=True)
        tracking.configure(None)
        rows = []
        with mlflow.start_run(experiment_id=tracking.experiment_id(spec.problem),
                              run_name=f"curve-{spec.problem}-{args.held_out}"):
            mlflow.set_tags({"problem": spec.problem, "kind": "curve", "held_out_region": args.held_out})
            for size in sizes:
                fold_started = time.perf_counter()
                row = train_fold(spec, table, truth, others[:size], args.held_out, kind="curve",
                                 progress=lambda message: None)
                row["seconds"] = round(time.perf_counter() - fold_started)
                rows.append(row)
                print(f"{size} region(s) {','.join(others[:size])}: {row['train_rows']:,} training rows, "
                      f"{row['train_events']:,} outcomes, validation AUROC {row['validation_auroc']:.3f}, "
                      f"{row['seconds']} s, peak RSS {peak_gb():.1f} GB", flush=True)
                print(region_line(row, "held_out"), flush=True)
    except SoteRiskError as error:
        sys.exit(f"error: {error}")
    frame = pd.DataFrame(rows)
    out = args.out or home().root / "reports" / f"curve-{spec.problem}-{args.held_out}"
    notes = [f"held-out region {args.held_out}: its test period {table.periods[2].describe()}; training regions in "
             f"manifest order; negatives at F={table.negatives_fraction:g} (weight {1 / table.negatives_fraction:g}); "
             f"{args.trials} Optuna trial(s) a point",
             "intervals: 95 % customer bootstrap (gain: paired, model minus the best baseline on the same resamples)",
             f"table built in {built:.0f} s; peak RSS of the Python process {peak_gb():.1f} GB"]
    csv, md = write_report(frame, out, f"Learning curve over regions: {spec.problem}, held out {args.held_out}",
                           "train_regions", notes)
    print(f"wrote {csv} and {md}")


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


if __name__ == "__main__":
    main()
