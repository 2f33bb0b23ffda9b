"""`features build --engine spark`: the pandas engine's tables, computed over customer shards.

No feature is implemented here. Each region's customers are split into shards by a hash of the
subject id; Spark groups every region's events and customers by (region, shard) (`cogroup`, so
the two tables are never joined row by row), and one task per group runs
features.build.build_tables, the pandas engine's own function, on a History of just that
shard's customers, with the region's extract start, end and index dates. A customer's rows
depend only on that customer's events (and the region's dates), so the union of the shards'
rows is the pandas engine's table: tests/test_spark_features.py proves it on every column.

Each task writes its own slice with the pandas engine's writer (features.io.write_parquet):
FEATURES/region=<name>/segment=<segment>/part-<shard>.parquet keeps the pandas dtypes
(categoricals, nullable booleans, datetime64[us]) in the file, which a trip through Spark's rows
would lose, and only a summary row per segment comes back to the driver, so the driver's memory
does not grow with the population. Parts are written to a temporary name and renamed, so a
retried task overwrites its own part; the whole folder is built in a temporary sibling and
renamed into place by the driver after features.json, so FEATURES is complete or untouched.

Events keep their order in the file (Parquet's row index travels with them through the
shuffle): History breaks ties at one instant by code and then by file order, as in the pandas
engine.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from base.errors import SoteRiskError
from scaleout.layout import (FEATURES_MANIFEST, REGION_KEY, SEGMENT_KEY, check_unique_subjects, features_manifest,
                             read_dataset_manifest, region_folder, segment_folder)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

SHARD_KEY = "shard"
ROW_KEY = "_row"  # the event's row in its Parquet file
SUMMARY_SCHEMA = "region string, segment string, shard int, rows long, customers long, shard_customers long, error string"


class ShardError(SoteRiskError):
    """A shard's data broke a contract or the feature pipeline refused it."""


@dataclass(frozen=True)
class RegionSpan:
    """What a shard task needs of its region besides its frames."""

    name: str
    extract_start: str
    extract_end: str
    metadata: dict[str, Any]  # dataset.json without the whole-region counts (checked on the driver)
    shards: int


def shard_count(customers: int, shard_customers: int) -> int:
    return max(1, math.ceil(customers / shard_customers))


def build_shard(events: pd.DataFrame, customers: pd.DataFrame, span: RegionSpan, *, segments: Sequence[str],
                warmup_days: int, validate: bool) -> list[tuple[str, pd.DataFrame]]:
    """One shard's tables: exactly the pandas engine's path (contracts, History, build_tables).

    Pure (frames in, frames out), so tests can call it without Spark. `events` in file order."""
    from data_contracts.validate import validate_dataset
    from features.build import build_tables
    from features.history import History

    if validate:
        validate_dataset(events, customers, span.metadata)
    history = History.from_frames(events, customers)
    return list(build_tables(history, span.extract_start, span.extract_end, segments=segments, warmup_days=warmup_days,
                             workers=1))  # one thread a task: Spark runs a task per core


def _write_part(table: pd.DataFrame, folder: Path, shard: int) -> None:
    from features.io import write_parquet

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{shard:05d}.parquet"
    tmp = folder / f".part-{shard:05d}.parquet.tmp-{os.getpid()}"
    write_parquet(table, tmp)
    os.replace(tmp, path)


def _shard_task(spans: dict[str, RegionSpan], dtypes: dict[str, dict[str, str]], out: str, segments: tuple[str, ...],
                warmup_days: int, validate: bool):  # noqa: ANN202 (a function for applyInPandas)
    """The function Spark runs per (region, shard): frames in Spark's dtypes -> the reader's
    dtypes -> build_shard -> parts on disk -> one summary row per segment."""

    def task(key, events: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:  # noqa: ANN001 (Spark's key tuple)
        region, shard = str(key[0]), int(key[1])
        events = (events.sort_values(ROW_KEY, kind="stable").drop(columns=[ROW_KEY, REGION_KEY, SHARD_KEY])
                  .reset_index(drop=True).astype(dtypes["events"]))
        customers = (customers.drop(columns=[REGION_KEY, SHARD_KEY]).sort_values("subject_id", kind="stable")
                     .reset_index(drop=True).astype(dtypes["customers"]))
        base = {"region": region, "shard": shard, "shard_customers": len(customers)}
        try:
            tables = build_shard(events, customers, spans[region], segments=segments, warmup_days=warmup_days, validate=validate)
        except SoteRiskError as error:  # a contract or pipeline refusal: back to the driver as data, said in one line
            return pd.DataFrame([{**base, "segment": None, "rows": 0, "customers": 0, "error": str(error)}])
        rows = []
        for segment, table in tables:
            _write_part(table, Path(out) / region_folder(region) / segment_folder(segment), shard)
            rows.append({**base, "segment": segment, "rows": len(table), "customers": int(table["subject_id"].nunique()),
                         "error": None})
        return pd.DataFrame(rows, columns=["region", "segment", "shard", "rows", "customers", "shard_customers", "error"])

    return task


def _reader_dtypes(path: Path) -> dict[str, str]:
    """The dtypes pandas' Parquet reader gives the file's columns (what the pandas engine sees)."""
    import pyarrow.parquet as pq

    empty = pq.read_schema(path).empty_table().to_pandas()
    return {column: str(dtype) for column, dtype in empty.dtypes.items()}


def build_features(spark: "SparkSession", data: str | os.PathLike[str], out: str | os.PathLike[str], *,
                   segments: Sequence[str] | None = None, regions: Sequence[str] | None = None, warmup_days: int = 365,
                   shard_customers: int = 10_000, validate: bool = True) -> dict[str, Any]:
    """Write FEATURES (OUT) from the multi-region dataset DATA; returns features.json's content.

    On a cluster DATA and OUT must be on storage every executor sees."""
    from pyspark.sql import functions as F

    from base.atomic import atomic_directory, check_output
    from data_contracts.io import read_metadata
    from features.spec import segment_names, segment_outcomes
    from features.version import pipeline_version

    dataset = read_dataset_manifest(data)
    check_unique_subjects(dataset)
    segments = tuple(segments or segment_names())
    for segment in segments:
        segment_outcomes(segment)  # an unknown segment fails before any work
    folders = dataset.folders(regions)
    check_output(out, overwrite=True)
    spans = {}
    for name, folder in folders.items():
        metadata = read_metadata(folder / "dataset.json")
        try:
            start, end = str(pd.Timestamp(metadata["extract_start"])), str(pd.Timestamp(metadata["extract_end"]))
        except (KeyError, ValueError) as error:
            raise ShardError(f"{folder / 'dataset.json'}: no readable extract_start / extract_end ({error})") from None
        shard_metadata = {k: v for k, v in metadata.items() if k != "customers"}  # a shard holds some of them
        spans[name] = RegionSpan(name, start, end, shard_metadata, shard_count(dataset.entry(name).customers, shard_customers))
    first = next(iter(folders.values()))
    dtypes = {"events": _reader_dtypes(first / "events.parquet"), "customers": _reader_dtypes(first / "customers.parquet")}

    root = str(Path(data).absolute())
    shards = F.lit(1)
    for name, span in spans.items():
        shards = F.when(F.col(REGION_KEY) == name, F.lit(span.shards)).otherwise(shards)
    shard = F.pmod(F.xxhash64("subject_id"), shards).cast("int").alias(SHARD_KEY)

    def read(table: str, *extra):  # noqa: ANN001, ANN202
        paths = [str(Path(folder).absolute() / f"{table}.parquet") for folder in folders.values()]
        frame = spark.read.option("basePath", root).parquet(*paths)
        return frame.select("*", *extra).withColumn(SHARD_KEY, shard)

    events = read("events", F.col("_metadata.row_index").alias(ROW_KEY))
    customers = read("customers")
    manifest_segments: dict[str, dict[str, dict[str, int]]] = {s: {} for s in segments}
    with atomic_directory(out, overwrite=True) as tmp:
        task = _shard_task(spans, dtypes, str(tmp.absolute()), segments, warmup_days, validate)
        rows = (events.groupBy(REGION_KEY, SHARD_KEY).cogroup(customers.groupBy(REGION_KEY, SHARD_KEY))
                .applyInPandas(task, SUMMARY_SCHEMA).collect())  # a few rows a shard: no Arrow trip needed
        summary = pd.DataFrame([row.asDict() for row in rows], columns=[f.split()[0] for f in SUMMARY_SCHEMA.split(", ")])
        errors = summary[summary["error"].notna()]
        if len(errors):
            first_error = errors.iloc[0]
            raise ShardError(f"region {first_error['region']} (shard {first_error['shard']}): {first_error['error']}")
        for name, folder in folders.items():
            mine = summary[summary["region"] == name]
            held = int(mine.drop_duplicates("shard")["shard_customers"].sum())
            expected = read_metadata(folder / "dataset.json").get("customers")
            if expected is not None and int(expected) != held:
                raise ShardError(f"{folder}: dataset.json says {expected} customers, customers.parquet holds {held}")
            for segment in segments:
                rows = mine[mine["segment"] == segment]
                manifest_segments[segment][name] = {"rows": int(rows["rows"].sum()), "customers": int(rows["customers"].sum()),
                                                    "parts": int(len(rows))}
        source = {"data": str(Path(data)), "warmup_days": warmup_days, "shard_customers": shard_customers,
                  "regions": {name: {"extract_start": s.extract_start, "extract_end": s.extract_end, "shards": s.shards}
                              for name, s in spans.items()}}
        manifest = features_manifest(pipeline_version=pipeline_version(), source=source, segments=manifest_segments,
                                     engine="spark")
        (tmp / FEATURES_MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


__all__ = ["build_features", "build_shard", "RegionSpan", "ShardError", "SEGMENT_KEY"]
