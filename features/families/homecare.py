"""Home care and its technology: intensity and trend, remote visits, medication robot, rehab."""

from __future__ import annotations

import numpy as np

from features.families._common import as_float, days_since_last, ratio
from features.past import PastWindow, group

VISIT = group("HOMECARE/VISIT")
REMOTE_VISIT = group("REMOTE/VIDEO_VISIT")
HOMECARE_START = group("HOMECARE/START")
MISSED = group("MEDROBOT/MISSED_DOSE")
DISPENSE = group("MEDROBOT/DISPENSE")


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    active = past.is_open(("HOMECARE/START",), ("HOMECARE/END",))
    visits_90 = past.count(VISIT, 90)
    visits_before = past.count_between(VISIT, 180, 90)
    remote_90 = past.count(REMOTE_VISIT, 90)
    minutes_90 = past.sum(VISIT, "value", 90)
    missed_30 = as_float(past.count(MISSED, 30))
    taken_30 = past.sum(DISPENSE, "value", 30)  # numeric_value = doses taken that day
    return {
        "homecare_active": as_float(active),
        "homecare_days_in_service": np.where(active, days_since_last(past, HOMECARE_START), np.nan),
        "homecare_visits_per_month": visits_90 / 3,
        "homecare_visits_per_month_trend": (visits_90 - visits_before) / 3,
        "homecare_minutes_30d": past.sum(VISIT, "value", 30),
        # Minutes per visit read the care need net of how often the team visits (visit counts also
        # follow the team's habits): care time per visit is set from the RAI-based care plan.
        "homecare_minutes_per_visit_90d": ratio(minutes_90, as_float(visits_90)),
        "remote_active": as_float(past.count_ever(group("REMOTE/START")) > 0),
        "remote_visit_share_90d": ratio(as_float(remote_90), as_float(remote_90 + visits_90)),
        "medrobot_active": as_float(past.count_ever(group("MEDROBOT/START")) > 0),
        "medrobot_missed_dose_rate_30d": ratio(missed_30, missed_30 + taken_30),
        "rehab_active": as_float(past.is_open(("REHAB/START",), ("REHAB/END",))),
    }
