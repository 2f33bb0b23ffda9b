"""Runs a Timeline computation over many (customer, time) queries, block by block.

Computations get the block's Timeline (the engine's index); feature and cohort computations
wrap it in a PastWindow at once (features/pipeline.py), labels in a FutureWindow.

Queries are sorted by (customer, time) and cut into blocks of consecutive customers, so the
searchsorted look-ups in a block read sorted needles, memory stays bounded, and int64 keys fit
(block customers x span < 2**62). Results come back in the caller's query order. Batch (every
customer at every index date) and online (one customer, one time) run the same code path.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import numpy as np

from features.history import History
from features.windows import DAY, KEY_LIMIT, MAX_BACK_DAYS, Timeline

BLOCK_CUSTOMERS = 8192

Computation = Callable[[Timeline], dict[str, np.ndarray]]
T = TypeVar("T")


def run_blocks(history: History, customer: np.ndarray, times: np.ndarray, computation: Callable[[Timeline], T],
               *, block_customers: int = BLOCK_CUSTOMERS, workers: int = 1) -> list[tuple[np.ndarray, T]]:
    """computation(timeline) on every block: [(the block's query positions in the caller's order,
    what computation returned for them, in that order)]. An empty query list gives one empty block."""
    customer = np.asarray(customer, dtype=np.int64)
    times = np.asarray(times, dtype=np.int64)
    if len(times) == 0:
        return [(np.zeros(0, dtype=np.int64), computation(_timeline(history, 0, 0, customer, times)))]
    order = np.lexsort((times, customer))
    sorted_c, sorted_t = customer[order], times[order]
    origin, span = _origin_span(history, sorted_t)
    per_block = max(1, min(block_customers, KEY_LIMIT // span))
    bounds = _blocks(sorted_c, per_block)

    def one(bound: tuple[int, int]) -> tuple[np.ndarray, T]:
        q0, q1 = bound
        c0, c1 = int(sorted_c[q0]), int(sorted_c[q1 - 1]) + 1
        tl = Timeline(history, c0, c1, sorted_c[q0:q1] - c0, sorted_t[q0:q1], span, origin)
        return order[q0:q1], computation(tl)

    if workers > 1 and len(bounds) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # numpy releases the GIL in the heavy calls
            return list(pool.map(one, bounds))
    return [one(b) for b in bounds]


def run(history: History, customer: np.ndarray, times: np.ndarray, computation: Computation,
        *, block_customers: int = BLOCK_CUSTOMERS, workers: int = 1) -> dict[str, np.ndarray]:
    """computation(timeline) on every block; arrays concatenated back into query order."""
    parts = run_blocks(history, customer, times, computation, block_customers=block_customers, workers=workers)
    positions = [p for p, _ in parts]
    if len(parts) == 1 and (len(positions[0]) <= 1 or (np.diff(positions[0]) == 1).all()):
        return parts[0][1]  # already in the caller's order (always so for one online query)
    return in_query_order(positions, [columns for _, columns in parts])


def in_query_order(positions: list[np.ndarray], parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-block arrays (aligned with each block's positions) as arrays in position order (a subset
    of the queries comes back in ascending position order)."""
    if len(parts) == 1:  # one block (every online request): no concatenation, and no copy when in order
        order = np.argsort(positions[0], kind="stable")
        if (order == np.arange(len(order))).all():
            return parts[0]
        return {name: values[order] for name, values in parts[0].items()}
    order = np.argsort(np.concatenate(positions), kind="stable")
    return {name: np.concatenate([p[name] for p in parts])[order] for name in parts[0]}


def _origin_span(history: History, times: np.ndarray) -> tuple[int, int]:
    """Keys cover the longest look-back before the earliest query and every event (positions never
    look past t, and the labels' next event after t is some event of the block)."""
    low = int(times.min()) - MAX_BACK_DAYS * DAY
    high = int(times.max())
    if history.n_events:
        low = min(low, history.time_min)
        high = max(high, history.time_max)
    return low, high - low + 1


def _blocks(sorted_customer: np.ndarray, per_block: int) -> list[tuple[int, int]]:
    """Query ranges whose customers span at most per_block consecutive positions."""
    bounds, q0, n = [], 0, len(sorted_customer)
    while q0 < n:
        q1 = int(np.searchsorted(sorted_customer, sorted_customer[q0] + per_block, side="left"))
        bounds.append((q0, q1))
        q0 = q1
    return bounds


def _timeline(history: History, c0: int, c1: int, customer: np.ndarray, times: np.ndarray) -> Timeline:
    return Timeline(history, c0, c1, customer - c0, times, 1, 0)
