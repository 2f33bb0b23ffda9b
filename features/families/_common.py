"""Small helpers shared by the families."""

from __future__ import annotations

import numpy as np

from features.windows import CodeGroup, Timeline, days_between


def days_since_last(tl: Timeline, g: CodeGroup) -> np.ndarray:
    """Days from the last group event at or before t to t; NaN when there is none."""
    idx, valid = tl.last(g)
    last_time = tl.take(g, "time", idx, valid, fill=0)
    return np.where(valid, days_between(tl.times, last_time), np.nan)


def supply_gap_days(tl: Timeline, g: CodeGroup) -> np.ndarray:
    """Days between the end of the last group dispensing's supply (its time + the days supplied in
    numeric_value) and t, 0 while it still lasts; NaN when there is none."""
    idx, valid = tl.last(g)
    supplied = tl.take(g, "value", idx, valid)
    dispensed = tl.take(g, "time", idx, valid, fill=0)
    return np.where(valid, np.maximum(days_between(tl.times, dispensed) - supplied, 0.0), np.nan)


def last_value(tl: Timeline, g: CodeGroup, k: int = 1) -> np.ndarray:
    """numeric_value of the k-th last group event at or before t; NaN when there is none."""
    idx, valid = tl.last(g, k)
    return tl.take(g, "value", idx, valid)


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


def late_refill_flags(tl: Timeline, g: CodeGroup, grace_days: float) -> np.ndarray:
    """Per event of group g in the block (dispensings whose value is the days supplied): it came more
    than grace_days after the customer's previous one ran out (previous time + days supplied)."""
    ge = tl.events(g)
    rows = ge.rows
    flags = np.zeros(len(rows), dtype=bool)
    if len(rows) > 1:
        same = tl.ev_local[rows[1:]] == tl.ev_local[rows[:-1]]
        supplied = tl.history.value[tl.s0 + rows[:-1]]
        gap_days = days_between(tl.ev_time[rows[1:]], tl.ev_time[rows[:-1]]) - supplied
        flags[1:] = same & (gap_days > grace_days)
    return flags
