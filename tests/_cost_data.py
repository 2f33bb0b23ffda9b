"""A tiny hand-made region whose 2024 costs can be added up by hand (the cost view's naive oracle).

Customers (age at the end of 2024):
  1  84, home care since 2023-06, remote visits from 2024-07-01, an ER visit and a 4-day
     unplanned stay in March: elderly, acute                                  2024 cost 3,410
  2  10, a child health visit, an ER visit on 2024-11-20: children, acute           391
  3  60, heart failure and depression diagnoses, a planned stay 2023-12-30..2024-01-03
     (cost 3,000, discharged in 2024): depression; heart failure 50-65               3,125
  4  80, 24-hour care from 2024-10-01, heart failure: elderly                          51
  5  34, one nurse visit: no segment                                                   51
  6  moved away in 2023: not a customer of 2024                                         0
  7  62, heart failure, one nurse visit: no segment; heart failure 50-65               51
Total 2024: 7,079.
"""

from __future__ import annotations

import pandas as pd

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2025-01-01")
TOTAL_2024 = 3410 + 391 + 3125 + 51 + 51 + 51
PER_CUSTOMER_2024 = {1: 3410.0, 2: 391.0, 3: 3125.0, 4: 51.0, 5: 51.0, 7: 51.0}
AREAS_2024 = {"PRIMARY": 278.0, "EMERGENCY": 680.0, "HOSPITAL": 6000.0, "HOMECARE": 58.0, "REMOTE": 12.0, "CHILDHEALTH": 51.0}

_EVENTS = [  # subject, time, code, value, cost
    (1, "2023-06-01 00:00", "HOMECARE/START", None, 0),
    (1, "2024-02-01 10:00", "HOMECARE/VISIT", 20, 29),
    (1, "2024-03-10 06:00", "ENC/EMERGENCY", None, 340),
    (1, "2024-03-10 08:00", "ADMIT/UNPLANNED", None, 0),
    (1, "2024-03-14 08:00", "DISCHARGE", 4, 3000),
    (1, "2024-07-01 00:00", "REMOTE/START", None, 0),
    (1, "2024-07-02 10:00", "REMOTE/VIDEO_VISIT", 15, 12),
    (1, "2024-08-01 10:00", "HOMECARE/VISIT", 20, 29),
    (2, "2023-05-01 09:00", "ENC/HC_NURSE", None, 51),
    (2, "2024-05-05 09:00", "ENC/CHILD_HEALTH", None, 51),
    (2, "2024-11-20 18:00", "ENC/EMERGENCY", None, 340),
    (3, "2023-12-30 00:00", "ADMIT/PLANNED", None, 0),
    (3, "2024-01-03 00:00", "DISCHARGE", 4, 3000),
    (3, "2024-04-01 09:00", "ENC/HC_DOCTOR", None, 125),
    (3, "2024-04-01 09:00", "ICD10/I50.9", None, 0),
    (3, "2024-06-01 09:00", "ICD10/F32.1", None, 0),
    (4, "2024-10-01 00:00", "CARE24H/START", None, 0),
    (4, "2024-11-01 09:00", "ENC/HC_NURSE", None, 51),
    (4, "2024-11-01 09:00", "ICD10/I50.9", None, 0),
    (5, "2024-02-02 09:00", "ENC/HC_NURSE", None, 51),
    (6, "2023-02-01 09:00", "ENC/HC_NURSE", None, 51),
    (6, "2023-06-01 12:00", "MOVE/OUT", None, 0),
    (7, "2024-05-01 09:00", "ENC/HC_NURSE", None, 51),
    (7, "2024-05-01 09:00", "ICD10/I50.9", None, 0),
]
_BIRTHS = {1: (1940, 5), 2: (2014, 3), 3: (1964, 1), 4: (1944, 10), 5: (1990, 1), 6: (1990, 6), 7: (1962, 1)}


def tiny_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from data_contracts.catalogue import load_code_catalogue

    area = load_code_catalogue().set_index("code")["service_area"]
    events = pd.DataFrame(_EVENTS, columns=["subject_id", "time", "code", "numeric_value", "cost_eur"])
    events["time"] = pd.to_datetime(events["time"]).astype("datetime64[us]")
    events["numeric_value"] = events["numeric_value"].astype("float64")
    events["cost_eur"] = events["cost_eur"].astype("float64")
    events["service_area"] = events["code"].map(area)
    events["unit"] = None
    customers = pd.DataFrame({
        "subject_id": list(_BIRTHS), "birth_year": [b[0] for b in _BIRTHS.values()],
        "birth_month": [b[1] for b in _BIRTHS.values()], "sex": ["F", "M", "F", "M", "F", "M", "F"],
        "municipality": ["Lappeenranta"] * 7, "language": ["fi"] * 7,
    })
    customers = customers.astype({"birth_year": "int16", "birth_month": "int8"})
    return events.sort_values(["subject_id", "time"], kind="stable").reset_index(drop=True), customers


def tiny_history():  # noqa: ANN201 (features.History)
    from features import History

    events, customers = tiny_frames()
    return History.from_frames(events, customers)
