"""Recalibration on recent months (`sote-risk retrain --recalibrate`, training/recalibrate_recent.py)
on the shifted small region of tests/test_retrain.py (its helpers build the same home).

First the pinned elderly-hospitalisation champion (version 1), which records no periods, is
recalibrated with --promote: nothing can show the compared months held out from trees trained on
every month, so the gates refuse it (version 2). Then the champion is a real model trained as of
2024-09-01 (version 3: train up to 2023-05, validation 2023-09..11), monitored as of 2024-12-01
(every feature's drift judged, so the 2024-07 coding change breaches) and recalibrated with
--if-degraded as of that date (version 4): compared months 2024-07..09 (the latest complete ones),
calibration months 2024-02..04 (the latest whose 90-day label windows close before 2024-07-01).
children-hospitalisation has too few outcomes in those months to recalibrate.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from tests.test_retrain import cli, shifted_home

ELDERLY, CHILDREN = "elderly-hospitalisation", "children-hospitalisation"
TRAINED_AS_OF, AS_OF = "2024-09-01", "2024-12-01"
HORIZON = pd.Timedelta(days=90)
COMPARED = list(pd.date_range("2024-07-01", "2024-09-01", freq="MS"))
CALIBRATION = list(pd.date_range("2024-02-01", "2024-04-01", freq="MS"))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The shifted home recalibrated as the module docstring says."""
    from mlflow import MlflowClient

    from models.registry import model_name

    home, specs = shifted_home(tmp_path_factory.mktemp("recalibrate"))
    path = specs / f"{ELDERLY}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["monitoring"]["top_features"] = 500  # every feature's drift breaches (the assessments' step, here)
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOTE_RISK_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("SOTE_RISK_OPERATOR_WEBHOOK_URL", raising=False)
        unknown = cli("retrain", "--recalibrate", "--promote", "--as-of", AS_OF, "-p", ELDERLY, "--experiments", str(specs))
        unknown_tags = dict(_version(ELDERLY, "challenger").tags)
        trained = cli("retrain", "-p", ELDERLY, "--as-of", TRAINED_AS_OF, "--experiments", str(specs))
        assert trained.returncode == 0, trained.stdout + trained.stderr[-2000:]
        MlflowClient().set_registered_model_alias(model_name(ELDERLY), "champion", "3")  # setup: not a promotion
        monitored = cli("monitor", "--as-of", AS_OF, "-p", ELDERLY, "--experiments", str(specs))
        assert monitored.returncode == 0, monitored.stderr[-2000:]
        recalibrated = cli("retrain", "--if-degraded", "--recalibrate", "--as-of", AS_OF, "-p", ELDERLY,
                           "--experiments", str(specs))
        yield SimpleNamespace(path=home, specs=specs, monitored=monitored, recalibrated=recalibrated, unknown=unknown,
                              unknown_tags=unknown_tags)


def _version(problem: str, alias: str):  # noqa: ANN202 (an MLflow ModelVersion)
    from mlflow import MlflowClient

    from models.registry import model_name

    return MlflowClient().get_model_version_by_alias(model_name(problem), alias)


def _model(problem: str, alias: str):  # noqa: ANN202 (a RiskModel)
    from features import pipeline_version
    from models.registry import load_model

    return load_model(problem, alias, expected_pipeline_version=pipeline_version())


def _spec(home, problem: str):  # noqa: ANN001, ANN202
    from training.spec import load_spec

    return load_spec(problem, home.specs)


def _table(home, spec) -> pd.DataFrame:  # noqa: ANN001
    from training.splits import table_as_of

    return table_as_of(pd.read_parquet(home.path / "features" / f"{spec.segment}.parquet"), spec, pd.Timestamp(AS_OF))


def _naive_usable(table: pd.DataFrame, months) -> pd.DataFrame:  # noqa: ANN001
    return table[table["prediction_time"].isin(months) & table["eligible_hospitalisation"].fillna(False).astype(bool)
                 & table["censor_hospitalisation"].isna() & table["label_hospitalisation"].notna()]


# --- the months and the rows ---------------------------------------------------------------------


def test_the_calibration_months_and_rows_equal_a_naive_selection(home):
    result = home.recalibrated
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    spec = _spec(home, ELDERLY)
    table = _table(home, spec)
    eligible = table.loc[table["eligible_hospitalisation"].fillna(False).astype(bool), "prediction_time"].unique()
    # naive: complete at the date (month + 90 days <= it) and before the data's last complete month
    complete = sorted(m for m in eligible if m + HORIZON <= pd.Timestamp(AS_OF))
    assert complete[-3:] == COMPARED
    closed = sorted(m for m in eligible if m + HORIZON < COMPARED[0])
    assert closed[-3:] == CALIBRATION
    rows = _naive_usable(table, CALIBRATION)
    tags = _version(ELDERLY, "challenger").tags
    assert tags["recalibration_months"] == "2024-02,2024-03,2024-04"
    assert int(tags["recalibration_rows"]) == len(rows) > 0
    assert int(tags["recalibration_events"]) == int(rows["label_hospitalisation"].astype(bool).sum()) > 0
    assert tags["recent_months"] == "2024-07,2024-08,2024-09"
    # the plan's calibration rows are exactly these rows (keys), and its test rows the compared months'
    from training.recalibrate_recent import plan

    chosen = plan(table, spec, pd.Timestamp(AS_OF), _model(ELDERLY, "champion").metadata["periods"])
    keys = ["subject_id", "prediction_time"]
    pd.testing.assert_frame_equal(chosen.split.validation[keys].sort_values(keys).reset_index(drop=True),
                                  rows[keys].sort_values(keys).reset_index(drop=True))
    compared = _naive_usable(table, COMPARED)
    assert len(chosen.split.test) == len(compared) == int(tags["recent_rows"])


def test_no_calibration_row_has_a_label_window_reaching_the_first_compared_month(home):
    from training.recalibrate_recent import plan

    spec = _spec(home, ELDERLY)
    table = _table(home, spec)
    periods = _model(ELDERLY, "champion").metadata["periods"]
    chosen = plan(table, spec, pd.Timestamp(AS_OF), periods)
    first = chosen.compared[0]
    assert (chosen.split.validation["prediction_time"] + HORIZON < first).all()
    # the latest such months: the month after the last one would reach it
    assert chosen.months[-1] + pd.DateOffset(months=1) + HORIZON >= first
    assert chosen.test_period is not None and chosen.test_period.start <= first  # held out from the calibrator and the trees
    # a month later, everything moves a month on
    later = pd.Timestamp("2025-01-01")
    from training.splits import table_as_of

    moved = plan(table_as_of(pd.read_parquet(home.path / "features" / "elderly.parquet"), spec, later), spec, later, periods)
    assert moved.compared == [m + pd.DateOffset(months=1) for m in chosen.compared]
    assert moved.months == [m + pd.DateOffset(months=1) for m in chosen.months]
    assert (moved.split.validation["prediction_time"] + HORIZON < moved.compared[0]).all()


def test_the_months_rule_on_its_own():
    """Pure: 90-day windows; a 30-day one reaches one month less far; fewer months than asked."""
    from training.recalibrate_recent import calibration_months, held_out_period, learnt_until

    months = pd.date_range("2023-01-01", "2024-09-01", freq="MS")
    frame = pd.DataFrame({"prediction_time": months, "eligible_x": True})
    spec = SimpleNamespace(eligible_column="eligible_x", horizon_days=90)
    assert calibration_months(frame, spec, pd.Timestamp("2024-07-01"), 3) == CALIBRATION
    # 2024-01-01 + 90 days = 2024-03-31 < 2024-04-01 (a leap year); 2024-02-01 + 90 days = 2024-05-01 is not
    assert calibration_months(frame, spec, pd.Timestamp("2024-04-01"), 2) == [pd.Timestamp("2023-12-01"), pd.Timestamp("2024-01-01")]
    assert calibration_months(frame, SimpleNamespace(eligible_column="eligible_x", horizon_days=30),
                              pd.Timestamp("2024-07-01"), 1) == [pd.Timestamp("2024-05-01")]
    assert calibration_months(frame, spec, pd.Timestamp("2023-05-01"), 3) == [pd.Timestamp("2023-01-01")]
    frame.loc[frame["prediction_time"] == pd.Timestamp("2024-04-01"), "eligible_x"] = False  # no eligible row: not a month
    assert calibration_months(frame, spec, pd.Timestamp("2024-07-01"), 3)[-1] == pd.Timestamp("2024-03-01")
    # the trees' periods: validation ends 2023-12-01, + 90 days = 2024-02-29 -> clear from 2024-03
    recorded = ["train [first, 2023-05-01)", "validation [2023-09-01, 2023-12-01)", "test [2024-04-01, 2024-07-01)"]
    assert learnt_until(recorded, 90) == pd.Timestamp("2024-03-01")
    assert learnt_until(None, 90) is None and learnt_until(["test [2024-04-01, 2024-07-01)"], 90) is None
    period = held_out_period(CALIBRATION, COMPARED, learnt_until(recorded, 90), 90)
    assert (period.start, period.end) == (pd.Timestamp("2024-07-01"), pd.Timestamp("2024-10-01"))
    # trees that learnt up to 2024-06 (validation end 2024-06-01 + 90 days): the compared months are not all after
    late = held_out_period(CALIBRATION, COMPARED, learnt_until(["validation [2024-01-01, 2024-06-01)"], 90), 90)
    assert late.start == pd.Timestamp("2024-09-01")
    assert held_out_period(CALIBRATION, COMPARED, None, 90) is None


def test_a_described_period_reads_back():
    from training.splits import ResolvedPeriod, parse_period

    for period in (ResolvedPeriod("train", None, pd.Timestamp("2023-05-01")),
                   ResolvedPeriod("train", pd.Timestamp("2022-01-01"), pd.Timestamp("2023-05-01"), 3),
                   ResolvedPeriod("calibration", pd.Timestamp("2024-02-01"), pd.Timestamp("2024-05-01"))):
        assert parse_period(period.describe()) == period
    assert parse_period("validation: customers 20%") is None


# --- the model --------------------------------------------------------------------------------------


def test_the_challenger_is_the_champions_trees_with_a_new_calibrator(home):
    champion, challenger = _model(ELDERLY, "champion"), _model(ELDERLY, "challenger")
    assert challenger.booster.model_to_string() == champion.booster.model_to_string()
    assert challenger.feature_names == champion.feature_names and challenger.categories == champion.categories
    assert challenger.pipeline_version == champion.pipeline_version and challenger.spec == champion.spec
    rows = _naive_usable(_table(home, _spec(home, ELDERLY)), COMPARED)
    raw = champion.booster.predict(champion.matrix(rows), raw_score=True)
    np.testing.assert_array_equal(challenger.raw_score(rows), raw)  # the same raw scores
    # its probabilities are the champion's raw score through the new calibrator, and they differ
    np.testing.assert_array_equal(challenger.predict_proba(rows), challenger.calibrator.transform(raw))
    assert not np.allclose(challenger.predict_proba(rows), champion.predict_proba(rows))
    tags = _version(ELDERLY, "challenger").tags
    assert challenger.metadata["recalibrated_from"] == tags["recalibrated_from"] == champion.metadata["model_version"] == "3"
    assert challenger.metadata["calibration_method"] == tags["calibration_method"] in ("isotonic", "platt")
    assert challenger.metadata["threshold"] != champion.metadata["threshold"]
    assert challenger.metadata["periods"] == [*champion.metadata["periods"][:2], "calibration [2024-02-01, 2024-05-01)",
                                              "test [2024-07-01, 2024-10-01)"]


def test_the_calibrator_and_threshold_are_fitted_on_the_calibration_rows(home):
    """The same choice made by hand on the naive rows; other months give another threshold."""
    from training.calibrate import choose_calibrator
    from training.evaluate import threshold_for_policy

    spec, champion, challenger = _spec(home, ELDERLY), _model(ELDERLY, "champion"), _model(ELDERLY, "challenger")
    table = _table(home, spec)

    def by_hand(months):
        rows = _naive_usable(table, months)
        y = rows["label_hospitalisation"].astype(bool).to_numpy().astype(float)
        choice = choose_calibrator(champion.raw_score(rows), y, rows["subject_id"], spec.seed)
        return choice, threshold_for_policy(y, choice.out_of_fold, spec.alert_policy)

    choice, threshold = by_hand(CALIBRATION)
    assert choice.method == challenger.metadata["calibration_method"]
    assert threshold == pytest.approx(challenger.metadata["threshold"], rel=1e-12)
    probe = np.linspace(-6, 2, 50)
    np.testing.assert_allclose(challenger.calibrator.transform(probe), choice.calibrator.transform(probe), rtol=1e-9)
    _, other = by_hand([m - pd.DateOffset(months=1) for m in CALIBRATION])
    assert other != pytest.approx(threshold, rel=1e-9)


# --- recorded and judged --------------------------------------------------------------------------------


def test_the_recalibration_is_recorded_and_compared_on_the_held_out_months(home):
    from training.promotion import recent_reasons
    from training.retrain import monitor_evidence
    from training.spec import Gates

    version = _version(ELDERLY, "challenger")
    tags = version.tags
    assert str(version.version) == "4"
    why = json.loads(tags["retrain"])
    evidence = monitor_evidence(ELDERLY, pd.Timestamp(AS_OF))
    assert why["kind"] == "recalibrate" and why["champion_version"] == "3" and why["as_of"] == AS_OF
    assert why["monitor_run"] == evidence.run_id and why["recalibration_months"] == ["2024-02", "2024-03", "2024-04"]
    assert tags["recent_champion_version"] == "3" and tags["recent_held_out"] == "true"
    champion, challenger = _model(ELDERLY, "champion"), _model(ELDERLY, "challenger")
    rows = _naive_usable(_table(home, _spec(home, ELDERLY)), COMPARED)
    y = rows["label_hospitalisation"].astype(bool).to_numpy()
    p, q = challenger.predict_proba(rows), champion.predict_proba(rows)
    for key, value in {"recent_auroc": roc_auc_score(y, p), "recent_champion_auroc": roc_auc_score(y, q),
                       "recent_observed_expected": y.sum() / p.sum(), "recent_champion_observed_expected": y.sum() / q.sum(),
                       "test_auroc": roc_auc_score(y, p), "test_observed_expected": y.sum() / p.sum()}.items():
        assert float(tags[key]) == pytest.approx(value, rel=1e-5), key
    verdict = recent_reasons(dict(tags), "3", Gates.model_validate(json.loads(tags["gates"])))
    assert tags["recent_comparison"] == ("passed" if not verdict else "failed: " + "; ".join(verdict))


def test_the_gates_read_the_comparison_and_the_terminal_says_their_verdict(home):
    from training.promotion import gate_reasons
    from training.spec import Gates

    tags = dict(_version(ELDERLY, "challenger").tags)
    champion = dict(_version(ELDERLY, "champion").tags)
    gates = Gates.model_validate(json.loads(tags["gates"]))
    reasons = gate_reasons(tags, champion, gates, "3")
    lines = home.recalibrated.stdout.splitlines()
    assert lines[0].startswith(f"{ELDERLY}: BREACHED in its monitoring run of {AS_OF} (version 3, run ")
    assert lines[0].endswith(f"-> recalibrating as of {AS_OF}")
    assert lines[1].startswith(f"{ELDERLY}: recalibrated version 3 as version 4 (challenger) as of {AS_OF}: its trees, a "
                               f"{tags['calibration_method']} calibrator fitted on {int(tags['recalibration_rows']):,} rows "
                               f"({int(tags['recalibration_events']):,} outcomes) of index months 2024-02..2024-04")
    assert lines[2].startswith("  recent complete months 2024-07..2024-09 (") and "NOT all" not in lines[2]
    assert lines[3] == ("  gates: pass" if not reasons else f"  gates: FAIL: {'; '.join(reasons)}")
    # the gates read what was recorded: a shown-worse comparison or an O/E outside the band refuses
    worse = {**tags, "recent_auroc_gain_ci_low": "-0.5"}
    assert any(r.startswith("recent_auroc_gain ") for r in gate_reasons(worse, champion, gates, "3"))
    off = {**tags, "recent_observed_expected": "1.6", "recent_observed_expected_ci_low": "1.4",
           "recent_observed_expected_ci_high": "1.8", "recent_champion_observed_expected": "1.1"}
    assert any(r.startswith("recent_observed_expected ") for r in gate_reasons(off, champion, gates, "3"))
    from training.promotion import list_models

    shown = next(r for r in list_models() if r["problem"] == ELDERLY)["aliases"]["challenger"]
    assert shown["recent_comparison"] == tags["recent_comparison"] and shown["version"] == "4"


def test_a_recalibrated_challenger_is_held_against_the_champions_auroc_on_the_same_rows():
    """Pure: the champion's own test period would judge the months' difficulty, not the model."""
    from training.promotion import gate_reasons
    from training.spec import Gates

    base = {"test_auroc": "0.74", "test_observed_expected": "1", "test_observed_expected_ci_low": "0.9",
            "test_observed_expected_ci_high": "1.1", "test_calibration_slope": "1", "test_calibration_slope_ci_low": "0.9",
            "test_calibration_slope_ci_high": "1.1", "gain_over_baseline": "0.05", "gain_over_baseline_ci_low": "0.01",
            "gain_over_baseline_ci_high": "0.09", "retrain": "{}", "recent_champion_version": "4", "recent_held_out": "true",
            "recent_months": "2024-07,2024-08,2024-09", "recent_auroc_gain": "0", "recent_auroc_gain_ci_low": "-0.001",
            "recent_auroc_gain_ci_high": "0.001", "recent_observed_expected": "1.02", "recent_observed_expected_ci_low": "0.95",
            "recent_observed_expected_ci_high": "1.1", "recent_champion_observed_expected": "1.2",
            "recent_champion_auroc": "0.74"}
    champion = {"test_auroc": "0.76"}
    worse = ["test_auroc 0.7400 is worse than the champion's 0.7600"]
    assert gate_reasons(base, champion, Gates(), "4") == worse  # a retrained challenger: the champion's test period
    recalibrated = {**base, "recalibrated_from": "4"}
    assert gate_reasons(recalibrated, champion, Gates(), "4") == []  # the same rows: 0.74 against 0.74
    assert gate_reasons({**recalibrated, "recent_champion_auroc": "0.7401"}, champion, Gates(), "4") == [
        "test_auroc 0.7400 is worse than the champion's 0.7401"]
    assert gate_reasons({**recalibrated, "recalibrated_from": "3"}, champion, Gates(), "4")[0] == worse[0]  # another version's trees


def test_trees_that_record_no_periods_cannot_be_shown_held_out_and_are_refused(home):
    result, tags = home.unknown, home.unknown_tags
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]  # --promote refused
    assert tags["recalibrated_from"] == "1" and tags["recent_held_out"] == "false"
    assert json.loads(tags["retrain"])["reason"] == "retrained without --if-degraded"
    lines = result.stdout.splitlines()
    assert lines[0] == f"{ELDERLY}: recalibrating as of {AS_OF} (without --if-degraded: whatever its monitoring says)"
    assert lines[1].startswith(f"{ELDERLY}: recalibrated version 1 as version 2 (challenger)")
    assert "NOT all in the challenger test period" in lines[2]
    said = "the compared months 2024-07 to 2024-09 are not all in the challenger's test period"
    assert said in lines[3] and said in tags["recent_comparison"]
    assert lines[4].startswith(f"  refused: sote-risk-{ELDERLY} version 2 stays challenger: ") and said in lines[4]
    assert "promoted_at" not in tags and "promote it with" not in result.stdout


# --- refusals ----------------------------------------------------------------------------------------------


def test_too_few_outcomes_refuse_with_the_counts(home):
    from training.calibrate import CalibrationError
    from training.recalibrate_recent import fit_on_months

    spec = _spec(home, ELDERLY)
    rows = _naive_usable(_table(home, spec), CALIBRATION)
    few = pd.concat([rows[rows["label_hospitalisation"].astype(bool)].head(6), rows[~rows["label_hospitalisation"].astype(bool)]])
    with pytest.raises(CalibrationError) as refused:
        fit_on_months(_model(ELDERLY, "champion"), few, spec, CALIBRATION)
    said = str(refused.value)
    assert said.startswith(f"{ELDERLY}: recalibration: too few outcomes to calibrate: the calibration period 2024-02..2024-04 has "
                           f"{len(few):,} rows, 6 outcomes in ")
    assert said.endswith("(raise monitoring.recalibration_months in the spec, or use a larger region)")
    assert "\n" not in said


@pytest.mark.parametrize("args, said", [
    (["--recalibrate", "-p", CHILDREN, "--as-of", AS_OF],
     f"{CHILDREN}: failed: {CHILDREN}: recalibration: too few outcomes to calibrate: the calibration period 2024-02..2024-04 has "),
    # 2023-05..07 compared; only 2023-01 (the table's first index month) closes before 2023-05-01
    (["--recalibrate", "-p", ELDERLY, "--as-of", "2023-10-01"],
     f"{ELDERLY}: failed: {ELDERLY}: 1 index month(s) (2023-01..2023-01) have label windows closed before the first "
     "compared month 2023-05; monitoring.recalibration_months asks for 3"),
    (["--recalibrate", "-p", ELDERLY, "--as-of", "2023-02-01"],
     f"{ELDERLY}: failed: {ELDERLY}: no index month has complete label windows"),
])
def test_too_few_months_or_outcomes_refuse_in_one_line(home, args, said):
    from models.registry import ModelNotFoundError, resolve_version

    problem = args[2]

    def latest():
        try:
            return str(resolve_version(problem, "challenger").version)
        except ModelNotFoundError:
            return None

    before = latest()
    result = cli("retrain", *args, "--experiments", str(home.specs))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith(said), lines
    assert result.stderr.strip().splitlines()[-1] == f"error: 1 of 1 problem(s) failed: {problem}"  # after the progress log
    assert "Traceback" not in result.stderr
    assert latest() == before  # nothing registered


def test_recalibrate_with_trials_is_refused(home):
    result = cli("retrain", "--if-degraded", "--recalibrate", "--trials", "3", "-p", ELDERLY,
                 "--experiments", str(home.specs))
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip() == "error: retrain: --trials tunes new trees; --recalibrate keeps the champion's (give one)"


def test_without_a_champion_there_is_nothing_to_recalibrate(home):
    """Runs last in this module: it takes children-hospitalisation's champion alias away."""
    from mlflow import MlflowClient

    from models.registry import model_name

    MlflowClient().delete_registered_model_alias(model_name(CHILDREN), "champion")
    result = cli("retrain", "--recalibrate", "-p", CHILDREN, "--as-of", AS_OF, "--experiments", str(home.specs))
    assert result.returncode == 1
    assert result.stdout.splitlines()[1] == (f"{CHILDREN}: failed: {CHILDREN}: no champion to recalibrate (register and "
                                             "promote a model first)")
    assert result.stderr.strip().splitlines()[-1] == f"error: 1 of 1 problem(s) failed: {CHILDREN}"


@pytest.mark.parametrize("lang, said", [
    ("en", "with its calibrator (not its trees) refitted on the index months Feb 2024 to Apr 2024"),
    ("fi", "jonka kalibraattori (ei puita) sovitettiin uudelleen indeksikuukausille helmi 2024–huhti 2024"),
])
def test_the_model_card_says_the_version_was_recalibrated_on_recent_months(home, lang, said):
    """A reader of the challenger's card learns what it is: the champion's trees with a calibrator
    refitted on the months named, its figures from the months after (the card's own words)."""
    from serving.model_card import WORDS, _recalibrated
    from tests._forbidden import problems
    from vocabulary.numbers import number

    challenger = _model(ELDERLY, "challenger")
    sentence = _recalibrated(challenger.metadata, WORDS[lang], lang)
    assert sentence is not None and said in sentence and "version 3" in sentence.replace("versio 3", "version 3")
    assert number(challenger.metadata["recalibration_rows"], lang, 0) in sentence
    assert problems(sentence, lang, allow=["3"]) == []
    assert _recalibrated(_model(ELDERLY, "champion").metadata, WORDS[lang], lang) is None  # the champion: trained, not recalibrated
