"""The per-customer what-if checked against the simulator's counterfactual truth (issue 18, part 4).

    .venv/bin/python benchmarks/bench_whatif.py [--customers 40000] [--seed 1] [--at 2026-01-01] [--bootstrap 200]

Simulates the region with `whatif_month=--at` (the simulator then also states, for every resident
65+ or in home care, the true probability of an unplanned admission within 90 days as simulated
and had each intervention started that day: synthetic/truth.py, whatif_probabilities), learns the
three estimates from the simulated events exactly as `sote-risk evaluate-intervention --store`
does (training/whatif.py; the whole extract's trials), applies them to every candidate at --at by
the customer view's rules, and prints per intervention:
- how many customers are supported, and why the others are not;
- the supported customers grouped by decile of the estimated change in risk: mean estimated
  change, mean interval ends, mean true change (percentage points), and the same overall.

The baseline risk the estimate is applied to is the simulator's own probability as simulated (the
"true_probability" column), so the table checks the effect estimate alone; the served page applies
it to the model's calibrated risk, whose calibration training's gates and the model card report.
Held-out seeds and regions (docs/PROTOCOL.md) are refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD_OUT_SEED = 20261206


def run(customers: int, seed: int, at: dt.date, bootstrap: int, years: int = 5) -> dict:  # noqa: C901
    import pandas as pd

    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate
    from training.interventions import INTERVENTIONS, trial_rows
    from training.whatif import calibration_by_decile, estimate, population_whatifs

    if seed == HELD_OUT_SEED:
        raise SystemExit(f"seed {seed} is held out (docs/PROTOCOL.md)")
    started = time.perf_counter()
    ds = simulate(SimulatorConfig(customers=customers, seed=seed, years=years), whatif_month=at)
    start, end = pd.Timestamp(ds.metadata["extract_start"]), pd.Timestamp(ds.metadata["extract_end"])
    simulated = time.perf_counter()
    estimates = {}
    for name, iv in INTERVENTIONS.items():
        rows = trial_rows(ds.events, ds.customers, start, end, iv)
        estimates[name] = estimate(rows, iv, dataset_customers=len(ds.customers), dataset_events=len(ds.events),
                                   extract_start=start, extract_end=end, bootstrap=bootstrap, seed=0)
    estimated = time.perf_counter()
    truth = ds.whatif.assign(true_change=lambda f: f["true_probability_with"] - f["true_probability"])
    risk = truth.drop_duplicates("subject_id").set_index("subject_id")["true_probability"]
    found = population_whatifs(estimates, ds.events, ds.customers, risk, pd.Timestamp(at))
    found = found.merge(truth[["subject_id", "intervention", "true_change"]], on=["subject_id", "intervention"])
    applied = time.perf_counter()
    tables = {}
    for name in INTERVENTIONS:
        rows = found.loc[found["intervention"] == name]
        supported = rows.loc[rows["reason"].isna()]
        tables[name] = {"estimate": estimates[name], "reasons": rows["reason"].fillna("supported").value_counts(),
                        "deciles": calibration_by_decile(supported) if len(supported) else None}
    return {"tables": tables, "seconds": (simulated - started, estimated - simulated, applied - estimated),
            "candidates": len(risk)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--at", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1))
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    result = run(args.customers, args.seed, args.at, args.bootstrap)
    sim, est, app = result["seconds"]
    print(f"{args.customers:,} residents, seed {args.seed}, what-if at {args.at}: {result['candidates']:,} candidates "
          f"(65+ or home care); simulate {sim:.1f} s, estimates {est:.1f} s, applying {app:.1f} s")
    for name, table in result["tables"].items():
        e = table["estimate"]
        ratio = "-" if e.rate_ratio is None else f"{e.rate_ratio:.3f} [{e.rate_ratio_low:.3f}, {e.rate_ratio_high:.3f}]"
        print(f"\n{name}: rate ratio {ratio}, {e.matched:,} matched starters ({e.first_month:%m/%Y}-{e.last_month:%m/%Y})")
        print("  " + ", ".join(f"{reason} {count:,}" for reason, count in table["reasons"].items()))
        deciles = table["deciles"]
        if deciles is None:
            print("  no supported customer")
            continue
        print(f"  {'decile':>7}{'customers':>10}{'estimated':>11}{'low':>9}{'high':>9}{'true':>9}   (percentage points)")
        for row in deciles.itertuples():
            print(f"  {row.decile:>7}{row.customers:>10,}{100 * row.estimated:>+11.3f}{100 * row.low:>+9.3f}"
                  f"{100 * row.high:>+9.3f}{100 * row.true:>+9.3f}")
        overall = deciles.iloc[-1]
        inside = overall["low"] <= overall["true"] <= overall["high"]
        print(f"  population: true {100 * overall['true']:+.3f} within [{100 * overall['low']:+.3f}, "
              f"{100 * overall['high']:+.3f}]: {'yes' if inside else 'NO'}")


if __name__ == "__main__":
    main()
