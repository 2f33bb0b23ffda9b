"""Utilisation: per service category, counts over 30/90/365 days, days since last, 90-day trend."""

from __future__ import annotations

import numpy as np

from features.catalogue import SERVICE_CATEGORIES, TREND_DAYS, WINDOWS_DAYS
from features.families._common import as_float, days_since_last
from features.windows import Timeline, group


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for category in SERVICE_CATEGORIES:
        g = group(*category.codes)
        tl.prefetch(g, (0, *(-d for d in WINDOWS_DAYS), -TREND_DAYS, -2 * TREND_DAYS))
        for days in WINDOWS_DAYS:
            out[f"{category.name}_{days}d"] = as_float(tl.count(g, days))
        out[f"{category.name}_days_since"] = days_since_last(tl, g)
        recent = tl.count(g, TREND_DAYS)
        before = tl.count_between(g, 2 * TREND_DAYS, TREND_DAYS)
        out[f"{category.name}_trend"] = as_float(recent - before)
    return out
