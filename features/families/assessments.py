"""interRAI: last value and change since the previous assessment of MAPLe, CPS, ADL-H, CHESS, IADL, DRS."""

from __future__ import annotations

import numpy as np

from features.catalogue import RAI_SCALES
from features.families._common import days_since_last, last_value
from features.past import PastWindow, group


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, (code, _, _) in RAI_SCALES.items():
        g = group(code)
        last, previous = last_value(past, g), last_value(past, g, 2)
        out[f"rai_{name}_last"] = last
        out[f"rai_{name}_change"] = last - previous  # NaN when fewer than two
    out["rai_days_since"] = days_since_last(past, group(*(code for code, _, _ in RAI_SCALES.values())))
    return out
