"""Experiment specs and the pure parts of training: splits, metrics, thresholds, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone

from _training_data import fast_spec_dict, synthetic_feature_table
from models.baselines import LaceLikeScore, LogisticBaseline, MapleLikeScore
from models.inputs import FeatureMismatchError
from training.evaluate import (
    bootstrap_auroc_ci, bootstrap_auroc_gain_ci, bootstrap_calibration_ci, expected_calibration_error, observed_expected,
    threshold_for_policy,
)
from training.spec import (
    AlertPolicy, Split, SpecError, check_gaps, list_problems, load_spec, load_spec_file, min_days_in_months, parse_spec,
)
from training.splits import select_features, split_table, unaccounted_features

# every problem the vocabulary declares (vocabulary/problems.yaml) has a spec: test_vocabulary.py
PROBLEMS = sorted(list_problems())


def write_spec(tmp_path, data: dict, name: str = "elderly-hospitalisation"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_every_problem_has_a_valid_spec():
    from vocabulary import problem_ids

    assert list_problems() == sorted(problem_ids())
    horizons = {p: load_spec(p).horizon_days for p in PROBLEMS}
    assert horizons["elderly-hospitalisation"] == 90 and horizons["elderly-homecare_failure"] == 180


def test_overlapping_periods_are_refused_naming_file_and_field(tmp_path):
    data = fast_spec_dict()
    data["split"]["validation"] = {"start": -22, "end": -10}  # starts before train ends (-20)
    path = write_spec(tmp_path, data)
    with pytest.raises(SpecError, match=r"elderly-hospitalisation\.yaml: split: .*overlap"):
        load_spec_file(path)


def test_gap_shorter_than_horizon_is_refused(tmp_path):
    data = fast_spec_dict()
    data["split"]["test"] = {"start": -7, "end": 0}  # 3 months after validation: can be 89 days < 90
    with pytest.raises(SpecError, match="less than the horizon"):
        load_spec_file(write_spec(tmp_path, data))
    assert min_days_in_months(3) == 89 and min_days_in_months(6) >= 180


def test_unknown_field_and_bad_value_are_named(tmp_path):
    data = fast_spec_dict()
    data["search"]["trails"] = 3
    with pytest.raises(SpecError, match=r"search\.trails: Extra inputs are not permitted"):
        load_spec_file(write_spec(tmp_path, data))
    data = fast_spec_dict(horizon_days=-5)
    with pytest.raises(SpecError, match="horizon_days"):
        parse_spec(data, "x.yaml")


def test_unknown_problem_lists_known_ones():
    with pytest.raises(SpecError, match="unknown problem 'nope'.*elderly-hospitalisation"):
        load_spec("nope")


TEMPORAL = {"train": {"start": None, "end": -20}, "validation": {"start": -16, "end": -10}, "test": {"start": -6, "end": 0}}


def test_relative_split_uses_complete_label_windows_only():
    frame, _ = synthetic_feature_table(subjects=120)
    spec = parse_spec(fast_spec_dict(split=TEMPORAL))
    split = split_table(frame, spec)
    assert split.anchor == pd.Timestamp("2023-02-01")  # last 3 of 40 months are censored extract_end
    train, valid, test = split.periods
    assert train.start is None and train.end == pd.Timestamp("2021-06-01")
    assert (valid.start - train.end).days >= 90 and (test.start - valid.end).days >= 90
    assert split.train["prediction_time"].max() < train.end <= valid.start <= split.validation["prediction_time"].min()
    for part in (split.train, split.validation, split.test):  # eligible, uncensored, labelled only
        assert part["label_hospitalisation"].notna().all() and part["censor_hospitalisation"].isna().all()


def test_shipped_specs_are_temporal_with_horizon_gaps():
    """The shipped layout on a table long enough for it: three periods in order, each later one
    starting after every label window (t, t + horizon] of the earlier one has closed."""
    frame, _ = synthetic_feature_table(subjects=150, months=48)
    for problem in PROBLEMS:
        spec = load_spec(problem)
        horizon = pd.Timedelta(days=spec.horizon_days)
        spec = parse_spec({**fast_spec_dict(), **{k: v for k, v in spec.as_dict().items() if k in ("split", "horizon_days", "problem", "segment", "outcome")}})
        split = split_table(frame, spec)
        parts = (split.train, split.validation, split.test)
        for earlier, later in zip(parts, parts[1:]):
            # oracle: the latest label window of the earlier period ends before the later period's first index date
            assert earlier["prediction_time"].max() + horizon < later["prediction_time"].min(), problem
        assert split.train["prediction_time"].nunique() >= 12, problem  # at least a year of seasons to learn from


@pytest.mark.parametrize("horizon, gap_days, ok", [(90, 90, True), (90, 89, False), (180, 180, True), (180, 179, False)])
def test_gap_rule_is_exactly_the_horizon_for_iso_dates(horizon, gap_days, ok):
    """Index dates are < end and label windows are (t, t + horizon]: a later start exactly `horizon`
    days after the earlier end is the tightest gap that keeps it out of every label window."""
    train_end = pd.Timestamp("2021-01-01")
    valid_start = train_end + pd.Timedelta(days=gap_days)
    valid_end = valid_start + pd.Timedelta(days=120)
    test_start = valid_end + pd.Timedelta(days=horizon)  # the second gap is always fine here
    split = {"train": {"start": None, "end": train_end.date()},
             "validation": {"start": valid_start.date(), "end": valid_end.date()},
             "test": {"start": test_start.date(), "end": (test_start + pd.Timedelta(days=90)).date()}}
    outcome = {90: "hospitalisation", 180: "homecare_failure"}[horizon]  # the vocabulary's horizons
    spec = fast_spec_dict(split=split, horizon_days=horizon, outcome=outcome, problem=f"elderly-{outcome}")
    if ok:
        parse_spec(spec)
    else:
        with pytest.raises(SpecError, match=r"gap between train\.end .* and validation\.start .* less than the horizon"):
            parse_spec(spec)


def test_a_horizon_other_than_the_vocabulary_is_refused():
    """The labels are made over the outcome's horizon in vocabulary/problems.yaml; a spec that
    says another would split and report on windows the labels do not have."""
    with pytest.raises(SpecError, match=r"horizon_days is 120 but the labels of hospitalisation are made over 90 days"):
        parse_spec(fast_spec_dict(horizon_days=120))
    with pytest.raises(SpecError, match=r"unknown problem 'children-homecare_failure'"):
        parse_spec(fast_spec_dict(problem="children-homecare_failure", segment="children", outcome="homecare_failure",
                                  horizon_days=180))


def test_relative_gap_counts_the_shortest_months():
    """A relative gap is checked for the shortest run of calendar months it can resolve to."""
    months = {"train": {"start": None, "end": -20}, "validation": {"start": -16, "end": -10}, "test": {"start": -6, "end": 0}}
    split = Split.model_validate(months)
    check_gaps(split, 120)  # 4 months are never fewer than 120 days
    with pytest.raises(ValueError, match=r"train\.end \(-20\) and validation\.start \(-16\) can be 120 days"):
        check_gaps(split, 121)
    wide_first = {**months, "train": {"start": None, "end": -22}}  # the second gap alone is too short
    with pytest.raises(ValueError, match=r"validation\.end \(-10\) and test\.start \(-6\) can be 120 days"):
        check_gaps(Split.model_validate(wide_first), 121)
    assert min_days_in_months(4) == 120 and min_days_in_months(6) == 181 and min_days_in_months(12) == 365


def test_customer_holdout_validation_is_refused_with_the_reason():
    legacy = {"train": {"start": None, "end": -10}, "validation": {"customers": 0.25}, "test": {"start": -6, "end": 0}}
    with pytest.raises(SpecError, match=r"x\.yaml: split: validation: \{customers: share\} .* no longer supported"):
        parse_spec(fast_spec_dict(split=legacy), "x.yaml")


def test_train_every_months_keeps_every_kth_month_counted_back_from_the_last():
    frame, _ = synthetic_feature_table(subjects=120)
    every = {**TEMPORAL, "train": {"start": None, "end": -20, "every_months": 3}}
    full = split_table(frame, parse_spec(fast_spec_dict(split=TEMPORAL)))
    thin = split_table(frame, parse_spec(fast_spec_dict(split=every)))
    months = sorted(thin.train["prediction_time"].unique())
    assert months[-1] == full.train["prediction_time"].max()  # the most recent train month is kept
    assert all((b.year * 12 + b.month) - (a.year * 12 + a.month) == 3 for a, b in zip(months, months[1:]))
    assert len(months) == -(-full.train["prediction_time"].nunique() // 3)
    assert thin.validation.equals(full.validation) and thin.test.equals(full.test)
    assert "every 3 months" in thin.periods[0].describe()
    with pytest.raises(SpecError, match="train period only"):
        parse_spec(fast_spec_dict(split={**TEMPORAL, "test": {"start": -6, "end": 0, "every_months": 2}}))


def test_too_short_extract_says_so():
    frame, _ = synthetic_feature_table(subjects=60, months=20)  # anchor 2021-06: train would end 2019-10
    with pytest.raises(SpecError, match=r"train \[first, 2019-10-01\) has 0 usable rows .* extract is too short"):
        split_table(frame, parse_spec(fast_spec_dict(split=TEMPORAL)))


def test_feature_selection_uses_catalogue_families_and_extra_globs():
    frame, _ = synthetic_feature_table(subjects=20, months=5)
    spec = parse_spec(fast_spec_dict(feature_families=["emergency"], extra_features=["noise_*"]))
    assert select_features(list(frame.columns), spec, strict=False) == ["er_visits_180d", "noise_feature"]


def test_feature_neither_selected_nor_excluded_is_an_error():
    frame, _ = synthetic_feature_table(subjects=20, months=5)
    spec = parse_spec(fast_spec_dict(feature_families=["emergency"], extra_features=["noise_*"]))
    with pytest.raises(SpecError, match="neither selected .* age_years"):
        select_features(list(frame.columns), spec)
    columns = list(frame.columns) + ["brand_new_feature"]
    with pytest.raises(SpecError, match="brand_new_feature"):
        select_features(columns, parse_spec(fast_spec_dict()))
    assert "brand_new_feature" not in select_features(
        columns, parse_spec(fast_spec_dict(exclude_features=["brand_new_*"])))


@pytest.mark.parametrize("problem", list_problems())
def test_every_feature_of_the_segment_is_selected_or_excluded(problem):
    """Each real spec accounts for every feature the feature pipeline produces for its segment."""
    from features import feature_names

    spec = load_spec(problem)
    produced = feature_names(spec.segment)
    assert unaccounted_features(produced, spec) == [], problem
    chosen = select_features(produced, spec)
    assert set(chosen) | {c for c in produced if c not in chosen} == set(produced)
    assert {"discharge_days_since", "discharged_30d"} <= set(chosen) or spec.segment in ("children", "depression")


def test_threshold_respects_alert_budget_and_target_ppv():
    rng = np.random.default_rng(0)
    p = rng.random(10_000)
    y = rng.random(10_000) < p
    threshold = threshold_for_policy(y, p, AlertPolicy(max_alerts_per_1000_per_month=20))
    assert (p >= threshold).sum() <= 200 and (p >= threshold).sum() >= 195
    threshold = threshold_for_policy(y, p, AlertPolicy(target_ppv=0.8))
    assert y[p >= threshold].mean() >= 0.8


def test_ece_and_bootstrap_interval():
    rng = np.random.default_rng(1)
    p = rng.random(5000) * 0.3
    y = rng.random(5000) < p
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15
    ids = np.repeat(np.arange(1000), 5)
    low, high = bootstrap_auroc_ci(ids, y, p, samples=100, seed=3)
    from sklearn.metrics import roc_auc_score

    assert low < roc_auc_score(y, p) < high


def _naive_gain_interval(ids, y, p, q, samples, seed):
    """The paired bootstrap done the slow, obvious way: copy each drawn customer's rows, score both."""
    from sklearn.metrics import roc_auc_score

    customers = np.unique(ids)
    rows_of = {c: np.flatnonzero(ids == c) for c in customers}
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(samples):
        drawn = customers[rng.integers(0, len(customers), len(customers))]
        rows = np.concatenate([rows_of[c] for c in drawn])
        gains.append(roc_auc_score(y[rows], p[rows]) - roc_auc_score(y[rows], q[rows]))
    return tuple(np.percentile(gains, [2.5, 97.5]))


def test_paired_gain_interval_matches_the_naive_resampling_and_reads_the_gain():
    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(300), 4)
    risk = rng.random(len(ids))
    y = rng.random(len(ids)) < 0.05 + 0.3 * risk
    strong = risk + 0.1 * rng.standard_normal(len(ids))
    weak = np.round(risk + 0.8 * rng.standard_normal(len(ids)), 1)  # ties on purpose
    low, high = bootstrap_auroc_gain_ci(ids, y, strong, weak, samples=60, seed=9)
    assert (low, high) == pytest.approx(_naive_gain_interval(ids, y, strong, weak, 60, 9), abs=1e-12)
    assert low > 0  # the strong score beats the weak one beyond sampling noise
    low, high = bootstrap_auroc_gain_ci(ids, y, strong, strong + 0.01 * rng.standard_normal(len(ids)), samples=60, seed=9)
    assert low < 0 < high  # nearly the same score: no gain to speak of


def test_baselines_follow_sklearn_conventions():
    frame, _ = synthetic_feature_table(subjects=200, months=6)
    frame = frame.loc[frame["label_hospitalisation"].notna()]
    y = frame["label_hospitalisation"].astype(bool)
    logistic = LogisticBaseline(features=["age_years", "er_visits_90d"])
    assert clone(logistic).get_params() == {"features": ["age_years", "er_visits_90d"], "C": 1.0}
    assert logistic.fit(frame, y).predict_proba(frame).shape == (len(frame), 2)
    lace = LaceLikeScore(columns={"length_of_stay": "bed_days_365d", "acuity": "unplanned_admissions_365d",
                                  "comorbidity": "chronic_conditions", "emergency": "er_visits_180d"}).fit(frame, y)
    assert lace.points(frame).min() >= 0 and lace.points(frame).max() <= 19
    maple = MapleLikeScore(columns={"maple": "rai_maple_last", "cps": "rai_cps_last", "adl": "rai_adlh_last", "falls": "fall_alarms_90d"})
    assert np.isfinite(maple.fit(frame, y).predict_proba(frame)).all()
    with pytest.raises(FeatureMismatchError, match="er_visits_90d"):
        logistic.predict_proba(frame.drop(columns=["er_visits_90d"]))


@pytest.mark.parametrize("problem", list_problems())
def test_baseline_columns_exist_in_the_segment(problem):
    """A baseline naming a column its segment never produces would be silently weakened or skipped."""
    from features import feature_names

    spec = load_spec(problem)
    produced = set(feature_names(spec.segment))
    wanted = set(spec.baselines.logistic.features) | set(spec.baselines.clinical_score.columns.values())
    assert wanted <= produced, sorted(wanted - produced)
    if spec.subgroups.age_column:
        assert spec.subgroups.age_column in produced
    assert set(spec.subgroups.columns) <= produced


def test_the_fixture_outcome_rate_drifts_so_each_period_has_its_own():
    """Issue 15, item 5: with a constant rate, a metric computed on the wrong period looked right."""
    frame, _ = synthetic_feature_table()
    split = split_table(frame, parse_spec(fast_spec_dict()))
    train, validation, test = (part["label_hospitalisation"].astype(bool).mean() for part in (split.train, split.validation, split.test))
    assert 1.2 * train < validation and 1.2 * validation < test


def test_gates_refuse_a_model_not_shown_to_beat_its_baseline():
    """The baseline gate reads the lower end of the paired gain interval, not the two points: a
    higher test AUROC whose gain interval reaches 0 is refused."""
    from training.promotion import gate_reasons
    from training.spec import Gates

    calibrated = {"test_observed_expected": "1.01", "test_observed_expected_ci_low": "0.92", "test_observed_expected_ci_high": "1.1",
                  "test_calibration_slope": "0.98", "test_calibration_slope_ci_low": "0.88", "test_calibration_slope_ci_high": "1.09"}
    tags = {**calibrated, "test_auroc": "0.557", "baseline_auroc": "0.558", "gain_over_baseline": "-0.001",
            "gain_over_baseline_ci_low": "-0.02", "gain_over_baseline_ci_high": "0.018"}
    assert gate_reasons(tags, None, Gates()) == ["gain_over_baseline -0.0010 (95% CI -0.0200 to +0.0180) is not above 0"]
    beats = {**tags, "test_auroc": "0.743", "baseline_auroc": "0.701", "gain_over_baseline": "0.042",
             "gain_over_baseline_ci_low": "0.021", "gain_over_baseline_ci_high": "0.063"}
    assert gate_reasons(beats, None, Gates()) == []
    assert gate_reasons({**beats, "gain_over_baseline_ci_low": "-0.003"}, None, Gates()) == [
        "gain_over_baseline +0.0420 (95% CI -0.0030 to +0.0630) is not above 0"]
    strict = Gates(min_auroc_over_baseline=0.03)
    assert gate_reasons(beats, None, strict) == ["gain_over_baseline +0.0420 (95% CI +0.0210 to +0.0630) is not above 0.03"]


def test_calibration_intervals_resample_customers_against_a_naive_bootstrap():
    """ECE and observed/expected intervals: the weighted statistics equal copying the drawn
    customers' rows (naive resampling), and the intervals hold the point values."""
    rng = np.random.default_rng(11)
    subjects = np.repeat(np.arange(300), 4)
    p = np.clip(rng.beta(2, 12, len(subjects)), 0.001, 0.999)
    y = rng.random(len(subjects)) < p * 1.2  # a little under-predicted
    draw = np.random.default_rng(5).integers(0, 300, 300)
    rows = np.concatenate([np.flatnonzero(subjects == c) for c in draw])
    weights = np.bincount(draw, minlength=300)[subjects]
    assert observed_expected(y, p, weights) == pytest.approx(y[rows].sum() / p[rows].sum(), rel=1e-12)
    # ECE weighted with the unweighted bins equals the naive one computed on those same bins
    order = np.argsort(p, kind="stable")
    naive = 0.0
    for chunk in np.array_split(order, 10):
        copies = np.repeat(chunk, weights[chunk])
        naive += len(copies) * abs(y[copies].mean() - p[copies].mean()) if len(copies) else 0.0
    assert expected_calibration_error(y, p, 10, weights) == pytest.approx(naive / weights.sum(), rel=1e-12)
    intervals = bootstrap_calibration_ci(subjects, y, p, samples=200, seed=3)
    low, high = intervals["observed_expected"]
    assert low < observed_expected(y, p) < high and high - low < 0.6
    low, high = intervals["ece"]
    assert low < high and 0 <= low
