"""Validation entry points: per-column schema (pandera, lazy) plus the cross-row rules.

Every validator collects all failures and raises one ContractError; none of them modifies or
returns the caller's frame. Row numbers in messages are 0-based positions in the frame as given.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import pandera.errors as pe
import pandera.pandas as pa

from data_contracts import rules
from data_contracts.catalogue import load_code_catalogue
from data_contracts.errors import Failure, failure_at, raise_if_any
from data_contracts.regions import Region, UnknownRegionError, region
from data_contracts.schemas import (
    customers_schema,
    events_schema,
    labels_schema,
    predictions_schema,
)

# pandera's internal check names, said in words.
_RULE_WORDS = {
    "not_nullable": "null not allowed",
    "field_uniqueness": "duplicate value (must be unique)",
    "column_in_dataframe": "missing column",
    "column_in_schema": "unexpected column",
}


def run_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame, table: str) -> list[Failure]:
    """Run a pandera schema lazily and turn its failure cases into compact Failures."""
    # Positional index (a cheap copy-on-write view), so failure rows are positions, not labels.
    positional = frame.reset_index(drop=True)
    try:
        schema.validate(positional, lazy=True)
    except pe.SchemaErrors as errors:
        return _failures_from_pandera(errors.failure_cases, positional, table)
    except pe.SchemaError as error:  # raised by some schema-level checks even when lazy
        return [Failure(table, "", str(error).splitlines()[0])]
    return []


def _failures_from_pandera(cases: pd.DataFrame, frame: pd.DataFrame, table: str) -> list[Failure]:
    subject_ids = _subject_ids(frame)
    failures: list[Failure] = []
    for (context, column, check), group in cases.groupby(
        ["schema_context", "column", "check"], sort=False, dropna=False
    ):
        check = str(check)
        if context == "DataFrameSchema" and check in ("column_in_dataframe", "column_in_schema"):
            for name in group["failure_case"]:
                failures.append(Failure(table, str(name), _RULE_WORDS[check]))
            continue
        column_name = "" if context == "DataFrameSchema" else str(column)
        if check.startswith("dtype("):
            expected = check[len("dtype(") : -1].strip("'")
            got = ", ".join(str(v) for v in group["failure_case"].unique())
            failures.append(Failure(table, column_name, f"wrong dtype: expected {expected}", detail=f"got {got}"))
            continue
        rule = _RULE_WORDS.get(check, check)
        rows = pd.to_numeric(group["index"], errors="coerce").dropna().astype("int64").unique()
        if len(rows):
            failures.append(failure_at(table, column_name, rule, np.sort(rows), subject_ids))
        else:  # a check that could not run at all (e.g. on a column of the wrong type)
            if not column_name and any(f.rule == "missing column" for f in failures):
                continue  # a table-wide check that failed only because a column is missing
            detail = str(group["failure_case"].iloc[0])[:120]
            failures.append(Failure(table, column_name, rule, detail=detail))
    return failures


def _subject_ids(frame: pd.DataFrame) -> np.ndarray | None:
    if "subject_id" not in frame or not pd.api.types.is_integer_dtype(frame["subject_id"]):
        return None
    return frame["subject_id"].to_numpy()


def _usable(failures: Iterable[Failure], table: str, columns: Iterable[str], frame: pd.DataFrame) -> bool:
    """A cross-row rule runs only on columns that exist, have the right dtype and no nulls."""
    needed = set(columns)
    if not needed.issubset(frame.columns):
        return False
    for f in failures:
        if f.table == table and f.column in needed and (f.rule.startswith("wrong dtype") or f.rule == "null not allowed"):
            return False
    return True


def event_failures(
    events: pd.DataFrame,
    customers: pd.DataFrame | None = None,
    extract_start: pd.Timestamp | None = None,
    extract_end: pd.Timestamp | None = None,
) -> list[Failure]:
    """All failures of an events frame (and its links to customers, when given)."""
    catalogue = load_code_catalogue()
    failures = run_schema(events_schema(), events, "events")
    if not _usable(failures, "events", ("subject_id", "time", "code"), events):
        return failures
    ev = rules.EventArrays.build(events, catalogue)
    failures += rules.sort_rule(ev)
    if _usable(failures, "events", ("service_area", "numeric_value", "cost_eur"), events):
        failures += rules.code_rules(ev, events, catalogue)
    failures += rules.stay_rules(ev, catalogue)
    if extract_start is not None and extract_end is not None:
        failures += rules.window_rule(ev, extract_start, extract_end)
    if customers is not None and _usable(
        [], "customers", ("subject_id", "birth_year", "birth_month"), customers
    ) and _customer_keys_ok(customers):
        failures += rules.life_rules(ev, customers, catalogue)
    return failures


def _customer_keys_ok(customers: pd.DataFrame) -> bool:
    return all(
        pd.api.types.is_integer_dtype(customers[c]) and not customers[c].isna().any()
        for c in ("subject_id", "birth_year", "birth_month")
    )


def customer_failures(customers: pd.DataFrame, max_birth_year: int, region: Region | None = None) -> list[Failure]:
    return run_schema(customers_schema(max_birth_year, region), customers, "customers")


def dataset_region(metadata: Mapping[str, Any]) -> Region:
    """The region dataset.json names (`region`; absent = Eksote); an unknown one is a contract error."""
    from data_contracts.errors import ContractError

    try:
        return region(metadata.get("region"))
    except UnknownRegionError as error:
        raise ContractError(f"dataset.json: region: {error}") from None


def validate_events(
    events: pd.DataFrame,
    *,
    extract_start: pd.Timestamp | None = None,
    extract_end: pd.Timestamp | None = None,
) -> None:
    """Raise ContractError unless the events frame keeps every per-table contract rule."""
    raise_if_any(event_failures(events, None, extract_start, extract_end))


def validate_customers(customers: pd.DataFrame, *, max_birth_year: int | None = None) -> None:
    """Raise ContractError unless the customers frame keeps the contract (births up to max_birth_year)."""
    year = max_birth_year if max_birth_year is not None else pd.Timestamp.now().year
    raise_if_any(customer_failures(customers, year))


def validate_history(events: pd.DataFrame, customers: pd.DataFrame, *, max_birth_year: int | None = None) -> None:
    """Raise ContractError unless a history without an extract (one a caller posts: customers and
    their events) keeps every rule a dataset keeps but the extract window, the links to the
    customers included: no event before the birth month or after the DEATH (issue 16: posted
    histories were checked table by table, so those rules never ran)."""
    year = max_birth_year if max_birth_year is not None else pd.Timestamp.now().year
    raise_if_any(customer_failures(customers, year) + event_failures(events, customers))


def validate_dataset(events: pd.DataFrame, customers: pd.DataFrame, metadata: Mapping[str, Any]) -> None:
    """Raise ContractError unless events, customers and their links all keep the contract.

    metadata is dataset.json's content; its extract window bounds the events and its extract
    year bounds the birth years.
    """
    start, end = extract_window(metadata)
    failures = customer_failures(customers, end.year, dataset_region(metadata))
    failures += event_failures(events, customers, start, end)
    n_customers = metadata.get("customers")
    if n_customers is not None and int(n_customers) != len(customers):
        failures.append(
            Failure("dataset.json", "customers", "must equal the number of customers", detail=f"{n_customers} != {len(customers)}")
        )
    raise_if_any(failures)


def extract_window(metadata: Mapping[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    from data_contracts.errors import ContractError

    try:
        start = pd.Timestamp(metadata["extract_start"])
        end = pd.Timestamp(metadata["extract_end"])
    except (KeyError, ValueError, TypeError) as error:
        raise ContractError(f"dataset.json: extract_start and extract_end must be ISO datetimes ({error})") from None
    if start > end:
        raise ContractError(f"dataset.json: extract_start {start} is after extract_end {end}")
    return start, end


def validate_labels(labels: pd.DataFrame) -> None:
    """Raise ContractError unless the frame has the MEDS label shape (see schemas.labels_schema)."""
    raise_if_any(run_schema(labels_schema(), labels, "labels"))


def validate_predictions(predictions: pd.DataFrame) -> None:
    """Raise ContractError unless the frame is a valid predictions table."""
    raise_if_any(run_schema(predictions_schema(), predictions, "predictions"))
