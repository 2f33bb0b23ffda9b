"""Small random and crafted event histories for the feature tests (no simulator needed).

The random population is deliberately rough around the edges: events exactly at index times
(month starts 00:00), same-instant ties, stays, home care spells, deaths and moves, values at
their ranges, so the fast path meets every case the naive oracle handles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.catalogue import load_code_catalogue

EXTRACT_START = pd.Timestamp("2021-01-01")
EXTRACT_END = pd.Timestamp("2024-01-01")
MUNICIPALITIES = ["Lappeenranta", "Imatra", "Lemi", "Luumäki", "Parikkala", "Rautjärvi", "Ruokolahti", "Savitaipale", "Taipalsaari"]
UNITS = ["HC/Imatra", "HC/Lappeenranta", "EKKS/ER", "EKKS/W1", "HOMECARE/Lemi/1", "PSY/1", None]

# codes that occur as point events, with a numeric value generator where they carry one
_VALUES = {
    "HOMECARE/VISIT": lambda r: float(r.integers(5, 90)),
    "REMOTE/VIDEO_VISIT": lambda r: float(r.integers(5, 30)),
    "MEDROBOT/DISPENSE": lambda r: float(r.integers(0, 5)),
    "RAI/MAPLE": lambda r: float(r.integers(1, 6)),
    "RAI/CPS": lambda r: float(r.integers(0, 7)),
    "RAI/ADLH": lambda r: float(r.integers(0, 7)),
    "RAI/IADL": lambda r: float(r.integers(0, 7)),
    "RAI/CHESS": lambda r: float(r.integers(0, 6)),
    "RAI/DRS": lambda r: float(r.integers(0, 15)),
    "PHQ9": lambda r: float(r.integers(0, 28)),
    "MED/ANTIDEPRESSANT": lambda r: float(r.choice([28, 30, 90, 100])),
    "RAI/LIVES_ALONE": lambda r: float(r.integers(0, 2)),
    "RAI/CG_DISTRESS": lambda r: float(r.integers(0, 2)),
    "RAI/ABS": lambda r: float(r.integers(0, 13)),
    "RAI/FALLS": lambda r: float(r.integers(0, 3)),
    "SOCIAL/INFORMAL_CARE_FEE": lambda r: float(r.choice([476.0, 950.0])),
    # A fixed supply (the refill-gap features still vary with the purchase times).
    "MED/ATC_C": lambda r: 90.0,
    "MED/ATC_R03": lambda r: 90.0,
    "MED/ATC_A10": lambda r: 90.0,
}
_PAIRED_OR_LIFE = {"ADMIT/UNPLANNED", "ADMIT/PLANNED", "DISCHARGE", "HOMECARE/START", "HOMECARE/END", "REHAB/START",
                   "REHAB/END", "CHILDWELFARE/OPEN_CARE_START", "CHILDWELFARE/OPEN_CARE_END", "DEATH", "MOVE/IN", "MOVE/OUT",
                   "CARE24H/START", "REMOTE/START", "MEDROBOT/START"}


def _catalogue() -> pd.DataFrame:
    return load_code_catalogue().set_index("code")


def random_time(rng: np.random.Generator, start: pd.Timestamp = EXTRACT_START, end: pd.Timestamp = EXTRACT_END) -> pd.Timestamp:
    """A random time; one in five lands exactly on a month start at 00:00 (an index time)."""
    if rng.random() < 0.2:
        months = (end.year - start.year) * 12 + end.month - start.month
        return start + pd.DateOffset(months=int(rng.integers(0, months)))
    seconds = int(rng.integers(0, int((end - start).total_seconds())))
    return start + pd.Timedelta(seconds=seconds)


def random_population(n: int = 300, seed: int = 0, events_per_customer: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` customers with shuffled random histories.

    Each concern draws from its own stream (customers, event counts and times, the code of a point
    event, its value, stays / spells / life events, units and costs), so adding a code to the
    catalogue changes which point codes are drawn but not the times, stays, home care spells,
    24-hour care starts or deaths: the label classes the tests rely on stay put.
    """
    (cust_rng, time_rng, code_rng, value_rng, life_rng, unit_rng) = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6))
    cat = _catalogue()
    point_codes = [c for c in cat.index if c not in _PAIRED_OR_LIFE]
    customers = pd.DataFrame({
        "subject_id": np.arange(1, n + 1, dtype=np.int64) * 7 + 1000,
        "birth_year": cust_rng.choice([1925, 1940, 1946, 1947, 1948, 1960, 1990, 2005, 2006, 2010, 2020], size=n).astype(np.int16),
        "birth_month": cust_rng.integers(1, 13, size=n).astype(np.int8),
        "sex": cust_rng.choice(["F", "M"], size=n),
        "municipality": cust_rng.choice(MUNICIPALITIES, size=n),
        "language": cust_rng.choice(["fi", "sv", "other"], size=n, p=[0.85, 0.1, 0.05]),
    })
    rows = []
    for sid in customers["subject_id"]:
        k = int(time_rng.poisson(events_per_customer)) if time_rng.random() > 0.05 else 0  # some have no events
        for t in [random_time(time_rng) for _ in range(k)]:
            code = point_codes[int(code_rng.integers(len(point_codes)))] if code_rng.random() < 0.8 else code_rng.choice(
                ["ENC/EMERGENCY", "ADMIT/UNPLANNED", "HOMECARE/VISIT", "PHQ9", "MED/ANTIDEPRESSANT", "ICD10/F33"])
            value = _VALUES[code](value_rng) if code in _VALUES else np.nan
            rows.append((sid, t, code, value))
        # stays: admission then a discharge with the length of stay (some still open at the end)
        for _ in range(int(life_rng.integers(0, 4))):
            admit = random_time(life_rng)
            code = "ADMIT/UNPLANNED" if life_rng.random() < 0.7 else "ADMIT/PLANNED"
            rows.append((sid, admit, code, np.nan))
            los = float(life_rng.integers(0, 20)) + (0.5 if life_rng.random() < 0.3 else 0.0)
            dis = admit + pd.Timedelta(days=los)
            if dis < EXTRACT_END and life_rng.random() < 0.9:
                rows.append((sid, dis, "DISCHARGE", los))
        for opening, closing in (("HOMECARE/START", "HOMECARE/END"), ("REHAB/START", "REHAB/END"),
                                 ("CHILDWELFARE/OPEN_CARE_START", "CHILDWELFARE/OPEN_CARE_END")):
            if life_rng.random() < 0.3:
                a = random_time(life_rng)
                rows.append((sid, a, opening, np.nan))
                if life_rng.random() < 0.5:
                    rows.append((sid, a + pd.Timedelta(days=int(life_rng.integers(0, 300))), closing, np.nan))
        for code in ("CARE24H/START", "REMOTE/START", "MEDROBOT/START"):
            if life_rng.random() < 0.1:
                rows.append((sid, random_time(life_rng), code, np.nan))
        if life_rng.random() < 0.1:
            rows.append((sid, random_time(life_rng), "MOVE/OUT", np.nan))
        if life_rng.random() < 0.05:
            rows.append((sid, random_time(life_rng), "MOVE/IN", np.nan))
        if life_rng.random() < 0.08:
            rows.append((sid, random_time(life_rng), "DEATH", np.nan))
    events = pd.DataFrame(rows, columns=["subject_id", "time", "code", "numeric_value"])
    events["time"] = events["time"].astype("datetime64[us]")
    events["service_area"] = cat.loc[events["code"], "service_area"].to_numpy()
    events["unit"] = pd.array(unit_rng.choice(np.array(UNITS, dtype=object), size=len(events)), dtype="string")
    unit_cost = cat.loc[events["code"], "unit_cost_eur"].to_numpy()
    los = np.where(events["code"] == "DISCHARGE", events["numeric_value"].fillna(0), 1.0)
    events["cost_eur"] = np.round(unit_cost * los * unit_rng.uniform(0.8, 1.2, len(events)), 2)
    events = events.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # order must not matter
    return customers, events


def index_times(start: str = "2022-01-01", months: int = 6, step: int = 3) -> list[pd.Timestamp]:
    return [pd.Timestamp(start) + pd.DateOffset(months=i * step) for i in range(months)]


def timeline(subject_id: int, *items: tuple, birth_year: int = 1940, birth_month: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Crafted history: items are (time, code) or (time, code, value)."""
    cat = _catalogue()
    rows = []
    for item in items:
        t, code = pd.Timestamp(item[0]), item[1]
        value = item[2] if len(item) > 2 else np.nan
        rows.append({"subject_id": subject_id, "time": t, "code": code, "numeric_value": float(value),
                     "service_area": cat.loc[code, "service_area"], "unit": "HC/Imatra",
                     "cost_eur": float(cat.loc[code, "unit_cost_eur"])})
    events = pd.DataFrame(rows, columns=["subject_id", "time", "code", "numeric_value", "service_area", "unit", "cost_eur"])
    events["time"] = events["time"].astype("datetime64[us]")
    events["subject_id"] = events["subject_id"].astype(np.int64)
    customers = pd.DataFrame({"subject_id": [subject_id], "birth_year": np.array([birth_year], np.int16),
                              "birth_month": np.array([birth_month], np.int8), "sex": ["F"],
                              "municipality": ["Imatra"], "language": ["fi"]})
    return customers, events
