"""Labels and cohort rules on crafted timelines (one customer each, times chosen at the edges)."""

from __future__ import annotations

import pandas as pd
import pytest

from _feature_data import timeline
from features import compute_cohorts, compute_features, compute_labels

T = pd.Timestamp("2023-03-01")  # the index time
END = pd.Timestamp("2024-01-01")  # extract end
EARLY = (pd.Timestamp("2021-01-01"), "ENC/HC_NURSE")  # every history starts before T


def label(*items, segment="acute", outcome="hospitalisation", t=T, birth_year=1940):
    customers, events = timeline(1, EARLY, *items, birth_year=birth_year)
    row = compute_labels(events, customers, [1], [t], segment, extract_end=END).iloc[0]
    value, censor = row[f"label_{outcome}"], row[f"censor_{outcome}"]
    return (None if pd.isna(value) else bool(value)), (None if pd.isna(censor) else censor), bool(row[f"eligible_{outcome}"])


ER_BEFORE = (T - pd.Timedelta(days=10), "ENC/EMERGENCY")  # puts the customer in the acute segment


def test_admission_at_index_time_is_a_feature_not_a_label():
    at_t = [(T, "ADMIT/UNPLANNED"), (T, "DISCHARGE", 0)]  # a zero-length stay exactly at 00:00
    assert label(ER_BEFORE, *at_t) == (False, None, True)
    customers, events = timeline(1, EARLY, ER_BEFORE, *at_t)
    features = compute_features(events, customers, [1], [T], "acute")
    assert features.loc[0, "unplanned_admissions_30d"] == 1


def test_admission_later_on_the_index_day_is_a_label():
    later = T + pd.Timedelta(hours=1)
    assert label(ER_BEFORE, (later, "ADMIT/UNPLANNED")) == (True, None, True)
    customers, events = timeline(1, EARLY, ER_BEFORE, (later, "ADMIT/UNPLANNED"))
    assert compute_features(events, customers, [1], [T], "acute").loc[0, "unplanned_admissions_30d"] == 0


@pytest.mark.parametrize(
    "offset, expected",
    [
        (pd.Timedelta(days=89, hours=12), True),  # during day 90
        (pd.Timedelta(days=90), True),  # the last instant of the window (t, t + 90 d]
        (pd.Timedelta(days=90, minutes=1), False),  # day 91
    ],
)
def test_horizon_edges(offset, expected):
    value, censor, eligible = label(ER_BEFORE, (T + offset, "ADMIT/UNPLANNED"))
    assert (value, censor, eligible) == (expected, None, True)


def test_death_within_the_horizon_is_a_negative_not_censored():
    """Death is a competing event: the outcome can no longer happen, so the row is a known 0."""
    value, censor, eligible = label(ER_BEFORE, (T + pd.Timedelta(days=30), "DEATH"))
    assert (value, censor, eligible) == (False, None, True)


def test_death_after_the_horizon_does_not_change_the_label():
    assert label(ER_BEFORE, (T + pd.Timedelta(days=91), "DEATH")) == (False, None, True)
    assert label(ER_BEFORE, (T + pd.Timedelta(days=60), "ADMIT/UNPLANNED"), (T + pd.Timedelta(days=91), "DEATH")) == (True, None, True)


def test_admission_before_death_is_positive():
    value, censor, _ = label(ER_BEFORE, (T + pd.Timedelta(days=5), "ADMIT/UNPLANNED"), (T + pd.Timedelta(days=30), "DEATH"))
    assert value is True and pd.isna(censor)


def test_admission_at_the_instant_of_death_is_positive():
    at = T + pd.Timedelta(days=12)
    assert label(ER_BEFORE, (at, "ADMIT/UNPLANNED"), (at, "DEATH")) == (True, None, True)


def test_moving_away_is_censored():
    value, censor, eligible = label(ER_BEFORE, (T + pd.Timedelta(days=20), "MOVE/OUT"))
    assert eligible and pd.isna(value) and censor == "moved_away"


def test_admission_before_moving_away_is_positive():
    assert label(ER_BEFORE, (T + pd.Timedelta(days=5), "ADMIT/UNPLANNED"), (T + pd.Timedelta(days=20), "MOVE/OUT")) == (True, None, True)


def test_horizon_past_extract_end_is_censored_positive_or_not():
    """An index time whose window runs past the extract end is censored whatever happens in the
    part of the window the data still show: keeping the early positives while the negatives are
    censored would make the last months all positives (issue 15 item 7)."""
    late = pd.Timestamp("2023-12-01")
    er = (late - pd.Timedelta(days=3), "ENC/EMERGENCY")
    assert label(er, t=late) == (None, "extract_end", True)
    assert label(er, (late + pd.Timedelta(days=14), "ADMIT/UNPLANNED"), t=late) == (None, "extract_end", True)
    assert label(er, (late + pd.Timedelta(days=14), "MOVE/OUT"), t=late) == (None, "extract_end", True)
    assert label(er, (late + pd.Timedelta(days=14), "DEATH"), t=late) == (None, "extract_end", True)  # a death too


def test_death_ended_negatives_are_marked_but_not_as_a_censor_reason():
    """The raw reason array tells a death-ended negative from a plain one (for reports); the censor
    column names only moving away and the extract end."""
    from features import labels
    from features.engine import run
    from features.history import to_micros
    from features.pipeline import _prepare, label_columns

    assert set(labels.CENSOR_NAMES.values()) == {"moved_away", "extract_end"}
    reasons = {}
    for name, item in (("died", (T + pd.Timedelta(days=30), "DEATH")), ("plain", (T + pd.Timedelta(days=200), "DEATH")),
                       ("moved", (T + pd.Timedelta(days=30), "MOVE/OUT"))):
        customers, events = timeline(1, EARLY, ER_BEFORE, item)
        history, customer, micros = _prepare(events, customers, [1], [T], None, None)
        cols = run(history, customer, micros, lambda tl: label_columns(tl, "acute", int(to_micros([END])[0])))
        reasons[name] = (int(cols["status_hospitalisation"][0]), int(cols["reason_hospitalisation"][0]))
    assert reasons == {"died": (labels.NEGATIVE, labels.ENDED_DEATH), "plain": (labels.NEGATIVE, labels.CENSOR_NONE),
                       "moved": (labels.CENSORED, labels.CENSOR_MOVED)}


def test_planned_admission_is_not_a_positive():
    value, censor, eligible = label(ER_BEFORE, (T + pd.Timedelta(days=20), "ADMIT/PLANNED"), (T + pd.Timedelta(days=22), "DISCHARGE", 2))
    assert eligible and value is False and pd.isna(censor)


def test_open_stay_on_index_date_is_not_eligible():
    value, censor, eligible = label(ER_BEFORE, (T - pd.Timedelta(days=5), "ADMIT/PLANNED"), (T + pd.Timedelta(days=3), "DISCHARGE", 8),
                                    (T + pd.Timedelta(days=40), "ADMIT/UNPLANNED"))
    assert not eligible and pd.isna(value) and pd.isna(censor)


def test_discharge_at_index_time_is_eligible():
    _, _, eligible = label(ER_BEFORE, (T - pd.Timedelta(days=5), "ADMIT/UNPLANNED"), (T, "DISCHARGE", 5))
    assert eligible


HOMECARE = (T - pd.Timedelta(days=200), "HOMECARE/START")


def test_homecare_failure_positive_within_180_days_only():
    assert label(HOMECARE, (T + pd.Timedelta(days=100), "CARE24H/START"), segment="elderly", outcome="homecare_failure")[0] is True
    assert label(HOMECARE, (T + pd.Timedelta(days=181), "CARE24H/START"), segment="elderly", outcome="homecare_failure")[0] is False


def test_already_in_24h_care_is_not_eligible_for_homecare_failure():
    value, censor, eligible = label(HOMECARE, (T - pd.Timedelta(days=30), "CARE24H/START"), segment="elderly", outcome="homecare_failure")
    assert not eligible and pd.isna(value) and pd.isna(censor)


def test_homecare_failure_needs_a_home_care_customer():
    value, _, eligible = label(segment="elderly", outcome="homecare_failure", birth_year=1930)  # 93, no home care
    assert not eligible and pd.isna(value)
    assert label(segment="elderly", outcome="hospitalisation", birth_year=1930)[2]  # but eligible for admissions


# -- cohorts ---------------------------------------------------------------------------------------
def cohort(*items, t=T, birth_year=1940, birth_month=1):
    customers, events = timeline(1, EARLY, *items, birth_year=birth_year, birth_month=birth_month)
    return compute_cohorts(events, customers, [1], [t]).iloc[0]


def test_elderly_turns_75_in_the_birth_month():
    assert not cohort(birth_year=1948, birth_month=3, t=pd.Timestamp("2023-02-01"))["in_elderly"]  # 74
    assert cohort(birth_year=1948, birth_month=3, t=pd.Timestamp("2023-03-01"))["in_elderly"]  # 75


def test_home_care_customer_is_elderly_at_any_age_while_home_care_runs():
    assert cohort(HOMECARE, birth_year=1963)["in_elderly"]
    ended = (T - pd.Timedelta(days=1), "HOMECARE/END")
    assert not cohort(HOMECARE, ended, birth_year=1963)["in_elderly"]


def test_children_are_0_to_17():
    assert cohort(birth_year=2005, birth_month=3, t=pd.Timestamp("2023-02-01"))["in_children"]  # 17
    assert not cohort(birth_year=2005, birth_month=3, t=pd.Timestamp("2023-03-01"))["in_children"]  # 18
    assert cohort(birth_year=2023, birth_month=3)["in_children"]  # born this month: 0
    assert not cohort(birth_year=2023, birth_month=4)["in_children"]  # not born yet


def test_acute_is_an_er_visit_or_unplanned_admission_in_90_days():
    assert cohort((T - pd.Timedelta(days=89), "ENC/EMERGENCY"))["in_acute"]
    assert not cohort((T - pd.Timedelta(days=91), "ENC/EMERGENCY"))["in_acute"]
    assert cohort((T - pd.Timedelta(days=60), "ADMIT/UNPLANNED"), (T - pd.Timedelta(days=50), "DISCHARGE", 10))["in_acute"]
    assert not cohort((T - pd.Timedelta(days=60), "ADMIT/PLANNED"), (T - pd.Timedelta(days=50), "DISCHARGE", 10))["in_acute"]
    assert not cohort((T + pd.Timedelta(hours=1), "ENC/EMERGENCY"))["in_acute"]  # after t: not yet


def test_depression_is_a_diagnosis_or_phq9_of_10_in_two_years():
    assert cohort((T - pd.Timedelta(days=700), "PHQ9", 10))["in_depression"]
    assert not cohort((T - pd.Timedelta(days=700), "PHQ9", 9))["in_depression"]
    assert cohort((T - pd.Timedelta(days=100), "ICPC2/P76"))["in_depression"]
    assert not cohort((T - pd.Timedelta(days=731), "ICD10/F33"))["in_depression"]


def test_dead_or_moved_away_customers_are_in_no_segment():
    for items in ([(T - pd.Timedelta(days=1), "DEATH")], [(T - pd.Timedelta(days=1), "MOVE/OUT")]):
        row = cohort(*items, birth_year=1930)
        assert not any(row[f"in_{s}"] for s in ("elderly", "children", "acute", "depression"))
    back = [(T - pd.Timedelta(days=100), "MOVE/OUT"), (T - pd.Timedelta(days=10), "MOVE/IN")]
    assert cohort(*back, birth_year=1930)["in_elderly"]


DAY = pd.Timedelta(days=1)
MOVES = {  # moves around T -> resident at T (the last move at or before T is a move in, or there is none)
    "moves away after t": ([(T + 10 * DAY, "MOVE/OUT")], True),
    "moves away 1 us after t": ([(T + pd.Timedelta(microseconds=1), "MOVE/OUT")], True),
    "moved in before t": ([(T - 10 * DAY, "MOVE/IN")], True),
    "moved in at t": ([(T, "MOVE/IN")], True),
    "moved in before t, away after": ([(T - 10 * DAY, "MOVE/IN"), (T + 10 * DAY, "MOVE/OUT")], True),
    "moved away at t": ([(T, "MOVE/OUT")], False),
    "moved away before t, back after": ([(T - 10 * DAY, "MOVE/OUT"), (T + 10 * DAY, "MOVE/IN")], False),
    "moved away and back before t": ([(T - 100 * DAY, "MOVE/OUT"), (T - 10 * DAY, "MOVE/IN")], True),
    # Nothing on record at t says this customer lives elsewhere: only the later move would, and a
    # later move must not decide a cohort at t (it used to: issue 15).
    "first move is a move in after t": ([(T + 10 * DAY, "MOVE/IN")], True),
    "no move at all": ([], True),
}


@pytest.mark.parametrize("case", list(MOVES))
def test_residency_at_t_reads_only_the_moves_up_to_t(case):
    from _naive_features import Naive, customer_events

    items, resident = MOVES[case]
    customers, events = timeline(1, EARLY, *items, birth_year=1930)  # 93: elderly whenever resident
    fast = compute_cohorts(events, customers, [1], [T]).iloc[0]["in_elderly"]
    naive = Naive(customer_events(events, 1), customers.iloc[0].to_dict(), T).cohort()["in_elderly"]
    upto_t = compute_cohorts(events[events["time"] <= T], customers, [1], [T]).iloc[0]["in_elderly"]
    assert fast == naive == upto_t == resident


@pytest.mark.parametrize("code", ["REHAB", "HOMECARE"])
def test_service_ending_and_restarting_at_one_instant_stays_running(code):
    """The simulator writes END before START at one instant; the contracts accept it and the
    features must read the service as running (not ended) after the restart."""
    from data_contracts.validate import validate_events

    switch = T - pd.Timedelta(days=20)
    items = [(T - pd.Timedelta(days=60), f"{code}/START"), (switch, f"{code}/END"), (switch, f"{code}/START")]
    customers, events = timeline(1, EARLY, *items, birth_year=1930)
    validate_events(events)  # raises if the contract reads it as a second START while running
    row = compute_features(events, customers, [1], [T], "elderly").iloc[0]
    assert row[f"{code.lower()}_active"] == 1
    # given in the other row order, the catalogue's tie order still reads END first
    row_reversed = compute_features(events.iloc[::-1], customers, [1], [T], "elderly").iloc[0]
    assert row_reversed[f"{code.lower()}_active"] == 1
