"""Emergency department use beyond the shared counts: 180-day visits, frequent attender."""

from __future__ import annotations

import numpy as np

from features.catalogue import FREQUENT_ATTENDER_ER_365D
from features.families._common import as_float
from features.windows import Timeline, group

ER = group("ENC/EMERGENCY")


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    return {
        "er_visits_180d": as_float(tl.count(ER, 180)),
        "er_frequent_attender": as_float(tl.count(ER, 365) >= FREQUENT_ATTENDER_ER_365D),
    }
