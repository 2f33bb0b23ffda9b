"""Reading the inputs of training (the I/O edge): feature tables and the simulator's truth."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from base.errors import SoteRiskError
from training.spec import ExperimentSpec

log = logging.getLogger(__name__)
# the first simulator version whose true_probability has death as a competing event, as the labels
TRUTH_DEFINITION_SINCE = (1, 5)


class FeatureTableError(SoteRiskError):
    """The feature table is missing or lacks the columns a problem needs."""


def feature_table_path(features_dir: Path, segment: str) -> Path:
    return Path(features_dir) / f"{segment}.parquet"


def required_columns(spec: ExperimentSpec) -> list[str]:
    """The columns every reader of a problem's table needs (and check_feature_table checks)."""
    return ["subject_id", "prediction_time", "pipeline_version", spec.label_column, spec.censor_column, spec.eligible_column]


def columns_to_read(spec: ExperimentSpec, columns: list[str], available: set[str], source: str) -> list[str]:
    """The required columns, then `columns`, of a table whose file has `available` columns (a
    required one it lacks is left for check_feature_table to name); a FeatureTableError naming
    `source` when one of `columns` is not there."""
    missing = [c for c in columns if c not in available]
    if missing:
        raise FeatureTableError(f"{source}: missing column(s) {', '.join(missing[:5])} needed by {spec.problem}")
    return [c for c in dict.fromkeys([*required_columns(spec), *columns]) if c in available]


def check_feature_table(frame: pd.DataFrame, spec: ExperimentSpec, source: str) -> None:
    required = required_columns(spec)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FeatureTableError(f"{source}: missing column(s) {', '.join(missing)} needed by {spec.problem}")
    versions = frame["pipeline_version"].dropna().unique()
    if len(versions) != 1:
        raise FeatureTableError(f"{source}: expected one pipeline_version, found {list(versions)[:5]}")
    if frame.duplicated(["subject_id", "prediction_time"]).any():
        raise FeatureTableError(f"{source}: duplicate (subject_id, prediction_time) rows")


def read_feature_table(features_dir: Path, spec: ExperimentSpec, columns: list[str] | None = None) -> pd.DataFrame:
    """The segment's feature table, checked for `spec`; with `columns`, only those (and the ones
    the check needs): a region's table has ~150 feature columns and most readers want a few."""
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise FeatureTableError(f"features directory {features_dir} does not exist (run `sote-risk features build`)")
    path = feature_table_path(features_dir, spec.segment)
    if not path.exists():
        raise FeatureTableError(f"{path}: feature table for segment {spec.segment!r} not found")
    if columns is not None:
        columns = columns_to_read(spec, columns, set(pq.read_schema(path).names), str(path))
    # a subset is read as one block per column (split_blocks): no copy into pandas' 2-D blocks,
    # half the reading time, and row selections take only the columns asked for
    frame = (pd.read_parquet(path) if columns is None
             else pd.read_parquet(path, columns=columns, to_pandas_kwargs={"split_blocks": True, "self_destruct": True}))
    check_feature_table(frame, spec, str(path))
    return frame


def pipeline_version_of(frame: pd.DataFrame) -> str:
    return str(frame["pipeline_version"].iloc[0])


def fingerprint(frame: pd.DataFrame, spec: ExperimentSpec) -> str:
    """A content hash of the rows and labels a problem trains on (names studies; hashlib, stable)."""
    keys = frame[["subject_id", "prediction_time", spec.label_column]].copy()
    keys[spec.label_column] = keys[spec.label_column].astype("boolean").astype("Int8")
    digest = hashlib.sha256(pd.util.hash_pandas_object(keys, index=False).values.tobytes())
    digest.update(pipeline_version_of(frame).encode())
    return digest.hexdigest()


def read_truth(dataset_dir: Path | None, spec: ExperimentSpec) -> pd.DataFrame | None:
    """The simulator's true probabilities for this outcome and horizon, or None (logged) if absent."""
    if dataset_dir is None:
        log.info("oracle metrics skipped: no dataset folder given")
        return None
    path = Path(dataset_dir) / "truth" / "risk.parquet"
    if not path.exists():
        log.info("oracle metrics skipped: %s not found", path)
        return None
    version = _simulator_version(Path(dataset_dir))
    if version is not None and version < TRUTH_DEFINITION_SINCE:
        log.info("oracle metrics skipped: %s is from simulator %s, whose truth censors death; the labels count a "
                 "death as a negative since %s (simulate the region again)", path, ".".join(map(str, version)),
                 ".".join(map(str, TRUTH_DEFINITION_SINCE)))
        return None
    truth = pd.read_parquet(path, columns=["subject_id", "prediction_time", "outcome", "horizon_days", "true_probability"])
    truth = truth.loc[(truth["outcome"] == spec.outcome) & (truth["horizon_days"] == spec.horizon_days)]
    if truth.empty:
        log.info("oracle metrics skipped: %s has no rows for %s at %d days", path, spec.outcome, spec.horizon_days)
        return None
    return truth[["subject_id", "prediction_time", "true_probability"]]


def _simulator_version(dataset_dir: Path) -> tuple[int, ...] | None:
    """(major, minor) of the simulator that wrote the dataset, or None if unknown (not simulated,
    no dataset.json, a version that is not numbers)."""
    try:
        text = json.loads((dataset_dir / "dataset.json").read_text(encoding="utf-8")).get("simulator_version")
        return tuple(int(part) for part in str(text).split(".")[:2])
    except (OSError, ValueError, AttributeError):
        return None
