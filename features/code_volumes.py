"""How often each event code was recorded, month by month: the feature build's record of its
input, kept beside the feature tables (code_months.parquet) so monitoring can tell a change in
*recording* (a code no longer written, or written under a new name, from one month to the next)
from a change in the population, in the first month it happens.

A pure function of the events; features/io.py writes it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CODE_MONTHS_FILE = "code_months.parquet"
CODE_MONTHS_PARTS = "code_months"  # the Spark engine: a folder of part files, one a shard, summed when read
COLUMNS = ("code", "month", "events")


def code_months(events: pd.DataFrame, extract_start, extract_end) -> pd.DataFrame:
    """Events per (code, calendar month) for every code in `events` and every whole or partial
    month of the extract [extract_start, extract_end): a month without an
    event of a code is a row of zeros, so a code that stops being recorded shows as 0, not as a
    missing row. Months are their first day (datetime64[us]); sorted by code, then month."""
    first = pd.Timestamp(extract_start).to_period("M")
    last = (pd.Timestamp(extract_end) - pd.Timedelta(microseconds=1)).to_period("M")
    months = pd.period_range(first, last, freq="M")
    # factorize: fast on strings and on a categorical's codes alike (astype("string") is not)
    code_index, found = pd.factorize(events["code"], sort=True, use_na_sentinel=True)
    found = np.asarray(found, dtype=object)
    codes = pd.Index([str(c) for c in found], dtype="string")
    out_months = np.tile(months.to_timestamp().to_numpy(dtype="datetime64[us]"), len(codes))
    out_codes = np.repeat(codes.to_numpy(dtype=object), len(months))
    if not len(codes):
        return _frame(out_codes, out_months, np.zeros(0, np.int64))
    time = pd.DatetimeIndex(events["time"])
    month_index = np.asarray((time.year - first.year) * 12 + (time.month - first.month))
    inside = (month_index >= 0) & (month_index < len(months)) & (code_index >= 0)
    cell = code_index[inside] * len(months) + month_index[inside]
    counts = np.bincount(cell, minlength=len(codes) * len(months))
    return _frame(out_codes, out_months, counts)


def _frame(codes, months, events) -> pd.DataFrame:
    return pd.DataFrame({"code": pd.array(codes, dtype="string"), "month": months,
                         "events": np.asarray(events, dtype=np.int64)})
