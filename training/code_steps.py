"""Steps in how often a code is recorded: the first sign of a coding change.

A feature over a long window (visits in 365 days) drifts a twelfth at a time after a code stops
being recorded, and its PSI crosses a threshold months later; the code's own monthly count falls
at once. So monitoring also reads the feature build's code counts (features/code_volumes.py) and
calls a month a *step* for a code when its count lies far outside the range of the months before:

- below the lowest of the `window` months before divided by `ratio` (a code no longer recorded,
  or recorded much less), or above their highest times `ratio` (a code newly recorded, or recorded
  under a new name that the model's features read);
- and improbable as chance: a Poisson count with the previous months' mean would reach it with
  probability below `p_value` (a rare code's month of 1 against a range of 2-9 is no step);
- with at least `min_history` months before it inside the extract (a year: the first months have
  no past, and a shorter one would not hold the code's own season).

The previous months' range, not their mean, is the yardstick: seasonal codes (influenza, winter
falls) vary within the year, and the window of twelve holds last year's same season. A code that
has stepped does so once: the month after, the step is inside the range.

Pure functions of the counts; training/monitoring.py links the steps to a model's features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StepRule:
    window: int = 12
    min_history: int = 12  # a whole year before: a seasonal code meets its own season in the range
    ratio: float = 2.0
    p_value: float = 1e-4
    min_events: int = 50  # a fall from a mean below it, or a rise to fewer, is never a step


def code_steps(volumes: pd.DataFrame, as_of, rule: StepRule = StepRule(), codes=None) -> pd.DataFrame:
    """Every (code, month) step among `volumes` (columns code, month, events; one row per code and
    month of the extract, zeros included) in months complete by `as_of` (month end <= as_of),
    for `codes` only when given. Columns: code, month, events, previous_low, previous_high,
    previous_mean, previous_months, direction ('fall' or 'rise')."""
    from scipy.stats import poisson

    columns = ["code", "month", "events", "previous_low", "previous_high", "previous_mean", "previous_months",
               "direction"]
    as_of = pd.Timestamp(as_of)
    frame = volumes if codes is None else volumes[volumes["code"].isin(list(codes))]
    found = []
    for code, rows in frame.groupby("code", sort=True, observed=True):
        rows = rows.sort_values("month")
        months = pd.DatetimeIndex(rows["month"])
        counts = rows["events"].to_numpy(dtype=float)
        complete = months + pd.DateOffset(months=1) <= as_of
        for i in np.flatnonzero(complete):
            before = counts[max(0, i - rule.window):i]
            if len(before) < rule.min_history:
                continue
            n, low, high, mean = counts[i], before.min(), before.max(), before.mean()
            if n < low / rule.ratio and mean >= rule.min_events and poisson.cdf(n, mean) < rule.p_value:
                direction = "fall"
            elif (n > high * rule.ratio and n >= rule.min_events
                  and poisson.sf(n - 1, max(mean, 0.5)) < rule.p_value):
                direction = "rise"
            else:
                continue
            found.append((str(code), months[i], int(n), int(low), int(high), float(mean), len(before), direction))
    return pd.DataFrame.from_records(found, columns=columns)
