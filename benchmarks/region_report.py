"""The region report (issue 15): every problem's registered model on its own region's test period and,
optionally, on other regions' test periods before and after recalibration. Prints markdown tables.

    python benchmarks/region_report.py --home /work/region-s42 --alias challenger \\
        [--external /work/ext-data/kainuu --external /work/ext-data/vantaa-kerava] [--recalibrate]

Own region: per-row AUROC and per-customer AUROC (highest risk before the first outcome) with
customer-bootstrap 95 % intervals, the gain over the best baseline with its paired interval,
O/E and calibration slope with intervals, the oracle (the simulator's true risk) AUROC, all from
`evaluate_registered` (the model's own spec and threshold; logged as an `evaluate` run).
External: the same figures from `evaluate_external`; with --recalibrate, `recalibrate` (a new
version `recalibrated-<region>` per problem) and its figures on the same test rows.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sote_risk.commands.training import interval_text as interval

PROBLEMS = ("acute-hospitalisation", "children-hospitalisation", "depression-hospitalisation",
            "elderly-homecare_failure", "elderly-hospitalisation")


HEADER = ("| problem | rows / outcomes | AUROC rows | AUROC customers | gain over baseline | O/E | slope | intercept | oracle |\n"
          "|---|---|---|---|---|---|---|---|---|")


def row(name: str, m: dict) -> str:
    return (f"| {name} | {int(m.get('test_rows', 0)):,} / {int(m.get('test_events', 0)):,} "
            f"| {interval(m, 'test_auroc')} | {interval(m, 'test_customer_auroc')} "
            f"| {interval(m, 'gain_over_baseline', signed=True)} | {interval(m, 'test_observed_expected', 2)} "
            f"| {interval(m, 'test_calibration_slope', 2)} | {interval(m, 'test_calibration_intercept', 2, signed=True)} "
            f"| {m.get('oracle_auroc', float('nan')):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--alias", default="challenger")
    parser.add_argument("--external", type=Path, action="append", default=[])
    parser.add_argument("--recalibrate", action="store_true")
    parser.add_argument("--problem", action="append", default=None)
    args = parser.parse_args()
    os.environ["SOTE_RISK_HOME"] = str(args.home)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from training.external import evaluate_external, recalibrate
    from training.pipeline import evaluate_registered

    problems = args.problem or list(PROBLEMS)
    print(f"## {args.home} ({args.alias}), own test period\n\n{HEADER}")
    for problem in problems:
        started = time.perf_counter()
        report = evaluate_registered(problem, args.home / "features", alias=args.alias, dataset_dir=args.home / "data")
        print(row(problem, report.metrics) + f" <!-- {time.perf_counter() - started:.0f} s -->", flush=True)
    for data in args.external:
        print(f"\n## external: {data}\n\n{HEADER}")
        for problem in problems:
            if args.recalibrate:
                result = recalibrate(problem, data, alias=args.alias)
                print(row(f"{problem} before", result.before.metrics), flush=True)
                print(row(f"{problem} after ({result.method}, v{result.version})", result.after.metrics), flush=True)
            else:
                print(row(problem, evaluate_external(problem, data, alias=args.alias).metrics), flush=True)


if __name__ == "__main__":
    main()
