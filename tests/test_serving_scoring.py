"""Scorer (the service's logic without HTTP): parity, additivity, cohorts, caching, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from scoring.backend import Backend, BackendError, HistoryStore, ReloadRefused, champion_from_model, posted_frames
from scoring.scorer import Scorer, ServingError, UnknownCustomer, UnknownProblem, month_starts_before
from tests.serving_fixture import END, PIPELINE, START, ToyFeatures, make_backend, shared_fixture, toy_rows


@pytest.fixture(scope="module")
def fixture():
    return shared_fixture()


@pytest.fixture()
def scorer(fixture):
    events, customers, models = fixture
    return Scorer(make_backend(events, customers, models))


def members_at(scorer: Scorer, time: pd.Timestamp, problem: str, n: int = 20) -> list[int]:
    ids = scorer.backend.history.customers.index.tolist()
    found = scorer.backend.features.membership(scorer.backend.history, ids, time, scorer.backend.champions)
    return [s for s in ids if problem in found[s].problems][:n]


def test_probabilities_equal_the_in_memory_model(scorer, fixture):
    """Parity: the service path gives exactly the model's probability for the same feature rows."""
    events, customers, models = fixture
    time = pd.Timestamp(END)
    for problem, model in models.items():
        ids = members_at(scorer, time, problem)
        assert ids, f"fixture has no members of {problem}"
        rows = toy_rows(events, customers, ids, [time] * len(ids))
        expected = model.predict_proba(rows)
        _, results = scorer.score_customers(ids, None, 0)
        got = [next(r.probability for r in item.risks if r.problem == problem) for item in results]
        np.testing.assert_array_equal(got, expected)


def test_one_at_a_time_equals_many_at_once(fixture):
    """Batching customers into one predict / pred_contrib call changes no probability or reason."""
    events, customers, models = fixture
    ids = list(range(1, 80))
    together = Scorer(make_backend(events, customers, models)).score_customers(ids, None, 5)[1]
    alone = Scorer(make_backend(events, customers, models))
    for item in together:
        assert alone.score_customers([item.customer_id], None, 5)[1][0] == item


def test_explanations_sum_to_the_raw_score(scorer, fixture):
    _, _, models = fixture
    for problem in models:
        for subject in members_at(scorer, pd.Timestamp(END), problem, 5):
            explained = scorer.explain(subject, problem, None)
            total = explained.base_value + sum(c.contribution for c in explained.contributions)
            assert total == pytest.approx(explained.raw_score, abs=1e-6)
            row = scorer.stored_rows([subject], pd.Timestamp(END))[subject].rows[models[problem].spec["segment"]].to_frame()
            assert explained.raw_score == pytest.approx(float(models[problem].raw_score(row)[0]), abs=1e-6)


def test_probability_only_scoring_computes_no_shap(scorer, monkeypatch):
    calls = []
    for champion in scorer.backend.champions.values():
        original = champion.model.contributions_matrix
        monkeypatch.setattr(champion.model, "contributions_matrix", lambda matrix, original=original: calls.append(1) or original(matrix))
    _, results = scorer.score_customers(list(range(1, 40)), None, 0)
    assert any(item.risks for item in results) and calls == []
    scorer.score_customer(results[0].customer_id, None, 3)
    assert calls  # reasons asked for: SHAP computed


def test_explanations_are_cached_per_customer_and_time(scorer, monkeypatch):
    subject = members_at(scorer, pd.Timestamp(END), "elderly-hospitalisation", 1)[0]
    model = scorer.backend.champions["elderly-hospitalisation"].model
    calls = []
    original = model.contributions_matrix
    monkeypatch.setattr(model, "contributions_matrix", lambda matrix: calls.append(1) or original(matrix))
    first = scorer.score_customer(subject, None, 5)
    again = scorer.score_customer(subject, None, 5)
    scorer.explain(subject, "elderly-hospitalisation", None)
    assert first == again and len(calls) == 1


def test_a_customer_in_no_cohort_gets_an_empty_list_and_a_note(scorer):
    ids = scorer.backend.history.customers.index.tolist()
    _, results = scorer.score_customers(ids, None, 0)
    outside = [r for r in results if not r.risks]
    assert outside, "fixture should have customers outside every cohort"
    assert all(r.note and r.error is None for r in outside)


def test_unknown_customer_problem_and_dates_are_named(scorer):
    with pytest.raises(UnknownCustomer, match="99999") as error:
        scorer.score_customer(99999, None, 5)
    assert error.value.field == "customer_id" and error.value.status == 404
    with pytest.raises(UnknownProblem, match="served:"):
        scorer.explain(5, "children-hospitalisation", None)
    with pytest.raises(ServingError, match="as_of 2030-01-01 is outside") as error:
        scorer.score_customer(5, dt.date(2030, 1, 1), 5)
    assert error.value.field == "as_of"
    _, results = scorer.score_customers([5, 99999], None, 0)
    assert results[1].error == "unknown customer 99999" and results[0].error is None


def test_as_of_scores_the_past(scorer):
    subject = members_at(scorer, pd.Timestamp("2023-06-01"), "acute-hospitalisation", 1)[0]
    past = scorer.score_customer(subject, dt.date(2023, 6, 1), 0)
    assert past.as_of == dt.date(2023, 6, 1) and "acute-hospitalisation" in [r.problem for r in past.risks]


def test_posted_history_scores_like_the_stored_one(scorer, fixture):
    """score_history parity: posting a stored customer's own events gives the same probabilities."""
    events, customers, _ = fixture
    subject = members_at(scorer, pd.Timestamp(END), "elderly-hospitalisation", 1)[0]
    own = events[events["subject_id"] == subject]
    customer = customers[customers["subject_id"] == subject].iloc[0].to_dict()
    posted_events = [{"time": t.to_pydatetime(), "code": c} for t, c in zip(own["time"], own["code"])]
    frames = posted_frames(customer, posted_events)
    scorer.backend.validate_history(*frames)
    posted = scorer.score_posted(*frames, END.date(), 0)
    stored = scorer.score_customer(subject, None, 0)
    assert [(r.problem, r.probability) for r in posted.risks] == [(r.problem, r.probability) for r in stored.risks]


def test_trend_has_a_point_per_month(scorer):
    subject = members_at(scorer, pd.Timestamp(END), "elderly-hospitalisation", 1)[0]
    series = scorer.trend(subject, pd.Timestamp(END))["elderly-hospitalisation"]
    assert [day for day, _ in series] == [t.date() for t in month_starts_before(pd.Timestamp(END), 12)]
    assert series[-1][1] == scorer.score_customer(subject, None, 0).risks[0].probability


def test_reload_swaps_the_histories_and_the_caches(fixture):
    events, customers, models = fixture
    stores = iter([
        HistoryStore.from_frames(events, customers, START, END),
        HistoryStore.from_frames(events[events["subject_id"] != 5], customers[customers["subject_id"] != 5], START, END),
    ])
    champions = {p: champion_from_model(p, m) for p, m in models.items()}
    scorer = Scorer(Backend(champions, ToyFeatures(), lambda: next(stores)))
    scorer.score_customer(5, None, 0)
    scorer.backend.reload()
    scorer.clear_caches()
    with pytest.raises(UnknownCustomer):
        scorer.score_customer(5, None, 0)
    assert scorer.backend.generation == 2


def test_reload_swaps_champions_and_refuses_a_broken_set_whole(fixture):
    """A promotion reaches a running service through reload(): the new version is served; a set
    the service cannot use (here a stale pipeline) refuses the reload and keeps data and models."""
    import dataclasses

    events, customers, models = fixture
    store = HistoryStore.from_frames(events, customers, START, END)
    champions = {p: champion_from_model(p, m) for p, m in models.items()}
    promoted = {**champions, "elderly-hospitalisation": dataclasses.replace(champions["elderly-hospitalisation"], version="99")}
    loads = iter([promoted, {}])
    backend = Backend(champions, ToyFeatures(), lambda: store, load_champions=lambda: next(loads))
    scorer = Scorer(backend)
    member = members_at(scorer, pd.Timestamp(END), "elderly-hospitalisation", 1)[0]

    def served_version() -> str:
        return {r.problem: r.model_version for r in scorer.score_customer(member, None, 0).risks}["elderly-hospitalisation"]

    assert served_version() == champions["elderly-hospitalisation"].version
    backend.reload()
    scorer.clear_caches()
    assert served_version() == "99"
    assert backend.champions["elderly-homecare_failure"] is champions["elderly-homecare_failure"]  # same version: same object
    with pytest.raises(ReloadRefused, match="no champion") as refused:
        backend.reload()
    assert refused.value.status == 409  # the HTTP answer: the running service conflicts with the new state
    assert backend.champions["elderly-hospitalisation"].version == "99" and backend.generation == 2


def test_refuses_to_start_on_a_stale_pipeline_or_without_champions(fixture):
    events, customers, models = fixture
    stale = ToyFeatures()
    stale.pipeline_version = "toy-2"
    with pytest.raises(BackendError, match="pipeline version mismatch.*toy-2.*elderly-hospitalisation"):
        make_backend(events, customers, models, features=stale)
    with pytest.raises(BackendError, match="no champion"):
        Backend({}, ToyFeatures(), lambda: None)
    assert PIPELINE == "toy-1"


def test_predict_row_names_missing_features(scorer, fixture):
    _, _, models = fixture
    with pytest.raises(ServingError, match="lacks 5 feature") as error:
        scorer.predict_row("elderly-hospitalisation", {"age_years": 80.0})
    assert error.value.field == "features"
    row = {"age_years": 80.0, "sex": "F", "er_visits_90d": 2.0, "missed_doses_30d": 0.0, "fall_alarms_180d": 1.0, "homecare_visits_30d": 3.0}
    got = scorer.predict_row("elderly-hospitalisation", row)
    assert got.probability == float(models["elderly-hospitalisation"].predict_proba(pd.DataFrame([row]))[0])


def test_predict_row_equals_the_frame_path_and_refuses_the_same_rows(scorer, fixture):
    """The posted row goes to the booster without pandas: same probability as
    predict_proba(pd.DataFrame([row])) for numbers, missing values, numbers sent as text; the
    same refusals for unknown categories and text that is no number."""
    from models.inputs import FeatureMismatchError

    events, customers, models = fixture
    model = models["elderly-hospitalisation"]
    rows = toy_rows(events, customers, list(range(1, 60)), [pd.Timestamp(END)] * 59)
    posted = [{k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v))) for k, v in r.items()}
              for r in rows[model.feature_names].astype(object).to_dict("records")]
    posted += [
        {**posted[0], "er_visits_90d": None, "sex": None},
        {**posted[1], "fall_alarms_180d": "3.5", "extra": "ignored"},
        {**posted[2], "missed_doses_30d": float("nan")},
    ]
    for row in posted:
        got = scorer.predict_row("elderly-hospitalisation", row)
        assert got.probability == float(model.predict_proba(pd.DataFrame([row]))[0])
    for bad, words in (({**posted[0], "sex": "X"}, "unknown categories"), ({**posted[0], "age_years": "old"}, "must be numeric")):
        with pytest.raises(FeatureMismatchError, match=words):
            model.predict_proba(pd.DataFrame([bad]))
        with pytest.raises(ServingError, match=words) as error:
            scorer.predict_row("elderly-hospitalisation", bad)
        assert error.value.field == "features"
