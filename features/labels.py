"""Labels: did the outcome happen in (t, t + horizon]? Events at t belong to features, never labels.

The estimand is the cumulative incidence with death as a competing event: the probability that
the outcome happens within the horizon and before the customer dies. Per (customer, t):
- censored "extract_end" if the horizon runs past the extract end, whatever the data still show
  of the window: the index time alone decides, so the last months keep neither the early
  positives nor the early deaths while their other rows are censored;
- otherwise positive if the outcome's first event after t comes within the horizon and not after
  the customer died or moved away (an outcome at the instant of the death still counts);
- negative if the customer dies within the horizon before any outcome (death is a competing
  event, not censoring: the outcome can no longer happen);
- censored "moved_away" if MOVE/OUT comes first within the horizon (the region no longer sees
  the customer);
- negative otherwise. Never a silent negative.
For a positive the time of that first outcome event is kept too (training reports the lead time
of alerts from it). The reason code also marks a negative that a death ended (ENDED_DEATH), so
reports can count the competing deaths; it is not a censor reason and no censor column shows it.

Labels are the one place that looks forward, through their own window type: a FutureWindow gives
each query's first event of a group strictly after t, and nothing at or before t. Features and
cohorts read a PastWindow (features/past.py) and cannot ask for what a FutureWindow gives.
"""

from __future__ import annotations

import numpy as np

from features.history import code_ids
from features.spec import outcome as outcome_of
from features.windows import DAY, CodeGroup, Timeline, group

TERMINAL = group("DEATH", "MOVE/OUT")
NEGATIVE, POSITIVE, CENSORED = 0, 1, 2
NO_TIME = np.iinfo(np.int64).min  # outcome time of a row that is not positive (NaT as int64)
# reason codes: none; a negative ended by death (a competing event, not censoring); the two
# censor reasons (the only codes with a name in the censor column)
CENSOR_NONE, ENDED_DEATH, CENSOR_MOVED, CENSOR_EXTRACT_END = 0, 1, 2, 3
CENSOR_NAMES = {CENSOR_MOVED: "moved_away", CENSOR_EXTRACT_END: "extract_end"}


class FutureWindow:
    """The labels' view of a block: for each query (customer, t), events strictly after t."""

    __slots__ = ("_timeline", "n", "times")

    def __init__(self, timeline: Timeline):
        self._timeline = timeline
        self.n = timeline.n
        self.times = timeline.times

    def next_event(self, g: CodeGroup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(whether there is one, its time (int64 max if not), its code position (-1 if not)) of the
        customer's first group event after t."""
        tl = self._timeline
        idx = tl.pos(g)  # events at or before t come first: the next one sits right after them
        found = idx < tl.end(g)
        return (found, tl.take(g, "time", idx, found, fill=np.iinfo(np.int64).max),
                tl.take(g, "code", idx, found, fill=-1))


def compute(future: FutureWindow, outcome: str, extract_end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(status: NEGATIVE/POSITIVE/CENSORED, reason code (a CENSOR_* for a censored row,
    ENDED_DEATH for a negative a death ended, CENSOR_NONE otherwise), outcome time in
    microseconds: the first outcome event's time for a positive, NO_TIME otherwise) per query."""
    spec = outcome_of(outcome)
    horizon_end = future.times + spec.horizon_days * DAY
    found, outcome_time, _ = future.next_event(group(spec.code))
    terminal, terminal_time, terminal_code = future.next_event(TERMINAL)

    positive = found & (outcome_time <= horizon_end) & (outcome_time <= terminal_time)
    ended = ~positive & terminal & (terminal_time <= horizon_end)
    past_extract = horizon_end > extract_end  # before everything else: a positive or a death too
    positive, ended = positive & ~past_extract, ended & ~past_extract
    died = ended & (terminal_code == int(code_ids(["DEATH"])[0]))
    moved = ended & ~died
    status = np.where(positive, POSITIVE, np.where(moved | past_extract, CENSORED, NEGATIVE))
    reason = np.select([past_extract, died, moved], [CENSOR_EXTRACT_END, ENDED_DEATH, CENSOR_MOVED], CENSOR_NONE)
    when = np.where(positive, outcome_time, NO_TIME).astype(np.int64)
    return status.astype(np.int8), reason.astype(np.int8), when
