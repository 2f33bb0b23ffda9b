"""Calendar arithmetic: months as integers, times as float days since 2000-01-01.

Float days keep every hazard computation in plain numpy; they become datetime64[us] (rounded to
the second) only when events are written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

EPOCH = np.datetime64("2000-01-01", "D")
EPOCH_MONTH = np.datetime64("2000-01", "M")


def month_index(date: dt.date) -> int:
    """Months since 2000-01 of the month containing date."""
    return (date.year - 2000) * 12 + date.month - 1


def month_start_days(mi: np.ndarray | int) -> np.ndarray:
    """Days since the epoch of the first day of month index mi."""
    months = EPOCH_MONTH + np.asarray(mi, dtype="int64").astype("timedelta64[M]")
    return (months.astype("datetime64[D]") - EPOCH).astype("int64").astype("float64")


def days_to_datetime(days: np.ndarray) -> np.ndarray:
    """Float days -> datetime64[us], rounded to the second."""
    seconds = np.rint(np.asarray(days, dtype="float64") * 86_400.0).astype("int64")
    return (EPOCH.astype("datetime64[s]") + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


@dataclass(frozen=True)
class Calendar:
    """The simulated months: burn-in (negative), extract months 0..M-1, and a tail for the truth."""

    first_extract_mi: int
    n_extract: int
    burn_in: int
    tail: int = 8

    def start(self, m: int) -> float:
        """Start (days) of extract-relative month m (negative = burn-in)."""
        return float(month_start_days(self.first_extract_mi + m))

    def length(self, m: int) -> float:
        return self.start(m + 1) - self.start(m)

    @property
    def extract_start(self) -> float:
        return self.start(0)

    @property
    def extract_end(self) -> float:
        return self.start(self.n_extract)

    def exposure(self, m: int, horizon_days: float) -> list[float]:
        """Days of months m, m+1, ... inside (start(m), start(m) + horizon], until it is used up."""
        out: list[float] = []
        left = float(horizon_days)
        k = m
        while left > 1e-9:
            d = self.length(k)
            out.append(min(d, left))
            left -= d
            k += 1
        return out
