"""Reading a dataset folder into a History, and writing feature tables atomically.

The only module in features/ that touches files. Reading goes through data_contracts (which
validates at the boundary); writing goes through its atomic_directory, so OUT is either the
complete new set of tables or untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.history import History
from features.version import pipeline_version

VERSION_KEY = b"sote_risk.pipeline_version"
MANIFEST = "features.json"
LABELS_FILE = "labels.parquet"


@dataclass(frozen=True)
class LoadedData:
    history: History
    extract_start: pd.Timestamp
    extract_end: pd.Timestamp
    metadata: dict
    code_months: pd.DataFrame | None = None  # features/code_volumes.py: the input's events per code and month


def load(directory: str | os.PathLike[str], *, validate: bool = True) -> LoadedData:
    """Read DIR (events, customers, dataset.json) through the contracts and build the History."""
    from data_contracts.io import read_dataset

    from features.code_volumes import code_months

    dataset = read_dataset(directory, validate=validate)
    history = History.from_frames(dataset.events, dataset.customers)
    volumes = code_months(dataset.events, dataset.extract_start, dataset.extract_end)
    return LoadedData(history, dataset.extract_start, dataset.extract_end, dict(dataset.metadata), volumes)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with the pipeline version in the key-value metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[VERSION_KEY] = pipeline_version().encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)


def write_tables(out: str | os.PathLike[str], tables: Iterable[tuple[str, pd.DataFrame]], *, source: dict,
                 code_months: pd.DataFrame | None = None) -> dict:
    """Write OUT/<segment>.parquet per table, OUT/labels.parquet (every problem, with problem and
    censor columns), OUT/labels/<task>/0.parquet (MEDS labels, known ones only) with
    OUT/labels_censored/<task>/0.parquet beside them, OUT/code_months.parquet (the input's events
    per code and month, when given: what monitoring reads to see a coding change) and
    OUT/features.json, all inside a temporary sibling folder renamed into place at the end
    (overwrites OUT)."""
    from features.code_volumes import CODE_MONTHS_FILE

    from data_contracts.io import atomic_directory
    from data_contracts.meds_tasks import write_task_labels
    from features.build import meds_labels

    manifest = {"pipeline_version": pipeline_version(), "created": dt.datetime.now().isoformat(timespec="seconds"),
                "source": source, "segments": {}}
    label_parts = []
    with atomic_directory(Path(out), overwrite=True) as tmp:
        for segment, table in tables:
            write_parquet(table, tmp / f"{segment}.parquet")
            label_parts.append(meds_labels(table, segment))
            times = table["prediction_time"]
            manifest["segments"][segment] = {
                "rows": int(len(table)),
                "customers": int(table["subject_id"].nunique()),
                "first_index_date": str(times.min()) if len(table) else None,
                "last_index_date": str(times.max()) if len(table) else None,
                "features": int(len(table.columns)),
            }
            del table
        if code_months is not None:
            write_parquet(code_months, tmp / CODE_MONTHS_FILE)
        if label_parts:
            all_labels = pd.concat(label_parts, ignore_index=True)
            write_parquet(all_labels, tmp / LABELS_FILE)
            manifest["tasks"] = write_task_labels(tmp, all_labels)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def read_code_months(folder: str | os.PathLike[str]) -> pd.DataFrame | None:
    """A features folder's events per code and month (features/code_volumes.py): its
    code_months.parquet (the pandas engine), or the sum of a region folder's code_months/ parts
    (the Spark engine, one a shard); None when the folder has neither (built before they were
    written)."""
    from features.code_volumes import CODE_MONTHS_FILE, CODE_MONTHS_PARTS, COLUMNS

    folder = Path(folder)
    try:
        if (folder / CODE_MONTHS_FILE).is_file():
            frame = pd.read_parquet(folder / CODE_MONTHS_FILE, columns=list(COLUMNS))
        elif (folder / CODE_MONTHS_PARTS).is_dir() and any((folder / CODE_MONTHS_PARTS).glob("part-*.parquet")):
            parts = [pd.read_parquet(p, columns=list(COLUMNS)) for p in sorted((folder / CODE_MONTHS_PARTS).glob("part-*.parquet"))]
            frame = (pd.concat(parts, ignore_index=True).groupby(["code", "month"], as_index=False, sort=True)["events"]
                     .sum())
        else:
            return None
    except (OSError, ValueError, KeyError) as error:
        from base.errors import SoteRiskError

        raise SoteRiskError(f"{folder}: the code counts cannot be read ({error}); build the features again") from None
    return frame.astype({"code": "string", "events": "int64"})


def read_version(path: str | os.PathLike[str]) -> str | None:
    """The pipeline version stored in a feature table's Parquet metadata."""
    metadata = pq.read_schema(path).metadata or {}
    value = metadata.get(VERSION_KEY)
    return value.decode() if value is not None else None
