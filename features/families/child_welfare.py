"""Child welfare: open care running, placements outside the home."""

from __future__ import annotations

import numpy as np

from features.families._common import as_float
from features.past import PastWindow, group

PLACEMENT = group("CHILDWELFARE/PLACEMENT")


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    return {
        "childwelfare_open_care_active": as_float(
            past.is_open(("CHILDWELFARE/OPEN_CARE_START",), ("CHILDWELFARE/OPEN_CARE_END",))
        ),
        "childwelfare_placements_365d": as_float(past.count(PLACEMENT, 365)),
        "childwelfare_placed_ever": as_float(past.count_ever(PLACEMENT) > 0),
    }
