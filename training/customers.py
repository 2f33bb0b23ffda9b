"""The per-customer view of a period's rows: one case per customer, as a coordinator meets them.

A customer is positive when any of their rows in the period is (an outcome within the horizon
of some index date), and their risk is the highest score they had. Only the rows scored before
the customer's first outcome count towards that score: a row scored after an admission already
holds it (admissions and bed days of the last year, a fresh discharge), so its high score is
hindsight, not a warning anyone could have acted on. Customers without an outcome keep all their
rows. Row-level metrics are unaffected: each row is judged on its own label window.

The first outcome is the earliest `outcome_time` of the customer's positive rows (the first
outcome event in a row's label window, features/labels.py). Without outcome times, the customer's
first positive row is the last one kept: its outcome comes after it, and the rows before it were
negative, so none of them can come after the outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NAN = float("nan")


def _times(values) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy("datetime64[us]")


def first_outcome_time(keys: pd.DataFrame, y, outcome_time: pd.Series | None = None) -> np.ndarray:
    """Per row: the time of its customer's first outcome in the period (NaT when they have none)."""
    y = np.asarray(y, dtype=bool)
    index_time = _times(keys["prediction_time"])
    if outcome_time is None:
        when = np.full(len(y), np.datetime64("NaT"), dtype="datetime64[us]")
    else:
        when = _times(outcome_time)
    # a positive row's outcome comes after its index time: with no recorded time, the earliest
    # it can be is just after it (keeps the row itself and every earlier one)
    when = np.where(y & np.isnat(when), index_time + np.timedelta64(1, "us"), when)
    when = np.where(y, when, np.datetime64("NaT"))
    first = pd.Series(when).groupby(keys["subject_id"].to_numpy()).transform("min")
    return first.to_numpy("datetime64[us]")


def before_first_outcome(keys: pd.DataFrame, y, outcome_time: pd.Series | None = None) -> np.ndarray:
    """Rows scored before their customer's first outcome (all rows of customers without one)."""
    first = first_outcome_time(keys, y, outcome_time)
    return np.isnat(first) | (_times(keys["prediction_time"]) < first)


def customer_level(keys: pd.DataFrame, y, p, outcome_time: pd.Series | None = None) -> pd.DataFrame:
    """One row per customer (index subject_id): y = any outcome in the period, p = the highest
    risk before the first outcome, rows = the rows that p was taken over."""
    kept = before_first_outcome(keys, y, outcome_time)
    frame = pd.DataFrame({"subject_id": keys["subject_id"].to_numpy(), "y": np.asarray(y, bool),
                          "p": np.asarray(p, float), "kept": kept})
    # y over every row: the positive row that sets the first outcome is always kept, so this is
    # the same as y over the kept rows; taking it over all rows says what "positive" means
    positive = frame.groupby("subject_id", sort=True)["y"].max()
    scored = frame.loc[kept].groupby("subject_id", sort=True).agg(p=("p", "max"), rows=("p", "size"))
    return pd.DataFrame({"y": positive, "p": scored["p"], "rows": scored["rows"]})


def customer_lead_days(keys: pd.DataFrame, y, p, threshold: float, outcome_time: pd.Series | None) -> float:
    """Median over customers of the days from their first true alert (a row before the first
    outcome, at or above the threshold, with the outcome in its label window) to that outcome.
    NaN without outcome times or without such a customer."""
    if outcome_time is None:
        return NAN
    y = np.asarray(y, dtype=bool)
    when = _times(outcome_time)
    hit = before_first_outcome(keys, y, outcome_time) & y & (np.asarray(p, float) >= threshold) & ~np.isnat(when)
    if not hit.any():
        return NAN
    index_time = _times(keys["prediction_time"])
    rows = pd.DataFrame({"subject_id": keys["subject_id"].to_numpy()[hit], "index_time": index_time[hit], "outcome": when[hit]})
    first_alert = rows.sort_values(["subject_id", "index_time"]).groupby("subject_id").head(1)
    return float(np.median((first_alert["outcome"] - first_alert["index_time"]) / pd.Timedelta(days=1)))
