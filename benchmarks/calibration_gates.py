"""Sizing the calibration gates on validation data: how wide are the 95 % customer-bootstrap
intervals of observed / expected and of the calibration slope for a perfectly calibrated
predictor, the simulator's true risk, on each problem's validation period?

    .venv/bin/python benchmarks/calibration_gates.py --data HOME/features --dataset HOME/data [--samples 500]

The gates (training/promotion.py) pass a model only when each interval lies inside the spec's
band. A band narrower than the interval a perfect predictor has at the region's size fails every
model; so the bands in experiments/*.yaml are at least this wide, plus room for the calibration
drift between the validation period (where the calibrator is fitted) and the test period. Only
validation periods are read: a gate sized on test-period figures would be fitted to the test.

Measured 2026-12-06 on the region (130,000 residents, seed 42, 5-year extract; 1,000 resamples),
the true risk's validation intervals, O/E and slope:
  acute-hospitalisation       2,014 outcomes (1,215 customers)  O/E [0.950, 1.045]  slope [0.945, 1.045]
  children-hospitalisation      401 outcomes (193 customers)    O/E [0.760, 1.023]  slope [0.755, 1.063]
  depression-hospitalisation  1,204 outcomes (530 customers)    O/E [0.936, 1.110]  slope [0.911, 1.027]
  elderly-homecare_failure    1,438 outcomes (467 customers)    O/E [0.881, 1.050]  slope [0.914, 1.119]
  elderly-hospitalisation     4,324 outcomes (1,784 customers)  O/E [0.985, 1.070]  slope [0.949, 1.029]
Within about 12 % of 1 for the common outcomes, hence bands of 1.25 (O/E) and 0.7-1.4 (slope);
the children's reach 0.76, below a 1.25 band's 0.8, hence 1.5 and 0.5-2.0 for them. On the
demo's region (20,000 residents, seed 42) the truth itself leaves some bands (depression O/E
[0.902, 1.323], children slope [0.494, 1.094], homecare_failure O/E [0.793, 1.231]): a region
that small cannot show calibration for those problems, and the demo forces them and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="features folder")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset folder with truth/risk.parquet")
    parser.add_argument("--samples", type=int, default=500, help="bootstrap resamples")
    parser.add_argument("--problem", action="append", help="limit to these problems")
    args = parser.parse_args()

    from training.data import read_feature_table, read_truth
    from training.evaluate import bootstrap_calibration_ci, calibration_slope, observed_expected
    from training.splits import split_table
    from training.spec import list_problems, load_spec

    print("problem | validation rows / customers / outcomes (customers with one) | prevalence | "
          "true risk's O/E [95 % interval] | slope [95 % interval] | gates: O/E band, slope band")
    for problem in args.problem or list_problems():
        spec = load_spec(problem)
        part = split_table(read_feature_table(args.data, spec), spec).validation
        truth = read_truth(args.dataset, spec)
        if truth is None:
            raise SystemExit(f"{args.dataset}: no truth for {problem}")
        merged = part[["subject_id", "prediction_time", spec.label_column]].merge(
            truth.astype({"prediction_time": "datetime64[us]"}), on=["subject_id", "prediction_time"], how="left")
        covered = merged["true_probability"].notna().to_numpy()
        y = merged[spec.label_column].astype(bool).to_numpy()[covered]
        p = merged["true_probability"].to_numpy(float)[covered]
        ids = merged["subject_id"].to_numpy()[covered]
        ci = bootstrap_calibration_ci(ids, y, p, args.samples, spec.seed)
        with_outcome = len(np.unique(ids[y]))
        gates = spec.gates
        print(f"{problem} | {len(y):,} / {len(np.unique(ids)):,} / {int(y.sum()):,} ({with_outcome:,}) | {y.mean():.4f} | "
              f"{observed_expected(y, p):.3f} [{ci['observed_expected'][0]:.3f}, {ci['observed_expected'][1]:.3f}] | "
              f"{calibration_slope(y, p):.3f} [{ci['calibration_slope'][0]:.3f}, {ci['calibration_slope'][1]:.3f}] | "
              f"[{1 / gates.max_oe_ratio:.3f}, {gates.max_oe_ratio:.3f}], "
              f"[{gates.min_calibration_slope:.2f}, {gates.max_calibration_slope:.2f}]"
              + (f" (truth covers {covered.mean():.1%} of the rows)" if not covered.all() else ""))


if __name__ == "__main__":
    main()
