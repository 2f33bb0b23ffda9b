"""MEDS task files: labels per task and test-period predictions, checked by the meds package.

A task is one problem (`<segment>-<outcome>`, vocabulary/problems.yaml). Layout written:

    <root>/labels/<task>/0.parquet            MEDS labels: subject_id, prediction_time,
                                               boolean_value, nothing else and no nulls
                                               (meds.LabelSchema); known labels only
    <root>/labels_censored/<task>/0.parquet   subject_id, prediction_time, censor: the eligible
                                               rows whose label is not known, and why
                                               (moved_away, extract_end); deliberately
                                               not in label shape, so no MEDS tool reads them
                                               as labels
    predictions (one file per task and run)    MEDS prediction format as meds-evaluation reads
                                               it: the three label columns, predicted_boolean_value
                                               (the alert at the model's threshold) and
                                               predicted_boolean_probability (float64)

meds 0.4 has no prediction schema of its own; the label columns of a prediction file are checked
with meds.LabelSchema and the two prediction columns against meds-evaluation's types here
(it needs predicted_boolean_value although its schema calls it optional).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import meds
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from base.atomic import atomic_file
from data_contracts.catalogue import CENSOR_REASONS
from data_contracts.errors import ContractError
from data_contracts.schemas import LABEL_COLUMNS

LABELS_DIR = "labels"
CENSORED_DIR = "labels_censored"
SHARD = "0.parquet"
PREDICTED_VALUE = "predicted_boolean_value"
PREDICTED_PROBABILITY = "predicted_boolean_probability"

LABEL_SCHEMA = pa.schema([
    pa.field("subject_id", pa.int64(), nullable=False),
    pa.field("prediction_time", pa.timestamp("us"), nullable=False),
    pa.field("boolean_value", pa.bool_(), nullable=False),
])
CENSORED_SCHEMA = pa.schema([
    pa.field("subject_id", pa.int64(), nullable=False),
    pa.field("prediction_time", pa.timestamp("us"), nullable=False),
    pa.field("censor", pa.string(), nullable=False),
])
PREDICTION_SCHEMA = pa.schema([
    *LABEL_SCHEMA,
    pa.field(PREDICTED_VALUE, pa.bool_(), nullable=False),
    pa.field(PREDICTED_PROBABILITY, pa.float64(), nullable=False),
])


@dataclass(frozen=True)
class TaskLabels:
    """One task's known labels (MEDS) and its censored rows (kept apart)."""

    labels: pa.Table
    censored: pa.Table


def _table(columns: dict[str, object], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)


def task_labels(labels: pd.DataFrame) -> dict[str, TaskLabels]:
    """Split our all-problems label frame (subject_id, prediction_time, boolean_value, problem,
    censor: data_contracts.schemas.labels_schema) into one TaskLabels per problem, sorted by
    subject_id then prediction_time. A row is censored where `censor` says why; its
    boolean_value is left behind (it is null)."""
    missing = [c for c in (*LABEL_COLUMNS, "problem", "censor") if c not in labels.columns]
    if missing:
        raise ContractError(f"labels: missing column(s) {', '.join(missing)} needed to split them per task")
    out = {}
    for problem, rows in labels.groupby("problem", sort=True):
        rows = rows.sort_values(["subject_id", "prediction_time"], kind="stable")
        censored = rows["censor"].notna().to_numpy()
        if rows["boolean_value"].isna().to_numpy()[~censored].any():
            raise ContractError(f"labels of {problem}: boolean_value is null where no censor reason says why")
        subject = rows["subject_id"].to_numpy(dtype="int64")
        time = rows["prediction_time"].to_numpy(dtype="datetime64[us]")
        known = _table({"subject_id": subject[~censored], "prediction_time": time[~censored],
                        "boolean_value": rows["boolean_value"].to_numpy(dtype=bool, na_value=False)[~censored]}, LABEL_SCHEMA)
        apart = _table({"subject_id": subject[censored], "prediction_time": time[censored],
                        "censor": rows["censor"].to_numpy(dtype=object)[censored]}, CENSORED_SCHEMA)
        validate_labels_table(known, str(problem))
        validate_censored_table(apart, str(problem))
        out[str(problem)] = TaskLabels(known, apart)
    return out


def validate_labels_table(table: pa.Table, what: str = "labels") -> None:
    """MEDS labels with the core columns only: meds.LabelSchema, and nothing optional left null
    or empty (an all-null integer_value would pass MEDS' types but mislead a tool)."""
    if table.column_names != list(LABEL_SCHEMA.names):
        raise ContractError(f"{what}: MEDS label columns must be exactly {', '.join(LABEL_SCHEMA.names)}, "
                            f"not {', '.join(table.column_names)}")
    try:
        meds.LabelSchema.validate(table)
    except Exception as error:  # flexible_schema raises its own validation errors
        raise ContractError(f"{what}: not MEDS labels ({' '.join(str(error).split())[:200]})") from None


def validate_censored_table(table: pa.Table, what: str = "censored labels") -> None:
    if not table.schema.equals(CENSORED_SCHEMA):
        raise ContractError(f"{what}: censored rows must have the columns {CENSORED_SCHEMA}")
    reasons = set(table.column("censor").to_pylist())
    if unknown := reasons - set(CENSOR_REASONS):
        raise ContractError(f"{what}: unknown censor reason(s) {sorted(unknown)}; known: {', '.join(CENSOR_REASONS)}")


def write_task_labels(root: str | os.PathLike[str], labels: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Write <root>/labels/<task>/0.parquet and <root>/labels_censored/<task>/0.parquet for every
    task in the frame; returns rows per task ({"labels", "positives", "censored"}). The caller
    writes root atomically (features/io.py writes it inside its temporary folder)."""
    counts = {}
    for task, part in task_labels(labels).items():
        for folder, table in ((LABELS_DIR, part.labels), (CENSORED_DIR, part.censored)):
            path = Path(root) / folder / task / SHARD
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
        counts[task] = {"labels": part.labels.num_rows, "positives": int(pc.sum(part.labels.column("boolean_value")).as_py() or 0),
                        "censored": part.censored.num_rows}
    return counts


def prediction_table(keys: pd.DataFrame, boolean_value, probability, threshold: float) -> pa.Table:
    """Test-period predictions in MEDS prediction format: keys' subject_id and prediction_time,
    the known outcome, the alert at `threshold` (probability >= threshold, as the alert metrics
    count it) and the calibrated probability."""
    p = np.asarray(probability, dtype="float64")
    y = np.asarray(boolean_value)
    if len(p) != len(keys) or len(y) != len(keys):
        raise ContractError(f"predictions: {len(keys)} rows of keys, {len(y)} outcomes and {len(p)} probabilities")
    if pd.isna(y).any():
        raise ContractError("predictions: an outcome is unknown (censored rows have no place in a prediction file)")
    table = _table({
        "subject_id": keys["subject_id"].to_numpy(dtype="int64"),
        "prediction_time": keys["prediction_time"].to_numpy(dtype="datetime64[us]"),
        "boolean_value": y.astype(bool),
        PREDICTED_VALUE: p >= threshold,
        PREDICTED_PROBABILITY: p,
    }, PREDICTION_SCHEMA)
    validate_prediction_table(table)
    return table


def validate_prediction_table(table: pa.Table, what: str = "predictions") -> None:
    """The label columns by meds.LabelSchema; the prediction columns by meds-evaluation's types,
    both present, no nulls, probabilities in 0..1."""
    if table.column_names != list(PREDICTION_SCHEMA.names):
        raise ContractError(f"{what}: MEDS prediction columns must be exactly {', '.join(PREDICTION_SCHEMA.names)}, "
                            f"not {', '.join(table.column_names)}")
    validate_labels_table(table.select(LABEL_SCHEMA.names), what)
    for field in PREDICTION_SCHEMA:
        column = table.column(field.name)
        if column.type != field.type:
            raise ContractError(f"{what}: {field.name} must be {field.type}, not {column.type}")
        if column.null_count:
            raise ContractError(f"{what}: {field.name} has {column.null_count} null(s)")
    p = table.column(PREDICTED_PROBABILITY).to_numpy()
    if len(p) and not ((p >= 0) & (p <= 1)).all():
        raise ContractError(f"{what}: {PREDICTED_PROBABILITY} must lie in 0..1")


def write_predictions(path: str | os.PathLike[str], table: pa.Table) -> Path:
    """Validate, then write one prediction file atomically (temporary sibling, then rename)."""
    validate_prediction_table(table, str(path))
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)
