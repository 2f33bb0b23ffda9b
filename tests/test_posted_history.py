"""A history the CRM posts (/score_history) keeps the same contracts as the region's dataset,
the links between customer and events included: a few inline rows, no region, no service."""

from __future__ import annotations

import datetime as dt

import pytest

from data_contracts.catalogue import MUNICIPALITIES
from data_contracts.errors import ContractError
from scoring.history import posted_frames, validate_posted

CUSTOMER = {"subject_id": 41, "birth_year": 1940, "birth_month": 6, "sex": "F",
            "municipality": MUNICIPALITIES[0], "language": "fi"}


def visit(day: dt.datetime, code: str = "ENC/HC_NURSE") -> dict:
    return {"time": day, "code": code}


def test_a_posted_history_inside_the_customer_s_life_is_accepted():
    validate_posted(*posted_frames(CUSTOMER, [visit(dt.datetime(1940, 6, 1, 9)), visit(dt.datetime(2024, 5, 1, 10)),
                                              visit(dt.datetime(2024, 6, 1, 8), "DEATH")]))


def test_events_before_the_birth_month_are_refused_naming_the_rule_and_row():
    events, customers = posted_frames(CUSTOMER, [visit(dt.datetime(1940, 5, 31, 23)), visit(dt.datetime(2024, 5, 1, 10))])
    with pytest.raises(ContractError, match=r"events\.time: time must not be before the first day of the birth month: "
                                            r"1 row: row 0 \(subject_id 41\)"):
        validate_posted(events, customers)


def test_events_after_death_are_refused_naming_the_rule_and_row():
    events, customers = posted_frames(CUSTOMER, [visit(dt.datetime(2024, 5, 1, 10), "DEATH"), visit(dt.datetime(2024, 5, 2, 9))])
    with pytest.raises(ContractError, match=r"events\.time: time must not be after the customer's DEATH: "
                                            r"1 row: row 1 \(subject_id 41\)"):
        validate_posted(events, customers)
