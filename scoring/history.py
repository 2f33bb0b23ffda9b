"""The customers' histories that scoring reads: held in memory as the feature path's arrays.

A `HistoryStore` is what a scoring process holds: the features.History arrays (events sorted by
customer and time, codes as integers), the customers' attributes, and the span of the data. The
pandas events frame it was built from is not kept: nothing downstream reads it, and at the
region's size it was most of a worker's memory. A posted history (one customer's events from the
CRM) becomes a HistoryStore of its own through the same builder.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import History
from features.history import EVENT_COLUMNS
from scoring.errors import ImplausibleEvent, OutsideData

log = logging.getLogger("sote_risk.scoring")


@dataclass(frozen=True, eq=False)
class HistoryStore:
    history: History
    customers: pd.DataFrame  # one row per customer, indexed (and sorted) by subject_id
    start: pd.Timestamp  # the span of the data: extract start and end
    end: pd.Timestamp
    events: int  # how many events the history holds

    @classmethod
    def from_frames(cls, events: pd.DataFrame, customers: pd.DataFrame, start: Any = None, end: Any = None) -> "HistoryStore":
        """Build from contract-shaped frames (never mutated); the span defaults to the events'."""
        indexed = customers.set_index("subject_id", drop=False).sort_index()
        indexed.index.name = None
        start = pd.Timestamp(start) if start is not None else pd.Timestamp(events["time"].min())
        end = pd.Timestamp(end) if end is not None else pd.Timestamp(events["time"].max())
        return cls(History.from_frames(events, customers), indexed, start, end, len(events))

    def knows(self, subject_id: int) -> bool:
        return int(subject_id) in self.customers.index

    def ids(self) -> np.ndarray:
        return self.customers.index.to_numpy(dtype=np.int64)

    def resolve_time(self, as_of: dt.date | None) -> pd.Timestamp:
        """as_of (a date) -> the prediction time (that day 00:00); default: the end of the data.
        Dates outside the data's window are refused: there is no history to score them on."""
        return index_time(self.start, self.end, as_of)


def index_time(start: pd.Timestamp, end: pd.Timestamp, as_of: dt.date | None) -> pd.Timestamp:
    """HistoryStore.resolve_time for data spanning start .. end (a dataset.json's extract span):
    what a process that does not hold the histories (the Spark engine's driver) checks."""
    first, last = pd.Timestamp(start).normalize(), day_ceiling(pd.Timestamp(end))
    if as_of is None:
        return last
    time = pd.Timestamp(as_of)
    if not first <= time <= last:
        raise OutsideData(f"as_of {as_of.isoformat()} is outside the data ({first.date()} .. {last.date()})", field="as_of")
    return time


def day_ceiling(ts: pd.Timestamp) -> pd.Timestamp:
    return ts if ts == ts.normalize() else ts.normalize() + pd.Timedelta(days=1)


def load_history(folder: Path, cache: Path | None = None, *, subjects: tuple[int, int] | None = None) -> HistoryStore:
    """The dataset folder's histories (validated when written). Parquet events go straight from
    Arrow into the history's arrays (features.History.from_arrow): no pandas events frame, whose
    string columns would stay in a worker's memory long after they are dropped.

    With a `cache` folder (the service's: <home>/cache), the arrays of a Parquet dataset are
    mapped from what an earlier load wrote there for the same files and code, and written there
    when there is nothing yet (scoring/history_cache.py): a worker's start then takes a fraction
    of a second instead of reading and sorting every event again.

    `subjects=(low, high)`: only the customers with low <= subject_id <= high and their events
    (a shard of the region, as the Spark engine scores it: scaleout/scoring.py), with the
    dataset's span; Parquet only, never cached. The file's events are sorted by customer, so
    the reader decodes only the row groups that hold them."""
    from data_contracts import ContractError, read_dataset
    from data_contracts.io import read_metadata

    events_file = Path(folder) / "events.parquet"
    if not events_file.exists():  # a CSV extract: through the contracts' reader
        if subjects is not None:
            raise ContractError(f"{folder}: a shard of customers is read from Parquet files (events.parquet not found)")
        dataset = read_dataset(folder, validate=False)
        return HistoryStore.from_frames(dataset.events, dataset.customers, dataset.extract_start, dataset.extract_end)
    from scoring.history_cache import dataset_key, read_cached, write_cached

    among = None if subjects is None else [("subject_id", ">=", int(subjects[0])), ("subject_id", "<=", int(subjects[1]))]
    key = dataset_key(folder) if cache is not None and among is None else None
    metadata = read_metadata(Path(folder) / "dataset.json")
    customers = pd.read_parquet(Path(folder) / "customers.parquet", filters=among)
    history = read_cached(cache, key) if key is not None else None
    if history is None:
        started = time.perf_counter()
        history = _read_events(events_file, customers, among)
        if key is not None and dataset_key(folder) == key:  # the files did not change while they were read
            history = write_cached(cache, key, history) or history  # mapped: the workers share its pages
        log.info("histories read from %s in %.1f s%s", folder, time.perf_counter() - started,
                 f" (cached in {cache})" if key is not None else "")
    else:
        log.info("histories of %s mapped from the cache in %s", folder, cache)
    indexed = customers.set_index("subject_id", drop=False).sort_index()
    indexed.index.name = None
    return HistoryStore(history, indexed, pd.Timestamp(metadata["extract_start"]), pd.Timestamp(metadata["extract_end"]),
                        history.n_events)


def _read_events(events_file: Path, customers: pd.DataFrame, filters: list | None = None) -> History:
    import pyarrow.parquet as pq

    table = pq.read_table(events_file, columns=list(EVENT_COLUMNS), read_dictionary=["code", "unit"], filters=filters)
    history = History.from_arrow(table, customers)
    del table
    _release_arrow_memory()
    return history


def check_dataset(folder: Path) -> None:
    """Raise a one-line ContractError unless the dataset folder opens and is whole: dataset.json
    reads, and each table is there with the contract's columns (and customers as many rows as
    dataset.json says). For Parquet only the footers are read (a truncated file has none: the
    footer is its last bytes), so `sote-risk serve` checks a region's data in well under a second
    before it binds the port; a worker that found the data broken would only crash-loop."""
    from data_contracts import ContractError
    from data_contracts.io import CUSTOMERS_FILE, EVENTS_FILE, METADATA_FILE, read_dataset, read_metadata
    from data_contracts.schemas import CUSTOMER_COLUMNS

    root = Path(folder)
    if not root.is_dir():
        raise ContractError(f"{root}: dataset folder not found")
    metadata = read_metadata(root / METADATA_FILE)
    if not all((root / f"{name}.parquet").exists() for name in (EVENTS_FILE, CUSTOMERS_FILE)):
        read_dataset(root, validate=False)  # a CSV extract (or a file missing): the reader names it
        return
    rows = {name: _parquet_rows(root / f"{name}.parquet", columns)
            for name, columns in ((EVENTS_FILE, EVENT_COLUMNS), (CUSTOMERS_FILE, CUSTOMER_COLUMNS))}
    expected = metadata.get("customers")
    if expected is not None and int(expected) != rows[CUSTOMERS_FILE]:
        raise ContractError(f"{root / 'customers.parquet'}: {rows[CUSTOMERS_FILE]} customers, "
                            f"but {METADATA_FILE} says {expected}")


def _parquet_rows(path: Path, columns: Sequence[str]) -> int:
    """The row count of a Parquet file from its footer, which must name every contract column."""
    import pyarrow.parquet as pq

    from data_contracts import ContractError

    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception as error:  # pyarrow raises several types for a truncated or corrupt file
        lines = str(error).strip().splitlines()
        raise ContractError(f"{path}: not a readable Parquet file ({lines[0][:200] if lines else type(error).__name__})") from None
    missing = [c for c in columns if c not in set(metadata.schema.names)]
    if missing:
        raise ContractError(f"{path}: missing column(s) {', '.join(missing)}")
    return int(metadata.num_rows)


def _release_arrow_memory() -> None:
    """Hand the Arrow buffers of a read back to the system now, not at the allocator's leisure."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def validate_posted(events: pd.DataFrame, customers: pd.DataFrame) -> None:
    """A posted history must keep the data contracts, the birth and death rules included (raises
    naming the rule and the rows)."""
    from data_contracts import validate_history

    validate_history(events, customers)


EARLIEST_EVENT = dt.datetime(1900, 1, 1)
LATEST_EVENT = dt.datetime(2100, 1, 1)


def check_event_times(times: Sequence[dt.datetime]) -> None:
    """A posted event before 1900 or from 2100 on (as written) is refused, naming the first: a
    rule a date-time schema cannot state, so a 422 rather than a malformed request's 400."""
    for i, moment in enumerate(times):
        if not EARLIEST_EVENT <= moment.replace(tzinfo=None) < LATEST_EVENT:
            raise ImplausibleEvent(f"events.{i}.time: {moment.isoformat()} is not between {EARLIEST_EVENT:%Y-%m-%d} and "
                                   f"{LATEST_EVENT:%Y-%m-%d}", field=f"events.{i}.time")


def posted_frames(customer: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A posted history (plain dicts) -> contract-shaped events and customers frames.

    service_area and cost_eur may be left out by the caller: they follow from the code catalogue
    (a DISCHARGE costs its length of stay times the day cost). Unknown codes are left for the
    contract check to name.
    """
    from data_contracts import load_code_catalogue

    check_event_times([event["time"] for event in events])
    catalogue = load_code_catalogue().set_index("code")
    subject = int(customer["subject_id"])
    customers = pd.DataFrame([{
        "subject_id": subject, "birth_year": int(customer["birth_year"]), "birth_month": int(customer["birth_month"]),
        "sex": customer["sex"], "municipality": customer["municipality"], "language": customer["language"],
    }]).astype({"subject_id": "int64", "birth_year": "int16", "birth_month": "int8"})
    rows = []
    for event in events:
        code = str(event["code"])
        known = code in catalogue.index
        value = event.get("numeric_value")
        area = event.get("service_area") or (catalogue.at[code, "service_area"] if known else "UNKNOWN")
        cost = event.get("cost_eur")
        if cost is None:
            unit_cost = float(catalogue.at[code, "unit_cost_eur"]) if known else 0.0
            basis = catalogue.at[code, "cost_basis"] if known else "event"
            cost = unit_cost * float(value) if basis == "day" and value is not None else (unit_cost if basis == "event" else 0.0)
        rows.append((subject, event["time"], code, value, area, event.get("unit"), float(cost)))
    frame = pd.DataFrame(rows, columns=["subject_id", "time", "code", "numeric_value", "service_area", "unit", "cost_eur"])
    frame = frame.astype({"subject_id": "int64", "numeric_value": "float64", "cost_eur": "float64"})
    frame["time"] = pd.to_datetime(frame["time"]).astype("datetime64[us]")
    frame["unit"] = frame["unit"].astype("string")
    frame["code"] = frame["code"].astype(str)
    frame["service_area"] = frame["service_area"].astype(str)
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    return frame, customers
