"""The multi-region folders: what they hold, how to read their manifests, what must hold across them.

A **multi-region dataset** DATA/:

    DATA/regions.json                 the manifest (written last: a folder without it is unfinished)
    DATA/region=<name>/               one complete single-region dataset, exactly as `simulate` writes
        events.parquet, customers.parquet, dataset.json, truth/

so every single-region command works on one DATA/region=<name>/ unchanged, and Spark reads
DATA/region=*/events.parquet with `region` as a partition column. Subject ids are unique across
the regions (a national extract pseudonymises project-wide); `check_unique_subjects` refuses a
dataset whose regions share one.

A **multi-region features** folder FEATURES/:

    FEATURES/features.json            pipeline version, regions, source dataset, rows per region and segment
    FEATURES/region=<name>/segment=<segment>/part-<shard>.parquet

each part a slice of the pandas engine's <segment>.parquet for the customers of one shard,
written by the same writer (features.io.write_parquet: pandas dtypes and the pipeline version in
the file). `read_segment` returns one segment across all (or chosen) regions as pandas with a
`region` column and the pandas engine's dtypes.

Pure reading and checking, plus the two small manifest writers; no Spark here, so the
single-region code and tests can use it without a JVM.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from base.atomic import atomic_write_text
from base.errors import SoteRiskError

DATASET_MANIFEST = "regions.json"
DATASET_FORMAT = "sote-risk/multi-region-dataset/1"
FEATURES_MANIFEST = "features.json"
FEATURES_FORMAT = "sote-risk/multi-region-features/1"
REGION_KEY = "region"
SEGMENT_KEY = "segment"
# Region i of a dataset gets ids offset by i x this: room for 10 million pseudonyms a region
# (the simulator's pool of residents, arrivals and births at national-county size stays far below).
SUBJECT_ID_STRIDE = 10_000_000


class LayoutError(SoteRiskError):
    """A multi-region folder that is missing, unfinished or inconsistent."""


class SharedSubjectError(LayoutError):
    """Two regions of one dataset hold the same subject id."""


def region_folder(name: str) -> str:
    """The folder (partition) name of a region: `region=<name>`."""
    return f"{REGION_KEY}={name}"


def segment_folder(name: str) -> str:
    return f"{SEGMENT_KEY}={name}"


def check_region_name(name: str) -> str:
    """Region names become folder names and partition values: letters, digits, '-' and '_'."""
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name) or not name[0].isalnum():
        raise LayoutError(f"region name {name!r}: use letters, digits, '-' and '_' (starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class RegionEntry:
    """One region of a multi-region dataset, as its manifest lists it."""

    name: str
    parameters: str  # the simulator's region parameter set (synthetic/regions.py), or the extract's region
    seed: int | None  # None for a real extract
    subject_id_offset: int
    customers: int
    events: int

    @property
    def folder(self) -> str:
        return region_folder(self.name)


@dataclass(frozen=True)
class MultiRegionDataset:
    root: Path
    regions: tuple[RegionEntry, ...]
    manifest: dict[str, Any]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    def folder(self, name: str) -> Path:
        """DATA/region=<name>: a complete single-region dataset folder."""
        if name not in self.names:
            raise LayoutError(f"{self.root}: no region {name!r} (regions: {', '.join(self.names)})")
        return self.root / region_folder(name)

    def folders(self, names: Sequence[str] | None = None) -> dict[str, Path]:
        return {name: self.folder(name) for name in (names or self.names)}

    def table_paths(self, table: str, names: Sequence[str] | None = None) -> list[str]:
        """Absolute paths of one table (`events`, `customers`) in every (or the named) region, for
        `spark.read.option("basePath", str(dataset.root.absolute())).parquet(*paths)`, which then
        adds the `region` partition column."""
        return [str((folder / f"{table}.parquet").absolute()) for folder in self.folders(names).values()]

    def entry(self, name: str) -> RegionEntry:
        self.folder(name)
        return next(r for r in self.regions if r.name == name)


def is_multi_region(path: str | os.PathLike[str]) -> bool:
    """Whether PATH is a multi-region dataset (it has DATA/regions.json)."""
    return (Path(path) / DATASET_MANIFEST).is_file()


def dataset_manifest(regions: Iterable[RegionEntry], **about: Any) -> dict[str, Any]:
    """The manifest's content: the format marker, `about` (years, source, ...) and the regions."""
    entries = [asdict(r) for r in regions]
    names = [e["name"] for e in entries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise LayoutError(f"region names must be unique in a dataset (repeated: {', '.join(duplicated)})")
    return {"format": DATASET_FORMAT, "created": _now(), **about, "regions": entries}


def write_dataset_manifest(root: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write DATA/regions.json atomically (after every region folder is in place)."""
    root = Path(root)
    for entry in manifest["regions"]:
        if not (root / region_folder(entry["name"]) / "dataset.json").is_file():
            raise LayoutError(f"{root}: region {entry['name']} has no complete folder {region_folder(entry['name'])}")
    return atomic_write_text(root / DATASET_MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def read_dataset_manifest(root: str | os.PathLike[str]) -> MultiRegionDataset:
    """Read and check DATA/regions.json: its format, and a complete folder for every region."""
    root = Path(root)
    path = root / DATASET_MANIFEST
    manifest = _read_json(path, DATASET_FORMAT, what="multi-region dataset",
                          hint="a single-region folder has dataset.json; `sote-risk simulate --regions N` writes one")
    try:
        regions = tuple(RegionEntry(**entry) for entry in manifest["regions"])
    except (KeyError, TypeError) as error:
        raise LayoutError(f"{path}: malformed region entries ({error})") from None
    if not regions:
        raise LayoutError(f"{path}: lists no regions")
    for region in regions:
        check_region_name(region.name)
        if not (root / region.folder / "dataset.json").is_file():
            raise LayoutError(f"{root}: region {region.name} has no dataset folder {region.folder}/ (an unfinished copy?)")
    dataset = MultiRegionDataset(root, regions, manifest)
    dataset_manifest(regions)  # names unique
    return dataset


def check_unique_subjects(dataset: MultiRegionDataset) -> None:
    """Refuse a dataset whose regions share a subject id, naming the regions and one shared id.

    Reads only the customers' subject_id column of each region (every event's subject is a
    customer: the contracts check that inside each region)."""
    import numpy as np
    import pyarrow.parquet as pq

    seen: list[tuple[str, np.ndarray]] = []
    for name, folder in dataset.folders().items():
        path = folder / "customers.parquet"
        try:
            ids = np.unique(pq.read_table(path, columns=["subject_id"]).column(0).to_numpy())
        except Exception as error:  # noqa: BLE001 (pyarrow raises several types for a missing or bad file)
            raise LayoutError(f"{path}: cannot read its subject_id column ({error})") from None
        for other, other_ids in seen:
            shared = np.intersect1d(ids, other_ids, assume_unique=True)
            if len(shared):
                raise SharedSubjectError(
                    f"{dataset.root}: regions {other} and {name} share {len(shared):,} subject id(s), e.g. {int(shared[0])}; "
                    f"a multi-region dataset needs ids unique across its regions (simulate gives region i an offset of "
                    f"i x {SUBJECT_ID_STRIDE:,})")
        seen.append((name, ids))


# ---- features -------------------------------------------------------------------------------


def features_manifest(*, pipeline_version: str, source: dict[str, Any], segments: dict[str, dict[str, dict[str, int]]],
                      **about: Any) -> dict[str, Any]:
    """FEATURES/features.json: `segments` maps segment -> region -> {"rows", "customers", "parts"}."""
    regions = sorted({r for per_region in segments.values() for r in per_region})
    return {"format": FEATURES_FORMAT, "pipeline_version": pipeline_version, "created": _now(), "source": source,
            "regions": regions, **about, "segments": segments}


def is_multi_region_features(path: str | os.PathLike[str]) -> bool:
    path = Path(path) / FEATURES_MANIFEST
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == FEATURES_FORMAT
    except (OSError, ValueError):
        return False


def read_features_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    return _read_json(Path(root) / FEATURES_MANIFEST, FEATURES_FORMAT, what="multi-region features folder",
                      hint="`sote-risk features build --engine spark` writes one")


def segment_parts(root: str | os.PathLike[str], segment: str, region: str) -> list[Path]:
    """The Parquet parts of one region's segment, in shard order."""
    folder = Path(root) / region_folder(region) / segment_folder(segment)
    return sorted(folder.glob("part-*.parquet"))


def read_segment(root: str | os.PathLike[str], segment: str, regions: Sequence[str] | None = None,
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One segment's table across all (or the chosen) regions: the pandas engine's columns and
    dtypes (each part was written by its writer), a `region` column (categorical over the
    manifest's regions), rows sorted by (region, subject_id, prediction_time), a fresh index."""
    root = Path(root)
    manifest = read_features_manifest(root)
    if segment not in manifest["segments"]:
        raise LayoutError(f"{root}: no segment {segment!r} (segments: {', '.join(manifest['segments'])})")
    known = list(manifest["regions"])
    chosen = list(regions) if regions is not None else known
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise LayoutError(f"{root}: no region(s) {', '.join(unknown)} (regions: {', '.join(known)})")
    frames = []
    for region in chosen:
        parts = segment_parts(root, segment, region)
        if not parts:
            raise LayoutError(f"{root / region_folder(region) / segment_folder(segment)}: no part-*.parquet files (an unfinished build?)")
        # part by part: pandas' own reader on each file keeps the writer's dtypes (a dataset
        # read of many files would unify categoricals' categories in the order it meets them)
        for path in parts:
            frame = pd.read_parquet(path, columns=list(columns) if columns is not None else None)
            frames.append(frame.assign(**{REGION_KEY: region}))
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    table[REGION_KEY] = pd.Categorical(table[REGION_KEY], categories=known)
    keys = [REGION_KEY] + [k for k in ("subject_id", "prediction_time") if k in table.columns]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def _read_json(path: Path, marker: str, *, what: str, hint: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(f"{path.parent}: not a {what} ({path.name} not found; {hint})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LayoutError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != marker:
        raise LayoutError(f"{path}: not a {what} manifest (format {marker!r} expected)")
    return data


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
