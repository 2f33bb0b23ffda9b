"""A served model's promotion record (passed, forced past its gates, unchecked) travels with every
score it produces: nothing that failed its checks looks like it passed."""

from __future__ import annotations

import pytest

from scoring.champions import Gate, gate_of

PROBLEM = "elderly-homecare_failure"


@pytest.mark.parametrize("tags, expected", [
    ({}, Gate("unchecked")),
    ({"promoted_at": "2026-12-01T10:00:00+00:00"}, Gate("passed")),
    ({"promoted_at": "2026-12-01T10:00:00+00:00", "promotion_forced": "true",
      "promotion_forced_reasons": "test_auroc 0.6190 does not beat the baseline's 0.6498; subgroup Luumäki O/E 1.9"},
     Gate("forced", ("test_auroc 0.6190 does not beat the baseline's 0.6498", "subgroup Luumäki O/E 1.9"))),
    ({"promotion_forced": "false", "promoted_at": "x"}, Gate("passed")),
])
def test_the_record_is_read_from_the_version_tags_promote_writes(tags, expected):
    assert gate_of(tags) == expected


@pytest.mark.slow
def test_a_forced_champion_is_flagged_in_every_score_answer(fixture_home, monkeypatch):
    """Registry tags as `sote-risk promote --force` leaves them -> the loaded champion, /score,
    /explain and /predict_row answers carry the record and its words; the others stay unchecked."""
    from mlflow import MlflowClient

    from base.settings import settings
    from models.registry import configure_tracking, model_name, resolve_version
    from scoring.backend import load_backend
    from scoring.scorer import Scorer
    from serving.responses import explain_response, row_response, score_response
    from tests.serving_fixture import members

    monkeypatch.setenv("SOTE_RISK_HOME", str(fixture_home))
    configure_tracking()
    version = resolve_version(PROBLEM, "champion").version
    client = MlflowClient()
    for key, value in {"promoted_at": "2026-12-01T10:00:00+00:00", "promotion_forced": "true",
                       "promotion_forced_reasons": "test_auroc 0.6190 does not beat the baseline's 0.6498"}.items():
        client.set_model_version_tag(model_name(PROBLEM), version, key, value)
    scorer = Scorer(load_backend(settings()))
    assert scorer.champion(PROBLEM).gate == Gate("forced", ("test_auroc 0.6190 does not beat the baseline's 0.6498",))
    assert scorer.champion("elderly-hospitalisation").gate == Gate("unchecked")

    subject = members(PROBLEM, limit=1)[0]
    answer = score_response(scorer.score_customer(subject, None, 3)).model_dump(mode="json")
    gates = {risk["problem"]: risk["gate"] for risk in answer["risks"]}
    assert gates[PROBLEM] == {"status": "forced", "reasons": ["test_auroc 0.6190 does not beat the baseline's 0.6498"],
                              "label_en": "Put in use although it did not pass its quality checks",
                              "label_fi": "Otettu käyttöön, vaikka se ei läpäissyt laatutarkistuksia"}
    assert all(g["status"] == "unchecked" for p, g in gates.items() if p != PROBLEM)
    for risk in answer["risks"]:
        assert "180" in risk["meaning_fi"] or "90" in risk["meaning_fi"]
        assert "alive" in risk["meaning_en"] and "elossa" in risk["meaning_fi"]
    explained = explain_response(scorer.explain(subject, PROBLEM, None)).model_dump(mode="json")
    assert explained["gate"]["status"] == "forced"
    row = dict.fromkeys(scorer.champion(PROBLEM).model.feature_names)
    assert row_response(scorer.predict_row(PROBLEM, row)).gate.status == "forced"
