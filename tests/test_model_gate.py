"""A served model's promotion record (passed, forced past its gates, unchecked) travels with every
score it produces: nothing that failed its checks looks like it passed."""

from __future__ import annotations

import json

import pytest

from scoring.champions import Gate, gate_of

PROBLEM = "elderly-homecare_failure"


@pytest.mark.parametrize("tags, expected", [
    ({}, Gate("unchecked")),
    ({"promoted_at": "2026-12-01T10:00:00+00:00"}, Gate("passed")),
    ({"promoted_at": "2026-12-01T10:00:00+00:00", "promotion_forced": "true",
      "promotion_forced_reasons": "test_auroc 0.6190 does not beat the baseline's 0.6498; subgroup Luumäki O/E 1.9"},
     Gate("forced", ("test_auroc 0.6190 does not beat the baseline's 0.6498", "subgroup Luumäki O/E 1.9"))),
    ({"promoted_at": "x", "promotion_forced": "true",  # as promote writes them now: a reason may hold "; "
      "promotion_forced_reasons": '["1 subgroup gap(s) beyond tolerance: sex=F:auroc (auroc 0.612; 1,234 rows, 56 events)"]'},
     Gate("forced", ("1 subgroup gap(s) beyond tolerance: sex=F:auroc (auroc 0.612; 1,234 rows, 56 events)",))),
    ({"promotion_forced": "false", "promoted_at": "x"}, Gate("passed")),
])
def test_the_record_is_read_from_the_version_tags_promote_writes(tags, expected):
    assert gate_of(tags) == expected


@pytest.mark.slow
def test_a_forced_champion_is_flagged_in_every_score_answer(fixture_home, monkeypatch):
    """Registry tags as `sote-risk promote --force` leaves them -> the loaded champion, /score,
    /explain and /predict_row answers carry the record and its words; the others (promoted as the fixture registers them) stay passed."""
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
    assert scorer.champion("elderly-hospitalisation").gate == Gate("passed")

    subject = members(PROBLEM, limit=1)[0]
    answer = score_response(scorer.score_customer(subject, None, 3)).model_dump(mode="json")
    gates = {risk["problem"]: risk["gate"] for risk in answer["risks"]}
    assert gates[PROBLEM] == {"status": "forced", "reasons": ["test_auroc 0.6190 does not beat the baseline's 0.6498"],
                              "label_en": "Put in use although it did not pass its quality checks",
                              "label_fi": "Otettu käyttöön, vaikka se ei läpäissyt laatutarkistuksia"}
    assert all(g["status"] == "passed" for p, g in gates.items() if p != PROBLEM)
    for risk in answer["risks"]:
        assert "180" in risk["meaning_fi"] or "90" in risk["meaning_fi"]
        assert "dies within that time" in risk["meaning_en"] and "kuolee tänä aikana" in risk["meaning_fi"]
    explained = explain_response(scorer.explain(subject, PROBLEM, None)).model_dump(mode="json")
    assert explained["gate"]["status"] == "forced"
    row = dict.fromkeys(scorer.champion(PROBLEM).model.feature_names)
    assert row_response(scorer.predict_row(PROBLEM, row)).gate.status == "forced"


@pytest.mark.slow
def test_a_forced_model_raises_no_card_unless_allowed_and_its_cards_say_so(tmp_path):
    """`run` records a forced model's scores but holds its alerts; with --allow-forced its cards
    are sent, and each card, its detail in both languages and its FHIR resource flag the model."""

    from alerts import outbox
    from alerts.cards import WORDS
    from alerts.fhir import GATE_EXTENSION
    from alerts.population import Links, run_population
    from scoring.backend import Backend
    from scoring.champions import champion_from_model
    from tests.serving_fixture import models, span, store
    from vocabulary import vocabulary

    chosen = models()
    for model in chosen.values():
        model.metadata["threshold"] = 0.01  # many alerts on the small region
    forced = Gate("forced", ("test_auroc 0.6190 does not beat the baseline's 0.6498",))
    champions = {p: champion_from_model(p, m, gate=forced if p == "elderly-hospitalisation" else Gate("passed"))
                 for p, m in chosen.items()}
    held = store()
    backend = Backend(champions, lambda: held)
    as_of = (span()[1] - __import__("pandas").DateOffset(months=1)).date()
    links = Links("http://crm.example:3000", b"0123456789abcdef0123456789abcdef", "en", 14)

    def run(name: str, allow: bool):
        conn = outbox.connect(tmp_path / f"{name}.db")
        result = run_population(backend, conn, as_of, links=links, today=as_of, allow_forced=allow)
        cards = [json.loads(body) for (body,) in conn.execute("SELECT payload FROM alerts")]
        scores = conn.execute("SELECT COUNT(*) FROM scores WHERE problem = 'elderly-hospitalisation'").fetchone()[0]
        conn.close()
        return result, cards, scores

    held_result, held_cards, held_scores = run("held", allow=False)
    by_problem = {p.problem: p for p in held_result.problems}
    assert by_problem["elderly-hospitalisation"].held > 0 and by_problem["elderly-hospitalisation"].gate == "forced"
    assert held_scores == by_problem["elderly-hospitalisation"].eligible  # every score recorded
    assert not [c for c in held_cards for r in c["extension"]["risks"] if r["problem"] == "elderly-hospitalisation"]
    assert all(p.held == 0 for p in held_result.problems if p.problem != "elderly-hospitalisation")

    sent_result, sent_cards, _ = run("sent", allow=True)
    flagged = [c for c in sent_cards if any(r["problem"] == "elderly-hospitalisation" for r in c["extension"]["risks"])]
    assert len(flagged) == by_problem["elderly-hospitalisation"].held  # the held alerts are exactly these
    label = vocabulary().gate_label("forced", "en")
    for card in flagged:
        assert card["summary"].startswith("⚠ ")
        said = "Test-period AUROC 0.6190 does not beat the simple baseline's 0.6498"  # vocabulary/gates.py's words
        assert WORDS["gate"]["en"].format(label=label) in card["detail"] and said in card["detail"]
        risk = next(r for r in card["extension"]["risks"] if r["problem"] == "elderly-hospitalisation")
        assert risk["gate"] == {"status": "forced", "reasons": list(forced.reasons)}
        resource = risk["fhir_risk_assessment"]
        assert resource["extension"] == [{"url": GATE_EXTENSION, "valueCode": "forced"}]
        assert resource["note"][0]["text"] == f"⚠ {label} ({said})"
    others = [c for c in sent_cards if c not in flagged]
    assert others and not any(c["summary"].startswith("⚠") for c in others)
