"""Benchmark: simulate the whole region (130,000 residents x 5 years, the default extract) with ground truth and write it.

    .venv/bin/python benchmarks/bench_simulate.py [--customers 130000] [--years 5] [--no-write]

Prints seconds (simulation, writing, total), event and truth row counts, and peak RSS of this
process (resource.getrusage). Budget: <= 120 s and <= 4 GB on a 2-core machine. The machine may be
shared: run the region size only a few times.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=130_000)
    parser.add_argument("--years", type=int, default=5)  # SimulatorConfig().years
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from synthetic.config import SimulatorConfig
    from synthetic.io import write_simulated
    from synthetic.simulate import simulate

    config = SimulatorConfig(customers=args.customers, years=args.years, seed=args.seed)
    t0 = time.perf_counter()
    dataset = simulate(config)
    t1 = time.perf_counter()
    if not args.no_write:
        with tempfile.TemporaryDirectory() as tmp:
            write_simulated(dataset, Path(tmp) / "region")
    t2 = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"customers at start  {args.customers:,} ({len(dataset.customers):,} incl. births and in-movers)")
    print(f"years               {args.years}")
    print(f"events              {len(dataset.events):,}")
    print(f"truth rows          {len(dataset.risk):,} risk, {len(dataset.latent):,} latent")
    print(f"simulate seconds    {t1 - t0:.1f}")
    print(f"write seconds       {t2 - t1:.1f}")
    print(f"total seconds       {t2 - t0:.1f}")
    print(f"peak RSS            {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
