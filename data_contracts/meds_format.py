"""Export to and import from a MEDS dataset folder (MEDS 0.4), so ACES / MEDS-Tab run on our data.

Layout written:
    OUT/data/<shard>.parquet        MEDS core columns + our extension columns, sorted by
                                    subject_id then time; a subject lives in one shard only
    OUT/metadata/codes.parquet      code, description, parent_codes (+ our catalogue columns)
    OUT/metadata/dataset.json       dataset_name, dataset_version, etl_name, etl_version, meds_version, ...
    OUT/metadata/subject_splits.parquet   subject_id, split (a stable hash split, 80/10/10)
    OUT/metadata/sote_risk_dataset.json   our own dataset.json, so import restores it exactly

Mapping:
    * events keep their code, except DEATH, which becomes MEDS' own `MEDS_DEATH`;
    * customers become static rows with a null time: `SEX//F`, `MUNICIPALITY//Imatra`,
      `LANGUAGE//fi`, and `MEDS_BIRTH` at the first day of the birth month (that one has a time);
    * MEDS stores numeric_value as float32; the exact float64 travels in `numeric_value_f64`
      so import gives back the very same values (a length of stay of 2.37 days is not a float32).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import meds
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_contracts.catalogue import LANGUAGES, MUNICIPALITIES, SEXES, DEATH_CODE, load_code_catalogue
from data_contracts.errors import ContractError
from data_contracts.io import Dataset, atomic_directory, read_metadata, write_json
from data_contracts.schemas import CUSTOMER_COLUMNS, EVENT_COLUMNS
from data_contracts.validate import validate_dataset

ETL_NAME = "sote-risk"
EXACT_VALUE = "numeric_value_f64"
SOTE_METADATA = "metadata/sote_risk_dataset.json"
# customers column -> static code prefix
STATIC_PREFIXES: dict[str, str] = {"sex": "SEX//", "municipality": "MUNICIPALITY//", "language": "LANGUAGE//"}
STATIC_VALUES: dict[str, tuple[str, ...]] = {"sex": SEXES, "municipality": MUNICIPALITIES, "language": LANGUAGES}
SUBJECTS_PER_SHARD = 50_000

DATA_SCHEMA = pa.schema(
    [
        pa.field("subject_id", pa.int64(), nullable=False),
        pa.field("time", pa.timestamp("us")),
        pa.field("code", pa.string(), nullable=False),
        pa.field("numeric_value", pa.float32()),
        pa.field("service_area", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("cost_eur", pa.float64()),
        pa.field(EXACT_VALUE, pa.float64()),
    ]
)


def _etl_version() -> str:
    """The installed sote-risk's version (from the package metadata, not the CLI package above us)."""
    from importlib.metadata import version

    return version("sote-risk")


def to_meds_data(dataset: Dataset) -> pa.Table:
    """Events and customers as one MEDS data table (sorted by subject_id, then time)."""
    events, customers = dataset.events, dataset.customers
    n_events, n_customers = len(events), len(customers)
    sid = customers["subject_id"].to_numpy()
    birth = (
        (customers["birth_year"].to_numpy().astype("int64") - 1970) * 12 + customers["birth_month"].to_numpy().astype("int64") - 1
    ).astype("datetime64[M]").astype("datetime64[us]")

    static_codes = [
        (prefix + customers[column].astype("str")).to_numpy(dtype=object) for column, prefix in STATIC_PREFIXES.items()
    ]
    code = np.concatenate(
        [
            np.concatenate(static_codes) if n_customers else np.array([], dtype=object),
            np.full(n_customers, meds.birth_code, dtype=object),
            np.where(events["code"].to_numpy(dtype=object) == DEATH_CODE, meds.death_code, events["code"].to_numpy(dtype=object)),
        ]
    )
    n_static = len(STATIC_PREFIXES) * n_customers
    subject = np.concatenate([np.tile(sid, len(STATIC_PREFIXES)), sid, events["subject_id"].to_numpy()])
    time = np.concatenate(
        [np.full(n_static, np.datetime64("NaT"), dtype="datetime64[us]"), birth, events["time"].to_numpy()]
    )
    value = np.concatenate([np.full(n_static + n_customers, np.nan), events["numeric_value"].to_numpy(dtype="float64")])

    def padded(column: str, dtype: str) -> np.ndarray:
        fill = np.full(n_static + n_customers, None if dtype == "object" else np.nan, dtype=dtype)
        return np.concatenate([fill, events[column].to_numpy(dtype=dtype, na_value=None if dtype == "object" else np.nan)])

    # Per subject: static rows (null time) first, then birth, then events in their given
    # (sorted) order; the rank keeps ties in file order, which stays pairing depends on.
    rank = np.concatenate(
        [np.arange(n_static) - n_static - n_customers, np.arange(n_customers) - n_customers, np.arange(n_events)]
    )
    time_key = np.where(np.isnat(time), np.iinfo("int64").min, time.view("int64"))
    order = np.lexsort((rank, time_key, subject))

    columns = {
        "subject_id": subject[order],
        "time": time[order],
        "code": code[order],
        "numeric_value": value[order].astype("float32"),
        "service_area": padded("service_area", "object")[order],
        "unit": padded("unit", "object")[order],
        "cost_eur": padded("cost_eur", "float64")[order],
        EXACT_VALUE: value[order],
    }
    arrays = [pa.array(columns[f.name], type=f.type, from_pandas=True) for f in DATA_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=DATA_SCHEMA)


def codes_table() -> pa.Table:
    """metadata/codes.parquet: every code that can appear in the data, with descriptions."""
    catalogue = load_code_catalogue()
    catalogue["code"] = catalogue["code"].replace({DEATH_CODE: meds.death_code})
    catalogue = catalogue.rename(columns={"description_en": "description"}).drop(columns=["cost_source"])
    static = [
        {"code": prefix + value, "description": f"{column.capitalize()}: {value}", "service_area": "STATIC"}
        for column, prefix in STATIC_PREFIXES.items()
        for value in STATIC_VALUES[column]
    ]
    static.append({"code": meds.birth_code, "description": "Birth (first day of the birth month)", "service_area": "STATIC"})
    frame = pd.concat([catalogue, pd.DataFrame(static)], ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # pandas' str columns arrive as large_string; MEDS wants plain string.
    table = table.cast(
        pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in table.schema])
    )
    parents = pa.array([None] * len(frame), type=pa.list_(pa.string()))
    table = table.add_column(2, "parent_codes", parents)
    meds.CodeMetadataSchema.validate(table)
    return table


def dataset_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """MEDS metadata/dataset.json from our dataset.json."""
    content = {
        "dataset_name": str(metadata.get("name", "sote-risk")),
        "dataset_version": str(metadata.get("created") or metadata.get("simulator_version") or "unknown"),
        "etl_name": ETL_NAME,
        "etl_version": _etl_version(),
        "meds_version": meds.__version__,
        "site_id_columns": ["unit"],
        "other_extension_columns": ["service_area", "cost_eur", EXACT_VALUE],
    }
    meds.DatasetMetadataSchema.validate(content)
    return content


def subject_splits(subject_ids: np.ndarray) -> pa.Table:
    """A stable 80/10/10 train/tuning/held_out split by a hash of the subject id.

    splitmix64 rather than Python's salted hash(), so the split is the same in every process.
    Training uses its own temporal splits; this file is for MEDS tools that expect one.
    """
    with np.errstate(over="ignore"):
        z = subject_ids.astype("uint64") + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype("float64") / float(1 << 53)
    split = np.where(u < 0.8, meds.train_split, np.where(u < 0.9, meds.tuning_split, meds.held_out_split))
    table = pa.table({"subject_id": pa.array(subject_ids, pa.int64()), "split": pa.array(split, pa.string())})
    meds.SubjectSplitSchema.validate(table)
    return table


def export_meds(dataset: Dataset, out: str | os.PathLike[str], *, subjects_per_shard: int = SUBJECTS_PER_SHARD) -> Path:
    """Validate the dataset, then write it as a MEDS folder at OUT (atomically; OUT must be new or empty)."""
    validate_dataset(dataset.events, dataset.customers, dataset.metadata)
    data = to_meds_data(dataset)
    meds.DataSchema.validate(data)
    target = Path(out)
    with atomic_directory(target) as tmp:
        (tmp / meds.data_subdirectory).mkdir()
        (tmp / "metadata").mkdir()
        for number, shard in enumerate(_shards(data, subjects_per_shard)):
            pq.write_table(shard, tmp / meds.data_subdirectory / f"{number}.parquet")
        pq.write_table(codes_table(), tmp / meds.code_metadata_filepath)
        write_json(tmp / meds.dataset_metadata_filepath, dataset_metadata(dataset.metadata))
        pq.write_table(subject_splits(np.sort(dataset.customers["subject_id"].to_numpy())), tmp / meds.subject_splits_filepath)
        write_json(tmp / SOTE_METADATA, dict(dataset.metadata))
    return target


def _shards(data: pa.Table, subjects_per_shard: int) -> list[pa.Table]:
    """Cut the sorted table at subject boundaries, subjects_per_shard subjects each."""
    subject = data.column("subject_id").to_numpy()
    starts = np.flatnonzero(np.r_[True, subject[1:] != subject[:-1]]) if len(subject) else np.array([0])
    cuts = list(starts[::subjects_per_shard]) + [len(subject)]
    return [data.slice(a, b - a) for a, b in zip(cuts[:-1], cuts[1:])] or [data]


def from_meds_data(data: pa.Table, metadata: Mapping[str, Any]) -> Dataset:
    """Events and customers back from a MEDS data table (the inverse of to_meds_data)."""
    frame = data.to_pandas()
    code = frame["code"].astype("str")
    static_mask = code.eq(meds.birth_code)
    for prefix in STATIC_PREFIXES.values():
        static_mask |= code.str.startswith(prefix)
    customers = _customers_from_static(frame[static_mask.to_numpy()])

    events = frame[~static_mask.to_numpy()]
    value = events[EXACT_VALUE] if EXACT_VALUE in events else events["numeric_value"].astype("float64")
    events = pd.DataFrame(
        {
            "subject_id": events["subject_id"].astype("int64"),
            "time": events["time"].astype("datetime64[us]"),
            "code": events["code"].astype("str").replace({meds.death_code: DEATH_CODE}),
            "numeric_value": value.astype("float64"),
            "service_area": _str_column(events, "service_area"),
            "unit": _str_column(events, "unit"),
            "cost_eur": events["cost_eur"].astype("float64") if "cost_eur" in events else np.nan,
        }
    )
    events = events.iloc[np.lexsort((events["time"].to_numpy().view("int64"), events["subject_id"].to_numpy()))]
    return Dataset(events[list(EVENT_COLUMNS)].reset_index(drop=True), customers, dict(metadata))


def _str_column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    return frame[column].astype("str")


def _customers_from_static(static: pd.DataFrame) -> pd.DataFrame:
    code = static["code"].astype("str")
    births = static[code.eq(meds.birth_code).to_numpy()]
    _one_per_subject(births, meds.birth_code)
    customers = pd.DataFrame(
        {
            "subject_id": births["subject_id"].astype("int64").to_numpy(),
            "birth_year": births["time"].dt.year.astype("int16").to_numpy(),
            "birth_month": births["time"].dt.month.astype("int8").to_numpy(),
        }
    )
    for column, prefix in STATIC_PREFIXES.items():
        rows = static[code.str.startswith(prefix).to_numpy()]
        _one_per_subject(rows, prefix)
        values = pd.DataFrame(
            {"subject_id": rows["subject_id"].to_numpy(), column: rows["code"].astype("str").str.slice(len(prefix)).to_numpy()}
        )
        try:
            customers = customers.merge(values, on="subject_id", how="outer", validate="one_to_one")
        except pd.errors.MergeError as error:
            raise ContractError(f"MEDS data: static rows {prefix}*: {error}") from None
    if customers.isna().any().any():
        missing = customers[customers.isna().any(axis=1)]["subject_id"].head(5).tolist()
        raise ContractError(f"MEDS data: subjects without a full set of static rows (MEDS_BIRTH, SEX//, MUNICIPALITY//, LANGUAGE//), e.g. {missing}")
    customers = customers.astype({c: "str" for c in STATIC_PREFIXES})
    return customers.sort_values("subject_id", kind="stable")[list(CUSTOMER_COLUMNS)].reset_index(drop=True)


def _one_per_subject(rows: pd.DataFrame, what: str) -> None:
    duplicated = rows["subject_id"].duplicated()
    if duplicated.any():
        examples = rows.loc[duplicated, "subject_id"].head(5).tolist()
        raise ContractError(f"MEDS data: more than one {what} row for subject(s) {examples}")


def read_meds_data(root: Path) -> pa.Table:
    files = sorted((root / meds.data_subdirectory).rglob("*.parquet"), key=lambda p: _natural_key(str(p)))
    if not files:
        raise ContractError(f"{root / meds.data_subdirectory}: no MEDS data shards (*.parquet) found")
    tables = []
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as error:  # corrupt or not Parquet
            raise ContractError(f"{path}: not a readable Parquet file ({str(error).splitlines()[0][:200]})") from None
        try:
            meds.DataSchema.validate(table)
        except Exception as error:  # flexible_schema raises its own validation errors
            raise ContractError(f"{path}: not MEDS data ({' '.join(str(error).split())[:200]})") from None
        tables.append(table)
    return pa.concat_tables(tables, promote_options="default")


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def import_meds(root: str | os.PathLike[str]) -> Dataset:
    """Read a MEDS folder written by export_meds (or a compatible one) and validate it.

    Our dataset.json comes from metadata/sote_risk_dataset.json; for foreign MEDS data it is
    derived (extract window = first..last event time).
    """
    root = Path(root)
    if not root.is_dir():
        raise ContractError(f"{root}: MEDS folder not found")
    data = read_meds_data(root)
    own = root / SOTE_METADATA
    if own.exists():
        metadata = read_metadata(own)
    else:
        meds_meta = read_metadata(root / meds.dataset_metadata_filepath) if (root / meds.dataset_metadata_filepath).exists() else {}
        times = data.column("time").drop_null()
        metadata = {
            "name": meds_meta.get("dataset_name", root.name),
            "source": "extract",
            "extract_start": pd.Timestamp(pa.compute.min(times).as_py()).isoformat(),
            "extract_end": pd.Timestamp(pa.compute.max(times).as_py()).isoformat(),
        }
    dataset = from_meds_data(data, metadata)
    validate_dataset(dataset.events, dataset.customers, dataset.metadata)
    return dataset
