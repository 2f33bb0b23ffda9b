"""Small helpers shared by the families."""

from __future__ import annotations

import numpy as np

from features.past import CodeGroup, PastWindow, days_between


def days_since_last(past: PastWindow, g: CodeGroup) -> np.ndarray:
    """Days from the last group event at or before t to t; NaN when there is none."""
    last = past.last(g)
    return np.where(last.exists, days_between(past.times, last.time()), np.nan)


def supply_gap_days(past: PastWindow, g: CodeGroup) -> np.ndarray:
    """Days between the end of the last group dispensing's supply (its time + the days supplied in
    numeric_value) and t, 0 while it still lasts; NaN when there is none."""
    last = past.last(g)
    return np.where(last.exists, np.maximum(days_between(past.times, last.time()) - last.value(), 0.0), np.nan)


def last_value(past: PastWindow, g: CodeGroup, k: int = 1) -> np.ndarray:
    """numeric_value of the k-th last group event at or before t; NaN when there is none."""
    return past.last(g, k).value()


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (a share of nothing is unknown)."""
    out = np.full(len(numerator), np.nan)
    ok = denominator != 0
    out[ok] = numerator[ok] / denominator[ok]
    return out


def as_float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def month_index(times: np.ndarray) -> np.ndarray:
    """year * 12 + (month - 1) of int64-microsecond times (naive local)."""
    months_since_1970 = times.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    return months_since_1970 + 1970 * 12


def late_refills(past: PastWindow, g: CodeGroup, grace_days: float, days: float) -> np.ndarray:
    """Dispensings of group g (value: the days supplied) in (t - days, t] that came more than
    grace_days after the customer's previous one ran out (previous time + days supplied)."""
    return past.count_with_previous(g, days, lambda elapsed, supplied: elapsed - supplied > grace_days)
