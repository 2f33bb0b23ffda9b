"""The alert card (CDS Hooks shape) and CRM feedback: validation, storage, report.

Cards carry real reasons: a test-region customer's top reasons from the scoring path
(_alerts_helpers.flagged), as explain.reasons.Reason objects, the one reason type."""

from datetime import datetime

import pytest
from pydantic import ValidationError

from alerts import feedback, outbox
from alerts.policy import AlertPolicy
from alerts.cards import INDICATOR_BY_BAND, CardInput, build_card
from explain.chains import suggest_chains
from explain.reasons import Reason
from _alerts_helpers import PROBLEM, TOP_K, flagged, reasons, record

AS_OF = datetime(2025, 3, 1)


def card(**overrides):
    values = dict(subject_id=42, problem=PROBLEM, as_of=AS_OF, probability=0.62, band="very_high",
                  model_version="elderly-hospitalisation/3", reasons=reasons(), page_url="http://127.0.0.1/p/42")
    return build_card(CardInput(**(values | overrides)))


def detail_lines(reasons_, language="en"):
    return [f"- {'↑' if r.direction == 'up' else '↓'} {r.text_en if language == 'en' else r.text_fi}" for r in reasons_]


def fhir_of(who, reasons_):
    from alerts.fhir import risk_assessment

    return risk_assessment(subject_id=who.subject_id, problem=PROBLEM, outcome_label="Unplanned hospitalisation",
                           time=who.time, horizon_days=90, probability=who.probability, band=who.band,
                           model_version=who.model_version, pipeline_version=who.pipeline_version, reasons=reasons_)


def test_card_has_the_cds_hooks_shape_and_our_extension():
    from fhir.resources.R4B.riskassessment import RiskAssessment

    who = flagged()
    given = list(who.reasons)
    assert all(isinstance(r, Reason) for r in given) and len(given) == TOP_K
    fhir = fhir_of(who, given)
    c = card(subject_id=who.subject_id, as_of=who.time, probability=who.probability, band=who.band,
             model_version=who.model_version, page_url=f"http://127.0.0.1/p/{who.subject_id}", fhir=fhir)
    assert c["uuid"] == outbox.alert_id_for(who.subject_id, PROBLEM, who.time.date())
    assert len(c["summary"]) < 140 and f"{who.probability:.0%}" in c["summary"]
    assert c["indicator"] == INDICATOR_BY_BAND[who.band]
    assert c["source"]["label"] and c["source"]["topic"]["code"] == PROBLEM
    # every reason, in the scoring path's order, with its arrow, and nothing else
    listed = [line for line in c["detail"].splitlines() if line.startswith("- ")]
    assert listed == detail_lines(given) and "(no reasons available)" not in c["detail"]
    assert f"_Model estimate, not a diagnosis; model version {who.model_version}._" in c["detail"]
    # the chains the clinician page suggests for the same reasons (explain/chains.py)
    page_chains = suggest_chains(given)
    assert page_chains and [s["label"] for s in c["suggestions"]] == [s.label_en for s in page_chains]
    assert [s["isRecommended"] for s in c["suggestions"]] == [True] + [False] * (len(page_chains) - 1)
    assert c["selectionBehavior"] == "any"
    assert c["links"] == [{"label": "Why this customer was flagged", "url": f"http://127.0.0.1/p/{who.subject_id}",
                           "type": "absolute"}]
    ext = c["extension"]
    assert ext["subject_pseudonym"] == who.subject_id and ext["band"] == who.band
    assert ext["probability"] == round(who.probability, 4) and ext["model_version"] == who.model_version
    assert ext["fhir_risk_assessment"] == fhir
    resource = RiskAssessment.model_validate(ext["fhir_risk_assessment"])  # a valid FHIR R4 resource
    assert resource.subject.reference == f"Patient/{who.subject_id}"
    assert [n.text for n in resource.note] == [f"({'+' if r.direction == 'up' else '-'}) {r.text_en}" for r in given]
    assert {r["code"] for r in c["overrideReasons"]} >= {"already-known", "not-relevant"}


@pytest.mark.parametrize("band, indicator", [("low", "info"), ("moderate", "info"), ("high", "warning"), ("very_high", "critical")])
def test_indicator_follows_the_band(band, indicator):
    assert card(band=band)["indicator"] == indicator


def test_card_in_finnish_and_with_given_suggestions():
    given = reasons()
    c = card(suggestions=[{"chain": "home_rehabilitation", "label_en": "Home rehabilitation", "label_fi": "Kotikuntoutus"}],
             page_url=None)
    fi = build_card(CardInput(42, PROBLEM, AS_OF, 0.3, "high", "m", given, suggestions=["Kotikuntoutus"]), language="fi")
    assert [s["label"] for s in c["suggestions"]] == ["Home rehabilitation"] and c["links"] == []
    assert fi["summary"].startswith("Korkea") and "30%" in fi["summary"]
    assert [line for line in fi["detail"].splitlines() if line.startswith("- ")] == detail_lines(given, "fi")
    assert fi["detail"].startswith("**Tärkeimmät syyt**") and "Mallin arvio, ei diagnoosi" in fi["detail"]
    assert [s["label"] for s in fi["suggestions"]] == ["Kotikuntoutus"]


def test_card_chains_come_from_the_one_chain_table():
    """explain/chains.py owns the chain codes and labels; the card reads them (fi and en)."""
    from explain.chains import default_rules

    labels = {rule.chain: rule for rule in default_rules()}
    chains = [s.chain for s in suggest_chains(reasons())]
    en = card()
    fi = build_card(CardInput(42, PROBLEM, AS_OF, 0.3, "high", "m", reasons()), language="fi")
    assert chains and all(chain in labels for chain in chains)
    assert [s["label"] for s in en["suggestions"]] == [labels[chain].label_en for chain in chains]
    assert [s["label"] for s in fi["suggestions"]] == [labels[chain].label_fi for chain in chains]
    import alerts.cards as cards

    assert not hasattr(cards, "SERVICE_CHAINS")


def test_a_card_without_given_suggestions_offers_the_pages_chains_for_every_alerted_customer():
    """The clinician page (serving/pages.py) and the population run's cards suggest
    explain.chains.suggest_chains(reasons); a card built without given suggestions must derive the
    same chains from the same reasons, or the CRM and the page disagree about one customer."""
    import numpy as np

    from scoring import path
    from tests.serving_fixture import make_backend, members, models, store

    champion = make_backend(models([PROBLEM])).champions[PROBLEM]
    held = store()
    time = held.resolve_time(None)
    ids = members(PROBLEM, time)
    rows = path.score_pairs(held.history, ids, [time] * len(ids), {PROBLEM: champion}).problems[PROBLEM]
    alerted = np.flatnonzero(rows.probabilities >= 0.2)  # the pinned model's alert threshold
    assert len(alerted) >= 5
    differ = {}
    for row, values in zip(alerted, path.contributions(rows, alerted)):
        given = path.reasons(rows, int(row), values, TOP_K)
        built = build_card(CardInput(int(ids[rows.positions[row]]), PROBLEM, time, float(rows.probabilities[row]),
                                     rows.band(int(row)), champion.version, given))
        offered = [s["label"] for s in built.get("suggestions", [])]
        page = [s.label_en for s in suggest_chains(given)]
        if offered != page:
            differ[int(ids[rows.positions[row]])] = (offered, page)
    assert differ == {}, f"card default chains vs the page's (card, page): {differ}"


def test_card_rejects_nonsense():
    with pytest.raises(ValueError, match="band"):
        card(band="extreme")
    with pytest.raises(ValueError, match="probability"):
        card(probability=1.5)
    # a malformed reason cannot be made: the Reason type refuses it
    good = reasons()[0].model_dump()
    with pytest.raises(ValidationError, match="direction"):
        Reason.model_validate({**good, "direction": "sideways"})
    with pytest.raises(ValidationError, match="contribution"):
        Reason.model_validate({**good, "contribution": "a lot"})
    with pytest.raises(ValidationError, match="shap"):
        Reason.model_validate({**good, "shap": 0.3})  # no unknown fields
    # the old plain-dict reasons are not reasons any more
    old = {"text_en": "3 emergency visits in 90 days", "text_fi": "3 päivystyskäyntiä 90 päivässä",
           "direction": "up", "feature": "n_emergency_90d"}
    with pytest.raises(ValidationError) as refused:
        Reason.model_validate(old)
    assert {"family", "label_en", "label_fi", "contribution", "features"} <= {e["loc"][0] for e in refused.value.errors()}
    with pytest.raises((AttributeError, TypeError, ValueError)):
        card(reasons=[old])


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
