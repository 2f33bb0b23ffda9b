"""RiskModel: feature checks, calibration and SHAP additivity on a small trained booster."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.calibration import ScoreCalibrator
from models.inputs import FeatureMismatchError
from models.risk_model import BIAS_COLUMN, RiskModel


@pytest.fixture(scope="module")
def small_model() -> tuple[RiskModel, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = 2000
    frame = pd.DataFrame(
        {
            "er_visits_90d": rng.poisson(1.0, n).astype(float),
            "age": rng.uniform(60, 100, n),
            "sex": pd.Categorical(rng.choice(["F", "M"], n), categories=["F", "M"]),
        }
    )
    logit = -3 + 0.8 * frame["er_visits_90d"] + 0.03 * (frame["age"] - 75)
    outcome = rng.random(n) < 1 / (1 + np.exp(-logit))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 1},
        lgb.Dataset(frame, label=outcome.astype(int)),
        num_boost_round=30,
    )
    raw = booster.predict(frame, raw_score=True)
    calibrator = ScoreCalibrator("platt").fit(raw, outcome)
    model = RiskModel(
        problem="elderly-hospitalisation",
        booster=booster,
        calibrator=calibrator,
        feature_names=["er_visits_90d", "age", "sex"],
        categories={"sex": ["F", "M"]},
        pipeline_version="test",
    )
    return model, frame


def test_contributions_sum_to_raw_score(small_model):
    model, frame = small_model
    contributions = model.contributions(frame.head(200))
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_score(frame.head(200)), atol=1e-6)
    assert contributions.columns[-1] == BIAS_COLUMN


def test_missing_feature_is_named(small_model):
    model, frame = small_model
    with pytest.raises(FeatureMismatchError, match="er_visits_90d"):
        model.predict_proba(frame.drop(columns=["er_visits_90d"]))


def test_unknown_category_is_named(small_model):
    model, frame = small_model
    bad = frame.head(3).assign(sex=["F", "X", "M"])
    with pytest.raises(FeatureMismatchError, match="'sex'.*'X'"):
        model.predict_proba(bad)


def test_column_order_and_extra_columns_do_not_change_probabilities(small_model):
    model, frame = small_model
    shuffled = frame[["sex", "age", "er_visits_90d"]].assign(subject_id=np.arange(len(frame)))
    np.testing.assert_array_equal(model.predict_proba(frame), model.predict_proba(shuffled))


def test_plain_string_categories_match_categorical_input(small_model):
    model, frame = small_model
    as_strings = frame.assign(sex=frame["sex"].astype(str))
    np.testing.assert_array_equal(model.predict_proba(frame), model.predict_proba(as_strings))


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_matches_observed_rate_on_its_fit_data(method):
    rng = np.random.default_rng(3)
    raw = rng.normal(-2, 1, 5000)
    outcome = rng.random(5000) < 1 / (1 + np.exp(-(0.5 * raw - 1)))  # miscalibrated raw score
    calibrated = ScoreCalibrator(method).fit(raw, outcome).transform(raw)
    assert abs(calibrated.mean() - outcome.mean()) < 0.005
    assert np.all((calibrated >= 0) & (calibrated <= 1))
    # raw score is not calibrated, so the calibrator must have moved it
    assert abs((1 / (1 + np.exp(-raw))).mean() - outcome.mean()) > 0.02


def test_unknown_calibration_method_is_refused():
    with pytest.raises(ValueError, match="unknown calibration method"):
        ScoreCalibrator("magic").fit(np.zeros(3), np.zeros(3))


def test_matrix_path_equals_booster_on_prepared_frame_with_missing_values(small_model):
    model, frame = small_model
    rows = frame.head(300).copy()
    rows.loc[rows.index[:20], "er_visits_90d"] = np.nan
    rows["sex"] = rows["sex"].astype(object)
    rows.loc[rows.index[10:30], "sex"] = None
    # oracle: LightGBM's own coding of a pandas frame with the training categories
    pandas_rows = rows[model.feature_names].assign(sex=pd.Categorical(rows["sex"], categories=model.categories["sex"]))
    oracle = model.booster.predict(pandas_rows, raw_score=True)
    np.testing.assert_array_equal(model.raw_score(rows), oracle)
    for size in (1, 5, 300):  # single rows run on one thread, larger batches on the pool
        np.testing.assert_array_equal(model.raw_score(rows.head(size)), oracle[:size])
    contributions = model.contributions(rows)
    np.testing.assert_allclose(contributions.sum(axis=1), oracle, atol=1e-9)


def test_non_numeric_value_in_a_numeric_feature_is_named(small_model):
    model, frame = small_model
    bad = frame.head(3).astype({"age": object})
    bad.loc[bad.index[1], "age"] = "old"
    with pytest.raises(FeatureMismatchError, match="'age' must be numeric"):
        model.predict_proba(bad)


def test_platt_fast_path_equals_sklearn_predict_proba():
    """ScoreCalibrator's Platt shortcut gives sklearn's predict_proba bit for bit (the service's
    probabilities must equal batch scoring's, and both go through it)."""
    from models.calibration import ScoreCalibrator

    rng = np.random.default_rng(5)
    raw = rng.normal(-2, 1.5, 3000)
    outcome = rng.random(3000) < 1 / (1 + np.exp(-(raw * 0.8 + 0.3)))
    calibrator = ScoreCalibrator("platt").fit(raw, outcome)
    probe = np.concatenate([rng.normal(-2, 3, 5000), [0.0, -0.0, 1e-300, -745.0, 745.0, 40.0, -40.0]])
    for chunk in (probe, probe[:1], probe[7:72]):
        np.testing.assert_array_equal(calibrator.transform(chunk), calibrator.model_.predict_proba(chunk.reshape(-1, 1))[:, 1])
