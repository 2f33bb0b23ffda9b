"""Cohorts: who is in which segment at an index time, and who is eligible for which outcome.

Population at t: born, alive (no DEATH at or before t) and living in the region: the last
MOVE event at or before t is MOVE/IN, or there is none yet and the customer's first MOVE event
is not a MOVE/IN (a customer whose history starts with moving in was not here before).
Segments (rules in segments.yaml): elderly = 75+ or regular home care running; children = 0-17;
acute = ENC/EMERGENCY or ADMIT/UNPLANNED in (t-90d, t]; depression = a depression diagnosis or
PHQ-9 >= 10 in (t-730d, t]. A customer can be in several.
Eligible (per outcome): in the population and the segment, not in hospital at t (a stay opened
at or before t and not yet discharged); for home-care failure also elderly, home care running
and not already in 24-hour care (CARE24H/START at or before t; it has no end).
"""

from __future__ import annotations

import numpy as np

from features.families._common import month_index
from features.families.demographics import age_years
from features.spec import segment_spec
from features.windows import Timeline, group

MOVES = group("MOVE/IN", "MOVE/OUT")
DEATH = group("DEATH")
CARE24H = group("CARE24H/START")


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    """Boolean columns: population, in_<segment> for every segment, and the states eligibility needs."""
    rules = segment_spec().rules
    age = age_years(tl)
    born = month_index(tl.times) >= tl.history.birth_month_index[tl.customer]
    alive = tl.count_ever(DEATH) == 0
    population = born & alive & _resident(tl)
    homecare = tl.is_open(("HOMECARE/START",), ("HOMECARE/END",))
    acute_hits = tl.count(group(*rules["acute_codes"]), rules["acute_lookback_days"])
    days = rules["depression_lookback_days"]
    depression_hits = tl.count(group(*rules["depression_codes"]), days) + tl.count(
        group("PHQ9", min_value=float(rules["depression_phq9_min"])), days
    )
    return {
        "population": population,
        "in_elderly": population & ((age >= rules["elderly_min_age"]) | homecare),
        "in_children": population & (age >= 0) & (age <= rules["children_max_age"]),
        "in_acute": population & (acute_hits > 0),
        "in_depression": population & (depression_hits > 0),
        "in_hospital": tl.is_open(("ADMIT/UNPLANNED", "ADMIT/PLANNED"), ("DISCHARGE",)),
        "homecare": homecare,
        "care24h": tl.count_ever(CARE24H) > 0,
    }


def _resident(tl: Timeline) -> np.ndarray:
    move_in = _code_id("MOVE/IN")
    idx, valid = tl.last(MOVES)
    last_code = tl.take(MOVES, "code", idx, valid, fill=-1)
    first_idx, has_any = tl.first(MOVES)
    first_code = tl.take(MOVES, "code", first_idx, has_any, fill=-1)
    return np.where(valid, last_code == move_in, first_code != move_in)


def _code_id(code: str) -> int:
    from features.history import code_ids

    return int(code_ids([code])[0])


def eligibility(cohort: dict[str, np.ndarray], segment: str) -> dict[str, np.ndarray]:
    """eligible_<outcome> for every outcome of the segment, from compute()'s columns."""
    spec = segment_spec().segment(segment)
    base = cohort[f"in_{segment}"] & ~cohort["in_hospital"]
    out = {}
    for outcome in spec.outcomes:
        if outcome == "homecare_failure":
            out[f"eligible_{outcome}"] = base & cohort["in_elderly"] & cohort["homecare"] & ~cohort["care24h"]
        else:
            out[f"eligible_{outcome}"] = base
    return out
