"""PastWindow: what feature families and cohort rules may see of a customer at an index time t.

The leakage rule (the MEDS schema's: features use only events at or before the prediction time)
is a property of this type, not a habit of its callers. For each query (customer, t) a
PastWindow answers questions about the customer's events at or before t, and about the
customer's static attributes (birth month, sex, municipality, language), and nothing else:

- windows are look-back spans: `days` counts back from t ((t - days, t], 0 < days <= 731), so a
  window ending after t cannot be written; a span outside that range is an error, not a clamp;
- "last" means the k-th last event at or before t; its time, value and code come back as values,
  never as positions into the event arrays (a position + 1 would be the next, future event);
- per-event rules (late refills, readmissions) see an event and the customer's previous event,
  both at or before the event itself, and only events at or before t are counted;
- there is no "next", "first" or raw event access: the labels' forward look-ups live in their
  own type (features.labels.FutureWindow), and feature code cannot import the engine's index
  (`lint-imports`: features.families and features.cohorts may not import features.windows,
  features.engine or features.labels; ruff's SLF001 keeps them off private attributes).

Events exactly at t count as the past: an index time is the end of its instant, so an event
stamped 00:00 on an index date is history (features), and labels begin strictly after t.
tests/test_features_leakage.py checks the promise from outside: events of every catalogue code
injected after t change no feature and no cohort at t.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np

from features.windows import DAY, FIXED, KEY_LIMIT, MAX_BACK_DAYS, CodeGroup, Timeline, days_between, group

__all__ = ["DAY", "MAX_BACK_DAYS", "ATTRIBUTES", "CodeGroup", "LastEvent", "PastWindow", "days_between", "group", "over_past"]

ATTRIBUTES: tuple[str, ...] = ("birth_month_index", "sex", "municipality", "language")  # static: known at any t
# A rule on an event and the customer's previous one of the group: (days between them, the
# previous event's numeric_value) -> whether the event counts.
PreviousRule = Callable[[np.ndarray, np.ndarray], np.ndarray]
T = TypeVar("T")


class LastEvent:
    """The k-th last group event at or before t, per query: whether it `exists`, and its fields."""

    __slots__ = ("_timeline", "_group", "_idx", "exists")

    def __init__(self, timeline: Timeline, g: CodeGroup, idx: np.ndarray, exists: np.ndarray):
        self._timeline, self._group, self._idx, self.exists = timeline, g, idx, exists

    def time(self, fill: int = 0) -> np.ndarray:
        """int64 microseconds; `fill` where there is no such event."""
        return self._timeline.take(self._group, "time", self._idx, self.exists, fill=fill)

    def value(self) -> np.ndarray:
        """numeric_value (float64); NaN where there is no such event."""
        return self._timeline.take(self._group, "value", self._idx, self.exists)

    def code(self, fill: int = -1) -> np.ndarray:
        """Position of the code in features.history.code_list(); `fill` where there is no such event."""
        return self._timeline.take(self._group, "code", self._idx, self.exists, fill=fill)


class PastWindow:
    """Look-ups over each query's events at or before its t (the module docstring says why)."""

    __slots__ = ("_timeline", "n", "times")

    def __init__(self, timeline: Timeline):
        self._timeline = timeline
        self.n = timeline.n
        self.times = timeline.times  # int64 microseconds, one per query

    def subset(self, queries: np.ndarray) -> "PastWindow":
        """The same block for some of the queries (positions into this one's); see Timeline.subset."""
        return PastWindow(self._timeline.subset(queries))

    def attribute(self, name: str) -> np.ndarray:
        """A static customer attribute per query (birth_month_index, sex, municipality, language)."""
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown customer attribute {name!r}; a PastWindow has {', '.join(ATTRIBUTES)}")
        tl = self._timeline
        return getattr(tl.history, name)[tl.customer]

    # -- counts ----------------------------------------------------------------------------------
    def prefetch(self, g: CodeGroup, back_days: Sequence[float]) -> None:
        """Ready the counts up to t and up to t - d for every d in back_days in one call."""
        self._timeline.prefetch(g, [-_back(d, allow_zero=True) for d in back_days])

    def count(self, g: CodeGroup, days: float) -> np.ndarray:
        """Events in (t - days, t]."""
        tl = self._timeline
        return tl.pos(g) - tl.pos(g, -_back(days))

    def count_between(self, g: CodeGroup, older_days: float, newer_days: float) -> np.ndarray:
        """Events in (t - older_days, t - newer_days], 0 <= newer_days < older_days."""
        if not _back(newer_days, allow_zero=True) < _back(older_days):
            raise ValueError(f"window (t - {older_days} d, t - {newer_days} d] is empty or reversed")
        tl = self._timeline
        return tl.pos(g, -newer_days) - tl.pos(g, -older_days)

    def count_ever(self, g: CodeGroup) -> np.ndarray:
        """Events at or before t (anywhere in the history)."""
        tl = self._timeline
        return tl.pos(g) - tl.start(g)

    def sum(self, g: CodeGroup, field: str, days: float) -> np.ndarray:
        """Sum of numeric_value ("value") or cost_eur ("cost") over group events in (t - days, t],
        exact in micro-units."""
        if field not in ("value", "cost"):
            raise ValueError(f"can sum 'value' or 'cost', not {field!r}")
        tl = self._timeline
        cum = tl.fixed_cumsum(g, field)
        return (cum[tl.pos(g)] - cum[tl.pos(g, -_back(days))]) / FIXED

    # -- last events and open services -----------------------------------------------------------
    def last(self, g: CodeGroup, k: int = 1) -> LastEvent:
        """The k-th last group event at or before t (k >= 1)."""
        if k < 1:
            raise ValueError(f"k = {k}: the last event is k = 1")
        tl = self._timeline
        idx = tl.pos(g) - k
        return LastEvent(tl, g, idx, idx >= tl.start(g))

    def is_open(self, opening: Sequence[str], closing: Sequence[str]) -> np.ndarray:
        """Whether the last of the opening/closing events at or before t is an opening one."""
        last = self.last(group(*opening, *closing))
        return last.exists & group(*opening).lut[last.code(fill=0)]

    # -- per-event rules -------------------------------------------------------------------------
    def count_with_previous(self, g: CodeGroup, days: float, rule: PreviousRule) -> np.ndarray:
        """Group events in (t - days, t] for which rule(days since the customer's previous group
        event, that event's numeric_value) holds (never for a customer's first one). The previous
        event is the one before in time order (at the same instant: in catalogue order)."""
        tl = self._timeline
        rows = tl.events(g).rows
        flags = np.zeros(len(rows), dtype=bool)
        if len(rows) > 1:
            same = tl.ev_local[rows[1:]] == tl.ev_local[rows[:-1]]
            previous_value = tl.field("value")[rows[:-1]]
            flags[1:] = same & rule(days_between(tl.ev_time[rows[1:]], tl.ev_time[rows[:-1]]), previous_value)
        return self._flagged_count(g, flags, days)

    def count_soon_after(self, g: CodeGroup, after: CodeGroup, within_days: float, days: float) -> np.ndarray:
        """Group events in (t - days, t] that came at most within_days after the customer's last
        `after` event strictly before them (at the same instant it is not before: a transfer)."""
        tl = self._timeline
        ours, theirs = tl.events(g), tl.events(after)
        if not len(theirs.rows):
            return self._flagged_count(g, np.zeros(len(ours.rows), dtype=bool), days)
        previous = np.searchsorted(theirs.keys, ours.keys, side="left") - 1
        previous_row = theirs.rows[np.maximum(previous, 0)]
        same_customer = tl.ev_local[previous_row] == tl.ev_local[ours.rows]
        gap = tl.ev_time[ours.rows] - tl.ev_time[previous_row]
        return self._flagged_count(g, (previous >= 0) & same_customer & (gap <= within_days * DAY), days)

    def _flagged_count(self, g: CodeGroup, flags: np.ndarray, days: float) -> np.ndarray:
        tl = self._timeline
        cum = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
        return cum[tl.pos(g)] - cum[tl.pos(g, -_back(days))]

    # -- care fragmentation ------------------------------------------------------------------------
    def distinct_units(self, days: float) -> np.ndarray:
        """Distinct units with at least one event in (t - days, t].

        Events are grouped into (customer, unit) pairs; each query is expanded to its customer's
        pairs, and a pair counts if its cumulative count differs between t - days and t. Pairs
        are keyed like customers (pair * span + time); ranges of pairs keep keys below 2**62.
        """
        window = int(_back(days) * DAY)
        tl = self._timeline
        unit = tl.history.unit[tl.s0 : tl.s1]
        sel = np.flatnonzero(unit >= 0)
        out = np.zeros(tl.n, dtype=np.int64)
        if not len(sel) or not tl.n:
            return out
        loc, un, tm = tl.ev_local[sel], unit[sel], tl.ev_time[sel]
        order = np.lexsort((un, loc))  # stable: keeps time order inside each pair
        loc, un, tm = loc[order], un[order], tm[order]
        new = np.ones(len(loc), dtype=bool)
        new[1:] = (loc[1:] != loc[:-1]) | (un[1:] != un[:-1])
        pair = np.cumsum(new) - 1
        pair_customer = loc[new]
        n_local = tl.c1 - tl.c0
        first_pair = np.searchsorted(pair_customer, np.arange(n_local), side="left")
        last_pair = np.searchsorted(pair_customer, np.arange(n_local), side="right")
        per_query = (last_pair - first_pair)[tl.local]
        query = np.repeat(np.arange(tl.n), per_query)
        offsets = np.arange(len(query)) - np.repeat(np.cumsum(per_query) - per_query, per_query)
        qpair = first_pair[tl.local[query]] + offsets
        qtime = tl.times[query] - tl.origin
        step = max(1, KEY_LIMIT // tl.span)
        hits = np.zeros(len(query), dtype=bool)
        for p0 in range(0, int(pair[-1]) + 1, step):  # usually one pass
            in_ev = (pair >= p0) & (pair < p0 + step)
            keys = (pair[in_ev] - p0) * tl.span + (tm[in_ev] - tl.origin)
            in_q = (qpair >= p0) & (qpair < p0 + step)
            qk = (qpair[in_q] - p0) * tl.span + qtime[in_q]
            hits[in_q] = np.searchsorted(keys, qk, side="right") > np.searchsorted(keys, qk - window, side="right")
        return np.bincount(query[hits], minlength=tl.n)


def over_past(computation: Callable[["PastWindow"], T]) -> Callable[[Timeline], T]:
    """The engine computation (features.engine.run) that gives `computation` a block's PastWindow:
    how cohorts and features are run, so they never hold the block's Timeline."""
    return lambda timeline: computation(PastWindow(timeline))


def _back(days: float, *, allow_zero: bool = False) -> float:
    """A look-back span in days, checked: 0 < days <= MAX_BACK_DAYS (0 too where it means "t")."""
    low_ok = days >= 0 if allow_zero else days > 0
    if not (low_ok and days <= MAX_BACK_DAYS):
        raise ValueError(f"a feature window reaches back {days} days from t; spans are (0, {MAX_BACK_DAYS}] days "
                         "back, and nothing a feature reads may lie after t")
    return days
