"""Monitoring a multi-region features folder: each region is monitored as its own home would be.

`sote-risk monitor` on one region reads `<features>/<segment>.parquet`; on a multi-region folder
(FEATURES/region=<name>/segment=<segment>/part-*.parquet, scaleout/layout.py) it runs the same
monitor (training/monitor_run.py) once per region and problem, on that region's rows only, read
part by part with pandas (layout.read_segment: the pandas engine's dtypes, rows in its order, so a
region's figures are those of the single-region monitor on that region's pandas-built folder).
The served models are the home's champions, one per problem for every region, as `run --engine
spark` scores with them.

No Spark here: monitoring reads only the columns the models need, one region at a time on the
driver, and keeps nothing of a region once the next begins, so memory is the largest region's
(docs/SCALE.md, "Monitoring by region": 4 regions of 10,000 residents peaked at ~0.95 GB, as
one); time is the sum of the regions'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from scaleout.layout import (REGION_KEY, LayoutError, read_features_manifest, read_segment, region_folder,
                             segment_folder, segment_parts)
from training.monitor_run import SegmentTables, file_identity
from training.spec import ExperimentSpec


def monitored_regions(features_dir: Path, regions: Sequence[str] | None = None) -> list[str]:
    """The regions to monitor: every region of the folder's manifest, or the chosen ones (in the
    order given; an unknown name is refused, naming the regions there are)."""
    known = list(read_features_manifest(features_dir)["regions"])
    if regions is None:
        return known
    chosen = list(dict.fromkeys(regions))
    if not chosen:
        raise LayoutError("--regions names no region (give names as in the features folder's features.json)")
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise LayoutError(f"{features_dir}: no region(s) {', '.join(unknown)} (regions: {', '.join(known)})")
    return chosen


class RegionTables(SegmentTables):
    """One region's segment tables of a multi-region features folder, for monitor_registered:
    read from the region's part files, columns read once per segment across problems."""

    def __init__(self, features_dir: Path, region: str):
        super().__init__(features_dir)
        self.region = region

    def where(self, segment: str) -> Path:
        return self.features_dir / region_folder(self.region) / segment_folder(segment)

    def counts_folder(self) -> Path:
        return self.features_dir / region_folder(self.region)  # its code_months/ parts

    def schema(self, segment: str) -> set[str] | None:
        import pyarrow.parquet as pq

        parts = segment_parts(self.features_dir, segment, self.region)
        return set(pq.read_schema(parts[0]).names) if parts else None

    def read_columns(self, spec: ExperimentSpec, columns: list[str]) -> pd.DataFrame:
        from training.data import FeatureTableError, check_feature_table, columns_to_read

        where = self.where(spec.segment)
        available = self.schema(spec.segment)
        if available is None:
            raise FeatureTableError(f"{where}: no part-*.parquet files: region {self.region} has no feature table for "
                                    f"segment {spec.segment!r}")
        wanted = columns_to_read(spec, columns, available, str(where))
        frame = read_segment(self.features_dir, spec.segment, regions=[self.region], columns=wanted).drop(columns=REGION_KEY)
        check_feature_table(frame, spec, str(where))
        return frame

    def identity(self, segment: str) -> str | None:
        parts = segment_parts(self.features_dir, segment, self.region)
        return file_identity(parts) if parts else None

    def subjects(self) -> np.ndarray:
        """The region's customers: every subject id in its segment tables (only that column read)."""
        manifest = read_features_manifest(self.features_dir)
        ids = [pd.read_parquet(part, columns=["subject_id"])["subject_id"].to_numpy()
               for segment in manifest["segments"] for part in segment_parts(self.features_dir, segment, self.region)]
        return np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)
