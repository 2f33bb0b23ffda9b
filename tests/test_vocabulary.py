"""The problem vocabulary (vocabulary/problems.yaml) is the one declaration of segments,
outcomes, horizons, cohort rules and their words, and every layer reads it from there."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import vocabulary as vocabulary_module
from vocabulary import VocabularyError, parse, vocabulary

YAML = Path(__file__).resolve().parents[1] / "vocabulary" / "problems.yaml"


def raw() -> dict:
    return yaml.safe_load(YAML.read_text(encoding="utf-8"))


def test_every_declared_problem_has_an_experiment_spec_and_back():
    from training.spec import list_problems, load_spec

    declared = {p.id for p in vocabulary().problems()}
    assert declared == set(list_problems())
    for problem in declared:
        spec = load_spec(problem)
        assert spec.horizon_days == vocabulary().problem(problem).horizon_days


def test_words_exist_in_both_languages_and_labels_carry_the_horizon():
    words = vocabulary()
    for problem in words.problems():
        fi, en = words.problem_label(problem.id, "fi"), words.problem_label(problem.id, "en")
        assert str(problem.horizon_days) in fi and str(problem.horizon_days) in en and fi != en
    for band in words.bands:
        assert words.band_label(band, "fi") != words.band_label(band, "en")
    assert words.problem_label("elderly-homecare_failure", "en") == "Moving to 24-hour care within 180 days (older people and home care)"


@pytest.mark.parametrize("change, message", [
    (lambda d: d["segments"]["acute"]["cohort"].append({"age_atleast": 3}), "segments.acute.cohort.1: a condition is one of"),
    (lambda d: d["segments"]["acute"].update(outcomes=["death"]), "unknown outcome(s) ['death']"),
    (lambda d: d["segments"]["acute"].update(colour="red"), "segments.acute.colour: Extra inputs are not permitted"),
    (lambda d: d["outcomes"]["hospitalisation"]["label"].update(fi="Sairaalahoito"), "label.fi must contain {days}"),
    (lambda d: d["bands"].pop("high"), "bands: exactly low, moderate, high, very_high"),
    (lambda d: d["outcomes"]["hospitalisation"].update(horizon_days=400), "horizon_days"),
])
def test_a_bad_declaration_is_refused_naming_the_field(change, message):
    data = raw()
    change(data)
    with pytest.raises(VocabularyError) as error:
        parse(data)
    assert message in str(error.value)


def test_unknown_names_are_errors_that_list_the_known_ones():
    with pytest.raises(VocabularyError, match="unknown segment 'teens'; known segments: elderly, children, acute, depression"):
        vocabulary().segment("teens")
    with pytest.raises(VocabularyError, match="unknown problem 'children-homecare_failure'"):
        vocabulary().problem("children-homecare_failure")


def test_words_do_not_move_the_pipeline_version_but_rules_do(monkeypatch):
    """Fixing a sentence must not retire the models; changing who is in a cohort must."""
    from features import version

    def version_with(change) -> str:
        data = raw()
        change(data)
        monkeypatch.setattr(vocabulary_module, "vocabulary", lambda: parse(copy.deepcopy(data)))
        return version.hashed_declarations()

    today = version_with(lambda d: None)
    assert version_with(lambda d: d["segments"]["acute"]["name"].update(en="acute care")) == today
    assert version_with(lambda d: d["outcomes"]["hospitalisation"]["label"].update(en="Admitted within {days} days")) == today
    assert version_with(lambda d: d["segments"]["acute"]["cohort"][0]["event_within"].update(days=60)) != today
    assert version_with(lambda d: d["outcomes"]["homecare_failure"]["eligible_when"].pop()) != today


def test_a_declared_segment_gets_cohorts_labels_and_features_with_no_code(monkeypatch):
    """Adding a segment is a declaration: here heart failure at 50-65 (the region plan's example),
    a cohort rule from the declared conditions, its own families and outcome."""
    from features import History, cohorts, compute_cohorts, compute_features, compute_labels, feature_names, spec
    from features.engine import run
    from features.past import over_past
    from tests._feature_data import EXTRACT_END, random_population

    data = raw()
    data["segments"]["heart_failure"] = {
        "name": {"en": "heart failure", "fi": "sydämen vajaatoiminta"},
        "description": {"en": "Heart failure on record in the last two years", "fi": "Sydämen vajaatoiminta kirjattu kahden vuoden aikana"},
        "cohort": [{"all_of": [{"age_at_least": 50}, {"age_at_most": 65},
                               {"event_within": {"codes": ["ICD10/I50.9"], "days": 730}}]}],
        "families": ["hospital", "emergency"],
        "outcomes": ["hospitalisation"],
    }
    declared = parse(data)
    for module in (vocabulary_module, cohorts, spec):
        monkeypatch.setattr(module, "vocabulary", lambda: declared)
    spec.segment_families.cache_clear()
    try:
        customers, events = random_population(120, seed=4)
        ids = np.repeat(customers["subject_id"].to_numpy(), 2)
        times = np.tile(np.array(["2022-06-01", "2023-06-01"], dtype="datetime64[us]"), len(customers))
        members = compute_cohorts(events, customers, ids, times)
        history = History.from_frames(events, customers)
        population = run(history, history.customer_index(ids), times.astype(np.int64), over_past(cohorts.compute))["population"]
        coded = events[events["code"] == "ICD10/I50.9"]
        born = customers.set_index("subject_id")
        expected = np.array([
            bool(((coded["subject_id"] == s) & (coded["time"] <= t) & (coded["time"] > t - pd.Timedelta(days=730))).any())
            and 50 <= ((t.year * 12 + t.month - 1) - (born.at[s, "birth_year"] * 12 + born.at[s, "birth_month"] - 1)) // 12 <= 65
            for s, t in zip(ids, pd.to_datetime(times))
        ]) & population
        assert 0 < expected.sum() < len(expected)
        assert np.array_equal(members["in_heart_failure"].to_numpy(), expected)
        eligible = members["eligible_heart_failure-hospitalisation"].to_numpy()
        assert not (eligible & ~expected).any()
        rows = compute_features(events, customers, ids, times, "heart_failure")
        assert list(rows.columns[2:-1]) == feature_names("heart_failure")
        assert {"bed_days_365d", "er_visits_180d"} <= set(rows.columns) and "phq9_last" not in rows.columns
        labels = compute_labels(events, customers, ids, times, "heart_failure", extract_end=EXTRACT_END)
        assert labels["eligible_hospitalisation"].tolist() == eligible.tolist()
    finally:
        spec.segment_families.cache_clear()
