"""Depression care: PHQ-9 level and slope, diagnoses, gaps in antidepressant dispensing."""

from __future__ import annotations

import numpy as np

from features.catalogue import ANTIDEPRESSANT_GRACE_DAYS, DEPRESSION_CODES
from features.families._common import as_float, days_since_last, late_refills, supply_gap_days
from features.past import PastWindow, days_between, group

PHQ9 = group("PHQ9")
ANTIDEPRESSANT = group("MED/ANTIDEPRESSANT")


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    newest, before = past.last(PHQ9), past.last(PHQ9, 2)
    last, previous = newest.value(), before.value()
    change = last - previous
    elapsed = days_between(newest.time(), before.time())
    slope = np.full(past.n, np.nan)
    ok = before.exists & (elapsed > 0)
    slope[ok] = change[ok] / elapsed[ok] * 30

    return {
        "phq9_last": last,
        "phq9_change": change,
        "phq9_slope_per_30d": slope,
        "phq9_days_since": days_since_last(past, PHQ9),
        "depression_dx_days_since": days_since_last(past, group(*DEPRESSION_CODES)),
        "antidepressant_gap_days": supply_gap_days(past, ANTIDEPRESSANT),
        "antidepressant_late_refills_365d": as_float(late_refills(past, ANTIDEPRESSANT, ANTIDEPRESSANT_GRACE_DAYS, 365)),
    }
