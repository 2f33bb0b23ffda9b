"""What scoring answers, as plain frozen records (no HTTP in them: serving/ turns them into its
response types, alerts/ into cards and FHIR resources)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from explain.chains import SuggestedChain
from explain.reasons import FeatureContribution, Reason
from scoring.bands import Band
from scoring.champions import Gate


@dataclass(frozen=True)
class Risk:
    """One problem's risk for one customer at one time."""

    problem: str
    label_en: str
    label_fi: str
    probability: float
    band: Band
    model_version: str
    pipeline_version: str
    reasons: list[Reason] = field(default_factory=list)  # families a nurse can act on
    gate: Gate = Gate()  # the model's promotion record (scoring/champions.py)
    context: list[Reason] = field(default_factory=list)  # background families (explain/reasons.py)


@dataclass(frozen=True)
class CustomerRisks:
    """Every served problem's risk for one customer, or why there is none."""

    customer_id: int
    as_of: dt.date
    risks: list[Risk]
    note: str | None = None  # why `risks` is empty, when it is
    error: str | None = None  # in a batch: e.g. an unknown customer (the rest is scored)


@dataclass(frozen=True)
class Explained:
    """Every feature's contribution to one risk: base_value + sum(contributions) = raw_score."""

    customer_id: int
    problem: str
    as_of: dt.date
    model_version: str
    pipeline_version: str
    probability: float
    band: Band
    base_value: float
    raw_score: float
    contributions: list[FeatureContribution]
    reasons: list[Reason]
    suggested_chains: list[SuggestedChain]
    gate: Gate = Gate()
    context: list[Reason] = field(default_factory=list)


@dataclass(frozen=True)
class RowProbability:
    """A posted feature row's probability (no history, no SHAP)."""

    problem: str
    probability: float
    band: Band
    model_version: str
    gate: Gate = Gate()
