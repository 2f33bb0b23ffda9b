"""Reading and writing a dataset folder (events, customers, dataset.json) at the boundary.

Reading validates before returning, so downstream code can trust a Dataset. Writing validates
first and then writes atomically: everything goes into a temporary sibling folder that is
renamed into place only when complete, so DIR is never half-written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from data_contracts.errors import ContractError
from data_contracts.schemas import CUSTOMER_COLUMNS, EVENT_COLUMNS, TIME_DTYPE
from data_contracts.validate import validate_dataset
from base.atomic import atomic_directory

EVENTS_FILE = "events"
CUSTOMERS_FILE = "customers"
METADATA_FILE = "dataset.json"

# Contract dtypes used to parse CSV, where the file itself carries no types.
_CSV_DTYPES: dict[str, dict[str, str]] = {
    "events": {
        "subject_id": "int64",
        "code": "str",
        "numeric_value": "float64",
        "service_area": "str",
        "unit": "str",
        "cost_eur": "float64",
    },
    "customers": {
        "subject_id": "int64",
        "birth_year": "int16",
        "birth_month": "int8",
        "sex": "str",
        "municipality": "str",
        "language": "str",
    },
}


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: events, customers and dataset.json's content."""

    events: pd.DataFrame
    customers: pd.DataFrame
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def extract_start(self) -> pd.Timestamp:
        return pd.Timestamp(self.metadata["extract_start"])

    @property
    def extract_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.metadata["extract_end"])


def read_dataset(directory: str | os.PathLike[str], *, validate: bool = True) -> Dataset:
    """Read DIR/{events,customers}.parquet (or .csv) and DIR/dataset.json, then validate.

    A missing or unreadable file raises a one-line ContractError naming it; broken rules raise
    ContractError listing every rule (see validate.validate_dataset).
    """
    root = Path(directory)
    if not root.is_dir():
        raise ContractError(f"{root}: dataset folder not found")
    metadata = read_metadata(root / METADATA_FILE)
    events = _read_table(root, EVENTS_FILE, EVENT_COLUMNS)
    customers = _read_table(root, CUSTOMERS_FILE, CUSTOMER_COLUMNS)
    if validate:
        validate_dataset(events, customers, metadata)
    return Dataset(events, customers, metadata)


def read_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f"{path}: not readable JSON ({_one_line(error)})") from None
    if not isinstance(metadata, dict):
        raise ContractError(f"{path}: must hold a JSON object")
    return metadata


_TABLE_COLUMNS = {EVENTS_FILE: EVENT_COLUMNS, CUSTOMERS_FILE: CUSTOMER_COLUMNS}
_OPERATORS = {">=": "ge", "<": "lt", "<=": "le", ">": "gt", "==": "eq"}


def read_dataset_table(directory: str | os.PathLike[str], name: str,
                       filters: list[tuple[str, str, Any]] | None = None) -> pd.DataFrame:
    """One table of a dataset folder (`events` or `customers`) exactly as read_dataset reads it,
    unvalidated; with `filters` ([("subject_id", ">=", lo), ("subject_id", "<", hi)], ANDed) only
    the matching rows, in file order: a shard of the region (scaleout/features.py), whose frames
    then have the same dtypes as the whole region's."""
    for _, op, _ in filters or ():
        if op not in _OPERATORS:
            raise ValueError(f"filter operator {op!r} not one of {', '.join(_OPERATORS)}")
    return _read_table(Path(directory), name, _TABLE_COLUMNS[name], filters)


def _read_table(root: Path, name: str, columns: tuple[str, ...], filters: list[tuple[str, str, Any]] | None = None) -> pd.DataFrame:
    parquet, csv = root / f"{name}.parquet", root / f"{name}.csv"
    if parquet.exists():
        try:
            # a row filter reads only the matching rows (and skips row groups whose statistics exclude them)
            frame = pd.read_parquet(parquet, filters=filters) if filters else pd.read_parquet(parquet)
        except Exception as error:  # pyarrow raises several types for a corrupt file
            raise ContractError(f"{parquet}: not a readable Parquet file ({_one_line(error)})") from None
    elif csv.exists():
        frame = _read_csv(csv, name)
        if filters:
            keep = pd.Series(True, index=frame.index)
            for column, op, value in filters:
                keep &= getattr(frame[column], _OPERATORS[op])(value)
            frame = frame[keep]
    else:
        raise ContractError(f"{root}: neither {name}.parquet nor {name}.csv found")
    # Contract column order; unexpected or missing columns are left for the validator to name.
    ordered = [c for c in columns if c in frame.columns] + [c for c in frame.columns if c not in columns]
    return frame[ordered].reset_index(drop=True)


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    dtypes = _CSV_DTYPES[name]
    try:
        header = pd.read_csv(path, nrows=0).columns
        frame = pd.read_csv(path, dtype={c: t for c, t in dtypes.items() if c in header}, keep_default_na=False, na_values=[""])
    except Exception as error:  # unparsable numbers, bad encoding, ...
        raise ContractError(f"{path}: not a readable CSV file with the contract's types ({_one_line(error)})") from None
    if "time" in frame:
        try:
            frame["time"] = pd.to_datetime(frame["time"], format="ISO8601").astype(TIME_DTYPE)
        except (ValueError, TypeError) as error:
            raise ContractError(f"{path}: column time is not ISO datetimes ({_one_line(error)})") from None
    return frame


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def write_dataset(
    dataset: Dataset,
    directory: str | os.PathLike[str],
    *,
    extra_tables: Mapping[str, pd.DataFrame] | None = None,
    overwrite: bool = False,
    validate: bool = True,
) -> Path:
    """Validate, then write DIR atomically (events/customers Parquet, dataset.json).

    extra_tables maps relative paths (e.g. "truth/risk.parquet") to frames written in the same
    atomic step, so the simulator's ground truth appears together with the data or not at all.
    An existing DIR is refused unless overwrite=True (then it is replaced, still atomically).
    """
    if validate:
        validate_dataset(dataset.events, dataset.customers, dataset.metadata)
    target = Path(directory)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        dataset.events[list(EVENT_COLUMNS)].to_parquet(tmp / f"{EVENTS_FILE}.parquet", index=False)
        dataset.customers[list(CUSTOMER_COLUMNS)].to_parquet(tmp / f"{CUSTOMERS_FILE}.parquet", index=False)
        write_json(tmp / METADATA_FILE, dict(dataset.metadata))
        for relative, frame in (extra_tables or {}).items():
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
    return target


def write_json(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


