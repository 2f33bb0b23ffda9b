"""The fast feature path equals a naive per-row Python implementation exactly (Feast-style oracle)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _feature_data import EXTRACT_END, index_times, random_population, timeline
from _naive_features import Naive, customer_events
from features import compute_cohorts, compute_features, compute_labels, feature_names, segment_names
from features.spec import outcome as declared_outcome, segment_families, segment_outcomes

TIMES = index_times("2021-02-01", months=8, step=4)  # 8 index dates, 2021-02 .. 2023-06


@pytest.fixture(scope="module")
def population():
    """(customers, events): 302 customers, ~13,000 shuffled events."""
    # The population draws point codes from their own stream, so a new catalogue code does not move
    # the stays, spells and life events (and with them the label classes asserted below).
    customers, events = random_population(300, seed=12)
    # and two crafted customers: a home care client who dies 6 weeks after the first index date (a
    # negative a death ended, a competing event, for both elderly outcomes), and an acute customer
    # who moves away 4 weeks after it (censored; since death is no longer a censor reason the
    # random acute rows hold no censored row)
    crafted = [timeline(99, ("2020-06-01", "HOMECARE/START"), ("2021-01-20", "ENC/EMERGENCY"), ("2021-03-15", "DEATH"), birth_year=1930),
               timeline(98, ("2020-06-01", "ENC/HC_NURSE"), ("2021-01-20", "ENC/EMERGENCY"), ("2021-03-01", "MOVE/OUT"), birth_year=1970)]
    return (pd.concat([customers, *(c.astype(customers.dtypes.to_dict()) for c, _ in crafted)], ignore_index=True),
            pd.concat([events, *(e.astype(events.dtypes.to_dict()) for _, e in crafted)], ignore_index=True))


@pytest.fixture(scope="module")
def naive_rows(population):
    customers, events = population
    rows = {}
    for cust in customers.to_dict("records"):
        evs = customer_events(events, cust["subject_id"])
        for t in TIMES:
            rows[(cust["subject_id"], t)] = Naive(evs, cust, t)
    return rows


def _pairs(customers):
    ids = np.repeat(customers["subject_id"].to_numpy(), len(TIMES))
    times = np.tile(np.array(TIMES, dtype="datetime64[us]"), len(customers))
    return ids, times


@pytest.mark.parametrize("segment", ["elderly", "children", "acute", "depression"])
def test_features_equal_naive_oracle(population, naive_rows, segment):
    customers, events = population
    ids, times = _pairs(customers)
    fast = compute_features(events, customers, ids, times, segment)
    families = segment_families(segment)
    expected = pd.DataFrame([naive_rows[(sid, pd.Timestamp(t))].features(families) for sid, t in zip(ids, times)])
    assert list(fast.columns[2:-1]) == feature_names(segment)
    assert set(expected.columns) == set(feature_names(segment))
    expected = expected[feature_names(segment)]
    mismatched = []
    for name in expected.columns:
        got, want = fast[name], expected[name]
        if isinstance(got.dtype, pd.CategoricalDtype):
            same = (got.astype(object).to_numpy() == want.to_numpy()).all()
        else:
            same = np.array_equal(got.to_numpy(), want.to_numpy(dtype=np.float64), equal_nan=True)
        if not same:
            bad = np.flatnonzero(~((got.to_numpy() == want.to_numpy()) | (pd.isna(got.to_numpy()) & pd.isna(want.to_numpy()))))
            mismatched.append(f"{name}: row {bad[0]} fast={got.iloc[bad[0]]!r} naive={want.iloc[bad[0]]!r} ({len(bad)} rows)")
    assert not mismatched, "\n".join(mismatched)
    # the population is rich enough that the comparison means something
    assert (fast[feature_names(segment)].select_dtypes("number").fillna(0) != 0).any().mean() > 0.9


def test_cohorts_equal_naive_oracle(population, naive_rows):
    customers, events = population
    ids, times = _pairs(customers)
    fast = compute_cohorts(events, customers, ids, times)
    naive = [naive_rows[(sid, pd.Timestamp(t))].cohort() for sid, t in zip(ids, times)]
    for segment in segment_names():
        want = np.array([n[f"in_{segment}"] for n in naive])
        assert np.array_equal(fast[f"in_{segment}"].to_numpy(), want), segment
        assert 0 < want.sum() < len(want), segment
        for outcome in segment_outcomes(segment):
            eligible = want & ~np.array([n["in_hospital"] for n in naive])
            if outcome == "homecare_failure":
                eligible &= np.array([n["homecare"] and not n["care24h"] for n in naive])
            assert np.array_equal(fast[f"eligible_{segment}-{outcome}"].to_numpy(), eligible), (segment, outcome)


@pytest.mark.parametrize("segment", ["elderly", "acute"])
def test_labels_equal_naive_oracle(population, naive_rows, segment):
    customers, events = population
    ids, times = _pairs(customers)
    fast = compute_labels(events, customers, ids, times, segment, extract_end=EXTRACT_END)
    died = 0  # negatives a death ended (a competing event), over the segment's outcomes
    for outcome in segment_outcomes(segment):
        o = declared_outcome(outcome)
        statuses = []
        for i, (sid, t) in enumerate(zip(ids, times)):
            status, reason, when = naive_rows[(sid, pd.Timestamp(t))].label(o.code, o.horizon_days, EXTRACT_END)
            eligible = bool(fast[f"eligible_{outcome}"].iloc[i])
            label, censor = fast[f"label_{outcome}"].iloc[i], fast[f"censor_{outcome}"].iloc[i]
            outcome_time = fast[f"outcome_time_{outcome}"].iloc[i]
            if not eligible:
                assert pd.isna(label) and pd.isna(censor) and pd.isna(outcome_time)
                continue
            statuses.append(status)
            died += status == "negative" and reason == "death"
            if status == "censored":
                assert pd.isna(label) and censor == reason and pd.isna(outcome_time), (sid, t)
            else:
                assert label == (status == "positive") and pd.isna(censor), (sid, t, status, label)
                # the first outcome event in (t, t + horizon] for a positive, NaT otherwise
                assert (pd.isna(outcome_time) and when is None) or outcome_time == when, (sid, t, outcome_time, when)
        assert {"positive", "negative", "censored"} <= set(statuses), outcome
        assert fast[f"outcome_time_{outcome}"].dtype == "datetime64[us]"
        positive = fast[f"label_{outcome}"].fillna(False).to_numpy(dtype=bool)
        assert fast[f"outcome_time_{outcome}"].notna().to_numpy().tolist() == positive.tolist(), outcome
    assert died > 0, segment
