"""Child welfare: open care running, placements outside the home."""

from __future__ import annotations

import numpy as np

from features.families._common import as_float
from features.windows import Timeline, group

PLACEMENT = group("CHILDWELFARE/PLACEMENT")


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    return {
        "childwelfare_open_care_active": as_float(
            tl.is_open(("CHILDWELFARE/OPEN_CARE_START",), ("CHILDWELFARE/OPEN_CARE_END",))
        ),
        "childwelfare_placements_365d": as_float(tl.count(PLACEMENT, 365)),
        "childwelfare_placed_ever": as_float(tl.count_ever(PLACEMENT) > 0),
    }
