"""Segment cost view benchmark at region scale (issue 18: the whole region's view in <= 10 s).

    .venv/bin/python benchmarks/bench_costs.py [--data DIR] [--year Y] [--repeats 3]

Reads a dataset folder read-only (default: /work/region-s42/data, the 130,000-resident region,
when it is there; else it simulates 20,000 residents into a temporary folder), then times:
- `read`: the histories from Parquet, as `sote-risk costs` reads them without a cache (the
  service holds them already; with the home's cache a second command maps them in well under a second);
- `view`: costs.cost_view of the whole region for the year (segments, service areas, concentration,
  production models), the page's and the command's computation;
- `view + group`: the same with the heart-failure-50-65 preset;
- `page`: rendering /ui/costs's HTML (fi) from a computed view.
Prints one line per step (median of --repeats) and the peak memory; exit 1 when the view of the
whole region (read + view + group) takes more than 10 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGION = Path("/work/region-s42/data")
TARGET_S = 10.0


def timed(step, repeats: int):  # noqa: ANN001, ANN201
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--year", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=None,
                        help="a home's cache folder: also time the read a second command makes from it (written first if empty)")
    args = parser.parse_args()

    from costs import cost_view, make_group
    from scoring.history import load_history
    from serving.cost_page import cost_page

    data = args.data or (REGION if (REGION / "dataset.json").exists() else None)
    scratch = None
    if data is None:
        from data_contracts.io import write_dataset
        from synthetic.config import SimulatorConfig
        from synthetic.simulate import simulate

        scratch = tempfile.TemporaryDirectory(prefix="bench-costs-")
        data = Path(scratch.name) / "data"
        simulated = simulate(SimulatorConfig(customers=20_000, seed=42, years=5))
        write_dataset(_dataset(simulated), data)
    read_s, store = timed(lambda: load_history(data), 1)
    print(f"read: {read_s:.2f} s ({store.events:,} events, {store.history.n_customers:,} customers) from {data}")
    if args.cache is not None:
        load_history(data, args.cache)  # writes the cache when it has nothing for these files
        cached_s, _ = timed(lambda: load_history(data, args.cache), args.repeats)
        print(f"read from the cache ({args.cache}): {cached_s:.2f} s")
    view_s, view = timed(lambda: cost_view(store.history, store.start, store.end, args.year), args.repeats)
    print(f"view: {view_s:.2f} s (year {view.year}, {int(view.segments.loc['all', 'customers']):,} customers, "
          f"EUR {view.total_cost:,.0f}; top 1/5/10%: "
          + "/".join(f"{100 * v:.1f}%" for v in view.concentration.loc['all', 'share_of_cost']) + ")")
    group = make_group(group="heart-failure-50-65")
    group_s, grouped = timed(lambda: cost_view(store.history, store.start, store.end, args.year, group), args.repeats)
    print(f"view + group: {group_s:.2f} s ({int(grouped.group.summary['customers']):,} heart failure patients aged 50-65, "
          f"EUR {grouped.group.summary['cost_eur']:,.0f})")
    page_s, _ = timed(lambda: cost_page(grouped, "fi", (store.start, store.end), "heart-failure-50-65"), args.repeats)
    print(f"page: {page_s:.3f} s")
    per_day = grouped.production["all_cost_per_day"].round(1).to_dict()
    print(f"cost per customer-day (all services): {per_day}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    total = read_s + group_s
    print(f"whole region, read + view + group: {total:.2f} s (target <= {TARGET_S:.0f} s); held data (the service): "
          f"{group_s:.2f} s; peak memory {peak:.2f} GB")
    if scratch is not None:
        scratch.cleanup()
    return 0 if total <= TARGET_S else 1


def _dataset(simulated):  # noqa: ANN001, ANN202
    from data_contracts.io import Dataset

    return Dataset(simulated.events, simulated.customers, simulated.metadata)


if __name__ == "__main__":
    sys.exit(main())
