"""Utilisation: per service category, counts over 30/90/365 days, days since last, 90-day trend."""

from __future__ import annotations

import numpy as np

from features.catalogue import SERVICE_CATEGORIES, TREND_DAYS, WINDOWS_DAYS
from features.families._common import as_float, days_since_last
from features.past import PastWindow, group


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for category in SERVICE_CATEGORIES:
        g = group(*category.codes)
        past.prefetch(g, (0, *WINDOWS_DAYS, TREND_DAYS, 2 * TREND_DAYS))
        for days in WINDOWS_DAYS:
            out[f"{category.name}_{days}d"] = as_float(past.count(g, days))
        out[f"{category.name}_days_since"] = days_since_last(past, g)
        recent = past.count(g, TREND_DAYS)
        before = past.count_between(g, 2 * TREND_DAYS, TREND_DAYS)
        out[f"{category.name}_trend"] = as_float(recent - before)
    return out
