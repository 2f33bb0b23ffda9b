"""Tiny, valid inline frames for the data-contract tests (each test breaks one thing)."""

from __future__ import annotations

import pandas as pd

EXTRACT = {"extract_start": "2023-01-01T00:00:00", "extract_end": "2024-12-31T23:59:00"}


def metadata(**overrides) -> dict:
    return {"name": "tiny", "source": "synthetic", "seed": 1, "customers": 3, **EXTRACT, "simulator_version": "test", **overrides}


def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_id": pd.array([11, 12, 13], dtype="int64"),
            "birth_year": pd.array([1940, 2015, 1960], dtype="int16"),
            "birth_month": pd.array([3, 6, 12], dtype="int8"),
            "sex": pd.array(["F", "M", "F"], dtype="str"),
            "municipality": pd.array(["Imatra", "Lemi", "Luumäki"], dtype="str"),
            "language": pd.array(["fi", "sv", "other"], dtype="str"),
        }
    )


# (subject_id, time, code, numeric_value, service_area, unit, cost_eur); sorted by subject, time.
EVENT_ROWS = [
    (11, "2023-01-01 00:00", "HOMECARE/START", None, "HOMECARE", "HOMECARE/Imatra/1", 0.0),
    (11, "2023-02-03 10:15", "HOMECARE/VISIT", 35.0, "HOMECARE", "HOMECARE/Imatra/1", 29.0),
    (11, "2023-03-01 08:00", "ADMIT/UNPLANNED", None, "HOSPITAL", "EKKS/ER", 0.0),
    (11, "2023-03-04 12:00", "DISCHARGE", 3.1666666666666665, "HOSPITAL", "EKKS/W3", 2375.0),
    (11, "2023-05-01 09:00", "PHQ9", 12.0, "MENTAL", None, 0.0),
    (11, "2023-06-01 00:00", "HOMECARE/END", None, "HOMECARE", "HOMECARE/Imatra/1", 0.0),
    (11, "2024-01-10 07:00", "ADMIT/PLANNED", None, "HOSPITAL", "EKKS/W1", 0.0),
    (11, "2024-01-20 07:00", "DISCHARGE", 10.0, "HOSPITAL", "EKKS/W1", 7500.0),
    (11, "2024-02-01 03:00", "DEATH", None, "LIFE", None, 0.0),
    (12, "2023-04-01 10:00", "CHILDWELFARE/NOTIFICATION", None, "CHILDWELFARE", "SOS/LS", 0.0),
    (12, "2023-04-02 10:00", "CHILDWELFARE/OPEN_CARE_START", None, "CHILDWELFARE", "SOS/LS", 0.0),
    (12, "2023-09-02 10:00", "CHILDWELFARE/OPEN_CARE_END", None, "CHILDWELFARE", "SOS/LS", 0.0),
    (13, "2023-07-01 08:00", "REHAB/START", None, "REHAB", "REHAB/Lemi", 0.0),
    (13, "2023-07-02 08:00", "REHAB/VISIT", None, "REHAB", "REHAB/Lemi", 60.0),
    (13, "2023-08-01 08:00", "REHAB/END", None, "REHAB", "REHAB/Lemi", 0.0),
    # A stay still open at the extract end is valid.
    (13, "2024-12-30 22:00", "ADMIT/UNPLANNED", None, "HOSPITAL", "EKKS/ER", 0.0),
]


def events(rows: list[tuple] | None = None) -> pd.DataFrame:
    rows = EVENT_ROWS if rows is None else rows
    columns = ["subject_id", "time", "code", "numeric_value", "service_area", "unit", "cost_eur"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(
        {
            "subject_id": "int64",
            "time": "datetime64[us]",
            "code": "str",
            "numeric_value": "float64",
            "service_area": "str",
            "unit": "str",
            "cost_eur": "float64",
        }
    )


def replace_row(index: int, **changes) -> list[tuple]:
    """EVENT_ROWS with one row changed (by column name)."""
    names = ["subject_id", "time", "code", "numeric_value", "service_area", "unit", "cost_eur"]
    rows = [list(r) for r in EVENT_ROWS]
    for name, value in changes.items():
        rows[index][names.index(name)] = value
    return [tuple(r) for r in rows]
