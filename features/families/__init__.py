"""Feature families: each module computes one family's columns for the queries of a PastWindow.

A family is a pure function `compute(past) -> {feature name: array}` of a PastWindow (each
query's events at or before its t, features/past.py: a family cannot ask for anything later);
which families a segment uses is data (vocabulary/problems.yaml), and every name a family returns
has an entry in features/catalogue.py (checked by a test).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from features.families import (
    assessments,
    child_welfare,
    cost,
    demographics,
    diagnoses,
    emergency,
    homecare,
    hospital,
    mental_health,
    utilisation,
)
from features.past import PastWindow

FamilyFunction = Callable[[PastWindow], dict[str, np.ndarray]]

FAMILIES: dict[str, FamilyFunction] = {
    "demographics": demographics.compute,
    "utilisation": utilisation.compute,
    "cost": cost.compute,
    "diagnoses": diagnoses.compute,
    "hospital": hospital.compute,
    "emergency": emergency.compute,
    "homecare": homecare.compute,
    "assessments": assessments.compute,
    "child_welfare": child_welfare.compute,
    "mental_health": mental_health.compute,
}
