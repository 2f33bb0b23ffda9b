"""Depression care: PHQ-9 level and slope, diagnoses, gaps in antidepressant dispensing."""

from __future__ import annotations

import numpy as np

from features.catalogue import ANTIDEPRESSANT_GRACE_DAYS, DEPRESSION_CODES
from features.families._common import as_float, days_since_last, late_refill_flags, supply_gap_days
from features.windows import Timeline, days_between, group

PHQ9 = group("PHQ9")
ANTIDEPRESSANT = group("MED/ANTIDEPRESSANT")


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    i1, v1 = tl.last(PHQ9)
    i2, v2 = tl.last(PHQ9, 2)
    last, previous = tl.take(PHQ9, "value", i1, v1), tl.take(PHQ9, "value", i2, v2)
    t1, t2 = tl.take(PHQ9, "time", i1, v1, fill=0), tl.take(PHQ9, "time", i2, v2, fill=0)
    change = last - previous
    elapsed = days_between(t1, t2)
    slope = np.full(tl.n, np.nan)
    ok = v2 & (elapsed > 0)
    slope[ok] = change[ok] / elapsed[ok] * 30

    return {
        "phq9_last": last,
        "phq9_change": change,
        "phq9_slope_per_30d": slope,
        "phq9_days_since": days_since_last(tl, PHQ9),
        "depression_dx_days_since": days_since_last(tl, group(*DEPRESSION_CODES)),
        "antidepressant_gap_days": supply_gap_days(tl, ANTIDEPRESSANT),
        "antidepressant_late_refills_365d": as_float(
            tl.flagged_count(ANTIDEPRESSANT, late_refill_flags(tl, ANTIDEPRESSANT, ANTIDEPRESSANT_GRACE_DAYS), 365)),
    }
