"""The production adapter (scoring/backend.py FeaturesPackage) on the real features/ package:
cohorts, the one feature function and the catalogue, with a tiny model trained on its output
(MLflow's registry is left out: models/registry is tested by its owners)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.calibration import ScoreCalibrator
from models.risk_model import RiskModel
from scoring.backend import Backend, FeaturesPackage, HistoryStore, champion_from_model
from scoring.scorer import Scorer
from tests.serving_fixture import END, START, shared_fixture

PROBLEM = "elderly-hospitalisation"


@pytest.fixture(scope="module")
def real():
    features_pkg = pytest.importorskip("features")
    events, customers, _ = shared_fixture()
    source = FeaturesPackage()
    store = HistoryStore.from_frames(events, customers, START, END, features=source)
    ids = customers["subject_id"].tolist()
    times = [pd.Timestamp("2023-06-01")] * len(ids) + [pd.Timestamp("2023-10-01")] * len(ids)
    rows = source.compute(store, ids + ids, times, "elderly")
    names = features_pkg.feature_names("elderly")
    categories = {n: list(rows[n].cat.categories) for n in names if isinstance(rows[n].dtype, pd.CategoricalDtype)}
    rng = np.random.default_rng(0)
    outcome = rng.random(len(rows)) < 0.2
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7, "num_threads": 1, "min_data_in_leaf": 5},
                        lgb.Dataset(rows[names], label=outcome.astype(int)), num_boost_round=15)
    calibrator = ScoreCalibrator("platt").fit(booster.predict(rows[names], raw_score=True), outcome)
    model = RiskModel(PROBLEM, booster, calibrator, list(names), categories, source.pipeline_version,
                      spec={"segment": "elderly", "outcome": "hospitalisation", "horizon_days": 90}, metadata={"model_version": "1"})
    backend = Backend({PROBLEM: champion_from_model(PROBLEM, model)}, source, lambda: store)
    return Scorer(backend), model, source, store


def test_real_features_score_with_parity_and_additivity(real):
    scorer, model, source, store = real
    ids = store.customers.index.tolist()[:80]
    _, results = scorer.score_customers(ids, None, 3)
    scored = [(item.customer_id, item.risks[0]) for item in results if item.risks]
    assert scored, "no elderly member in the fixture"
    subjects = [s for s, _ in scored]
    direct = model.predict_proba(source.compute(store, subjects, [END] * len(subjects), "elderly"))
    np.testing.assert_array_equal([r.probability for _, r in scored], direct)
    explained = scorer.explain(subjects[0], PROBLEM, None)
    assert explained.base_value + sum(c.contribution for c in explained.contributions) == pytest.approx(explained.raw_score, abs=1e-6)
    assert all(c.text_en and c.text_fi for c in explained.contributions)
    assert all("{value}" not in c.text_en for c in explained.contributions)
    outside = [item for item in results if not item.risks]
    assert all(item.note for item in outside)


def test_real_catalogue_covers_the_model_features(real):
    scorer, model, _, _ = real
    missing = [name for name in model.feature_names if name not in scorer.backend.catalogue]
    assert missing == []


def test_numpy_rows_and_reasons_equal_the_frame_path(real):
    """The service's numpy path (compute_block, model_input, top_reasons_vector, cohort arrays)
    gives the same matrix, probabilities, reasons and cohorts as the pandas path batch scoring uses."""
    from explain.reasons import explain_row, top_reasons

    scorer, model, source, store = real
    ids = store.customers.index.tolist()
    times = [pd.Timestamp("2023-06-01")] * len(ids)
    frame = source.compute(store, ids, times, "elderly")
    block = source.compute_block(store, ids, times, "elderly")
    champion = scorer.backend.champions[PROBLEM]
    assert block.names == tuple(c for c in frame.columns if c not in ("subject_id", "prediction_time", "pipeline_version"))
    np.testing.assert_array_equal(scorer.model_input(champion, block), model.matrix(frame))
    pd.testing.assert_frame_equal(block.to_frame(), frame[list(block.names)].reset_index(drop=True), check_categorical=True)

    import features

    cohorts = features.compute_cohorts(None, None, ids, [END] * len(ids), history=store.prepared)
    members = source.membership(store, ids, END, scorer.backend.champions)
    assert [PROBLEM in members[s].problems for s in ids] == cohorts["eligible_elderly-hospitalisation"].tolist()

    inside = [s for s in ids if members[s].problems][:40]
    assert inside, "no elderly member in the fixture"
    rows = source.compute(store, inside, [END] * len(inside), "elderly")
    contributions = model.contributions(rows)
    _, results = scorer.score_customers(inside, None, 5)
    for i, item in enumerate(results):
        (risk,) = item.risks
        assert risk.probability == float(model.predict_proba(rows.iloc[[i]])[0])
        assert risk.reasons == top_reasons(explain_row(contributions.iloc[i], rows.iloc[i], scorer.backend.catalogue), 5)
