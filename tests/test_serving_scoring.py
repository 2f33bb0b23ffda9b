"""Scorer (the service's logic without HTTP) on the serving region: a small simulated population
on the real feature pipeline, served by the five pinned LightGBM models (tests/serving_fixture.py).

Parity with the pandas path (compute_features -> model.predict_proba), batch = one at a time,
SHAP additivity, cohorts and notes, caching and reload generations, refusals naming their field,
posted histories, trends, posted feature rows and model-card samples.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from data_contracts.errors import ContractError
from features import cohort_columns, compute_features, feature_info
from scoring.backend import Backend
from scoring.champions import champion_from_model
from scoring.errors import BackendError, BadFeatureRow, NotInCohort, OutsideData, ReloadRefused, UnknownCustomer, UnknownProblem
from scoring.history import HistoryStore, posted_frames, validate_posted
from scoring.scorer import Scorer, month_starts_before
from serving.responses import batch_item, error_body, http_status, score_response
from tests.serving_fixture import make_backend, members, models, outside_every_cohort, region, span, store

pytestmark = pytest.mark.slow

PROBLEMS = sorted(models())


def end() -> pd.Timestamp:
    """The prediction time of a request without as_of: the end of the data."""
    return store().resolve_time(None)


def segment(problem: str) -> str:
    return problem.partition("-")[0]


def frame_of(ids: list[int], time: pd.Timestamp, problem: str, history=None) -> pd.DataFrame:
    """The pandas path's feature rows (the oracle the service must agree with)."""
    held = history if history is not None else store().history
    return compute_features(None, None, ids, [time] * len(ids), segment(problem), history=held)


def eligible_problems(subject: int, time: pd.Timestamp) -> list[str]:
    """The problems a customer is eligible for at `time`, by the feature package's cohorts."""
    columns = cohort_columns(store().history, [subject], [time])
    return [p for p in PROBLEMS if bool(columns[f"eligible_{p}"][0])]


def probability_of(item, problem: str) -> float:
    return next(r.probability for r in item.risks if r.problem == problem)


@pytest.fixture()
def scorer() -> Scorer:
    return Scorer(make_backend())


@pytest.fixture(scope="module")
def mixed_ids() -> list[int]:
    """Members of every problem, customers in no cohort, and one in a cohort but eligible for
    none of its outcomes (e.g. in hospital), deduplicated, in a fixed order."""
    ids = [s for problem in PROBLEMS for s in members(problem, limit=10)]
    ids += outside_every_cohort(limit=8)
    everyone = store().ids()
    columns = cohort_columns(store().history, everyone, [end()] * len(everyone))
    inside = np.logical_or.reduce([columns[f"in_{segment(p)}"] for p in PROBLEMS])
    eligible = np.logical_or.reduce([columns[f"eligible_{p}"] for p in PROBLEMS])
    ids += [int(s) for s in everyone[inside & ~eligible][:1]]
    return list(dict.fromkeys(int(s) for s in ids))


def test_probabilities_equal_the_in_memory_model(scorer):
    """Parity: the service path gives exactly the model's probability on the pandas path."""
    for problem, model in models().items():
        ids = members(problem, limit=20)
        assert len(ids) == 20, f"the region has too few members of {problem}"
        expected = model.predict_proba(frame_of(ids, end(), problem))
        _, results = scorer.score_customers(ids, None, 0)
        assert [item.customer_id for item in results] == ids
        np.testing.assert_array_equal([probability_of(item, problem) for item in results], expected)


def test_one_at_a_time_equals_many_at_once(mixed_ids):
    """Batching customers into one predict / pred_contrib call changes no probability or reason."""
    together = Scorer(make_backend()).score_customers(mixed_ids, None, 5)[1]
    assert [item.customer_id for item in together] == mixed_ids
    assert sum(bool(item.risks) for item in together) >= 30 and sum(not item.risks for item in together) >= 8
    alone = Scorer(make_backend())
    for item in together:
        assert alone.score_customers([item.customer_id], None, 5)[1][0] == item
        assert alone.score_customer(item.customer_id, None, 5) == item
        assert [r.problem for r in item.risks] == eligible_problems(item.customer_id, end())
        assert all(len(r.reasons) <= 5 for r in item.risks) and all(r.reasons for r in item.risks)


def test_explanations_sum_to_the_raw_score(scorer):
    for problem, model in models().items():
        for subject in members(problem, limit=3):
            explained = scorer.explain(subject, problem, None)
            total = explained.base_value + sum(c.contribution for c in explained.contributions)
            assert total == pytest.approx(explained.raw_score, abs=1e-9)
            assert explained.raw_score == pytest.approx(float(model.raw_score(frame_of([subject], end(), problem))[0]), abs=1e-9)
            assert [c.feature for c in explained.contributions] == model.feature_names
            assert all(c.text_en and c.text_fi and "{value}" not in c.text_en + c.text_fi for c in explained.contributions)
            scored = scorer.score_customer(subject, None, 5)
            risk = next(r for r in scored.risks if r.problem == problem)
            assert explained.probability == risk.probability and explained.band == risk.band
            assert explained.reasons[:5] == risk.reasons
            assert explained.as_of == end().date() and explained.model_version == risk.model_version


def test_probability_only_scoring_computes_no_shap(scorer, mixed_ids, monkeypatch):
    calls = []
    for champion in scorer.backend.champions.values():
        original = champion.model.contributions_matrix
        monkeypatch.setattr(champion.model, "contributions_matrix",
                            lambda matrix, original=original: calls.append(len(matrix)) or original(matrix))
    _, results = scorer.score_customers(mixed_ids, None, 0)
    assert any(item.risks for item in results) and calls == []
    assert all(r.reasons == [] for item in results for r in item.risks)
    scored = next(item for item in results if item.risks)
    scorer.score_customer(scored.customer_id, None, 3)
    assert calls  # reasons asked for: SHAP computed


def test_scores_and_explanations_are_cached_per_customer_and_time(scorer, monkeypatch):
    problem = "elderly-hospitalisation"
    subject = members(problem, limit=1)[0]
    model = scorer.backend.champions[problem].model
    shap_calls, predict_calls = [], []
    contributions, predict = model.contributions_matrix, model.predict_proba_matrix
    monkeypatch.setattr(model, "contributions_matrix", lambda matrix: shap_calls.append(1) or contributions(matrix))
    monkeypatch.setattr(model, "predict_proba_matrix", lambda matrix: predict_calls.append(1) or predict(matrix))
    first = scorer.score_customer(subject, None, 5)
    again = scorer.score_customer(subject, None, 5)
    scorer.explain(subject, problem, None)
    assert first == again and len(shap_calls) == 1 and len(predict_calls) == 1
    past = end() - pd.DateOffset(months=2)
    scorer.score_customer(subject, past.date(), 5)  # another time: scored again
    assert len(predict_calls) == 2
    scorer.clear_caches()
    assert scorer.score_customer(subject, None, 5) == first and len(shap_calls) == 3 and len(predict_calls) == 3


def test_a_customer_scored_for_nothing_gets_an_empty_list_and_a_note(scorer, mixed_ids):
    _, results = scorer.score_customers(mixed_ids, None, 3)
    outside = [item for item in results if not item.risks]
    assert len(outside) >= 9
    for item in outside:
        assert item.error is None and item.note
        in_some = any(cohort_columns(store().history, [item.customer_id], [end()])[f"in_{segment(p)}"][0] for p in PROBLEMS)
        expected = "but not eligible" if in_some else "in none of the scored cohorts"
        assert expected in item.note
        assert score_response(item).note == item.note and score_response(item).risks == []
    assert any("but not eligible" in item.note for item in outside)
    assert all(item.note is None for item in results if item.risks)


def test_unknown_customer_problem_cohort_and_dates_are_named(scorer):
    unknown = int(store().ids().max()) + 1
    member = members("elderly-hospitalisation", limit=1)[0]
    with pytest.raises(UnknownCustomer, match=str(unknown)) as error:
        scorer.score_customer(unknown, None, 5)
    assert error.value.field == "customer_id" and http_status(error.value) == 404
    assert error_body(error.value) == (404, {"type": "about:blank", "title": "Not Found", "status": 404,
                                             "detail": f"unknown customer {unknown}", "field": "customer_id"})
    with pytest.raises(UnknownCustomer, match=str(unknown)):
        scorer.explain(unknown, "elderly-hospitalisation", None)

    served = Scorer(make_backend(models(["elderly-hospitalisation", "elderly-homecare_failure"])))
    with pytest.raises(UnknownProblem, match="served: elderly-homecare_failure, elderly-hospitalisation") as error:
        served.explain(member, "children-hospitalisation", None)
    assert error.value.field == "problem" and http_status(error.value) == 404
    with pytest.raises(UnknownProblem, match="'no-such-problem'"):
        scorer.predict_row("no-such-problem", {})

    outsider = outside_every_cohort(limit=1)[0]
    with pytest.raises(NotInCohort, match=f"customer {outsider} is not in the cohort of elderly-hospitalisation") as error:
        scorer.explain(outsider, "elderly-hospitalisation", None)
    assert error.value.field == "problem" and http_status(error.value) == 422

    start, stop = span()
    for day in (stop.date() + dt.timedelta(days=400), start.date() - dt.timedelta(days=1)):
        with pytest.raises(OutsideData, match=f"as_of {day.isoformat()} is outside") as error:
            scorer.score_customer(member, day, 5)
        assert error.value.field == "as_of" and http_status(error.value) == 422

    _, results = scorer.score_customers([member, unknown], None, 0)
    assert results[1].error == f"unknown customer {unknown}" and results[1].risks == []
    assert results[0].error is None and results[0].risks
    assert batch_item(results[1]).error == results[1].error


def test_as_of_scores_the_past(scorer):
    time = pd.Timestamp("2023-06-01")
    subject = members("acute-hospitalisation", time, limit=1)[0]
    past = scorer.score_customer(subject, time.date(), 0)
    assert past.as_of == time.date()
    assert [r.problem for r in past.risks] == eligible_problems(subject, time)
    model = scorer.champion("acute-hospitalisation").model
    assert probability_of(past, "acute-hospitalisation") == float(model.predict_proba(frame_of([subject], time, "acute-hospitalisation"))[0])


def test_posted_history_scores_like_the_stored_one(scorer):
    """score_history parity: posting a stored customer's own events (service area and cost left
    for the code catalogue to fill in) gives the same scores and reasons."""
    data = region()
    subject = members("elderly-homecare_failure", limit=1)[0]
    own = data.events[data.events["subject_id"] == subject]
    customer = data.customers[data.customers["subject_id"] == subject].iloc[0].to_dict()
    posted_events = [
        {"time": t.to_pydatetime(), "code": c, "numeric_value": None if pd.isna(v) else float(v), "unit": u}
        for t, c, v, u in zip(own["time"], own["code"], own["numeric_value"], own["unit"])
    ]
    frames = posted_frames(customer, posted_events)
    validate_posted(*frames)
    posted = scorer.score_posted(*frames, end().date(), 3)
    stored = scorer.score_customer(subject, None, 3)
    assert len(stored.risks) >= 2
    assert posted == stored


def test_a_posted_history_breaking_the_contracts_is_refused():
    data = region()
    subject = members("elderly-hospitalisation", limit=1)[0]
    customer = data.customers[data.customers["subject_id"] == subject].iloc[0].to_dict()
    events, customers = posted_frames(customer, [{"time": dt.datetime(2024, 5, 1, 10), "code": "ENC/NO_SUCH_CODE"}])
    with pytest.raises(ContractError, match=r"events\.code: code must be in .*codes\.csv.*subject_id " + str(subject)):
        validate_posted(events, customers)


def test_trend_has_a_point_per_month_and_gaps_outside_the_cohort(scorer):
    """A point at the first of each of the last 12 months and at the time itself, each equal to
    scoring at that date; None exactly where the customer was not eligible, with why: outside the
    group, or in it but not eligible for the outcome."""
    problem = "elderly-hospitalisation"
    year_ago = end() - pd.DateOffset(months=11)
    newcomers = [s for s in members(problem) if s not in set(members(problem, year_ago))]
    assert newcomers, "the region should have customers who joined the cohort in the last year"
    subject = newcomers[0]
    series = scorer.trend(subject, end())
    assert set(series) == set(PROBLEMS)
    points = month_starts_before(end(), 12)
    assert [day for day, _, _ in series[problem]] == [t.date() for t in points]
    columns = cohort_columns(store().history, [subject] * len(points), points)
    for name, values in series.items():
        assert [p is not None for _, p, _ in values] == columns[f"eligible_{name}"].tolist(), name
        segment = name.split("-")[0]
        expected_why = [None if eligible else ("not_eligible" if inside else "outside")
                        for eligible, inside in zip(columns[f"eligible_{name}"], columns[f"in_{segment}"])]
        assert [why for _, _, why in values] == expected_why, name
    assert any(p is None for _, p, _ in series[problem]) and series[problem][-1][1] is not None
    for day, probability, _ in series[problem]:
        if probability is not None:
            assert probability == probability_of(scorer.score_customer(subject, day, 0), problem)

    mid_month = pd.Timestamp("2024-12-20")
    assert [day for day, _, _ in scorer.trend(subject, mid_month)[problem]] == (
        [t.date() for t in month_starts_before(mid_month, 12)] + [mid_month.date()])
    early = pd.Timestamp("2022-06-15")  # the data start on 2022-01-01: no points before it
    assert [day for day, _, _ in scorer.trend(subject, early)[problem]] == (
        [dt.date(2022, m, 1) for m in range(1, 7)] + [early.date()])


def _store_without(subject_gone: int, subject_cut: int, cut: pd.Timestamp) -> HistoryStore:
    data = region()
    events = data.events[(data.events["subject_id"] != subject_gone)
                         & ~((data.events["subject_id"] == subject_cut) & (data.events["time"] >= cut))]
    start, stop = span()
    return HistoryStore.from_frames(events, data.customers[data.customers["subject_id"] != subject_gone], start, stop)


def test_reload_swaps_the_histories_and_no_cache_serves_the_old_ones():
    problem = "elderly-hospitalisation"
    gone, cut = members(problem, limit=2)
    reloaded = _store_without(gone, cut, end() - pd.DateOffset(months=6))
    stores = iter([store(), reloaded])
    champions = {p: champion_from_model(p, m) for p, m in models().items()}
    scorer = Scorer(Backend(champions, lambda: next(stores)))
    scorer.score_customer(gone, None, 0)
    before = scorer.score_customer(cut, None, 3)
    assert scorer.backend.generation == 1
    scorer.backend.reload()
    assert scorer.backend.generation == 2
    with pytest.raises(UnknownCustomer):
        scorer.score_customer(gone, None, 0)
    after = scorer.score_customer(cut, None, 3)  # no clear_caches: the generation keys the caches
    model = champions[problem].model
    expected = float(model.predict_proba(frame_of([cut], end(), problem, history=reloaded.history))[0])
    assert probability_of(after, problem) == expected != probability_of(before, problem)
    assert scorer.explain(cut, problem, None).probability == expected


def test_reload_swaps_champions_and_refuses_a_broken_set_whole():
    """A promotion reaches a running service through reload(): the new version is served; a set
    the service cannot use refuses the reload and keeps data and models."""
    problem = "elderly-hospitalisation"
    champions = {p: champion_from_model(p, m) for p, m in models().items()}
    promoted = {**champions, problem: dataclasses.replace(champions[problem], version="99")}
    stale_model = models([problem])[problem]
    stale_model.pipeline_version = "stale-pipeline"
    stale = {**promoted, problem: champion_from_model(problem, stale_model, version="100")}
    loads = iter([promoted, stale, {}])
    backend = Backend(champions, store, load_champions=lambda: next(loads))
    scorer = Scorer(backend)
    member = members(problem, limit=1)[0]

    def served_version() -> str:
        return {r.problem: r.model_version for r in scorer.score_customer(member, None, 0).risks}[problem]

    assert served_version() == champions[problem].version
    backend.reload()
    assert served_version() == "99"  # no clear_caches: a new generation
    assert backend.champions["elderly-homecare_failure"] is champions["elderly-homecare_failure"]  # same version: same object
    with pytest.raises(ReloadRefused, match="pipeline version mismatch.*stale-pipeline") as refused:
        backend.reload()
    with pytest.raises(ReloadRefused, match="no champion") as refused:
        backend.reload()
    assert http_status(refused.value) == 409  # the running service conflicts with the new state
    assert backend.champions[problem].version == "99" and backend.generation == 2 and served_version() == "99"


def test_refuses_to_start_on_a_stale_pipeline_a_wordless_feature_or_without_champions():
    chosen = models()
    chosen["elderly-hospitalisation"].pipeline_version = "stale-pipeline"
    with pytest.raises(BackendError, match="pipeline version mismatch.*elderly-hospitalisation.*stale-pipeline"):
        make_backend(chosen)
    with pytest.raises(BackendError, match="no champion"):
        Backend({}, store)
    wordless = models(["acute-hospitalisation"])
    wordless["acute-hospitalisation"].feature_names = [*wordless["acute-hospitalisation"].feature_names, "mystery_feature"]
    with pytest.raises(BackendError, match="catalogue does not describe.*acute-hospitalisation: mystery_feature"):
        make_backend(wordless)
    for model in models().values():  # what is served has words for every feature it reads
        assert [feature_info(name).name for name in model.feature_names] == model.feature_names


def _posted_rows(problem: str, n: int) -> tuple[list[int], pd.DataFrame, list[dict]]:
    """Real feature rows of n members as the CRM would post them (floats, strings, None)."""
    ids = members(problem, limit=n)
    frame = frame_of(ids, end(), problem)
    names = models([problem])[problem].feature_names
    posted = [{k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v))) for k, v in row.items()}
              for row in frame[names].astype(object).to_dict("records")]
    return ids, frame, posted


def test_predict_row_names_missing_features_and_scores_a_full_row(scorer):
    problem = "elderly-hospitalisation"
    names = scorer.champion(problem).model.feature_names
    with pytest.raises(BadFeatureRow, match=f"lacks {len(names) - 1} feature.*{names[0]}") as error:
        scorer.predict_row(problem, {"age_years": 80.0})
    assert error.value.field == "features" and http_status(error.value) == 422
    ids, _, posted = _posted_rows(problem, 5)
    for subject, row in zip(ids, posted):
        got = scorer.predict_row(problem, row)
        stored = scorer.score_customer(subject, None, 0)
        assert got.probability == probability_of(stored, problem)
        assert got.band == next(r.band for r in stored.risks if r.problem == problem)
        assert got.problem == problem and got.model_version == scorer.champion(problem).version


def test_predict_row_equals_the_frame_path_and_refuses_the_same_rows(scorer):
    """The posted row goes to the booster without pandas: same probability as
    predict_proba(pd.DataFrame([row])) for numbers, missing values and numbers sent as text;
    the same refusals for unknown categories and text that is no number."""
    from models.inputs import FeatureMismatchError

    problem = "elderly-hospitalisation"
    model = scorer.champion(problem).model
    _, frame, posted = _posted_rows(problem, 40)
    numeric = next(n for n in model.feature_names if n not in model.categories and n != "age_years")
    categorical = next(iter(model.categories))
    expected = model.predict_proba(frame)
    for i, row in enumerate(posted):
        assert scorer.predict_row(problem, row).probability == expected[i]
    variants = [
        {**posted[0], numeric: None, categorical: None},
        {**posted[1], numeric: "3.5", "extra": "ignored"},
        {**posted[2], numeric: float("nan")},
    ]
    for row in variants:
        got = scorer.predict_row(problem, row)
        assert got.probability == float(model.predict_proba(pd.DataFrame([row]))[0])
    for bad, words in (({**posted[0], categorical: "X"}, "unknown categories"), ({**posted[0], "age_years": "old"}, "must be numeric")):
        with pytest.raises(FeatureMismatchError, match=words):
            model.predict_proba(pd.DataFrame([bad]))
        with pytest.raises(BadFeatureRow, match=words) as error:
            scorer.predict_row(problem, bad)
        assert error.value.field == "features"


def test_card_sample_holds_members_contributions(scorer):
    problem = "elderly-homecare_failure"
    model = scorer.champion(problem).model
    contributions, rows = scorer.card_sample(problem, size=20)
    assert 0 < len(rows) <= 20 and len(contributions) == len(rows)
    assert list(contributions.columns) == [*model.feature_names, "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy(), model.raw_score(rows), rtol=0, atol=1e-9)
    ids = store().ids()
    eligible = cohort_columns(store().history, ids, [end()] * len(ids))[f"eligible_{problem}"]
    member_rows = frame_of([int(s) for s in ids[eligible]], end(), problem)[list(rows.columns)]

    def as_tuples(frame: pd.DataFrame) -> list[tuple]:
        return [tuple(None if pd.isna(v) else v for v in row) for row in frame.astype(object).itertuples(index=False)]

    assert set(as_tuples(rows)) <= set(as_tuples(member_rows))  # every sampled row is a member's row
    # a small cohort still gives the full sample when it has that many members (not the dozen a
    # single pass of evenly spread ids finds), and never more members than it has
    members_count = int(eligible.sum())
    assert members_count > 20 and len(rows) == 20
    every, _ = scorer.card_sample(problem, size=members_count + 50)
    assert len(every) == members_count
    with pytest.raises(UnknownProblem):
        scorer.card_sample("no-such-problem")
