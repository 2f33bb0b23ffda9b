"""Benchmark: train every problem with N Optuna trials and print seconds per problem and total.

    .venv/bin/python benchmarks/bench_train.py --data HOME/features [--trials 30] [--dataset HOME/data]
    .venv/bin/python benchmarks/bench_train.py --synthetic 20000 [--trials 30]
    .venv/bin/python benchmarks/bench_train.py --data F --dataset D --home /tmp/keep   # keep the registry

Prints the 1-minute load average before and after each problem: the machine is shared, so a
figure means little without it.

Target: all problems at region size (~130,000 residents) with 30 trials each in <= 15 minutes on
2 cores. With --data it trains on real feature tables (features/ output); with --synthetic N it
writes an elderly-segment table of N customers x 48 months (the test generator scaled up) and
trains elderly-hospitalisation only, to time the training loop before features exist.
Measured 2026-11-26 (5-year extract, temporal train / validation / test, 130,000 residents ->
150,939 customers): 427.7 s for all five problems x 30 trials, load average 2.0-2.8.
Runs in a throw-away SOTE_RISK_HOME (or --home, which must not be a real one) so no real registry is touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, help="features folder")
    parser.add_argument("--dataset", type=Path, help="dataset folder with truth/ (oracle metrics)")
    parser.add_argument("--synthetic", type=int, help="customers in a generated elderly table")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--problem", action="append", help="limit to these problems")
    parser.add_argument("--home", type=Path, help="keep MLflow/Optuna here instead of a throw-away folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SOTE_RISK_HOME"] = str(args.home or Path(tmp) / "home")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from training.pipeline import train_problem
        from training.spec import list_problems, load_spec

        features_dir, dataset_dir, problems = args.data, args.dataset, args.problem or list_problems()
        if args.synthetic:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from _training_data import synthetic_feature_table

            started = time.perf_counter()
            frame, truth = synthetic_feature_table(subjects=args.synthetic, months=48)
            features_dir = Path(tmp) / "features"
            features_dir.mkdir()
            frame.to_parquet(features_dir / "elderly.parquet")
            (Path(tmp) / "dataset" / "truth").mkdir(parents=True)
            truth.to_parquet(Path(tmp) / "dataset" / "truth" / "risk.parquet")
            dataset_dir = Path(tmp) / "dataset"
            problems = ["elderly-hospitalisation"]
            print(f"generated {len(frame):,} rows in {time.perf_counter() - started:.1f} s")
        if features_dir is None:
            parser.error("give --data or --synthetic")

        total = time.perf_counter()
        for problem in problems:
            started, load = time.perf_counter(), os.getloadavg()[0]
            result = train_problem(load_spec(problem).with_trials(args.trials), features_dir, dataset_dir=dataset_dir)
            m = result.metrics
            oracle = m.get("oracle_auroc", float("nan"))
            print(f"{problem}: {time.perf_counter() - started:.1f} s (load {load:.2f} -> {os.getloadavg()[0]:.2f}), "
                  f"{int(m['train_rows']):,} train rows, test_auroc {m['test_auroc']:.3f} "
                  f"(baseline {m['baseline_auroc']:.3f}, +{m['test_auroc'] - m['baseline_auroc']:.3f}; oracle {oracle:.3f}, "
                  f"ratio {m['test_auroc'] / oracle:.3f}, above-chance ratio {(m['test_auroc'] - 0.5) / (oracle - 0.5):.3f}), "
                  f"ece {m['test_ece']:.4f}, O/E {m['test_observed_expected']:.2f} slope {m['test_calibration_slope']:.2f}, at threshold: ppv {m['test_ppv']:.3f} sensitivity {m['test_sensitivity']:.3f} "
                  f"alert rate {m['test_alert_rate']:.4f}; calibration {result.model.metadata['calibration_method']}, "
                  f"{result.model.metadata['best_iteration']} rounds", flush=True)
        print(f"total: {time.perf_counter() - total:.1f} s for {len(problems)} problem(s) x {args.trials} trials "
              f"(load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
