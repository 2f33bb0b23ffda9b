"""The alert card (CDS Hooks shape) and CRM feedback: validation, storage, report."""

from datetime import date, datetime

import pytest

from alerts import feedback, outbox
from alerts.policy import AlertPolicy
from alerts.cards import CardInput, build_card
from _alerts_helpers import PROBLEM, REASONS, record


def card(**overrides):
    values = dict(subject_id=42, problem=PROBLEM, as_of=datetime(2025, 3, 1), probability=0.62, band="very_high",
                  model_version="elderly-hospitalisation/3", reasons=REASONS, page_url="http://127.0.0.1/p/42")
    return build_card(CardInput(**(values | overrides)))


def test_card_has_the_cds_hooks_shape_and_our_extension():
    c = card(fhir={"resourceType": "RiskAssessment"})
    assert c["uuid"] == outbox.alert_id_for(42, PROBLEM, date(2025, 3, 1))
    assert len(c["summary"]) < 140 and "62%" in c["summary"]
    assert c["indicator"] == "critical"
    assert c["source"]["label"] and c["source"]["topic"]["code"] == PROBLEM
    assert "3 emergency visits in 90 days" in c["detail"]
    assert [s["label"] for s in c["suggestions"]] == ["Care coordinator review"]  # from the risk-raising reason
    assert c["selectionBehavior"] == "any"
    assert c["links"] == [{"label": "Why this customer was flagged", "url": "http://127.0.0.1/p/42", "type": "absolute"}]
    ext = c["extension"]
    assert ext["subject_pseudonym"] == 42 and ext["band"] == "very_high" and ext["probability"] == 0.62
    assert ext["model_version"] == "elderly-hospitalisation/3"
    assert ext["fhir_risk_assessment"] == {"resourceType": "RiskAssessment"}
    assert {r["code"] for r in c["overrideReasons"]} >= {"already-known", "not-relevant"}


@pytest.mark.parametrize("band, indicator", [("low", "info"), ("moderate", "info"), ("high", "warning"), ("very_high", "critical")])
def test_indicator_follows_the_band(band, indicator):
    assert card(band=band)["indicator"] == indicator


def test_card_in_finnish_and_with_given_suggestions():
    c = card(suggestions=[{"chain": "home_rehabilitation", "label_en": "Home rehabilitation", "label_fi": "Kotikuntoutus"}],
             page_url=None)
    fi = build_card(CardInput(42, PROBLEM, datetime(2025, 3, 1), 0.3, "high", "m", REASONS,
                              suggestions=["Kotikuntoutus"]), language="fi")
    assert [s["label"] for s in c["suggestions"]] == ["Home rehabilitation"] and c["links"] == []
    assert fi["summary"].startswith("Korkea") and "3 päivystyskäyntiä" in fi["detail"]


def test_card_chains_come_from_the_one_chain_table():
    """explain/chains.py owns the chain codes and labels; the card reads them (fi and en)."""
    from explain.chains import default_rules

    labels = {rule.chain: rule for rule in default_rules()}
    en, fi = card(), build_card(CardInput(42, PROBLEM, datetime(2025, 3, 1), 0.3, "high", "m", REASONS), language="fi")
    assert [s["label"] for s in en["suggestions"]] == [labels["care_coordinator_review"].label_en]
    assert [s["label"] for s in fi["suggestions"]] == [labels["care_coordinator_review"].label_fi]
    import alerts.cards as cards

    assert not hasattr(cards, "SERVICE_CHAINS")


def test_card_rejects_nonsense():
    with pytest.raises(ValueError, match="band"):
        card(band="extreme")
    with pytest.raises(ValueError, match="direction"):
        card(reasons=[{"text_en": "x", "text_fi": "x", "direction": "sideways", "feature": "f"}])


# --- feedback -----------------------------------------------------------------------------------


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def overridden(code="already-known", display="Already known", at="2025-03-02T08:00:00Z"):
    return {"outcome": "overridden", "overrideReason": {"reason": {"code": code, "display": display}},
            "outcomeTimestamp": at}


def test_feedback_is_stored_once_and_reported(conn):
    record(conn, [1, 2, 3, 4])
    ids = {r["subject_id"]: r["alert_id"] for r in outbox.list_alerts(conn)}
    result = feedback.record_feedback(conn, ids[1], {"card": ids[1], "outcome": "accepted",
                                                     "outcomeTimestamp": "2025-03-02T08:00:00+02:00"})
    assert (result.outcome, result.duplicate) == ("accepted", False)
    again = feedback.record_feedback(conn, ids[1], {"outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00+02:00"})
    assert again.duplicate and again.feedback_id == result.feedback_id
    feedback.record_feedback(conn, ids[2], {"feedback": [overridden()]})  # CDS Hooks wrapper
    feedback.record_feedback(conn, ids[3], {"outcome": "overridden",  # flat reason form
                                            "overrideReason": {"code": "already-known", "display": "Already known"},
                                            "outcomeTimestamp": "2025-03-02T09:00:00Z"})
    feedback.record_feedback(conn, ids[4], overridden("not-relevant", "Not relevant"))
    # a later verdict on alert 4 replaces the earlier one in the report
    feedback.record_feedback(conn, ids[4], {"outcome": "accepted", "outcomeTimestamp": "2025-03-03T08:00:00Z"})
    [r] = feedback.report(conn)
    assert (r.problem, r.sent, r.with_feedback, r.accepted, r.overridden) == (PROBLEM, 4, 4, 2, 2)
    assert r.acceptance_rate == 0.5
    assert r.top_override_reasons == [("already-known", "Already known", 2)]


def test_feedback_for_an_unknown_alert_names_the_id(conn):
    with pytest.raises(feedback.NotFound, match="no-such-alert"):
        feedback.record_feedback(conn, "no-such-alert", {"outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00Z"})


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"outcome": "maybe", "outcomeTimestamp": "2025-03-02T08:00:00Z"}, "outcome"),
        ({"outcome": "accepted"}, "outcomeTimestamp"),
        ({"outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00"}, "outcomeTimestamp"),  # no timezone
        ({"outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00Z", "verdict": "x"}, "verdict"),
        ({"outcome": "overridden", "overrideReason": {"reason": {"code": ""}}, "outcomeTimestamp": "2025-03-02T08:00:00Z"},
         "overrideReason.reason.code"),
        ({**overridden(), "outcome": "accepted"}, "overrideReason"),
        ({"card": "another-alert", "outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00Z"}, "card"),
        (["not", "an", "object"], "body"),
    ],
)
def test_bad_feedback_names_the_field(conn, payload, field):
    record(conn, [1])
    alert_id = outbox.list_alerts(conn)[0]["alert_id"]
    with pytest.raises(feedback.FeedbackInvalid) as error:
        feedback.record_feedback(conn, alert_id, payload)
    assert field in str(error.value) and alert_id in str(error.value)
    assert conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


def test_feedback_on_an_alert_never_sent_is_refused(conn):
    record(conn, [1, 2], policy=AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=1))
    queued = outbox.list_alerts(conn, status="queued")[0]["alert_id"]
    with pytest.raises(feedback.FeedbackInvalid, match="never sent"):
        feedback.record_feedback(conn, queued, {"outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00Z"})
