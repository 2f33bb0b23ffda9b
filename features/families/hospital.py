"""Hospital stays: bed days, last stay, recent discharge, 30-day readmissions."""

from __future__ import annotations

import numpy as np

from features.catalogue import READMISSION_DAYS
from features.families._common import as_float, days_since_last, last_value
from features.past import PastWindow, group

DISCHARGE = group("DISCHARGE")
UNPLANNED = group("ADMIT/UNPLANNED")


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    return {
        "bed_days_365d": past.sum(DISCHARGE, "value", 365),
        "bed_days_last_stay": last_value(past, DISCHARGE),
        "discharge_days_since": days_since_last(past, DISCHARGE),
        "discharged_30d": as_float(past.count(DISCHARGE, 30) > 0),
        # within READMISSION_DAYS of the previous discharge (one at the same instant is a transfer)
        "unplanned_readmissions_365d": as_float(past.count_soon_after(UNPLANNED, DISCHARGE, READMISSION_DAYS, 365)),
    }
