"""The block index under every point-in-time look-up: event keys and positions per (customer, time).

Design. Within a block of customers every event gets one int64 key,
    key = local_customer * span + (time - origin),
so the block's events, already sorted by (customer, time), are sorted by key, and a query
(customer, t) becomes the key of t. Then "events of a code group with time <= t - shift" is a
single np.searchsorted over the group's keys, and a window count over (t - w, t] is the
difference of two such positions (cumulative counts), never a scan. Sums use cumulative sums of
fixed-point integers (micro-units), so a windowed sum is exact and does not depend on summation
order (the naive oracle in the tests gets the very same numbers). `span` covers the block's
events and the longest look-back, so keys of different customers never mix; blocks are sized so
that keys stay below 2**62.

Who reads it. `Timeline` is the engine's index of a block, not an API for feature code: feature
families and cohort rules get a `features.past.PastWindow` (only events at or before t, only
look-back spans), labels a `features.labels.FutureWindow` (the first events after t). Positions
here never look forward either: pos() takes shifts back from t only, so "events up to t + 1 day"
cannot be asked for; what lies after t is reachable only through the block's raw events, which
only the two windows read.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from features.history import History, code_ids, code_list

DAY = 86_400_000_000  # microseconds
KEY_LIMIT = 2**62
FIXED = 1_000_000  # fixed-point scale of summed values (micro-units)
MAX_BACK_DAYS = 731  # the longest look-back any rule uses (depression cohort: 730 days)


class CodeGroup:
    """A set of codes, optionally only events whose numeric_value >= min_value (e.g. PHQ-9 >= 10).

    Made by group(), which returns one shared instance per definition, so look-up caches can
    key on identity (hashing a tuple of strings on every look-up showed up in online profiles).
    """

    __slots__ = ("codes", "min_value", "lut")

    def __init__(self, codes: tuple[str, ...], min_value: float | None):
        self.codes, self.min_value = codes, min_value
        self.lut = np.zeros(len(code_list()), dtype=bool)  # code position -> in the group
        self.lut[code_ids(codes)] = True

    def __repr__(self) -> str:
        return f"CodeGroup({self.codes}, min_value={self.min_value})"


@lru_cache(maxsize=None)
def group(*codes: str, min_value: float | None = None) -> CodeGroup:
    return CodeGroup(tuple(codes), min_value)


class _GroupEvents:
    """One code group's events within a block: keys and the rows they came from."""

    __slots__ = ("keys", "rows", "_cum")

    def __init__(self, keys: np.ndarray, rows: np.ndarray):
        self.keys = keys
        self.rows = rows  # positions in the block's event arrays
        self._cum: dict[str, np.ndarray] = {}


class Timeline:
    """Look-ups for queries (customer, t) over the events of customers [c0, c1) of a History.

    `local` are the queries' customers relative to c0, `times` their prediction times (int64
    microseconds). Results are arrays aligned with the queries.
    """

    def __init__(self, history: History, c0: int, c1: int, local: np.ndarray, times: np.ndarray, span: int, origin: int):
        self.history = history
        self.c0, self.c1 = c0, c1
        self.local = local
        self.customer = local + c0
        self.times = times
        self.n = len(times)
        s0, s1 = int(history.ptr[c0]), int(history.ptr[c1])
        self.s0, self.s1 = s0, s1
        self.span, self.origin = span, origin
        counts = np.diff(history.ptr[c0 : c1 + 1])
        self.ev_local = np.repeat(np.arange(c1 - c0, dtype=np.int64), counts)
        self.ev_time = history.time[s0:s1]
        self.ev_code = history.code[s0:s1]
        self.ev_key = self.ev_local * span + (self.ev_time - origin)
        self.q_key = local.astype(np.int64) * span + (times - origin)
        self._groups: dict[CodeGroup, _GroupEvents] = {}
        self._pos: dict[tuple[CodeGroup, int], np.ndarray] = {}
        self._bounds: dict[tuple[CodeGroup, str], np.ndarray] = {}

    def subset(self, queries: np.ndarray) -> "Timeline":
        """The same block of events for some of the queries (positions into this one's).

        The events, their keys and each code group's events are shared, not rebuilt: a block's
        timeline is read once, whether one asks for cohorts of every query and then features of
        a segment's members, or all at once. Look-ups that depend on the queries start empty.
        """
        queries = np.asarray(queries, dtype=np.int64)
        other = object.__new__(Timeline)
        other.__dict__.update(self.__dict__)
        other.local, other.customer, other.times = self.local[queries], self.customer[queries], self.times[queries]
        other.n = len(queries)
        other.q_key = self.q_key[queries]
        other._pos, other._bounds = {}, {}
        return other

    # -- groups and positions ------------------------------------------------------------
    def events(self, g: CodeGroup) -> _GroupEvents:
        found = self._groups.get(g)
        if found is None:
            mask = g.lut[self.ev_code]
            if g.min_value is not None:
                mask &= self.history.value[self.s0 : self.s1] >= g.min_value
            rows = np.flatnonzero(mask)
            found = self._groups[g] = _GroupEvents(self.ev_key[rows], rows)
        return found

    def pos(self, g: CodeGroup, shift_days: float = 0) -> np.ndarray:
        """Number of the block's group events with key <= key(customer, t + shift), shift <= 0.

        A positive shift (a look past t) is refused: no caller needs one (labels ask for the next
        event after t, FutureWindow), and one that asks is reading the future by mistake.
        """
        if not -MAX_BACK_DAYS <= shift_days <= 0:
            raise ValueError(f"shift of {shift_days} days: positions reach back up to {MAX_BACK_DAYS} days from t, never past t")
        cache_key = (g, int(shift_days * DAY))
        found = self._pos.get(cache_key)
        if found is None:
            found = self._pos[cache_key] = np.searchsorted(self.events(g).keys, self.q_key + cache_key[1], side="right")
        return found

    def prefetch(self, g: CodeGroup, shifts_days: Sequence[float]) -> None:
        """Compute pos() for several shifts (each <= 0) in one searchsorted call (fewer calls online)."""
        if not all(-MAX_BACK_DAYS <= d <= 0 for d in shifts_days):
            raise ValueError(f"shifts {tuple(shifts_days)} days: positions reach back up to {MAX_BACK_DAYS} days from t, never past t")
        shifts = [int(d * DAY) for d in shifts_days if (g, int(d * DAY)) not in self._pos]
        if not shifts:
            return
        found = np.searchsorted(self.events(g).keys, self.q_key[None, :] + np.array(shifts, dtype=np.int64)[:, None], side="right")
        for shift, row in zip(shifts, found):
            self._pos[(g, shift)] = row

    def start(self, g: CodeGroup) -> np.ndarray:
        """Position of the query customer's first group event (== end when there is none)."""
        found = self._bounds.get((g, "start"))
        if found is None:
            found = self._bounds[(g, "start")] = np.searchsorted(self.events(g).keys, self.local.astype(np.int64) * self.span, side="left")
        return found

    def end(self, g: CodeGroup) -> np.ndarray:
        found = self._bounds.get((g, "end"))
        if found is None:
            found = self._bounds[(g, "end")] = np.searchsorted(self.events(g).keys, (self.local.astype(np.int64) + 1) * self.span, side="left")
        return found

    def take(self, g: CodeGroup, field: str, idx: np.ndarray, valid: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """A field (time, value, code, cost) of group events at idx; `fill` where not valid."""
        rows = self.events(g).rows
        source = self.field(field)
        out = np.full(self.n, fill, dtype=np.float64 if field in ("value", "cost") else np.int64)
        if valid.any():
            out[valid] = source[rows[idx[valid]]]
        return out

    def field(self, field: str) -> np.ndarray:
        """A field (time, code, value, cost) of every event of the block, in event order."""
        h, s0, s1 = self.history, self.s0, self.s1
        return {"time": self.ev_time, "code": self.ev_code, "value": h.value[s0:s1], "cost": h.cost[s0:s1]}[field]

    def fixed_cumsum(self, g: CodeGroup, field: str) -> np.ndarray:
        """Cumulative sum (with a leading 0) of round(field * 1e6) over the group's events."""
        ge = self.events(g)
        found = ge._cum.get(field)
        if found is None:
            values = np.nan_to_num(self.field(field)[ge.rows], nan=0.0)
            fixed = np.round(values * FIXED).astype(np.int64)
            found = ge._cum[field] = np.concatenate([[0], np.cumsum(fixed)])
        return found


def days_between(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """(later - earlier) in days as float64 (int64 microseconds in)."""
    return (later - earlier) / DAY
