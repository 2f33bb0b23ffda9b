"""Training end to end on a small synthetic table: MLflow metrics, reproducibility, behaviour,
the pyfunc by alias, pipeline-version checks, promotion gates and the CLI's one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _training_data import PIPELINE_VERSION, fast_spec_dict, feature_tables, write_tables  # noqa: F401 (fixture)
from training.spec import parse_spec

pytestmark = pytest.mark.slow

REQUIRED_METRICS = {
    "test_auroc", "test_auprc", "test_brier", "test_ece", "oracle_auroc", "baseline_auroc",
    "test_ppv", "test_sensitivity", "test_alert_rate", "test_customer_lead_days",
    "test_customer_auroc", "test_customer_ppv", "test_customer_sensitivity", "test_customer_alert_rate",
    "test_auroc_ci_low", "test_auroc_ci_high", "subgroup_flags_auroc", "subgroup_flags_calibration",
    "gain_over_baseline", "gain_over_baseline_ci_low", "gain_over_baseline_ci_high",
    "test_observed_expected", "test_observed_expected_ci_low", "test_observed_expected_ci_high",
    "test_calibration_slope", "test_calibration_slope_ci_low", "test_calibration_slope_ci_high",
}


@pytest.fixture(scope="module")
def trained(feature_tables, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """One trained and registered model in its own home (module-scoped: training takes seconds)."""
    from training.pipeline import train_problem

    features_dir, dataset_dir = feature_tables
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOTE_RISK_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        result = train_problem(parse_spec(fast_spec_dict()), features_dir, dataset_dir=dataset_dir)
        yield result, features_dir, dataset_dir, home


@pytest.fixture()
def in_home(trained, monkeypatch):
    monkeypatch.setenv("SOTE_RISK_HOME", str(trained[3]))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return trained


def test_metrics_are_logged_under_the_exact_names(in_home):
    from mlflow import MlflowClient

    result = in_home[0]
    logged = MlflowClient().get_run(result.run_id).data.metrics
    assert REQUIRED_METRICS <= set(logged), REQUIRED_METRICS - set(logged)
    assert 0.5 < logged["test_auroc"] <= 1 and logged["test_auroc_ci_low"] <= logged["test_auroc"] <= logged["test_auroc_ci_high"]
    assert logged["oracle_auroc"] > 0.6  # the simulator's truth on the same rows
    artifacts = {a.path for a in MlflowClient().list_artifacts(result.run_id)}
    assert {"model_card.md", "model_card.html", "subgroups.csv", "plots"} <= artifacts
    plots = {a.path for a in MlflowClient().list_artifacts(result.run_id, "plots")}
    assert plots == {"plots/roc.png", "plots/pr.png", "plots/calibration.png", "plots/shap_summary.png"}


def test_test_period_predictions_are_a_meds_artifact_of_the_run(in_home, tmp_path):
    """Issue 15 item 7: the run keeps its test-period predictions in MEDS prediction format, the
    very probabilities and alerts (at the model's threshold) its metrics were computed from."""
    import meds
    import mlflow
    import pyarrow.parquet as pq

    from data_contracts.meds_tasks import PREDICTION_SCHEMA, validate_prediction_table
    from training.splits import split_table

    result, features_dir = in_home[0], in_home[1]
    path = Path(mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="predictions/elderly-hospitalisation/test.parquet", dst_path=str(tmp_path)))
    table = pq.read_table(path)
    assert table.schema.equals(PREDICTION_SCHEMA)
    validate_prediction_table(table)
    meds.LabelSchema.validate(table.select(["subject_id", "prediction_time", "boolean_value"]))
    spec = parse_spec(result.model.spec)
    test = split_table(pd.read_parquet(features_dir / "elderly.parquet"), spec).test
    frame = table.to_pandas()
    assert len(frame) == len(test) == result.metrics["test_rows"]
    np.testing.assert_array_equal(frame["subject_id"], test["subject_id"])
    np.testing.assert_array_equal(frame["boolean_value"], test[spec.label_column].astype(bool))
    np.testing.assert_allclose(frame["predicted_boolean_probability"], result.model.predict_proba(test), rtol=0, atol=1e-12)
    threshold = result.model.metadata["threshold"]
    np.testing.assert_array_equal(frame["predicted_boolean_value"], frame["predicted_boolean_probability"] >= threshold)
    assert frame["predicted_boolean_value"].mean() == pytest.approx(result.metrics["test_alert_rate"])


def test_test_metrics_come_from_the_test_period_only(in_home, tmp_path):
    """Issue 15, item 5: test metrics computed on train + validation + test passed every test here,
    because the fixture's outcome rate did not change over time. It drifts now (train, validation
    and test rates differ by half), and the test period is found here from the table and the
    spec's month offsets alone: the logged rows, customers, outcomes, rate, AUROC and per-customer
    figures are those of its rows, and the model card says the same counts."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.metrics import roc_auc_score

    from _naive_customers import naive_customer_figures

    result, features_dir = in_home[0], in_home[1]
    table = pd.read_parquet(features_dir / "elderly.parquet")
    test = parse_spec(fast_spec_dict()).split.test
    anchor = table.loc[table["censor_hospitalisation"].eq("extract_end"), "prediction_time"].min()  # the last 3 months
    start, end = anchor + pd.DateOffset(months=test.start), anchor + pd.DateOffset(months=test.end)
    usable = (table["eligible_hospitalisation"] & table["censor_hospitalisation"].isna()
              & table["label_hospitalisation"].notna())
    rows = table.loc[usable & (table["prediction_time"] >= start) & (table["prediction_time"] < end)]
    y = rows["label_hospitalisation"].astype(bool).to_numpy()
    p = result.model.predict_proba(rows)
    logged = MlflowClient().get_run(result.run_id).data.metrics
    assert (logged["test_rows"], logged["test_events"], logged["test_customers"]) == (len(rows), y.sum(), rows["subject_id"].nunique())
    assert logged["test_outcome_rate"] == pytest.approx(y.mean(), rel=1e-9)
    assert logged["test_auroc"] == pytest.approx(roc_auc_score(y, p), rel=1e-9)
    everything = table.loc[usable, "label_hospitalisation"].astype(bool).mean()
    assert abs(everything - y.mean()) > 0.2 * y.mean()  # the drift: no other period could give this rate
    per_customer = naive_customer_figures(pd.DataFrame({
        "subject_id": rows["subject_id"].to_numpy(), "prediction_time": rows["prediction_time"].to_numpy(), "y": y, "p": p,
        "outcome_time": rows["outcome_time_hospitalisation"].to_numpy()}), result.model.metadata["threshold"])
    for key in ("test_customer_auroc", "test_customer_sensitivity", "test_customer_alert_rate"):
        assert logged[key] == pytest.approx(per_customer[key], rel=1e-6), key  # MLflow keeps float64
    card = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="model_card.md", dst_path=str(tmp_path)))
    assert f"test {len(rows)} / {int(y.sum())}." in card.read_text(encoding="utf-8")


def test_trials_are_nested_runs(in_home):
    import mlflow

    result = in_home[0]
    children = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 2 and set(children["tags.optuna.state"]) <= {"COMPLETE", "PRUNED"}


def test_same_seed_gives_same_metrics(trained, tmp_path, monkeypatch):
    from training.pipeline import train_problem

    result, features_dir, dataset_dir, _ = trained
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "other-home"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    again = train_problem(parse_spec(fast_spec_dict()), features_dir, dataset_dir=dataset_dir)
    for key in ("test_auroc", "test_brier", "test_ece", "baseline_auroc", "test_ppv", "test_auroc_ci_low"):
        assert again.metrics[key] == pytest.approx(result.metrics[key], abs=1e-12), key
    assert again.model.metadata["threshold"] == result.model.metadata["threshold"]


def test_risk_does_not_fall_when_er_visits_rise(trained):
    model = trained[0].model
    rows = pd.read_parquet(trained[1] / "elderly.parquet").head(300)
    base = model.predict_proba(rows)
    for column in ("er_visits_90d", "er_visits_180d", "er_visits_365d", "unplanned_admissions_365d"):
        more = rows.assign(**{column: rows[column] + 3})
        assert (model.raw_score(more) >= model.raw_score(rows) - 1e-12).all(), column
        assert (model.predict_proba(more) >= base - 1e-12).all(), column


def test_risk_ignores_pseudonym_and_row_order(trained):
    model = trained[0].model
    rows = pd.read_parquet(trained[1] / "elderly.parquet").head(500)
    base = model.predict_proba(rows)
    renamed = rows.assign(subject_id=rows["subject_id"] * 13 + 5)
    np.testing.assert_array_equal(model.predict_proba(renamed), base)
    order = np.random.default_rng(0).permutation(len(rows))
    np.testing.assert_array_equal(model.predict_proba(rows.iloc[order]), base[order])


def test_pyfunc_by_alias_matches_the_in_memory_model(in_home):
    import mlflow

    from models.pyfunc import wire_frame
    from models.registry import load_model

    result, features_dir = in_home[0], in_home[1]
    rows = pd.read_parquet(features_dir / "elderly.parquet").tail(400)
    expected = result.model.predict_proba(rows)
    pyfunc = mlflow.pyfunc.load_model("models:/sote-risk-elderly-hospitalisation@challenger")
    # the pyfunc's wire format: categoricals as strings (its signature), as a REST client sends them
    wire = wire_frame(result.model, rows)
    np.testing.assert_allclose(pyfunc.predict(wire)["probability"], expected, rtol=0, atol=1e-12)
    loaded = load_model("elderly-hospitalisation", alias="challenger", expected_pipeline_version=PIPELINE_VERSION)
    np.testing.assert_allclose(loaded.predict_proba(rows), expected, rtol=0, atol=1e-12)
    assert loaded.metadata["threshold"] == result.model.metadata["threshold"] and loaded.spec["problem"] == "elderly-hospitalisation"


def test_loading_refuses_another_pipeline_version(in_home):
    from models.registry import PipelineVersionMismatch, load_model

    with pytest.raises(PipelineVersionMismatch, match="trained on feature pipeline 'test-pipeline-1'.*'features-9'"):
        load_model("elderly-hospitalisation", alias="challenger", expected_pipeline_version="features-9")


def test_promotion_refuses_a_worse_model_and_force_overrides(trained, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from training.pipeline import train_problem
    from training.promotion import list_models, promote

    _, features_dir, dataset_dir, _ = trained
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    good = train_problem(parse_spec(fast_spec_dict()), features_dir, dataset_dir=dataset_dir)
    first = promote("elderly-hospitalisation")
    assert first.promoted and not first.forced and first.challenger == good.model_version
    # a model that sees only noise: clearly worse on test_auroc
    others = [c for c in pd.read_parquet(features_dir / "elderly.parquet").columns if c not in ("noise_feature",)]
    worse_spec = parse_spec(fast_spec_dict(feature_families=["cost"], extra_features=["noise_feature"], monotone_increasing=[],
                                           exclude_features=others))  # every other feature left out on purpose
    worse = train_problem(worse_spec, features_dir, dataset_dir=dataset_dir)
    assert worse.metrics["test_auroc"] < good.metrics["test_auroc"]
    refused = promote("elderly-hospitalisation")
    assert not refused.promoted and "worse than the champion" in refused.message()
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("sote-risk-elderly-hospitalisation", "champion").version) == good.model_version
    forced = promote("elderly-hospitalisation", force=True)
    assert forced.promoted and forced.forced and forced.message().startswith("FORCED")
    version = client.get_model_version_by_alias("sote-risk-elderly-hospitalisation", "champion")
    assert str(version.version) == worse.model_version and version.tags["promotion_forced"] == "true"
    [row] = list_models()
    assert row["versions"] == 2 and row["aliases"]["champion"]["version"] == worse.model_version


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "SOTE_RISK_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
                          capture_output=True, text=True, env=env)


def test_cli_bad_input_is_one_line(tmp_path):
    result = run_cli("train", "--problem", "nope", "--data", str(tmp_path), home=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown problem 'nope'") and "Traceback" not in result.stderr
    result = run_cli("train", "--problem", "elderly-hospitalisation", "--data", str(tmp_path / "missing"), home=tmp_path)
    assert result.returncode == 2 and "features directory" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("train", "--data", str(tmp_path), home=tmp_path)
    assert result.returncode == 2 and "--problem P" in result.stderr


def test_cli_train_promote_list(trained_home_template, tmp_path):
    """`train --problem elderly-hospitalisation --trials 1` with the shipped spec (the session's
    run, conftest.py trained_home_template: the fixture's table without its `noise_feature`,
    which the shipped spec would refuse, see test_training_spec), then `models list` and
    `promote` on a copy of its home, as if trained there."""
    result = trained_home_template.train
    assert result.returncode == 0, result.stderr
    assert "version 1 (challenger) test_auroc" in result.stdout
    trained_home_template.copy_as_trained_there(tmp_path / "home")
    listed = run_cli("models", "list", home=tmp_path / "home")
    assert listed.returncode == 0 and "challenger" in listed.stdout
    assert "elderly-hospitalisation" in listed.stdout.replace("│", "").replace(" ", "").replace("\n", "")
    # a promotion bumps the serving generation file, so running services load the new champion
    from serving.generation import generation_file, read_generation

    assert read_generation(generation_file(tmp_path / "home")) == 0
    promoted = run_cli("promote", "--problem", "elderly-hospitalisation", "--force", home=tmp_path / "home")
    assert promoted.returncode == 0, promoted.stderr
    assert "reload their champions" in promoted.stdout
    assert read_generation(generation_file(tmp_path / "home")) == 1
    again = run_cli("promote", "--problem", "elderly-hospitalisation", home=tmp_path / "home")  # already champion: refused
    assert again.returncode == 1 and read_generation(generation_file(tmp_path / "home")) == 1


def test_cli_train_all_goes_on_after_a_failing_problem(tmp_path):
    """`train --all`: a problem the data cannot support fails with its reason on its own line, the
    next problem still trains, and the exit code says that something failed."""
    import yaml

    features_dir, dataset_dir = write_tables(tmp_path / "data")
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    good = fast_spec_dict()
    good["search"]["trials"] = 1
    (experiments / "elderly-hospitalisation.yaml").write_text(yaml.safe_dump(good, allow_unicode=True), encoding="utf-8")
    # sorts first; the fixture has no depression table, so this one fails before any training
    failing = {**good, "problem": "depression-hospitalisation", "segment": "depression"}
    (experiments / "depression-hospitalisation.yaml").write_text(yaml.safe_dump(failing, allow_unicode=True), encoding="utf-8")
    result = run_cli("train", "--all", "--experiments", str(experiments), "--data", str(features_dir),
                     "--dataset", str(dataset_dir), home=tmp_path / "home")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("depression-hospitalisation: failed: ") and "segment 'depression' not found" in lines[0]
    assert lines[1].startswith("elderly-hospitalisation: trained version 1 (challenger) test_auroc")
    assert "1 of 2 problem(s) failed: depression-hospitalisation" in result.stderr and "Traceback" not in result.stderr


def test_the_logged_input_example_is_synthetic(in_home, tmp_path):
    """Issue 16: the registry's input examples held real test-period rows; now no row of them is
    any real feature row, and no customer id appears in them."""
    from _artifact_checks import assert_no_customer_in, logged_examples
    from models.pyfunc import wire_frame

    from models.registry import configure_tracking

    result, features_dir = in_home[0], in_home[1]
    configure_tracking()  # this module's home (another test may have pointed MLflow elsewhere)
    table = pd.read_parquet(features_dir / "elderly.parquet")
    example, text = logged_examples("models:/sote-risk-elderly-hospitalisation@challenger", tmp_path)
    assert list(example.columns) == list(result.model.feature_names) and len(example) >= 1
    assert_no_customer_in(example, text, wire_frame(result.model, table), table["subject_id"].unique())



def test_no_subgroup_count_under_5_in_any_artifact(feature_tables, tmp_path, monkeypatch):  # noqa: F811
    """Issue 16: subgroups.csv showed groups down to 2 customers. Every count the run's artifacts
    give of a subgroup (subgroups.csv, the model card) is 0, at least 5 or '<5', and a group of
    fewer than 5 customers (here the age band 100.8+) shows no statistic either."""
    import mlflow

    from training.pipeline import train_problem

    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    features_dir, dataset_dir = feature_tables
    spec = fast_spec_dict()
    spec["subgroups"] = {**spec.get("subgroups", {}), "age_bands": [85, 95, 100.8]}  # 4 customers are 100.8+ in the test period
    result = train_problem(parse_spec(spec), features_dir, dataset_dir=dataset_dir)
    folder = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, dst_path=str(tmp_path / "artifacts")))
    table = pd.read_csv(folder / "subgroups.csv", dtype=str, keep_default_na=False)
    for column in ("rows", "customers", "events"):
        for cell in table[column]:
            assert cell in ("", "<5") or int(cell) == 0 or int(cell) >= 5, (column, cell)
    small = table["customers"] == "<5"
    assert small.any(), "a subgroup of fewer than 5 customers (else this test proves nothing)"
    assert (result.report.subgroup_table["customers"] < 5).sum() == small.sum()  # the gates still see the numbers
    assert (table.loc[small, ["rows", "events", "auroc", "o_e", "alert_rate"]] == "").all().all()
    for card, start, end in (("model_card.md", "## Subgroups", "## Calibration"),
                             ("model_card.html", "<h2>Subgroups</h2>", "<h2>Calibration</h2>")):
        text = (folder / card).read_text()
        section = text[text.index(start):text.index(end)]
        assert "fewer than 5 customers: not shown" in section, card
        assert not re.search(r"(\| |<td>)[1-4](<| \|)", section), card


def test_the_registered_model_carries_its_monitoring_reference(in_home):
    """training/monitoring.py: the training period's feature bins and the validation period's score
    bins travel with the model, so `sote-risk monitor` compares later months with what it learnt on."""
    from models.registry import load_model

    loaded = load_model("elderly-hospitalisation", alias="challenger", expected_pipeline_version=PIPELINE_VERSION)
    reference = loaded.metadata["monitoring_reference"]
    assert set(reference["features"]) == set(loaded.feature_names)
    assert reference["source"].startswith("stored at training")
    assert sum(reference["score"]["shares"]) == pytest.approx(1.0)
    assert reference["importance"][0] in loaded.feature_names
