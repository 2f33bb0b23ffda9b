"""Nothing after t reaches a feature or a cohort at t (issue 15: a leakage test that cannot be fooled).

Two small populations (the feature tests' random one, with events exactly at index times and
every code, and a simulated region) give candidate pairs (customer, t). Pairs are chosen so that
every feature and cohort column has an informative value (not missing, not 0) somewhere, then
more where needed (below). For every chosen pair and every probe (each code of
data_contracts/codes.csv; one carrying a value at both ends of its range) a copy of the customer
gets the probe at t + 1 microsecond, t + 1 day and t + each horizon of the vocabulary, and every
feature of every segment and every cohort column at t must be exactly what the customer had.

A test that meets no probe a feature reads proves nothing about that feature (the old one injected
14 codes; 132 of 185 features read none of them). So the probes are also checked to be seen:
reading the same copies at t + 1 microsecond, t + 1 day and t + each horizon, as a feature with
that look-ahead would, every feature and cohort column must differ somewhere, except the four
that read no event at all. Where the first choice of pairs leaves one unmoved (a frequent
attender flag moves only for a customer one visit short of the threshold), a candidate pair
that moves it is added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from _feature_data import random_population
from _leakage import (Copies, columns, compare, copies, covering_pairs, cut_at, differences, first_detecting, informative, offsets,
                      probes)
from data_contracts.catalogue import PAIRED_SERVICES, load_code_catalogue
from features import History, catalogue
from vocabulary import vocabulary

# Read no event at all, so no probe can move them: age comes from the birth month and t; sex,
# municipality and language are static attributes of the customer (PastWindow.attribute).
READ_NO_EVENT = {"age_years", "sex", "municipality", "language"}


@dataclass
class Population:
    customers: pd.DataFrame
    events: pd.DataFrame
    dates: list[pd.Timestamp]
    history: History = field(init=False)
    ids: np.ndarray = field(init=False)  # candidate pairs: every customer at every date
    times: np.ndarray = field(init=False)
    chosen: list[int] = field(init=False)
    _copies: tuple | None = field(init=False, default=None)
    _changed: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.history = History.from_frames(self.events, self.customers)
        self.ids = np.repeat(self.history.subject_ids, len(self.dates))
        self.times = np.tile(np.array(self.dates, dtype="datetime64[us]"), self.history.n_customers)
        self.chosen = covering_pairs(columns(self.history, self.ids, self.times))

    def copies(self) -> Copies:
        """The chosen pairs' probed copies (made again when a pair is added)."""
        key = tuple(self.chosen)
        if self._copies is None or self._copies[0] != key:
            self._copies = (key, copies(self.customers, self.events, self.ids[self.chosen], self.times[self.chosen],
                                        probes(), offsets()))
        return self._copies[1]

    def changed(self, ahead: pd.Timedelta | None = None) -> dict[str, np.ndarray]:
        """Per column, per copy: differs from its customer when both are read at t (+ ahead)."""
        key = (ahead, tuple(self.chosen))
        if key not in self._changed:
            self._changed[key] = compare(self.copies(), self.history, self.ids[self.chosen], self.times[self.chosen], ahead)
        return self._changed[key]


def _simulated() -> tuple[pd.DataFrame, pd.DataFrame]:
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    region = simulate(SimulatorConfig(customers=300, seed=15, years=2, compute_truth=False))
    return region.customers, region.events


@lru_cache(maxsize=1)
def populations() -> dict[str, Population]:
    """The two populations with their pairs chosen (built once per test process)."""
    customers, events = random_population(120, seed=5)
    # month starts at 00:00 (where 1 in 5 random events sit exactly) and one time inside a day
    random_dates = ["2022-01-01", "2022-07-01", "2022-10-15 13:37:00.123456", "2023-04-01"]
    found = {"random": Population(customers, events, [pd.Timestamp(d) for d in random_dates])}
    customers, events = _simulated()  # 2022-2023: dates in the second year have a year of history
    found["simulated"] = Population(customers, events, [pd.Timestamp(d) for d in ("2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01")])
    _add_pairs_for_unmoved_columns(found)
    return found


def _add_pairs_for_unmoved_columns(found: dict[str, Population]) -> None:
    codes_of = {entry.name: entry.codes for entry in catalogue()}
    every = probes()
    for ahead in offsets():
        moved = _moved(found, ahead)
        for name in sorted(set(moved) - READ_NO_EVENT):
            if moved[name]:
                continue
            kinds = [p for p in every if p.code in codes_of.get(name, ())] or every  # the codes it reads
            for population in found.values():
                extra = first_detecting(population.customers, population.events, population.history, population.ids,
                                        population.times, kinds, offsets(), ahead, name)
                if extra is not None:
                    population.chosen.append(extra)
                    break


def _moved(found: dict[str, Population], ahead: pd.Timedelta) -> dict[str, bool]:
    """Per column: whether some probe moves it in some population when read at t + ahead."""
    moved: dict[str, bool] = {}
    for population in found.values():
        for name, changed in population.changed(ahead).items():
            moved[name] = moved.get(name, False) or bool(changed.any())
    return moved


def probed() -> dict[str, tuple[Copies, dict[str, np.ndarray]]]:
    """Per population: the probed copies and, per column, whether each copy differs at t."""
    return {name: (population.copies(), population.changed()) for name, population in populations().items()}


# -- the probes ------------------------------------------------------------------------------------
def test_every_catalogue_code_is_probed_at_every_offset():
    codes = load_code_catalogue()
    kinds = probes()
    assert {p.code for p in kinds} == set(codes["code"])
    valued = codes[codes["value_min"].notna() | codes["value_max"].notna()]
    assert len(valued) >= 20 and len(kinds) == len(codes) + len(valued)  # both ends of every value range
    read = {code for entry in catalogue() for code in entry.codes}
    read |= {code for opening, closing in PAIRED_SERVICES.values() for code in (*opening, closing)}
    read |= {"DEATH", "MOVE/IN", "MOVE/OUT", "CARE24H/START"}  # population and eligibility
    assert read <= {p.code for p in kinds}
    horizons = sorted({o.horizon_days for o in vocabulary().outcomes.values()})
    assert offsets() == (pd.Timedelta(microseconds=1), pd.Timedelta(days=1), *(pd.Timedelta(days=d) for d in horizons))


def test_every_feature_and_cohort_column_has_an_informative_value_at_a_chosen_pair():
    """Not missing, not 0, not False somewhere: a column that is always NaN or 0 on the chosen
    pairs would say little about what a probe does to it."""
    names, somewhere = set(), set()
    for population in populations().values():
        ids, times = population.ids[population.chosen], population.times[population.chosen]
        values = columns(population.history, ids, times)
        names |= set(values)
        somewhere |= {name for name, column in values.items() if informative(column).any()}
    assert names - somewhere == set()


# -- the promise -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["random", "simulated"])
def test_events_after_t_change_no_feature_and_no_cohort_at_t(name):
    copied, changed = probed()[name]
    population = populations()[name]
    kinds = probes()
    failures = []
    for column, rows in changed.items():
        if rows.any():
            where = np.flatnonzero(rows)[:3]
            examples = [(int(population.ids[population.chosen][copied.pair[c]]), str(population.times[population.chosen][copied.pair[c]]),
                         kinds[copied.probe[c]].code, kinds[copied.probe[c]].value) for c in where]
            failures.append(f"{column}: {int(rows.sum())} copies, e.g. (customer, t, probe code, value) {examples}")
    assert not failures, "events after t changed values at t:\n" + "\n".join(failures)
    assert len(copied.ids) >= 20 * len(kinds)


@pytest.mark.parametrize("name", ["random", "simulated"])
def test_features_at_t_equal_those_of_the_history_cut_at_t(name):
    """The same, the other way round: without any of the customer's own events after t, every
    candidate pair keeps every feature and cohort column."""
    p = populations()[name]
    history, cut_ids = cut_at(p.customers, p.events, p.ids, p.times)
    changed = differences(columns(history, cut_ids, p.times), columns(p.history, p.ids, p.times))
    assert not {column: int(rows.sum()) for column, rows in changed.items() if rows.any()}
    later = p.events["time"].to_numpy(dtype="datetime64[us]") > np.min(p.times)
    assert later.sum() > 1000  # there were events after t to cut


# -- the probes are seen ---------------------------------------------------------------------------
@pytest.mark.parametrize("ahead", offsets(), ids=lambda d: f"ahead {d}")
def test_the_probes_would_catch_a_look_ahead_in_every_feature_and_cohort(ahead):
    """Read at t + ahead (what a feature with that look-ahead reads), the probed copies differ in
    every column but the four that read no event; and every probe moves something."""
    unmoved, seen = None, set()
    for population in populations().values():
        copied, changed = population.copies(), population.changed(ahead)
        here = {column for column, rows in changed.items() if not rows.any()}
        unmoved = here if unmoved is None else unmoved & here
        seen |= set(copied.probe[np.logical_or.reduce(list(changed.values()))].tolist())
    assert unmoved == READ_NO_EVENT
    assert seen == set(range(len(probes())))


def test_every_catalogue_feature_and_cohort_column_is_compared():
    _, changed = probed()["random"]
    assert {c for c in changed if not c.startswith("cohort:")} == {entry.name for entry in catalogue()}
    assert {c for c in changed if c.startswith("cohort:in_")} == {f"cohort:in_{s}" for s in vocabulary().segments}


def test_the_columns_compared_are_those_of_the_public_feature_functions():
    from _leakage import public_columns

    for population in populations().values():
        ids, times = population.ids[population.chosen], population.times[population.chosen]
        assert not {c for c, rows in differences(columns(population.history, ids, times),
                                                 public_columns(population.history, ids, times)).items() if rows.any()}
