"""The PastWindow (features/past.py) is the only view of a customer that features and cohorts get:
it answers look-back questions only, and refuses anything that reaches past t with an error."""

from __future__ import annotations

import numpy as np
import pytest

from _feature_data import random_population
from features import History


def test_a_past_window_cannot_be_asked_for_anything_after_t():
    from features.engine import run
    from features.past import PastWindow, group
    from features.windows import Timeline

    customers, events = random_population(5, seed=1)
    history = History.from_frames(events, customers)
    g = group("ENC/EMERGENCY")

    def attempts(tl: Timeline) -> dict[str, np.ndarray]:
        past = PastWindow(tl)
        for forward in (lambda: past.count(g, -1), lambda: past.count(g, 0), lambda: past.count(g, 732),
                        lambda: past.count_between(g, 30, -1), lambda: past.count_between(g, 30, 60),
                        lambda: past.sum(g, "cost", -90), lambda: past.prefetch(g, (0, -1)),
                        lambda: past.distinct_units(-1), lambda: past.last(g, 0),
                        lambda: tl.pos(g, 1), lambda: tl.pos(g, 1e-6), lambda: tl.prefetch(g, (0, 181))):
            with pytest.raises(ValueError):
                forward()
        return {}

    run(history, np.arange(5), np.full(5, np.datetime64("2022-06-01", "us")).view(np.int64), attempts)
    public = {name for name in dir(PastWindow) if not name.startswith("_")}
    # Adding a look-up to this list is adding a way to read events: it must read only the past.
    assert public == {"attribute", "count", "count_between", "count_ever", "count_soon_after", "count_with_previous",
                      "distinct_units", "is_open", "last", "n", "prefetch", "subset", "sum", "times"}
