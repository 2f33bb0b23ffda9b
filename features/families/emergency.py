"""Emergency department use beyond the shared counts: 180-day visits, frequent attender, and the
kind of visit by its main diagnosis (low-acuity vs acute medical: counts alone mix the two)."""

from __future__ import annotations

import numpy as np

from features.catalogue import ER_LOW_ACUITY_CODES, ER_MEDICAL_CODES, FREQUENT_ATTENDER_ER_365D
from features.families._common import as_float
from features.past import PastWindow, group

ER = group("ENC/EMERGENCY")


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    return {
        "er_visits_180d": as_float(past.count(ER, 180)),
        "er_frequent_attender": as_float(past.count(ER, 365) >= FREQUENT_ATTENDER_ER_365D),
        "er_low_acuity_dx_365d": as_float(past.count(group(*ER_LOW_ACUITY_CODES), 365)),
        "er_medical_dx_365d": as_float(past.count(group(*ER_MEDICAL_CODES), 365)),
    }
