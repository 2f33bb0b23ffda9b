"""External validation as a data scientist runs it: the fixture's registered models scored on a
simulated Kainuu (`evaluate --external`), recalibrated there (`recalibrate`), and the figures on the
served model card. Checked against naive recomputations from the feature rows of the periods."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tests.serving_server import start_service

ELDERLY = "elderly-hospitalisation"


@pytest.fixture(scope="module")
def kainuu(tmp_path_factory):
    from synthetic.io import write_simulated
    from synthetic.regions import region_config
    from synthetic.simulate import simulate

    folder = tmp_path_factory.mktemp("kainuu") / "data"
    write_simulated(simulate(region_config("kainuu", customers=4_000, years=5, seed=23)), folder)
    return folder


@pytest.fixture(scope="module")
def evaluated(kainuu, fixture_home_template, tmp_path_factory):
    """A copy of the fixture home after `evaluate --external` and `recalibrate` on Kainuu (in-process)."""
    import os
    import shutil

    from training.external import evaluate_external, recalibrate

    home = tmp_path_factory.mktemp("external") / "home"
    shutil.copytree(fixture_home_template, home)
    saved = os.environ.get("SOTE_RISK_HOME")
    os.environ["SOTE_RISK_HOME"] = str(home)
    try:
        report = evaluate_external(ELDERLY, kainuu)
        recalibration = recalibrate(ELDERLY, kainuu)
        from features import pipeline_version
        from models.registry import load_model, resolve_version

        original = load_model(ELDERLY, "champion", expected_pipeline_version=pipeline_version())
        recalibrated = load_model(ELDERLY, "recalibrated-kainuu", expected_pipeline_version=pipeline_version())
        tags = dict(resolve_version(ELDERLY, "champion").tags)
        new_tags = dict(resolve_version(ELDERLY, "recalibrated-kainuu").tags)
    finally:
        if saved is None:
            os.environ.pop("SOTE_RISK_HOME", None)
        else:
            os.environ["SOTE_RISK_HOME"] = saved
    table = pd.read_parquet(next((home / "external").glob("kainuu-*/features/elderly.parquet")))
    return {"home": home, "report": report, "recalibration": recalibration, "original": original,
            "recalibrated": recalibrated, "tags": tags, "new_tags": new_tags, "table": table}


def _rows_of(period: str, table: pd.DataFrame, spec_problem: str) -> pd.DataFrame:
    """Naive: the labelled rows whose index date falls in a period written 'name [start, end)'."""
    start, end = re.search(r"\[(\S+), (\S+)\)", period).groups()
    times = table["prediction_time"]
    label = f"label_{spec_problem.split('-', 1)[1]}"
    inside = (times >= pd.Timestamp(start)) & (times < pd.Timestamp(end)) & table[label].notna()
    eligible = [c for c in table.columns if c.startswith("eligible_") and c.endswith(spec_problem.split("-", 1)[1])]
    if eligible:
        inside &= table[eligible[0]].astype(bool)
    return table.loc[inside]


def _intercept_by_bisection(y: np.ndarray, p: np.ndarray) -> float:
    """Naive: the a where sum(y) = sum(sigmoid(a + logit p)) (the score equation), by bisection."""
    x = np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))
    low, high = -10.0, 10.0
    for _ in range(200):
        mid = (low + high) / 2
        if (1 / (1 + np.exp(-(mid + x)))).sum() < y.sum():
            low = mid
        else:
            high = mid
    return (low + high) / 2


def test_the_external_figures_are_the_test_period_of_the_other_region(evaluated):
    report, table, model = evaluated["report"], evaluated["table"], evaluated["original"]
    assert report.region == "kainuu" and report.dataset == "synthetic-kainuu-seed23"
    rows = _rows_of(report.periods[-1], table, ELDERLY)
    y = rows["label_hospitalisation"].astype(bool).to_numpy()
    p = model.predict_proba(rows)
    m = report.metrics
    assert m["test_rows"] == len(rows) and m["test_events"] == y.sum() > 20
    assert m["test_auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert m["test_observed_expected"] == pytest.approx(y.sum() / p.sum(), rel=1e-9)
    assert m["test_calibration_intercept"] == pytest.approx(_intercept_by_bisection(y, p), abs=1e-6)
    for key in ("test_auroc", "test_observed_expected", "test_calibration_slope", "test_calibration_intercept"):
        assert m[f"{key}_ci_low"] <= m[key] <= m[f"{key}_ci_high"], key
    # the validation period is not the test period: the figures would differ if it were used
    validation = _rows_of(report.periods[1], table, ELDERLY)
    assert not set(validation["prediction_time"]) & set(rows["prediction_time"])
    assert "oracle_auroc" in m  # the simulated region's truth


def test_subgroups_use_the_regions_own_municipalities(evaluated, kainuu):
    subgroups = evaluated["report"].subgroups
    municipalities = set(subgroups.loc[subgroups["attribute"] == "municipality", "value"])
    assert "Kajaani" in municipalities and "missing" not in municipalities
    kajaani = subgroups.loc[(subgroups["attribute"] == "municipality") & (subgroups["value"] == "Kajaani")].iloc[0]
    rows = _rows_of(evaluated["report"].periods[-1], evaluated["table"], ELDERLY)
    home_of = pd.read_parquet(kainuu / "customers.parquet").set_index("subject_id")["municipality"]
    assert kajaani["rows"] == int((rows["subject_id"].map(home_of) == "Kajaani").sum()) < len(rows)
    assert kajaani["auroc_ci_low"] <= kajaani["auroc"] <= kajaani["auroc_ci_high"]


def test_the_version_carries_its_external_results(evaluated):
    tag = json.loads(evaluated["tags"]["external_kainuu"])
    m = evaluated["report"].metrics
    assert tag["region"] == "kainuu" and tag["test_rows"] == m["test_rows"]
    assert tag["test_auroc"] == pytest.approx(m["test_auroc"], abs=1e-6)


def test_recalibration_refits_only_the_calibrator_on_the_regions_validation_period(evaluated):
    original, new = evaluated["original"], evaluated["recalibrated"]
    recalibration, table = evaluated["recalibration"], evaluated["table"]
    validation = _rows_of(recalibration.after.periods[1], table, ELDERLY)
    test = _rows_of(recalibration.after.periods[-1], table, ELDERLY)
    # the trees are the original's
    np.testing.assert_allclose(new.raw_score(test), original.raw_score(test))
    # a calibrator fitted on these validation rows matches the outcomes there on average (both
    # Platt and isotonic keep the sum), which one fitted on another period or region would not
    y_valid = validation["label_hospitalisation"].astype(bool).to_numpy()
    assert new.predict_proba(validation).sum() == pytest.approx(y_valid.sum(), rel=0.02)
    # naive: the chosen method fitted on exactly these validation rows gives the new model's probabilities
    from models.calibration import ScoreCalibrator

    refit = ScoreCalibrator(recalibration.method).fit(original.raw_score(validation), y_valid.astype(float))
    np.testing.assert_allclose(new.predict_proba(test), refit.transform(original.raw_score(test)), rtol=1e-9, atol=1e-12)
    assert new.metadata["recalibrated_from"] == recalibration.before.model_version
    assert new.metadata["recalibrated_for"] == "kainuu"
    assert evaluated["new_tags"]["recalibrated_from"] == recalibration.before.model_version
    # its promotion gates have every figure they read, from the region it was recalibrated for
    from training.promotion import gate_reasons
    from training.spec import Gates

    reasons = gate_reasons(evaluated["new_tags"], None, Gates())
    assert not [r for r in reasons if "recorded" in r], reasons
    assert {"subgroup_flags_auroc", "subgroup_flags_calibration", "subgroup_flagged"} <= set(evaluated["new_tags"])
    # before and after are on the same test rows
    assert recalibration.before.metrics["test_rows"] == recalibration.after.metrics["test_rows"] == len(test)
    assert recalibration.after.metrics["test_auroc"] == pytest.approx(recalibration.before.metrics["test_auroc"], abs=0.02)
    assert json.loads(evaluated["new_tags"]["external_kainuu"])["test_rows"] == len(test)


def test_the_served_model_card_shows_the_external_results(evaluated):
    from serving.auth import create_key

    home = evaluated["home"]
    key = create_key(home / "keys.json", "clinician")[0]
    service = start_service(home)
    try:
        with httpx.Client(base_url=service.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
            english = client.get(f"/ui/model_card/{ELDERLY}", params={"lang": "en"})
            finnish = client.get(f"/ui/model_card/{ELDERLY}", params={"lang": "fi"})
    finally:
        service.stop()
    assert english.status_code == 200 and finnish.status_code == 200
    auroc = evaluated["report"].metrics["test_auroc"]
    assert "How it did in other regions (external validation)" in english.text
    assert 'data-region="kainuu"' in english.text and "Kainuu wellbeing services county" in english.text
    assert f"{auroc:.3f}" in english.text
    assert "Miten malli onnistui muilla alueilla" in finnish.text and f"{auroc:.3f}".replace(".", ",") in finnish.text


def test_cli_refuses_what_it_cannot_evaluate(fixture_home, tmp_path):
    import os

    env = {**os.environ, "SOTE_RISK_HOME": str(fixture_home), "MLFLOW_DISABLE_TELEMETRY": "true"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
                              capture_output=True, text=True, env=env)

    missing = run("evaluate", "-p", ELDERLY, "--external", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert f"{tmp_path / 'nowhere'}: not a folder" in missing.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset.json").write_text("{not json")
    broken = run("evaluate", "-p", ELDERLY, "--external", str(tmp_path / "broken"))
    assert broken.returncode != 0 and "dataset.json cannot be read" in broken.stderr and "Traceback" not in broken.stderr
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "dataset.json").write_text('{"region": "atlantis"}')
    elsewhere = run("recalibrate", "-p", ELDERLY, "--data", str(tmp_path / "elsewhere"))
    assert elsewhere.returncode != 0 and "region: unknown region 'atlantis'" in elsewhere.stderr
    assert "Traceback" not in elsewhere.stderr
    no_data = run("recalibrate", "-p", ELDERLY)
    assert no_data.returncode != 0 and "--data" in no_data.stderr
