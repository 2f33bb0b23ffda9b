"""Alert rules on crafted frames: level, band rise, cool-down, suppression, one card per customer,
capacity, queue."""

from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from alerts.policy import AlertPolicy
from scoring.bands import BandThresholds, band_for
from alerts.rules import allocate_capacity, card_rows, cards_of, combined_budget, decide_alerts, empty_state, stale_queue

P = "elderly-hospitalisation"
MARCH = pd.Timestamp("2025-03-01")


def scores(*rows, as_of=MARCH):
    """rows: (subject_id, probability[, municipality[, in_outcome_state]])."""
    frame = pd.DataFrame(
        [
            {"subject_id": r[0], "problem": P, "as_of": as_of, "probability": r[1],
             "municipality": r[2] if len(r) > 2 else "Imatra", "in_outcome_state": r[3] if len(r) > 3 else False}
            for r in rows
        ]
    )
    return frame


def state(*rows):
    """rows: (subject_id, last_band, last_alert_as_of, last_alert_band)."""
    return pd.DataFrame(
        [{"subject_id": s, "problem": P, "last_band": b, "last_alert_as_of": a, "last_alert_band": ab} for s, b, a, ab in rows],
        columns=["subject_id", "problem", "last_band", "last_alert_as_of", "last_alert_band"],
    )


def decision_of(frame, subject_id):
    return frame.set_index("subject_id").loc[subject_id, "decision"]


def test_bands_from_policy_thresholds():
    bands = BandThresholds(moderate=0.1, high=0.3, very_high=0.6)
    assert [band_for(p, bands) for p in (0.0, 0.1, 0.29, 0.3, 0.6, 1.0)] == [
        "low", "moderate", "moderate", "high", "very_high", "very_high"]


def test_policy_is_strict_data():
    with pytest.raises(ValidationError, match="extra"):
        AlertPolicy.model_validate({"threshold": 0.3, "cooldown": 30})
    with pytest.raises(ValidationError, match="ascend"):
        BandThresholds(moderate=0.4, high=0.3, very_high=0.6)
    with pytest.raises(ValidationError, match="no score could ever alert"):
        AlertPolicy()


def test_threshold_and_min_band_both_must_hold():
    policy = AlertPolicy(threshold=0.3, min_band="very_high")
    out = decide_alerts(scores((1, 0.35), (2, 0.55), (3, 0.2)), empty_state(), policy)
    assert list(out["decision"]) == ["below_level", "alert", "below_level"]
    assert list(out["band"]) == ["high", "very_high", "moderate"]


def test_band_rise_triggers_below_the_level_only_when_enabled():
    frame = scores((1, 0.15), (2, 0.15), (3, 0.05))
    prior = state((1, "low", None, None), (2, "moderate", None, None), (3, "moderate", None, None))
    off = decide_alerts(frame, prior, AlertPolicy(min_band="high"))
    on = decide_alerts(frame, prior, AlertPolicy(min_band="high", alert_on_band_rise=True))
    assert list(off["decision"]) == ["below_level"] * 3
    assert list(on["decision"]) == ["alert", "below_level", "below_level"]
    assert on.set_index("subject_id").loc[1, "trigger"] == "band_rise"
    assert list(on["band_rose"]) == [True, False, False]


def test_cooldown_blocks_a_repeat_unless_the_band_rose_above_the_alerted_band():
    policy = AlertPolicy(min_band="high", cooldown_days=60)
    frame = scores((1, 0.3), (2, 0.6), (3, 0.3), (4, 0.3))
    prior = state(
        (1, "high", "2025-02-01T00:00:00", "high"),  # 28 days ago, same band: cool-down
        (2, "high", "2025-02-01T00:00:00", "high"),  # band rose to very high: alert
        (3, "high", "2024-12-01T00:00:00", "high"),  # 90 days ago: cool-down over
        (4, "very_high", "2025-02-01T00:00:00", "very_high"),  # band fell: cool-down
    )
    out = decide_alerts(frame, prior, policy)
    assert [decision_of(out, s) for s in (1, 2, 3, 4)] == ["cooldown", "alert", "alert", "cooldown"]


def test_cooldown_boundary_is_exclusive():
    policy = AlertPolicy(threshold=0.2, cooldown_days=28)
    out = decide_alerts(scores((1, 0.3)), state((1, "high", "2025-02-01T00:00:00", "high")), policy)
    assert decision_of(out, 1) == "alert"  # exactly 28 days later


def test_customer_already_in_the_outcome_state_is_suppressed():
    policy = AlertPolicy(threshold=0.2)
    out = decide_alerts(scores((1, 0.9, "Imatra", True), (2, 0.9, "Imatra", False)), empty_state(), policy)
    assert list(out["decision"]) == ["suppressed", "alert"]


def test_inputs_are_not_modified():
    frame = scores((1, 0.9))
    before = frame.copy()
    decide_alerts(frame, empty_state(), AlertPolicy(threshold=0.2))
    pd.testing.assert_frame_equal(frame, before)


def test_capacity_takes_highest_risks_first_per_municipality():
    pool = scores((1, 0.4), (2, 0.9), (3, 0.6), (4, 0.5, "Lemi"), (5, 0.3, "Lemi"), (6, 0.95))
    out = allocate_capacity(pool, capacity=2, used_today={"Lemi": 1}).set_index("subject_id")
    assert sorted(out.index[out["released"]]) == [2, 4, 6]
    assert out.loc[[6, 2, 3, 1], "rank"].tolist() == [1, 2, 3, 4]
    assert not out.loc[5, "released"]  # Lemi had 1 of 2 left: only its highest goes


def test_capacity_ties_go_to_the_longest_waiting_then_lowest_id():
    pool = pd.concat([scores((7, 0.5), (3, 0.5)), scores((9, 0.5), as_of=pd.Timestamp("2025-02-01"))], ignore_index=True)
    out = allocate_capacity(pool, capacity=2, used_today={}).set_index("subject_id")
    assert out.loc[[9, 3, 7], "rank"].tolist() == [1, 2, 3]


def test_no_capacity_budget_releases_everything():
    out = allocate_capacity(scores((1, 0.4), (2, 0.9)), capacity=None, used_today={})
    assert out["released"].all()


def test_queue_leaves_on_a_newer_score_of_the_customer_in_any_problem_or_expiry():
    queued = pd.DataFrame({
        "alert_id": ["a", "b", "c", "d"], "subject_id": [1, 2, 3, 4],
        "as_of": [pd.Timestamp("2025-02-01")] * 4,
        "queued_on": [date(2025, 3, 1), date(2025, 2, 20), date(2025, 3, 1), date(2025, 3, 1)],
    })
    new = pd.concat([scores((1, 0.5)), scores((4, 0.5)).assign(problem="acute-hospitalisation")], ignore_index=True)
    out = stale_queue(queued, new, queue_max_days=3, today=date(2025, 3, 2))
    assert dict(zip(out["alert_id"], out["reason"])) == {"a": "superseded", "b": "expired", "d": "superseded"}
    same_day = stale_queue(queued, scores((3, 0.5), as_of=pd.Timestamp("2025-02-01")), queue_max_days=3, today=date(2025, 3, 2))
    assert dict(zip(same_day["alert_id"], same_day["reason"])) == {"b": "expired"}  # not newer: stays


def decided(*rows):
    """rows: (subject_id, problem, probability, decision)."""
    return pd.DataFrame([{"subject_id": s, "problem": p, "as_of": MARCH, "as_of_key": "2025-03-01T00:00:00",
                          "probability": pr, "municipality": "Imatra", "decision": d} for s, p, pr, d in rows])


def test_one_card_per_customer_names_every_problem_at_its_level_highest_risk_first():
    rows = decided(
        (1, "a-x", 0.3, "alert"), (1, "b-x", 0.5, "cooldown"), (1, "c-x", 0.9, "below_level"),
        (2, "a-x", 0.4, "cooldown"), (2, "b-x", 0.2, "cooldown"),  # nothing new: no card
        (3, "a-x", 0.6, "suppressed"), (3, "b-x", 0.25, "alert"),
    )
    out, cards = cards_of(rows)
    assert cards[["subject_id", "probability", "n_problems"]].values.tolist() == [[1, 0.5, 2], [3, 0.25, 1]]
    assert card_rows(out, 0)["problem"].tolist() == ["b-x", "a-x"]  # the cool-down one too: the whole picture
    assert card_rows(out, 1)["problem"].tolist() == ["b-x"]
    assert out.groupby("subject_id")["card"].apply(set).to_dict() == {1: {0, -1}, 2: {-1}, 3: {1, -1}}
    # a customer who already has a card at this index time gets no second one
    again, none = cards_of(rows, carded={(3, "2025-03-01T00:00:00")})
    assert none["subject_id"].tolist() == [1]
    assert again.set_index(["subject_id", "problem"]).loc[(3, "b-x"), "decision"] == "already_carded"


def test_the_card_budget_is_the_tightest_the_policies_state():
    assert combined_budget({"a": AlertPolicy(threshold=0.2), "b": AlertPolicy(threshold=0.2)}) == (None, 7)
    assert combined_budget({
        "a": AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=5, queue_max_days=3),
        "b": AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=2),
        "c": AlertPolicy(threshold=0.2),
    }) == (2, 3)


def test_a_problem_not_scored_at_the_customers_last_card_counts_as_risen():
    policy = AlertPolicy(threshold=0.2, cooldown_days=60)
    prior = state((1, None, "2025-02-01T00:00:00", None), (2, "high", "2025-02-01T00:00:00", "high"))
    out = decide_alerts(scores((1, 0.3), (2, 0.3)), prior, policy)
    assert [decision_of(out, s) for s in (1, 2)] == ["alert", "cooldown"]
