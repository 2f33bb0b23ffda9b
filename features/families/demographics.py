"""Demographics: age on the index date, sex, municipality, language (categorical positions)."""

from __future__ import annotations

import numpy as np

from features.families._common import month_index
from features.past import PastWindow


def age_years(past: PastWindow) -> np.ndarray:
    """Completed years on the index date; birth day is pseudonymised to the 1st of the month."""
    months = month_index(past.times) - past.attribute("birth_month_index")
    return months // 12


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    return {
        "age_years": age_years(past).astype(np.float64),
        # categorical features are returned as positions in the catalogue's category lists
        "sex": past.attribute("sex"),
        "municipality": past.attribute("municipality"),
        "language": past.attribute("language"),
    }
