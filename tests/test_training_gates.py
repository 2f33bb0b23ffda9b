"""Promotion gates that can fail (issue 15, item 6): calibration by the customer-bootstrap
intervals of observed/expected and of the calibration slope, inside bands that mean the same at
any prevalence, and the gain over the baseline by the lower end of its paired interval.

The figures go the way training writes them: evaluate_test -> metric_tags (the version's
registry tags) -> gate_reasons with a shipped spec's gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from training.evaluate import bootstrap_calibration_ci, calibration_slope, evaluate_test
from training.pipeline import metric_tags
from training.promotion import gate_reasons
from training.spec import Gates, SpecError, load_spec, parse_spec, parse_stored_spec, stored_gates

CHILDREN_RATE = 0.0036  # share of the children's rows with an admission within 90 days


def test_on_rows_of_each_spec_the_gates_are_scale_free():
    """Every shipped spec gates calibration by O/E and slope bands around 1, none by an absolute error."""
    from training.spec import list_problems

    for problem in list_problems():
        gates = load_spec(problem).gates
        assert gates.max_oe_ratio > 1 and gates.min_calibration_slope < 1 < gates.max_calibration_slope, problem
        assert not hasattr(gates, "max_test_ece"), problem


def period(customers: int, rate: float, seed: int, months: int = 6, horizon: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A test period scored by a perfectly calibrated model: each customer has a monthly admission
    probability (log-normal across customers); a row is positive when an admission falls in its
    next `horizon` months, so one admission labels several rows of a customer, as in the real
    tables; the model predicts each row's true probability."""
    rng = np.random.default_rng(seed)
    monthly = rng.lognormal(0, 1, customers)
    monthly *= rate / horizon / monthly.mean()
    admitted = rng.random((customers, months + horizon)) < monthly[:, None]
    y = np.stack([admitted[:, t + 1:t + 1 + horizon].any(axis=1) for t in range(months)], axis=1).ravel()
    p = np.repeat(1 - (1 - monthly) ** horizon, months)
    keys = pd.DataFrame({"subject_id": np.repeat(np.arange(customers, dtype=np.int64) * 3 + 11, months),
                         "prediction_time": np.tile(pd.date_range("2025-01-01", periods=months, freq="MS").values, customers)})
    return keys, y, p


def calibration_reasons(keys, y, p, gates: Gates, samples: int) -> tuple[list[str], dict[str, float]]:
    metrics = evaluate_test(keys, y, p, 0.05, bootstrap_samples=samples, seed=20240101)
    reasons = gate_reasons(metric_tags(metrics), None, gates)
    return [r for r in reasons if "observed_expected" in r or "calibration_slope" in r], metrics


def test_a_constant_5_percent_at_the_childrens_prevalence_fails_the_calibration_gate():
    """At 0.36 % prevalence a constant 5 % is 14 times too high; the absolute ECE gate it replaced
    passed it (ECE below 0.05). Now O/E refuses it and the slope cannot even be estimated."""
    spec = load_spec("children-hospitalisation")
    keys, y, _ = period(20_400, CHILDREN_RATE, seed=1)
    reasons, metrics = calibration_reasons(keys, y, np.full(len(y), 0.05), spec.gates, spec.evaluation.bootstrap_samples)
    assert metrics["test_ece"] < 0.05  # what the old gate read: it passed
    assert 0.05 < metrics["test_observed_expected"] < 0.1
    assert metrics["test_observed_expected_ci_high"] < 1 / spec.gates.max_oe_ratio
    assert [r.split(" (")[0] for r in reasons] == [f"test_observed_expected {metrics['test_observed_expected']:.2f}",
                                                   "challenger has no test_calibration_slope interval recorded"]


def test_a_well_calibrated_model_at_the_childrens_prevalence_passes():
    """The same period scored by the true probabilities, at the region's size (about 20,000
    children, some 400 positive rows): neither calibration gate refuses it."""
    spec = load_spec("children-hospitalisation")
    keys, y, p = period(20_400, CHILDREN_RATE, seed=1)
    reasons, metrics = calibration_reasons(keys, y, p, spec.gates, spec.evaluation.bootstrap_samples)
    assert 300 < y.sum() < 600 and abs(y.mean() - CHILDREN_RATE) < 0.001
    assert reasons == [], reasons
    assert metrics["test_observed_expected_ci_low"] < 1 < metrics["test_observed_expected_ci_high"]
    assert metrics["test_calibration_slope_ci_low"] < 1 < metrics["test_calibration_slope_ci_high"]


def test_too_extreme_or_too_timid_predictions_fail_the_slope_gate():
    """A common outcome (elderly, 3.7 % of rows) scored by the truth passes; the same ranking
    stretched (logit doubled: slope 0.5) or squeezed (logit halved, recentred: slope 2) fails on
    the slope, whatever its O/E."""
    spec = load_spec("elderly-hospitalisation")
    keys, y, p = period(8_000, 0.037, seed=2)
    assert calibration_reasons(keys, y, p, spec.gates, 300)[0] == []
    logit = np.log(p) - np.log1p(-p)
    for factor, centre in ((2.0, -3.3), (0.5, -3.3)):
        warped = 1 / (1 + np.exp(-(centre + factor * (logit - logit.mean()))))
        reasons, metrics = calibration_reasons(keys, y, warped, spec.gates, 300)
        assert metrics["test_calibration_slope"] == pytest.approx(1 / factor, rel=0.15)
        assert [r for r in reasons if r.startswith("test_calibration_slope")], (factor, reasons)


def test_the_slope_equals_a_logistic_regression_on_copied_rows():
    """Oracle: scikit-learn's unpenalised logistic regression of y on logit(p), each row copied as
    often as its weight (what a bootstrap resample is)."""
    rng = np.random.default_rng(5)
    p = np.clip(rng.beta(1, 25, 6000), 1e-4, 0.9)
    logit = np.log(p) - np.log1p(-p)
    y = rng.random(len(p)) < 1 / (1 + np.exp(-(-0.4 + 0.8 * logit)))
    weights = rng.integers(0, 3, len(p))
    copied = np.repeat(np.arange(len(p)), weights)
    for w, rows in ((None, np.arange(len(p))), (weights.astype(float), copied)):
        oracle = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit[rows, None], y[rows])
        assert calibration_slope(y, p, w) == pytest.approx(oracle.coef_[0, 0], rel=1e-6)
    assert np.isnan(calibration_slope(y, np.full(len(y), 0.05)))  # nothing to regress on
    assert np.isnan(calibration_slope(np.zeros(len(y)), p))  # one class


def test_an_interval_is_not_made_up_when_resamples_have_no_outcome():
    """Two customers with an outcome among 400: about one resample in eight draws neither, where
    the slope does not exist. Skipping those would narrow the interval exactly where data are
    thinnest; instead there is no interval (and the gate refuses)."""
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(400), 3)
    p = rng.uniform(0.001, 0.02, len(ids))
    y = np.zeros(len(ids), dtype=bool)
    y[[0, 3]] = True
    intervals = bootstrap_calibration_ci(ids, y, p, samples=400, seed=1)
    assert np.isnan(intervals["calibration_slope"]).all()
    assert not np.isnan(intervals["observed_expected"]).any()  # O/E is 0 there, which is defined


GAIN = {"test_auroc": "0.775", "test_observed_expected": "1.02", "test_observed_expected_ci_low": "0.9",
        "test_observed_expected_ci_high": "1.15", "test_calibration_slope": "1.01", "test_calibration_slope_ci_low": "0.85",
        "test_calibration_slope_ci_high": "1.2", "baseline_auroc": "0.753"}


def test_the_gain_gate_reads_the_lower_end_of_its_interval():
    """depression passed with a point gain of +0.022 and an interval of [-0.010, +0.054]: now refused."""
    depression = {**GAIN, "gain_over_baseline": "0.022", "gain_over_baseline_ci_low": "-0.01", "gain_over_baseline_ci_high": "0.054"}
    assert gate_reasons(depression, None, Gates()) == [
        "gain_over_baseline +0.0220 (95% CI -0.0100 to +0.0540) is not above 0"]
    shown = {**depression, "gain_over_baseline_ci_low": "0.004"}
    assert gate_reasons(shown, None, Gates()) == []
    assert gate_reasons(shown, None, Gates(min_auroc_over_baseline=0.01)) == [
        "gain_over_baseline +0.0220 (95% CI +0.0040 to +0.0540) is not above 0.01"]


def test_a_figure_that_is_not_recorded_is_not_a_pass():
    """A version without the intervals (trained before they were computed, or a slope that could
    not be estimated) fails those gates rather than passing by silence."""
    assert gate_reasons({"test_auroc": "0.8"}, None, Gates()) == [
        "challenger has no test_observed_expected interval recorded",
        "challenger has no test_calibration_slope interval recorded",
        "challenger has no gain_over_baseline interval recorded"]


def test_the_retired_ece_gate_is_refused_in_a_spec_and_dropped_from_a_stored_one():
    from _training_data import fast_spec_dict

    data = fast_spec_dict()
    data["gates"] = {**data["gates"], "max_test_ece": 0.05}
    with pytest.raises(SpecError, match="max_test_ece is retired"):
        parse_spec(data, "x.yaml")
    stored = parse_stored_spec(data, "spec inside a model")  # a model trained before keeps its record readable
    assert stored.gates == parse_spec(fast_spec_dict()).gates
    assert stored_gates({"max_test_ece": 0.05, "auroc_tolerance": 0.01}) == Gates(auroc_tolerance=0.01)
