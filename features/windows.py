"""Vectorised point-in-time look-ups: counts, sums, last and next events per (customer, time).

Design. Within a block of customers every event gets one int64 key,
    key = local_customer * span + (time - origin),
so the block's events, already sorted by (customer, time), are sorted by key, and a query
(customer, t) becomes the key of t. Then "events of a code group with time <= t - shift" is a
single np.searchsorted over the group's keys, and a window count over (t - w, t] is the
difference of two such positions (cumulative counts), never a scan. Sums use cumulative sums of
fixed-point integers (micro-units), so a windowed sum is exact and does not depend on summation
order (the naive oracle in the tests gets the very same numbers). `span` covers the block's
events and every queried shift, so keys of different customers never mix; blocks are sized so
that keys stay below 2**62.
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
MAX_FORWARD_DAYS = 181  # the longest label horizon (home-care failure: 180 days)


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
        """Number of the block's group events with key <= key(customer, t + shift)."""
        if not -MAX_BACK_DAYS <= shift_days <= MAX_FORWARD_DAYS:
            raise ValueError(f"shift of {shift_days} days is outside the span the keys were built for")
        cache_key = (g, int(shift_days * DAY))
        found = self._pos.get(cache_key)
        if found is None:
            found = self._pos[cache_key] = np.searchsorted(self.events(g).keys, self.q_key + cache_key[1], side="right")
        return found

    def prefetch(self, g: CodeGroup, shifts_days: Sequence[float]) -> None:
        """Compute pos() for several shifts in one searchsorted call (fewer calls online)."""
        shifts = [int(d * DAY) for d in shifts_days if (g, int(d * DAY)) not in self._pos]
        if not shifts:
            return
        if not all(-MAX_BACK_DAYS * DAY <= x <= MAX_FORWARD_DAYS * DAY for x in shifts):
            raise ValueError(f"shifts {shifts_days} are outside the span the keys were built for")
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

    # -- counts ------------------------------------------------------------------------------
    def count(self, g: CodeGroup, days: float) -> np.ndarray:
        """Events in (t - days, t]."""
        return self.pos(g) - self.pos(g, -days)

    def count_between(self, g: CodeGroup, older_days: float, newer_days: float) -> np.ndarray:
        """Events in (t - older_days, t - newer_days]."""
        return self.pos(g, -newer_days) - self.pos(g, -older_days)

    def count_ever(self, g: CodeGroup) -> np.ndarray:
        """Events at or before t (anywhere in the history)."""
        return self.pos(g) - self.start(g)

    # -- last / next events -----------------------------------------------------------------
    def last(self, g: CodeGroup, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(group position of the k-th last event <= t, whether it exists)."""
        idx = self.pos(g) - k
        return idx, idx >= self.start(g)

    def next(self, g: CodeGroup) -> tuple[np.ndarray, np.ndarray]:
        """(group position of the first event > t, whether it exists)."""
        idx = self.pos(g)
        return idx, idx < self.end(g)

    def first(self, g: CodeGroup) -> tuple[np.ndarray, np.ndarray]:
        """(group position of the customer's first event in the whole history, whether it exists)."""
        idx = self.start(g)
        return idx, idx < self.end(g)

    def take(self, g: CodeGroup, field: str, idx: np.ndarray, valid: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """A field (time, value, code, cost) of group events at idx; `fill` where not valid."""
        rows = self.events(g).rows
        source = self._field(field)
        out = np.full(self.n, fill, dtype=np.float64 if field in ("value", "cost") else np.int64)
        if valid.any():
            out[valid] = source[rows[idx[valid]]]
        return out

    def _field(self, field: str) -> np.ndarray:
        h, s0, s1 = self.history, self.s0, self.s1
        return {"time": self.ev_time, "code": self.ev_code, "value": h.value[s0:s1], "cost": h.cost[s0:s1]}[field]

    # -- sums ---------------------------------------------------------------------------------
    def fixed_cumsum(self, g: CodeGroup, field: str) -> np.ndarray:
        """Cumulative sum (with a leading 0) of round(field * 1e6) over the group's events."""
        ge = self.events(g)
        found = ge._cum.get(field)
        if found is None:
            values = np.nan_to_num(self._field(field)[ge.rows], nan=0.0)
            fixed = np.round(values * FIXED).astype(np.int64)
            found = ge._cum[field] = np.concatenate([[0], np.cumsum(fixed)])
        return found

    def sum(self, g: CodeGroup, field: str, days: float) -> np.ndarray:
        """Sum of a field over group events in (t - days, t] (exact in micro-units)."""
        cum = self.fixed_cumsum(g, field)
        return (cum[self.pos(g)] - cum[self.pos(g, -days)]) / FIXED

    def flagged_count(self, g: CodeGroup, flags: np.ndarray, days: float) -> np.ndarray:
        """Group events in (t - days, t] whose per-event flag (aligned with the group) is set."""
        cum = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
        return cum[self.pos(g)] - cum[self.pos(g, -days)]

    # -- state of paired services -----------------------------------------------------------
    def is_open(self, opening: Sequence[str], closing: Sequence[str]) -> np.ndarray:
        """Whether the last of the opening/closing events at or before t is an opening one."""
        g = group(*opening, *closing)
        idx, valid = self.last(g)
        code = self.take(g, "code", idx, valid, fill=0)
        return valid & group(*opening).lut[code]

    # -- care fragmentation --------------------------------------------------------------------
    def distinct_units(self, days: float) -> np.ndarray:
        """Distinct units with at least one event in (t - days, t].

        Events are grouped into (customer, unit) pairs; each query is expanded to its customer's
        pairs, and a pair counts if its cumulative count differs between t - days and t. Pairs
        are keyed like customers (pair * span + time); ranges of pairs keep keys below 2**62.
        """
        unit = self.history.unit[self.s0 : self.s1]
        sel = np.flatnonzero(unit >= 0)
        out = np.zeros(self.n, dtype=np.int64)
        if not len(sel) or not self.n:
            return out
        loc, un, tm = self.ev_local[sel], unit[sel], self.ev_time[sel]
        order = np.lexsort((un, loc))  # stable: keeps time order inside each pair
        loc, un, tm = loc[order], un[order], tm[order]
        new = np.ones(len(loc), dtype=bool)
        new[1:] = (loc[1:] != loc[:-1]) | (un[1:] != un[:-1])
        pair = np.cumsum(new) - 1
        pair_customer = loc[new]
        n_local = self.c1 - self.c0
        first_pair = np.searchsorted(pair_customer, np.arange(n_local), side="left")
        last_pair = np.searchsorted(pair_customer, np.arange(n_local), side="right")
        per_query = (last_pair - first_pair)[self.local]
        query = np.repeat(np.arange(self.n), per_query)
        offsets = np.arange(len(query)) - np.repeat(np.cumsum(per_query) - per_query, per_query)
        qpair = first_pair[self.local[query]] + offsets
        qtime = self.times[query] - self.origin
        step = max(1, KEY_LIMIT // self.span)
        hits = np.zeros(len(query), dtype=bool)
        for p0 in range(0, int(pair[-1]) + 1, step):  # usually one pass
            in_ev = (pair >= p0) & (pair < p0 + step)
            keys = (pair[in_ev] - p0) * self.span + (tm[in_ev] - self.origin)
            in_q = (qpair >= p0) & (qpair < p0 + step)
            qk = (qpair[in_q] - p0) * self.span + qtime[in_q]
            hits[in_q] = np.searchsorted(keys, qk, side="right") > np.searchsorted(keys, qk - int(days * DAY), side="right")
        return np.bincount(query[hits], minlength=self.n)


def days_between(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """(later - earlier) in days as float64 (int64 microseconds in)."""
    return (later - earlier) / DAY
