"""What a registered model carries besides the model (issue 16): its input examples are made up
from the model itself, never customers' rows, wherever a model is logged: the test fixtures'
register helper here (training's own in test_training_pipeline.py)."""

from __future__ import annotations

import pytest

from tests._artifact_checks import assert_no_customer_in, logged_examples
from tests.serving_fixture import members, models, region, store

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("problem", ["elderly-hospitalisation", "acute-hospitalisation"])
def test_the_fixture_home_s_models_carry_a_synthetic_input_example(fixture_home, monkeypatch, tmp_path, problem):
    from features import compute_features
    from models.pyfunc import wire_frame
    from models.registry import configure_tracking, model_name

    monkeypatch.setenv("SOTE_RISK_HOME", str(fixture_home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    configure_tracking()
    model = models([problem])[problem]
    example, text = logged_examples(f"models:/{model_name(problem)}@champion", tmp_path)
    assert list(example.columns) == list(model.feature_names)
    held = store()
    ids = members(problem)  # every member's real row at the end of the data (what the example held before)
    rows = compute_features(None, None, ids, [held.resolve_time(None)] * len(ids), problem.split("-")[0], history=held.history)
    assert_no_customer_in(example, text, wire_frame(model, rows), region().customers["subject_id"])
    assert model.predict_proba(example).shape == (len(example),)  # it is a valid input all the same
