"""Chronic conditions ever on record (days since the childhood-onset ones were last coded), recent
hip fractures and weakness, and gaps in the purchases of chronic medication (refill adherence, as
in pharmacy-claims studies)."""

from __future__ import annotations

import numpy as np

from features.catalogue import (CHRONIC_CONDITIONS, CHRONIC_MED_GRACE_DAYS, CHRONIC_MEDICATION_CODES, CONDITION_RECENCY,
                               INJURY_CODES)
from features.families._common import as_float, days_since_last, late_refills, supply_gap_days
from features.past import PastWindow, group


def _medication(past: PastWindow) -> dict[str, np.ndarray]:
    gap = np.full(past.n, np.nan)
    late = np.zeros(past.n)
    for code in CHRONIC_MEDICATION_CODES:
        g = group(code)
        gap = np.fmax(gap, supply_gap_days(past, g))  # the longest gap among classes ever bought
        late += late_refills(past, g, CHRONIC_MED_GRACE_DAYS, 365)
    return {"chronic_med_gap_days": gap, "chronic_med_late_refills_365d": as_float(late)}


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    flags = {name: past.count_ever(group(*codes)) > 0 for name, codes in CHRONIC_CONDITIONS.items()}
    out = {"chronic_conditions": as_float(sum(f.astype(np.int64) for f in flags.values()))}
    out.update({f"dx_{name}": as_float(flag) for name, flag in flags.items()})
    out.update({f"dx_{name}_days_since": days_since_last(past, group(*CHRONIC_CONDITIONS[name])) for name in CONDITION_RECENCY})
    out["hip_fracture_365d"] = as_float(past.count(group("ICD10/S72.0"), 365))
    out["dx_weakness_365d"] = as_float(past.count(group("ICPC2/A04"), 365))
    out["injury_dx_365d"] = as_float(past.count(group(*INJURY_CODES), 365))
    out.update(_medication(past))
    return out
