"""Cohorts: who is in which segment at an index time, and who is eligible for which outcome.

Every rule reads a PastWindow (features/past.py): who is in a cohort at t follows from what was
on record at t, and an event after t (a move, a death, a diagnosis) changes no cohort at t.
Population at t: born, alive (no DEATH at or before t) and living in the region: the last MOVE
event at or before t is MOVE/IN, or there is none (nothing on record at t says the customer
lives elsewhere). The price of reading no later move: a customer whose history starts with a
MOVE/IN after t counts as a resident at t, with an empty history (only that later move says
they were not here yet; the rule used to read it, so a later move changed the cohort at t).
Segments: a member of the population is in a segment when any of the segment's cohort
conditions holds (vocabulary/problems.yaml; today elderly = 75+ or regular home care running,
children = 0-17, acute = an ER visit or unplanned admission in (t-90d, t], depression = a
depression diagnosis or PHQ-9 >= 10 in (t-730d, t]). A customer can be in several.
Eligible (per outcome): in the segment and every state the outcome's `eligible_when` names:
not_in_hospital (no stay opened at or before t and not yet discharged), home_care_running,
not_in_24h_care (CARE24H/START at or before t; it has no end).
"""

from __future__ import annotations

import numpy as np

from data_contracts.catalogue import PAIRED_SERVICES
from features.families._common import month_index
from features.families.demographics import age_years
from features.past import PastWindow, group
from vocabulary import AgeAtLeast, AgeAtMost, AllOf, Condition, EventWithin, ServiceRunning, ValueAtLeast, vocabulary

MOVES = group("MOVE/IN", "MOVE/OUT")
DEATH = group("DEATH")
CARE24H = group("CARE24H/START")
STAY = PAIRED_SERVICES["hospital stay"]


def compute(past: PastWindow) -> dict[str, np.ndarray]:
    """Boolean columns: population, in_<segment> for every segment, and the states eligibility
    needs (in_hospital, homecare, care24h)."""
    age = age_years(past)
    born = month_index(past.times) >= past.attribute("birth_month_index")
    alive = past.count_ever(DEATH) == 0
    population = born & alive & _resident(past)
    out = {"population": population}
    for name, segment in vocabulary().segments.items():
        member = np.zeros(past.n, dtype=bool)
        for condition in segment.cohort:
            member |= holds(condition, past, age)
        out[f"in_{name}"] = population & member
    out["in_hospital"] = past.is_open(STAY[0], (STAY[1],))
    out["homecare"] = _running(past, "home_care")
    out["care24h"] = past.count_ever(CARE24H) > 0
    return out


def holds(condition: Condition, past: PastWindow, age: np.ndarray) -> np.ndarray:
    """One cohort condition per query (an unknown kind is a programming error: the vocabulary
    refuses it at load)."""
    if isinstance(condition, AgeAtLeast):
        return age >= condition.age_at_least
    if isinstance(condition, AgeAtMost):
        return (age >= 0) & (age <= condition.age_at_most)
    if isinstance(condition, ServiceRunning):
        return _running(past, condition.service_running)
    if isinstance(condition, EventWithin):
        window = condition.event_within
        return past.count(group(*window.codes), window.days) > 0
    if isinstance(condition, ValueAtLeast):
        window = condition.value_at_least
        return past.count(group(window.code, min_value=float(window.value)), window.days) > 0
    if isinstance(condition, AllOf):
        every = np.ones(past.n, dtype=bool)
        for part in condition.all_of:
            every &= holds(part, past, age)
        return every
    raise TypeError(f"unknown cohort condition {condition!r}")


def _running(past: PastWindow, service: str) -> np.ndarray:
    opening, closing = PAIRED_SERVICES[service.replace("_", " ")]
    return past.is_open(opening, (closing,))


def _resident(past: PastWindow) -> np.ndarray:
    """The last move at or before t was a move in, or there was none (the module docstring)."""
    last = past.last(MOVES)
    return ~last.exists | (last.code() == _code_id("MOVE/IN"))


def _code_id(code: str) -> int:
    from features.history import code_ids

    return int(code_ids([code])[0])


_STATES = {
    "not_in_hospital": lambda cohort: ~cohort["in_hospital"],
    "home_care_running": lambda cohort: cohort["homecare"],
    "not_in_24h_care": lambda cohort: ~cohort["care24h"],
}


def eligibility(cohort: dict[str, np.ndarray], segment: str) -> dict[str, np.ndarray]:
    """eligible_<outcome> for every outcome of the segment, from compute()'s columns."""
    words = vocabulary()
    out = {}
    for outcome in words.segment(segment).outcomes:
        eligible = cohort[f"in_{segment}"].copy()
        for state in words.outcomes[outcome].eligible_when:
            eligible &= _STATES[state](cohort)
        out[f"eligible_{outcome}"] = eligible
    return out
