"""The naive oracle: every feature, cohort rule and label for ONE customer at ONE time, by looping
over that customer's events in plain Python. Slow and obviously correct; the fast vectorised
path must equal it exactly (same numbers, same NaNs).

Only the definitions are shared with the fast path (constants, code lists from the catalogue);
none of its machinery (no searchsorted, no keys, no cumulative sums).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.catalogue import load_code_catalogue
from features.catalogue import (
    ANTIDEPRESSANT_GRACE_DAYS,
    CHRONIC_CONDITIONS,
    CHRONIC_MED_GRACE_DAYS,
    CHRONIC_MEDICATION_CODES,
    CONDITION_RECENCY,
    DEPRESSION_CODES,
    ER_LOW_ACUITY_CODES,
    ER_MEDICAL_CODES,
    FREQUENT_ATTENDER_ER_365D,
    INJURY_CODES,
    LANGUAGES,
    MUNICIPALITIES,
    RAI_SCALES,
    READMISSION_DAYS,
    SERVICE_CATEGORIES,
    SEXES,
    WINDOWS_DAYS,
)

DAY = 86_400 * 1_000_000
NAN = float("nan")


@dataclass(frozen=True)
class Ev:
    time: int  # microseconds
    code: str
    value: float
    cost: float
    unit: object


def micros(t) -> int:
    return int(np.datetime64(pd.Timestamp(t), "us").astype(np.int64))


def customer_events(events: pd.DataFrame, subject_id: int) -> list[Ev]:
    """One customer's events in (time, catalogue order of code) order; ties keep input order."""
    rank = {c: i for i, c in enumerate(load_code_catalogue()["code"])}
    rows = events[events["subject_id"] == subject_id]
    evs = []
    for r in rows.itertuples(index=False):
        value = NAN if pd.isna(r.numeric_value) else float(r.numeric_value)
        cost = 0.0 if pd.isna(r.cost_eur) else float(r.cost_eur)
        unit = None if pd.isna(r.unit) else r.unit
        evs.append(Ev(micros(r.time), r.code, value, cost, unit))
    return sorted(evs, key=lambda e: (e.time, rank[e.code]))  # sorted() is stable


def fixed_sum(values) -> float:
    return sum(round((0.0 if math.isnan(v) else v) * 1e6) for v in values) / 1e6


class Naive:
    def __init__(self, evs: list[Ev], customer: dict, t):
        self.all = evs
        self.t = micros(t)
        self.ts = pd.Timestamp(t)
        self.cust = customer
        self.upto = [e for e in evs if e.time <= self.t]

    # -- primitives --------------------------------------------------------------------------
    def window(self, codes, days, newer_days=0):
        lo, hi = self.t - days * DAY, self.t - newer_days * DAY
        return [e for e in self.upto if e.code in codes and lo < e.time <= hi]

    def count(self, codes, days):
        return len(self.window(codes, days))

    def of(self, codes):
        return [e for e in self.upto if e.code in codes]

    def days_since(self, codes):
        hits = self.of(codes)
        return (self.t - hits[-1].time) / DAY if hits else NAN

    def last_value(self, codes, k=1):
        hits = self.of(codes)
        return hits[-k].value if len(hits) >= k else NAN

    def is_open(self, opening, closing):
        hits = self.of(tuple(opening) + tuple(closing))
        return bool(hits) and hits[-1].code in opening

    def age(self):
        months = (self.ts.year * 12 + self.ts.month - 1) - (self.cust["birth_year"] * 12 + self.cust["birth_month"] - 1)
        return months // 12

    # -- families ------------------------------------------------------------------------------
    def demographics(self):
        return {"age_years": float(self.age()), "sex": self.cust["sex"], "municipality": self.cust["municipality"],
                "language": self.cust["language"]}

    def utilisation(self):
        out = {}
        for c in SERVICE_CATEGORIES:
            for w in WINDOWS_DAYS:
                out[f"{c.name}_{w}d"] = float(self.count(c.codes, w))
            out[f"{c.name}_days_since"] = self.days_since(c.codes)
            out[f"{c.name}_trend"] = float(len(self.window(c.codes, 90)) - len(self.window(c.codes, 180, 90)))
        return out

    def cost(self):
        recent = [e for e in self.upto if self.t - 365 * DAY < e.time]
        units = {e.unit for e in recent if e.unit is not None}
        return {"cost_eur_365d": fixed_sum(e.cost for e in recent), "units_distinct_365d": float(len(units))}

    def diagnoses(self):
        flags = {name: bool(self.of(codes)) for name, codes in CHRONIC_CONDITIONS.items()}
        out = {"chronic_conditions": float(sum(flags.values()))}
        out.update({f"dx_{n}": float(f) for n, f in flags.items()})
        out.update({f"dx_{n}_days_since": self.days_since(CHRONIC_CONDITIONS[n]) for n in CONDITION_RECENCY})
        out["hip_fracture_365d"] = float(self.count(("ICD10/S72.0",), 365))
        out["dx_weakness_365d"] = float(self.count(("ICPC2/A04",), 365))
        out["injury_dx_365d"] = float(self.count(INJURY_CODES, 365))
        gap, late = NAN, 0
        for code in CHRONIC_MEDICATION_CODES:
            bought = self.of((code,))
            if bought:
                class_gap = max((self.t - bought[-1].time) / DAY - bought[-1].value, 0.0)
                gap = class_gap if math.isnan(gap) else max(gap, class_gap)
            every = [e for e in self.all if e.code == code]
            for i, e in enumerate(every):
                if i and self.t - 365 * DAY < e.time <= self.t:
                    if (e.time - every[i - 1].time) / DAY - every[i - 1].value > CHRONIC_MED_GRACE_DAYS:
                        late += 1
        out["chronic_med_gap_days"] = gap
        out["chronic_med_late_refills_365d"] = float(late)
        return out

    def hospital(self):
        readmissions = 0
        for admit in self.window(("ADMIT/UNPLANNED",), 365):
            before = [e for e in self.all if e.code == "DISCHARGE" and e.time < admit.time]
            if before and admit.time - before[-1].time <= READMISSION_DAYS * DAY:
                readmissions += 1
        return {
            "bed_days_365d": fixed_sum(e.value for e in self.window(("DISCHARGE",), 365)),
            "bed_days_last_stay": self.last_value(("DISCHARGE",)),
            "discharge_days_since": self.days_since(("DISCHARGE",)),
            "discharged_30d": float(self.count(("DISCHARGE",), 30) > 0),
            "unplanned_readmissions_365d": float(readmissions),
        }

    def emergency(self):
        return {"er_visits_180d": float(self.count(("ENC/EMERGENCY",), 180)),
                "er_frequent_attender": float(self.count(("ENC/EMERGENCY",), 365) >= FREQUENT_ATTENDER_ER_365D),
                "er_low_acuity_dx_365d": float(self.count(ER_LOW_ACUITY_CODES, 365)),
                "er_medical_dx_365d": float(self.count(ER_MEDICAL_CODES, 365))}

    def homecare(self):
        active = self.is_open(("HOMECARE/START",), ("HOMECARE/END",))
        visits = self.count(("HOMECARE/VISIT",), 90)
        before = len(self.window(("HOMECARE/VISIT",), 180, 90))
        remote = self.count(("REMOTE/VIDEO_VISIT",), 90)
        missed = self.count(("MEDROBOT/MISSED_DOSE",), 30)
        taken = fixed_sum(e.value for e in self.window(("MEDROBOT/DISPENSE",), 30))
        return {
            "homecare_active": float(active),
            "homecare_days_in_service": self.days_since(("HOMECARE/START",)) if active else NAN,
            "homecare_visits_per_month": visits / 3,
            "homecare_visits_per_month_trend": (visits - before) / 3,
            "homecare_minutes_30d": fixed_sum(e.value for e in self.window(("HOMECARE/VISIT",), 30)),
            "homecare_minutes_per_visit_90d": (fixed_sum(e.value for e in self.window(("HOMECARE/VISIT",), 90)) / visits
                                               if visits else NAN),
            "remote_active": float(bool(self.of(("REMOTE/START",)))),
            "remote_visit_share_90d": remote / (remote + visits) if remote + visits else NAN,
            "medrobot_active": float(bool(self.of(("MEDROBOT/START",)))),
            "medrobot_missed_dose_rate_30d": missed / (missed + taken) if missed + taken != 0 else NAN,
            "rehab_active": float(self.is_open(("REHAB/START",), ("REHAB/END",))),
        }

    def assessments(self):
        out = {}
        for name, (code, _, _) in RAI_SCALES.items():
            out[f"rai_{name}_last"] = self.last_value((code,))
            out[f"rai_{name}_change"] = self.last_value((code,)) - self.last_value((code,), 2)
        out["rai_days_since"] = self.days_since(tuple(c for c, _, _ in RAI_SCALES.values()))
        return out

    def child_welfare(self):
        return {
            "childwelfare_open_care_active": float(self.is_open(("CHILDWELFARE/OPEN_CARE_START",), ("CHILDWELFARE/OPEN_CARE_END",))),
            "childwelfare_placements_365d": float(self.count(("CHILDWELFARE/PLACEMENT",), 365)),
            "childwelfare_placed_ever": float(bool(self.of(("CHILDWELFARE/PLACEMENT",)))),
        }

    def mental_health(self):
        phq = self.of(("PHQ9",))
        change = phq[-1].value - phq[-2].value if len(phq) >= 2 else NAN
        slope = NAN
        if len(phq) >= 2 and phq[-1].time > phq[-2].time:
            slope = change / ((phq[-1].time - phq[-2].time) / DAY) * 30
        dispensed = self.of(("MED/ANTIDEPRESSANT",))
        gap = max((self.t - dispensed[-1].time) / DAY - dispensed[-1].value, 0.0) if dispensed else NAN
        if dispensed and math.isnan(dispensed[-1].value):
            gap = NAN
        every = [e for e in self.all if e.code == "MED/ANTIDEPRESSANT"]
        late = 0
        for i, e in enumerate(every):
            if i and self.t - 365 * DAY < e.time <= self.t:
                prev = every[i - 1]
                if (e.time - prev.time) / DAY - prev.value > ANTIDEPRESSANT_GRACE_DAYS:
                    late += 1
        return {
            "phq9_last": phq[-1].value if phq else NAN,
            "phq9_change": change,
            "phq9_slope_per_30d": slope,
            "phq9_days_since": self.days_since(("PHQ9",)),
            "depression_dx_days_since": self.days_since(DEPRESSION_CODES),
            "antidepressant_gap_days": gap,
            "antidepressant_late_refills_365d": float(late),
        }

    def features(self, families) -> dict:
        out = {}
        for family in families:
            out.update(getattr(self, family)())
        return out

    # -- cohorts and labels --------------------------------------------------------------------
    def cohort(self) -> dict:
        age = self.age()
        born = (self.ts.year * 12 + self.ts.month - 1) >= (self.cust["birth_year"] * 12 + self.cust["birth_month"] - 1)
        alive = not self.of(("DEATH",))
        moves = self.of(("MOVE/IN", "MOVE/OUT"))  # only moves on record at t decide residency at t
        resident = not moves or moves[-1].code == "MOVE/IN"
        population = born and alive and resident
        homecare = self.is_open(("HOMECARE/START",), ("HOMECARE/END",))
        acute = self.count(("ENC/EMERGENCY", "ADMIT/UNPLANNED"), 90) > 0
        depression = self.count(DEPRESSION_CODES, 730) > 0 or any(e.value >= 10 for e in self.window(("PHQ9",), 730))
        return {
            "in_elderly": population and (age >= 75 or homecare),
            "in_children": population and 0 <= age <= 17,
            "in_acute": population and acute,
            "in_depression": population and depression,
            "in_hospital": self.is_open(("ADMIT/UNPLANNED", "ADMIT/PLANNED"), ("DISCHARGE",)),
            "homecare": homecare,
            "care24h": bool(self.of(("CARE24H/START",))),
        }

    def label(self, code: str, horizon_days: int, extract_end) -> tuple[str, object, object]:
        """('positive'|'negative'|'censored', reason or None, outcome time (Timestamp) or None).
        Death within the horizon before the outcome is a negative (a competing event; reason
        "death", which no censor column shows); moving away first and a horizon past the extract
        end censor."""
        end = self.t + horizon_days * DAY
        after = [e for e in self.all if e.time > self.t]
        outcome = next((e for e in after if e.code == code), None)
        terminal = next((e for e in after if e.code in ("DEATH", "MOVE/OUT")), None)
        if end > micros(extract_end):  # the index time alone decides, positive or not
            return "censored", "extract_end", None
        if outcome and outcome.time <= end and (terminal is None or outcome.time <= terminal.time):
            return "positive", None, pd.Timestamp(outcome.time, unit="us")
        if terminal and terminal.time <= end:
            return ("negative", "death", None) if terminal.code == "DEATH" else ("censored", "moved_away", None)
        return "negative", None, None


CATEGORIES = {"sex": SEXES, "municipality": MUNICIPALITIES, "language": LANGUAGES}
