"""Demographics: age on the index date, sex, municipality, language (categorical positions)."""

from __future__ import annotations

import numpy as np

from features.families._common import month_index
from features.windows import Timeline


def age_years(tl: Timeline) -> np.ndarray:
    """Completed years on the index date; birth day is pseudonymised to the 1st of the month."""
    months = month_index(tl.times) - tl.history.birth_month_index[tl.customer]
    return months // 12


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    h, c = tl.history, tl.customer
    return {
        "age_years": age_years(tl).astype(np.float64),
        # categorical features are returned as positions in the catalogue's category lists
        "sex": h.sex[c],
        "municipality": h.municipality[c],
        "language": h.language[c],
    }
