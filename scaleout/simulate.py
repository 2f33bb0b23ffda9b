"""`simulate --regions N`: several regions into one multi-region dataset, one Spark task a region.

Each task runs the single-region simulator (synthetic.simulate) with the region's parameter set,
seed and subject id offset, and writes DATA/region=<name>/ atomically (synthetic.io); the driver
writes DATA/regions.json last, after every region is in place. A failed or retried task leaves
no half region: its folder appears whole or not at all, and without the manifest the dataset
does not read as finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from data_contracts.regions import DEFAULT_REGION
from scaleout.layout import (SUBJECT_ID_STRIDE, LayoutError, RegionEntry, check_region_name, dataset_manifest,
                             region_folder, write_dataset_manifest)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class RegionPlan:
    """What one task simulates."""

    name: str
    parameters: str  # synthetic/regions.py parameter set
    seed: int
    subject_id_offset: int
    customers: int
    years: int
    truth: bool = True


def plan_regions(n: int, *, customers: int, years: int, seed: int, parameter_sets: Sequence[str] | None = None,
                 truth: bool = True) -> list[RegionPlan]:
    """N regions with seeds seed, seed+1, ...; region i's ids offset by i x SUBJECT_ID_STRIDE.

    Without parameter_sets every region is Eksote's (the external regions are held out for the
    final report, docs/PROTOCOL.md); with them, one name per region. Names: `<set>-<seed>`."""
    from synthetic.regions import region_config

    if n < 1:
        raise LayoutError(f"--regions must be at least 1 (got {n})")
    sets = list(parameter_sets) if parameter_sets else [DEFAULT_REGION] * n
    if len(sets) != n:
        raise LayoutError(f"--region-sets names {len(sets)} parameter set(s) for {n} regions (one a region)")
    plans = []
    for i, parameters in enumerate(sets):
        region_config(parameters, customers=1)  # an unknown parameter set names the known ones, before any work
        plans.append(RegionPlan(name=check_region_name(f"{parameters}-{seed + i}"), parameters=parameters, seed=seed + i,
                                subject_id_offset=i * SUBJECT_ID_STRIDE, customers=customers, years=years, truth=truth))
    return plans


def simulate_region(plan: RegionPlan, root: str) -> RegionEntry:
    """One task: simulate the region and write DATA/region=<name>/ atomically. Runs on an executor."""
    from synthetic.io import write_simulated
    from synthetic.regions import region_config
    from synthetic.simulate import simulate

    config = region_config(plan.parameters, customers=plan.customers, years=plan.years, seed=plan.seed,
                           compute_truth=plan.truth, subject_id_offset=plan.subject_id_offset)
    dataset = simulate(config)
    write_simulated(dataset, Path(root) / region_folder(plan.name))
    return RegionEntry(name=plan.name, parameters=plan.parameters, seed=plan.seed, subject_id_offset=plan.subject_id_offset,
                       customers=int(len(dataset.customers)), events=int(len(dataset.events)))


def simulate_regions(spark: "SparkSession", plans: Sequence[RegionPlan], out: str | os.PathLike[str]) -> list[RegionEntry]:
    """Simulate every plan as one Spark task into OUT/region=<name>/, then write OUT/regions.json.

    OUT must not exist or be empty. On a cluster OUT must be on storage every executor sees."""
    from base.atomic import check_output

    root = check_output(out).absolute()
    dataset_manifest(RegionEntry(p.name, p.parameters, p.seed, p.subject_id_offset, 0, 0) for p in plans)  # unique names, before work
    root.mkdir(parents=True, exist_ok=True)
    where = str(root)
    entries = (spark.sparkContext.parallelize(list(plans), len(plans))
               .map(lambda plan: simulate_region(plan, where))
               .collect())
    years = {p.years for p in plans}
    write_dataset_manifest(root, dataset_manifest(entries, source="synthetic", years=years.pop() if len(years) == 1 else None))
    return entries
