"""Cost over 365 days and care fragmentation (distinct organisational units in 365 days)."""

from __future__ import annotations

import numpy as np

from features.families._common import as_float
from features.history import code_list
from features.past import PastWindow, group


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    every_code = group(*code_list())
    return {
        "cost_eur_365d": past.sum(every_code, "cost", 365),
        "units_distinct_365d": as_float(past.distinct_units(365)),
    }
