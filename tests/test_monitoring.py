"""Monitoring (training/monitoring.py): a coding change switched on at a known month in the
simulator is flagged from the first index month that can see it and not before (as a step in the
recorded code and as feature drift), the quiet world is not flagged, realised figures equal a
naive recomputation, and a run is recorded in MLflow.

Size: the pinned serving region (2,500 residents, 3 years; its elderly-hospitalisation model,
~300 eligible rows a month). At that size a month's O/E interval spans roughly 0.5-1.6, so the
calibration breach is not tested here (the region-size figures are in the branch's note); the
shift is large enough for drift: from 2024-07 the health centres' care need assessments
(ASSESS/HTA, ~1.3 a year per elderly customer) are recorded as ordinary nurse visits and service
need assessments (ASSESS/PTA) are no longer recorded (a client system migration, say), which
empties the recent bins of `assessments_days_since`, one of the model's ten most important
features. With HTA alone, PTAs keep a few recent values and the first month's PSI was 0.19 (flagged
from the second month, 0.54).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from synthetic.config import CodingChange, ShiftConfig, SimulatorConfig
from training.monitoring import expected_auroc, monitor, psi, reference_from, shares, numeric_entry
from training.spec import Monitoring, parse_stored_spec

SHIFT = dt.date(2024, 7, 1)
PROBLEM = "elderly-hospitalisation"
AS_OF = pd.Timestamp("2024-12-01")  # the region's last index date
REFERENCE_END = pd.Timestamp("2024-01-01")  # the reference: eligible rows of 2023 (the quiet world's)


def _code_months(dataset) -> pd.DataFrame:
    from features.code_volumes import code_months

    return code_months(dataset.events, dataset.metadata["extract_start"], dataset.metadata["extract_end"])


def _elderly_table(dataset) -> pd.DataFrame:
    from features.build import build_tables
    from features.history import History

    history = History.from_frames(dataset.events, dataset.customers)
    start, end = pd.Timestamp(dataset.metadata["extract_start"]), pd.Timestamp(dataset.metadata["extract_end"])
    return dict(build_tables(history, start, end, segments=["elderly"]))["elderly"]


@pytest.fixture(scope="module")
def world():
    from synthetic.simulate import simulate
    from tests.serving_fixture import CUSTOMERS, SEED, YEARS, models, region

    shifted = simulate(SimulatorConfig(customers=CUSTOMERS, seed=SEED, years=YEARS, shifts=ShiftConfig(
        coding=(CodingChange(start=SHIFT, code="ASSESS/HTA", recorded_as="ENC/HC_NURSE"),
                CodingChange(start=SHIFT, code="ASSESS/PTA")))))
    model = models([PROBLEM])[PROBLEM]
    model.metadata["model_version"] = "1"
    spec = parse_stored_spec(model.spec, "pinned")
    quiet_table, shifted_table = _elderly_table(region()), _elderly_table(shifted)
    eligible = quiet_table[spec.eligible_column].fillna(False).astype(bool)
    ref_rows = quiet_table[eligible & (quiet_table["prediction_time"] < REFERENCE_END)]
    reference = reference_from(model, ref_rows, ref_rows, 10, "test: the quiet world's 2023")
    thresholds = Monitoring()
    # as a features folder built now gives them: the tables and the events per code and month
    run = lambda table, volumes: monitor(model, spec, table, reference, AS_OF, thresholds,  # noqa: E731
                                         first_month=REFERENCE_END, seed=1, code_volumes=volumes)
    quiet_volumes, shifted_volumes = _code_months(region()), _code_months(shifted)
    return {"model": model, "spec": spec, "quiet": run(quiet_table, quiet_volumes),
            "shifted": run(shifted_table, shifted_volumes), "shifted_without_counts": run(shifted_table, None),
            "quiet_table": quiet_table, "reference": reference, "shifted_volumes": shifted_volumes}


def _drift_months(report) -> list[pd.Timestamp]:
    months = report.months
    return list(months.loc[months["breaches"].str.contains("drift"), "month"])


def test_the_top_features_include_the_shifted_one(world):
    assert "assessments_days_since" in world["quiet"].top_features


def test_the_quiet_world_raises_no_flag(world):
    months = world["quiet"].months
    assert len(months) == 12
    assert world["quiet"].breaches == []
    assert months["score_psi"].max() < 0.1


def test_the_coding_change_is_flagged_from_the_first_month_that_sees_it(world):
    months = world["shifted"].months
    flagged = _drift_months(world["shifted"])
    # index 2024-07-01 reads events before the change; 2024-08-01 is the first month with a month of it
    first_seen = pd.Timestamp("2024-08-01")
    assert flagged and min(flagged) == first_seen
    assert all(m >= first_seen for m in flagged)
    assert set(flagged) == set(months.loc[months["month"] >= first_seen, "month"])
    before = months[months["month"] < first_seen]
    pd.testing.assert_frame_equal(before.drop(columns=["breaches"]).reset_index(drop=True),
                                  world["quiet"].months[months["month"] < first_seen]
                                  .drop(columns=["breaches"]).reset_index(drop=True))
    shifted_psi = world["shifted"].feature_psi.loc["assessments_days_since", "2024-08"]
    assert shifted_psi > 0.2 and world["quiet"].feature_psi.loc["assessments_days_since", "2024-08"] < 0.1


def test_realised_figures_equal_a_naive_recomputation(world):
    model, spec, table = world["model"], world["spec"], world["quiet_table"]
    months = world["quiet"].months
    complete = months[months["complete"]]
    assert list(complete["month"]) == list(pd.date_range("2024-01-01", "2024-09-01", freq="MS"))  # + 90 days <= as-of
    assert months.loc[~months["complete"], "auroc"].isna().all()
    for row in complete.itertuples():
        rows = table[(table["prediction_time"] == row.month) & table[spec.eligible_column].fillna(False).astype(bool)]
        assert row.rows == len(rows)
        p_all = model.predict_proba(rows)
        assert row.alert_rate == pytest.approx(np.mean(p_all >= model.metadata["threshold"]))
        usable = rows[spec.censor_column].isna() & rows[spec.label_column].notna()
        y = rows.loc[usable, spec.label_column].astype(bool).to_numpy()
        p = p_all[usable.to_numpy()]
        assert row.events == y.sum() and row.labelled == len(y)
        assert row.auroc == pytest.approx(roc_auc_score(y, p))
        assert row.observed_expected == pytest.approx(y.sum() / p.sum())
        q = np.clip(p, 1e-6, 1 - 1e-6)  # the isotonic calibrator gives exact zeros (evaluate.LOGIT_CLIP)
        x = np.log(q / (1 - q)).reshape(-1, 1)
        naive_slope = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(x, y).coef_[0, 0]
        assert row.calibration_slope == pytest.approx(naive_slope, rel=1e-3)
        assert row.auroc_ci_low <= row.auroc <= row.auroc_ci_high
        assert row.observed_expected_ci_low <= row.observed_expected <= row.observed_expected_ci_high


def test_psi_and_bins_by_hand():
    entry = numeric_entry(np.array([0, 0, 0, 1, 2, 3, np.nan, np.nan]), bins=4)
    assert entry["edges"] == [0.0, 0.75, 1.5, 2.25][: len(entry["edges"])] or entry["edges"][0] == 0.0
    assert sum(entry["shares"]) == pytest.approx(1.0)
    assert entry["shares"][-1] == pytest.approx(0.25)  # missing
    same = shares(entry, np.array([0, 0, 0, 1, 2, 3, np.nan, np.nan]))
    assert psi(entry["shares"], same) == 0.0
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert psi(expected, actual) == pytest.approx(0.25 * np.log(0.5) * -1 + 0.25 * np.log(1.5))
    capped = numeric_entry(np.array([10.0, 20.0, 400.0, np.nan]), bins=2, cap=365.0)
    assert capped["shares"][-1] == pytest.approx(0.5)  # above the cap counts with the missing


def test_expected_auroc_is_the_mean_auroc_of_outcomes_drawn_from_the_scores():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 12, 3000)
    draws = [roc_auc_score(y, p) for y in (rng.random((400, len(p))) < p)]
    assert expected_auroc(p) == pytest.approx(np.mean(draws), abs=0.005)
    assert expected_auroc(np.full(50, 0.1)) == pytest.approx(0.5)


def test_a_run_is_recorded_in_mlflow_with_the_model_version(world, fixture_home, monkeypatch):
    from mlflow import MlflowClient

    from models.registry import model_name
    from training.monitor_run import COMPUTED_NOW, MONITOR_TAG, monitor_registered
    from training.tracking import experiment_id

    monkeypatch.setenv("SOTE_RISK_HOME", str(fixture_home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    report = monitor_registered(PROBLEM, fixture_home / "features", AS_OF, frame=world["quiet_table"])
    assert report.reference_source == COMPUTED_NOW  # the pinned models predate stored references
    client = MlflowClient()
    version = client.get_model_version_by_alias(model_name(PROBLEM), "champion")
    runs = client.search_runs([experiment_id(PROBLEM)], "tags.kind = 'monitor'")
    assert len(runs) == 1 and runs[0].data.tags["model_version"] == str(version.version)
    history = client.get_metric_history(runs[0].info.run_id, "monitor_score_psi")
    assert len(history) == len(report.months)
    assert MONITOR_TAG in client.get_model_version(model_name(PROBLEM), version.version).tags
    from training.promotion import list_models

    listed = next(r for r in list_models() if r["problem"] == PROBLEM)["aliases"]["champion"]["monitor"]
    assert listed["as_of"] == "2024-12-01" and listed["breached_months"] == 0 and listed["run_id"] == runs[0].info.run_id
    # the page's record beside it
    from training.monitor_run import read_latest

    assert read_latest(fixture_home / "monitoring", PROBLEM)["run_id"] == runs[0].info.run_id


def test_monitoring_starts_after_the_training_rows_label_windows():
    from training.monitoring import first_monitored_month
    from training.spec import load_spec

    spec = load_spec(PROBLEM)  # 90 days
    assert first_monitored_month({"train_end": "2024-01-01"}, spec) == pd.Timestamp("2024-04-01")
    assert first_monitored_month({"train_end": "2024-03-01"}, spec) == pd.Timestamp("2024-06-01")  # 30 May + 1 month


@pytest.mark.parametrize(("rows", "customers", "decimals"), [(3000, 2500, 12), (1500, 400, 3)])
def test_the_monthly_bootstrap_equals_the_row_by_row_intervals(rows, customers, decimals):
    """bootstrap_performance_ci draws the customers _customer_bootstrap draws: AUROC and O/E
    intervals equal, the slope's within its logit grid's rounding (continuous scores, and few
    distinct ones with customers holding several rows)."""
    from training.evaluate import (_customer_bootstrap, _logit, _recalibration, bootstrap_auroc_ci,
                                   bootstrap_performance_ci, observed_expected)

    rng = np.random.default_rng(4)
    ids = rng.integers(0, customers, rows)
    p = np.round(rng.beta(1, 25, rows), decimals)
    y = (rng.random(rows) < 1.1 * p).astype(float)
    fast = bootstrap_performance_ci(ids, y, p, 120, seed=9)
    assert fast["auroc"] == pytest.approx(bootstrap_auroc_ci(ids, y, p, 120, 9), rel=1e-12)
    oe = _customer_bootstrap(ids, 120, 9, 0.95, lambda w: observed_expected(y, p, w))
    assert fast["observed_expected"] == pytest.approx(oe, rel=1e-12)
    x = _logit(p)
    full = _recalibration(y, x, np.ones(rows))
    slope = _customer_bootstrap(ids, 120, 9, 0.95, lambda w: _recalibration(y, x, w, start=full)[1])
    assert fast["calibration_slope"] == pytest.approx(slope, abs=1e-3)


def test_last_record_values_are_dated_by_their_companion():
    from training.monitoring import dated_by, feature_entry, history_bounded

    companions = dated_by()
    assert companions["rai_cps_last"] == "rai_days_since" and companions["rai_cps_change"] == "rai_days_since"
    assert companions["phq9_last"] == "phq9_days_since"
    assert companions["bed_days_last_stay"] == "discharge_days_since"
    assert not history_bounded("bed_days_last_stay") and history_bounded("discharge_days_since")
    frame = pd.DataFrame({"rai_cps_last": [1.0, 2.0, 3.0, np.nan], "rai_days_since": [10.0, 400.0, 365.0, np.nan]})
    entry = feature_entry("rai_cps_last", frame, bins=2)
    assert entry["dated_by"] == "rai_days_since"
    assert entry["shares"][-1] == pytest.approx(0.5)  # the 400-day-old value counts with the missing one


def test_a_step_breaches_and_a_slow_build_up_is_a_notice():
    from training.monitoring import _breaches, _step_psi

    counts = np.array([[50.0, 50.0], [50.0, 50.0], [10.0, 90.0]])
    step, past_rows = _step_psi(counts, np.array([1, 2, 3]), months=12)
    assert list(past_rows) == [0, 100, 200]
    assert np.isnan(step[0]) and step[1] == pytest.approx(0.0)
    assert step[2] == pytest.approx(psi([0.5, 0.5], [0.1, 0.9]))
    t = Monitoring()
    record = {"score_psi": 0.01}
    found, notices, kinds = _breaches(record, {"a": 0.3, "b": 0.05}, {"a": 0.25, "b": 0.0}, ["a", "b"], t)
    assert found and "a PSI 0.30" in found[0] and not notices
    assert kinds == {"breach_kinds": "feature", "drift_features": "a", "gradual_features": "", "other_step_features": "",
                     "code_steps": "", "step_since": ""}
    found, notices, kinds = _breaches(record, {"a": 0.05, "b": 0.5}, {"a": 0.0, "b": 0.4}, ["a"], t)
    assert not found and "a step in less important feature(s) (b PSI 0.50" in notices[0]
    assert kinds["other_step_features"] == "b"
    found, notices, kinds = _breaches(record, {"a": 0.3, "b": 0.05}, {"a": 0.02, "b": 0.0}, ["a", "b"], t)
    assert not found and "gradual drift (a PSI 0.30" in notices[0] and kinds["gradual_features"] == "a"
    found, _, _ = _breaches(record, {"a": 0.3}, {"a": np.nan}, ["a"], t)  # no recent past: judged on the reference
    assert found
    # a month too small to tell 0.3 from sampling noise: the noise floor is the limit
    found, _, _ = _breaches(record, {"a": 0.3}, {"a": 0.25}, ["a"], t, {"feature": {"a": 0.35}, "step": {"a": 0.3}})
    assert not found


def test_the_noise_floor_is_a_chi_square_quantile_of_the_sample_sizes():
    from scipy.stats import chi2

    from training.monitoring import noise_floor

    assert noise_floor(11, 130, 5000)[()] == pytest.approx(chi2.ppf(0.999, 10) * (1 / 130 + 1 / 5000))
    assert noise_floor(11, 20_000, 200_000)[()] < 0.003 < 0.2  # a region's month: the thresholds rule
    rng = np.random.default_rng(2)  # no change at all: the floor holds the PSI of random months
    reference = rng.normal(size=5000)
    entry = numeric_entry(reference, 10)
    draws = [psi(entry["shares"], shares(entry, rng.normal(size=130))) for _ in range(2000)]
    assert np.mean(np.array(draws) > noise_floor(11, 130, 5000)) < 0.005


def test_a_feature_drifting_slowly_is_a_notice_and_the_same_change_at_once_a_breach(world):
    """The quiet world with one top feature moved: by a little more every month, or all at once
    from 2024-08. The fixture has one year, so the recent past is 3 months here (12 in the specs,
    against drifts that build up over years, as the elderly home care population's cognition does
    in a region-size simulation)."""
    model, spec, table, reference = world["model"], world["spec"], world["quiet_table"], world["reference"]
    name = "assessments_days_since"
    assert name in world["quiet"].top_features
    months = (table["prediction_time"].dt.year - 2024) * 12 + table["prediction_time"].dt.month - 1
    rng = np.random.default_rng(0)

    def moved(share):
        out = table.copy()
        hit = (rng.random(len(out)) < share) & out["prediction_time"].ge(REFERENCE_END).to_numpy()
        out.loc[hit, name] = np.nan  # recorded no longer for a share of the rows
        return out

    slow = moved(np.clip(months.to_numpy(), 0, None) / 11 * 0.5)  # 0 % in 2024-01 up to 50 % in 2024-12
    sudden = moved(np.where(table["prediction_time"] >= pd.Timestamp("2024-08-01"), 0.5, 0.0))
    thresholds = Monitoring(step_months=3)
    run = lambda t: monitor(model, spec, t, reference, AS_OF, thresholds, first_month=REFERENCE_END, seed=1)  # noqa: E731
    slow_report, sudden_report = run(slow), run(sudden)
    assert slow_report.feature_psi.loc[name].max() > 0.2  # as far off the reference as the sudden one ...
    assert not any("drift" in b for b in slow_report.breaches)  # ... but never a step: a notice
    assert slow_report.months["notices"].str.contains(name).any()
    flagged = [m for m, b in zip(sudden_report.months["month"], sudden_report.months["breaches"]) if name in b]
    assert flagged and min(flagged) == pd.Timestamp("2024-08-01")


def test_an_older_stored_reference_is_computed_again(world):
    from training.monitor_run import OLDER_KIND, training_reference

    model = world["model"]
    old = {**world["reference"], "version": 1}
    model.metadata["monitoring_reference"] = old
    try:
        reference = training_reference(model, world["spec"], world["quiet_table"], 10)
    finally:
        del model.metadata["monitoring_reference"]
    assert reference["source"] == OLDER_KIND and reference["version"] == 2


def _month_record(month: str, oe: float, low: float, high: float, *, complete: bool = True, events: int = 100) -> dict:
    return {"month": pd.Timestamp(month), "score_psi": 0.0, "complete": complete, "events": events,
            "observed_expected": oe, "observed_expected_ci_low": low, "observed_expected_ci_high": high,
            "calibration_slope": 1.0, "calibration_slope_ci_low": 0.9, "calibration_slope_ci_high": 1.1}


@pytest.mark.parametrize("months, expected", [
    # (month, O/E, interval) in order; the last is judged against the ones before it
    ([("2026-03", 1.09, 1.01, 1.16), ("2026-04", 1.13, 1.05, 1.20)], "oe_sustained"),   # both above 1: breach
    ([("2026-03", 0.90, 0.84, 0.97), ("2026-04", 0.88, 0.82, 0.95)], "oe_sustained"),   # both below 1: breach
    ([("2026-03", 1.02, 0.96, 1.09), ("2026-04", 1.13, 1.05, 1.20)], ""),               # the first holds 1
    ([("2026-03", 0.90, 0.84, 0.97), ("2026-04", 1.13, 1.05, 1.20)], ""),               # opposite sides
    ([("2026-02", 1.09, 1.01, 1.16), ("2026-04", 1.13, 1.05, 1.20)], ""),               # not consecutive months
    ([("2026-04", 1.13, 1.05, 1.20)], ""),                                               # one month alone
    ([("2026-03", 1.40, 1.30, 1.50), ("2026-04", 1.40, 1.30, 1.50)], "oe"),             # outside the band itself
])
def test_complete_months_in_a_row_on_one_side_of_one_breach(months, expected):
    from training.monitoring import _breaches

    t = Monitoring(oe_sustained_months=2)
    records = [_month_record(*m) for m in months]
    _, _, kinds = _breaches(records[-1], {}, {}, [], t, previous=records[:-1])
    assert kinds["breach_kinds"] == expected


def test_the_sustained_rule_needs_complete_months_with_enough_events_and_can_be_turned_off():
    from training.monitoring import _breaches

    before = _month_record("2026-03", 1.09, 1.01, 1.16)
    now = _month_record("2026-04", 1.13, 1.05, 1.20)
    assert Monitoring().oe_sustained_months == 3  # the default; two in a row are checked here
    t = Monitoring(oe_sustained_months=2)
    for changed in ({"complete": False}, {"events": t.min_events - 1}):
        _, _, kinds = _breaches(now, {}, {}, [], t, previous=[{**before, **changed}])
        assert kinds["breach_kinds"] == ""
    found, _, kinds = _breaches(now, {}, {}, [], t, previous=[before])
    assert kinds["breach_kinds"] == "oe_sustained" and "2 complete months to this one all above 1" in found[0]
    _, _, kinds = _breaches(now, {}, {}, [], Monitoring(oe_sustained_months=0), previous=[before])
    assert kinds["breach_kinds"] == ""
    three = Monitoring(oe_sustained_months=3)
    _, _, kinds = _breaches(now, {}, {}, [], three, previous=[before])
    assert kinds["breach_kinds"] == ""
    _, _, kinds = _breaches(now, {}, {}, [], three, previous=[_month_record("2026-02", 1.1, 1.02, 1.2), before])
    assert kinds["breach_kinds"] == "oe_sustained"


# --- steps in recorded codes ---------------------------------------------------------------------


def _kind_months(report, kind: str) -> list[str]:
    months = report.months
    return [f"{m:%Y-%m}" for m, kinds in zip(months["month"], months["breach_kinds"]) if kind in kinds.split(",")]


def test_the_step_in_the_recorded_code_breaches_in_the_first_month_that_reads_it(world):
    """HTA assessments (~124 a month here) are recorded as nurse visits from 2024-07: the index
    month 2024-08 is the first whose features read a month of it; the step is said there, once,
    naming the code, its count and the top feature that reads it."""
    import json

    assert _kind_months(world["shifted"], "code") == ["2024-08"]
    assert _kind_months(world["quiet"], "code") == []
    assert (world["quiet"].months["code_steps"] == "").all()
    row = world["shifted"].months.set_index(world["shifted"].months["month"].dt.strftime("%Y-%m")).loc["2024-08"]
    steps = {s["code"]: s for s in json.loads(row["code_steps"])}
    hta = steps["ASSESS/HTA"]
    assert hta["month"] == "2024-07" and hta["events"] == 0 and hta["direction"] == "fall"
    assert "assessments_days_since" in hta["top_features"]
    counts = world["shifted_volumes"]
    before = counts[(counts["code"] == "ASSESS/HTA") & (counts["month"] >= "2023-07-01") & (counts["month"] < "2024-07-01")]
    assert (hta["previous_low"], hta["previous_high"]) == (before["events"].min(), before["events"].max())
    assert "ASSESS/HTA 0 times in 2024-07" in row["breaches"]
    # nurse visits gained the HTAs (~124 on ~700 a month): within their range's doubling, no step
    assert "ENC/HC_NURSE" not in steps


def test_a_features_folder_without_code_counts_is_said_and_drift_still_flags(world):
    without = world["shifted_without_counts"]
    assert any("code counts not judged" in note for note in without.notes)
    assert not any("code counts" in note for note in world["shifted"].notes)
    assert _kind_months(without, "code") == []
    assert _drift_months(without) == _drift_months(world["shifted"])


def _step(top: list[str], other: list[str] = ("primary_visits_30d",)) -> dict:
    return {"code": "ENC/HC_NURSE", "month": "2026-01", "events": 0, "previous_low": 35222, "previous_high": 35912,
            "previous_months": 12, "direction": "fall", "top_features": list(top), "other_features": list(other)}


def test_a_step_in_a_code_only_minor_features_read_is_a_notice():
    from training.monitoring import _breaches

    now = _month_record("2026-02", 1.0, 0.9, 1.1)
    found, notices, kinds = _breaches(now, {}, {}, [], Monitoring(), code_steps=[_step([])])
    assert kinds["breach_kinds"] == "" and found == [] and "ENC/HC_NURSE 0 times in 2026-01" in notices[0]
    found, notices, kinds = _breaches(now, {}, {}, [], Monitoring(), code_steps=[_step(["primary_visits_365d"])])
    assert kinds["breach_kinds"] == "code" and "read by primary_visits_365d, primary_visits_30d" in found[0]


@pytest.mark.parametrize("previous_kinds, now_interval, own_step, expected", [
    (["code"], (1.09, 1.01, 1.16), False, "oe_after_step"),       # after a step: one month clear of 1 is enough
    (["code"], (0.91, 0.85, 0.97), False, "oe_after_step"),       # below 1 as well
    ([""], (1.09, 1.01, 1.16), False, ""),                         # no step before: the sustained rule's business
    (["code"], (1.02, 0.96, 1.09), False, ""),                     # after a step, an interval holding 1 is no breach
    ([], (1.09, 1.01, 1.16), True, "code,oe_after_step"),          # the step's own month
])
def test_calibration_clear_of_one_after_a_step_in_recording_breaches(previous_kinds, now_interval, own_step, expected):
    from training.monitoring import _breaches

    previous = [{**_month_record("2026-02", 1.0, 0.9, 1.1), "breach_kinds": k} for k in previous_kinds]
    now = _month_record("2026-03", *now_interval)
    steps = [_step(["primary_visits_365d"])] if own_step else []
    found, _, kinds = _breaches(now, {}, {}, [], Monitoring(), previous=previous, code_steps=steps)
    assert kinds["breach_kinds"] == expected
    if "oe_after_step" in expected:
        since = "2026-03" if own_step else "2026-02"
        assert kinds["step_since"] == since and f"since the step in recording seen in {since}" in found[-1]
    if previous_kinds == ["code"] and expected:  # a step more than step_months before explains nothing new
        long_ago = [{**previous[0], "month": pd.Timestamp("2025-02-01")}]
        _, _, kinds = _breaches(now, {}, {}, [], Monitoring(step_months=12), previous=long_ago)
        assert kinds["breach_kinds"] == ""
        _, _, kinds = _breaches(now, {}, {}, [], Monitoring(step_months=13), previous=long_ago)
        assert kinds["breach_kinds"] == "oe_after_step"
    off = Monitoring(oe_after_code_step=False)
    _, _, kinds = _breaches(now, {}, {}, [], off, previous=previous, code_steps=steps)
    assert "oe_after_step" not in kinds["breach_kinds"]
