"""Home care and its technology: intensity and trend, remote visits, medication robot, rehab."""

from __future__ import annotations

import numpy as np

from features.families._common import as_float, days_since_last, ratio
from features.windows import Timeline, group

VISIT = group("HOMECARE/VISIT")
REMOTE_VISIT = group("REMOTE/VIDEO_VISIT")
HOMECARE_START = group("HOMECARE/START")
MISSED = group("MEDROBOT/MISSED_DOSE")
DISPENSE = group("MEDROBOT/DISPENSE")


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    active = tl.is_open(("HOMECARE/START",), ("HOMECARE/END",))
    visits_90 = tl.count(VISIT, 90)
    visits_before = tl.count_between(VISIT, 180, 90)
    remote_90 = tl.count(REMOTE_VISIT, 90)
    minutes_90 = tl.sum(VISIT, "value", 90)
    missed_30 = as_float(tl.count(MISSED, 30))
    taken_30 = tl.sum(DISPENSE, "value", 30)  # numeric_value = doses taken that day
    return {
        "homecare_active": as_float(active),
        "homecare_days_in_service": np.where(active, days_since_last(tl, HOMECARE_START), np.nan),
        "homecare_visits_per_month": visits_90 / 3,
        "homecare_visits_per_month_trend": (visits_90 - visits_before) / 3,
        "homecare_minutes_30d": tl.sum(VISIT, "value", 30),
        # Minutes per visit read the care need net of how often the team visits (visit counts also
        # follow the team's habits): care time per visit is set from the RAI-based care plan.
        "homecare_minutes_per_visit_90d": ratio(minutes_90, as_float(visits_90)),
        "remote_active": as_float(tl.count_ever(group("REMOTE/START")) > 0),
        "remote_visit_share_90d": ratio(as_float(remote_90), as_float(remote_90 + visits_90)),
        "medrobot_active": as_float(tl.count_ever(group("MEDROBOT/START")) > 0),
        "medrobot_missed_dose_rate_30d": ratio(missed_30, missed_30 + taken_30),
        "rehab_active": as_float(tl.is_open(("REHAB/START",), ("REHAB/END",))),
    }
