"""Hospital stays: bed days, last stay, recent discharge, 30-day readmissions."""

from __future__ import annotations

import numpy as np

from features.catalogue import READMISSION_DAYS
from features.families._common import as_float, days_since_last, last_value
from features.windows import DAY, Timeline, group

DISCHARGE = group("DISCHARGE")
UNPLANNED = group("ADMIT/UNPLANNED")


def readmission_flags(tl: Timeline) -> np.ndarray:
    """Per unplanned admission of the block: within READMISSION_DAYS after the customer's
    previous discharge (strictly earlier; a discharge at the same instant is a transfer)."""
    adm, dis = tl.events(UNPLANNED), tl.events(DISCHARGE)
    if not len(dis.rows):
        return np.zeros(len(adm.rows), dtype=bool)
    prev = np.searchsorted(dis.keys, adm.keys, side="left") - 1
    ok = prev >= 0
    prev_row = dis.rows[np.maximum(prev, 0)]
    same_customer = tl.ev_local[prev_row] == tl.ev_local[adm.rows]
    gap = tl.ev_time[adm.rows] - tl.ev_time[prev_row]
    return ok & same_customer & (gap <= READMISSION_DAYS * DAY)


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    return {
        "bed_days_365d": tl.sum(DISCHARGE, "value", 365),
        "bed_days_last_stay": last_value(tl, DISCHARGE),
        "discharge_days_since": days_since_last(tl, DISCHARGE),
        "discharged_30d": as_float(tl.count(DISCHARGE, 30) > 0),
        "unplanned_readmissions_365d": as_float(tl.flagged_count(UNPLANNED, readmission_flags(tl), 365)),
    }
