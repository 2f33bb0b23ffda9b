"""The alert card (CDS Hooks shape, one per customer naming each problem, in the CRM's language)
and CRM feedback: validation, storage, report.

Cards carry real reasons: a test-region customer's top reasons from the scoring path
(_alerts_helpers.flagged), as explain.reasons.Reason objects, the one reason type."""

import re
from datetime import datetime

import pytest
from pydantic import ValidationError

from alerts import feedback, outbox
from alerts.policy import AlertPolicy
from alerts.cards import INDICATOR_BY_BAND, OVERRIDE_REASONS, WORDS, CardInput, ProblemRisk, build_card
from explain.chains import suggest_chains
from explain.reasons import Reason
from vocabulary import vocabulary
from vocabulary.numbers import percent
from _alerts_helpers import PROBLEM, TOP_K, flagged, reasons, record, record_many, scores_of

AS_OF = datetime(2025, 3, 1)
ACUTE = "acute-hospitalisation"


def risk(**overrides):
    values = dict(problem=PROBLEM, probability=0.62, band="very_high", model_version="14", reasons=reasons())
    return ProblemRisk(**(values | overrides))


def card(language="en", page_url="http://127.0.0.1/p/42", **overrides):
    return build_card(CardInput(subject_id=42, as_of=AS_OF, risks=[risk(**overrides)], page_url=page_url), language=language)


def detail_lines(reasons_, language="en"):
    return [f"- {'↑' if r.direction == 'up' else '↓'} {r.text_en if language == 'en' else r.text_fi}" for r in reasons_]


def listed(card_):
    return [line for line in card_["detail"].splitlines() if line.startswith("- ")]


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
    c = build_card(CardInput(who.subject_id, who.time, [ProblemRisk(PROBLEM, who.probability, who.band, who.model_version,
                                                                    given, fhir=fhir)],
                             page_url=f"http://127.0.0.1/p/{who.subject_id}"), language="en")
    assert c["uuid"] == outbox.card_id(who.subject_id, who.time.date())
    assert c["summary"] == f"{vocabulary().band_label(who.band, 'en')} risk of {vocabulary().outcome_text(PROBLEM, 'en')} " \
                           f"({percent(who.probability, 'en')})"
    assert len(c["summary"]) < 140
    assert c["indicator"] == INDICATOR_BY_BAND[who.band]
    assert c["source"]["label"] and c["source"]["topic"]["code"] == PROBLEM
    # the problem's words, its risk line, every reason in the scoring path's order with its arrow, and nothing else
    assert f"**1. {vocabulary().problem_label(PROBLEM, 'en')}**" in c["detail"]
    assert f"Risk {percent(who.probability, 'en')} ({vocabulary().band_label(who.band, 'en').lower()}) · model version " \
           f"{who.model_version}" in c["detail"]
    assert listed(c) == detail_lines(given) and "(no reasons available)" not in c["detail"]
    assert c["detail"].endswith(f"_{WORDS['note_1']['en']}_")
    # the chains the clinician page suggests for the same reasons (explain/chains.py)
    page_chains = suggest_chains(given)
    assert page_chains and [s["label"] for s in c["suggestions"]] == [s.label_en for s in page_chains]
    assert [s["isRecommended"] for s in c["suggestions"]] == [True] + [False] * (len(page_chains) - 1)
    assert c["selectionBehavior"] == "any"
    assert c["links"] == [{"label": "Why this customer was flagged", "url": f"http://127.0.0.1/p/{who.subject_id}",
                           "type": "absolute"}]
    ext = c["extension"]
    assert (ext["subject_pseudonym"], ext["language"], ext["as_of"]) == (who.subject_id, "en", outbox.as_of_key(who.time))
    [only] = ext["risks"]
    assert (only["problem"], only["band"], only["model_version"]) == (PROBLEM, who.band, who.model_version)
    assert only["probability"] == round(who.probability, 4) and only["fhir_risk_assessment"] == fhir
    resource = RiskAssessment.model_validate(only["fhir_risk_assessment"])  # a valid FHIR R4 resource
    assert resource.subject.reference == f"Patient/{who.subject_id}"
    assert [n.text for n in resource.note] == [f"({'+' if r.direction == 'up' else '-'}) {r.text_en}" for r in given]
    assert {r["code"] for r in c["overrideReasons"]} >= {"already-known", "not-relevant"}


def test_one_card_names_each_problem_highest_risk_first():
    """A customer at risk in several problems: one card, each problem's outcome and population,
    its risk and its own reasons, ordered by risk; the summary names the highest and counts the rest."""
    elderly_reasons, acute_reasons = reasons()[:3], reasons()[3:]
    c = build_card(CardInput(42, AS_OF, [
        risk(probability=0.29, band="high", reasons=elderly_reasons),
        risk(problem=ACUTE, probability=0.48, band="high", model_version="10", reasons=acute_reasons),
        risk(problem="depression-hospitalisation", probability=0.39, band="high", model_version="12", reasons=[]),
    ]), language="en")
    order = [ACUTE, "depression-hospitalisation", PROBLEM]
    assert [r["problem"] for r in c["extension"]["risks"]] == order
    assert c["summary"] == f"High risk of {vocabulary().outcome_text(ACUTE, 'en')} (48.0%) and 2 more risks"
    assert c["source"]["topic"]["code"] == ACUTE
    headings = re.findall(r"^\*\*(\d)\. (.+)\*\*$", c["detail"], flags=re.M)
    assert headings == [(str(i), vocabulary().problem_label(p, "en")) for i, p in enumerate(order, start=1)]
    assert len(set(h for _, h in headings)) == 3  # the same outcome, told apart by the population
    sections = c["detail"].split("\n**")[1:]  # after the heading, one section per problem
    assert [line for line in sections[0].splitlines() if line.startswith("- ")] == detail_lines(acute_reasons)
    assert [line for line in sections[1].splitlines() if line.startswith("- ")] == ["- (no reasons available)"]
    assert [line for line in sections[2].splitlines() if line.startswith("- ")] == detail_lines(elderly_reasons)
    assert "Risk 48.0% (high) · model version 10" in sections[0] and "Risk 29.0% (high) · model version 14" in sections[2]
    assert c["detail"].startswith("**Risks, highest first**") and c["detail"].endswith(f"_{WORDS['note_n']['en']}_")
    # chains from every problem's reasons, each once, in the card's order
    expected = []
    for given in (acute_reasons, [], elderly_reasons):
        expected += [s.label_en for s in suggest_chains(given) if s.label_en not in expected]
    assert [s["label"] for s in c.get("suggestions", [])] == expected
    fi = build_card(CardInput(42, AS_OF, [risk(), risk(problem=ACUTE, probability=0.1, band="moderate")]), language="fi")
    assert fi["summary"].endswith("(62,0\u00a0%) ja 1 muu riski") and fi["indicator"] == "critical"


@pytest.mark.parametrize("band, indicator", [("low", "info"), ("moderate", "info"), ("high", "warning"), ("very_high", "critical")])
def test_indicator_follows_the_band(band, indicator):
    assert card(band=band)["indicator"] == indicator


def test_the_finnish_card_speaks_finnish_and_writes_finnish_numbers():
    given = reasons()
    fi = build_card(CardInput(42, AS_OF, [risk(probability=0.254, band="high",
                                                suggestions=[{"chain": "home_rehabilitation", "label_en": "Home rehabilitation",
                                                              "label_fi": "Kotikuntoutus"}])],
                              page_url="http://x/p"), language="fi")
    assert fi["summary"] == f"Korkea riski: {vocabulary().outcome_text(PROBLEM, 'fi')} (25,4\u00a0%)"
    assert "Riski 25,4\u00a0% (korkea) · mallin versio 14" in fi["detail"]
    assert listed(fi) == detail_lines(given, "fi")
    assert fi["detail"].startswith("**Riski**") and fi["detail"].endswith("_Mallin arvio, ei diagnoosi._")
    assert f"**1. {vocabulary().problem_label(PROBLEM, 'fi')}**" in fi["detail"]
    assert [s["label"] for s in fi["suggestions"]] == ["Kotikuntoutus"]
    assert [r["display"] for r in fi["overrideReasons"]] == [d["fi"] for _, d in OVERRIDE_REASONS]
    assert fi["links"][0]["label"] == "Miksi asiakas nousi esiin" and fi["source"]["label"] == WORDS["source"]["fi"]
    assert fi["source"]["topic"]["display"] == vocabulary().problem_label(PROBLEM, "fi")
    en = build_card(CardInput(42, AS_OF, [risk(probability=0.254, band="high")], page_url="http://x/p"), language="en")
    assert "(25.4%)" in en["summary"] and en["uuid"] == fi["uuid"]  # one card, told in either language


def test_the_card_language_defaults_to_the_crms(monkeypatch):
    monkeypatch.delenv("SOTE_RISK_CRM_LANGUAGE", raising=False)
    assert build_card(CardInput(42, AS_OF, [risk()]))["extension"]["language"] == "fi"
    monkeypatch.setenv("SOTE_RISK_CRM_LANGUAGE", "en")
    assert build_card(CardInput(42, AS_OF, [risk()]))["summary"].startswith("Very high risk of")


def test_card_chains_come_from_the_one_chain_table():
    """explain/chains.py owns the chain codes and labels; the card reads them (fi and en)."""
    from explain.chains import default_rules

    labels = {rule.chain: rule for rule in default_rules()}
    chains = [s.chain for s in suggest_chains(reasons())]
    en = card()
    fi = card(language="fi")
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
        built = build_card(CardInput(int(ids[rows.positions[row]]), time, [
            ProblemRisk(PROBLEM, float(rows.probabilities[row]), rows.band(int(row)), champion.version, given)]), language="en")
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
    with pytest.raises(ValueError, match="unknown problem"):
        card(problem="elderly-flying")
    with pytest.raises(ValueError, match="names no problem"):
        build_card(CardInput(42, AS_OF, []), language="en")
    with pytest.raises(ValueError, match="names a problem twice"):
        build_card(CardInput(42, AS_OF, [risk(), risk(probability=0.3)]), language="en")
    with pytest.raises(ValueError, match="language 'sv'"):
        card(language="sv")
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


def test_feedback_names_the_card_and_counts_for_each_problem_it_names(conn):
    record_many(conn, scores_of((1, PROBLEM, 0.4), (1, ACUTE, 0.6), (2, ACUTE, 0.3)))
    cards = {a["subject_id"]: a["alert_id"] for a in outbox.list_alerts(conn)}
    assert cards[1] == outbox.card_id(1, AS_OF)  # the card's uuid, what the CRM sends back
    result = feedback.record_feedback(conn, cards[1], {"card": cards[1], "outcome": "overridden",
                                                       "overrideReason": {"code": "already-in-service"},
                                                       "outcomeTimestamp": "2025-03-02T08:00:00Z"})
    assert (result.alert_id, result.duplicate) == (cards[1], False)
    assert conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 1  # one verdict on one card
    by_problem = {r.problem: r for r in feedback.report(conn)}
    assert (by_problem[ACUTE].sent, by_problem[ACUTE].with_feedback, by_problem[ACUTE].overridden) == (2, 1, 1)
    assert (by_problem[PROBLEM].sent, by_problem[PROBLEM].with_feedback, by_problem[PROBLEM].overridden) == (1, 1, 1)
    with pytest.raises(feedback.NotFound):  # a per-problem id of the old kind names nothing
        feedback.record_feedback(conn, "not-" + cards[1], {"outcome": "accepted", "outcomeTimestamp": "2025-03-02T08:00:00Z"})


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


# --- feedback times are instants, checked (issue 16, item 7) -------------------------------------


def test_the_same_moment_in_two_offsets_is_one_verdict_stored_in_utc(conn):
    record(conn, [1])
    alert_id = outbox.list_alerts(conn)[0]["alert_id"]
    first = feedback.record_feedback(conn, alert_id, {"outcome": "accepted", "outcomeTimestamp": "2025-03-02T06:00:00Z"})
    again = feedback.record_feedback(conn, alert_id, {"outcome": "accepted",
                                                      "outcomeTimestamp": "2025-03-02T08:00:00+02:00"})
    assert again.duplicate and again.feedback_id == first.feedback_id
    assert [r[0] for r in conn.execute("SELECT outcome_timestamp FROM feedback")] == ["2025-03-02T06:00:00Z"]


def test_the_latest_verdict_is_the_latest_instant_not_the_largest_text(conn):
    record(conn, [1])
    alert_id = outbox.list_alerts(conn)[0]["alert_id"]
    feedback.record_feedback(conn, alert_id, overridden(at="2025-03-02T09:00:00Z"))
    # later as text, earlier in time (08:00 UTC): must not replace the override
    feedback.record_feedback(conn, alert_id, {"outcome": "accepted", "outcomeTimestamp": "2025-03-02T10:00:00+02:00"})
    [r] = feedback.report(conn)
    assert (r.accepted, r.overridden) == (0, 1)


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z", "2025-03-05T00:00:01Z"],
                         ids=["year-9999", "before-2000", "over-a-day-ahead"])
def test_a_verdict_time_out_of_range_is_refused_naming_the_field(conn, stamp):
    from datetime import datetime, timezone

    record(conn, [1])
    alert_id = outbox.list_alerts(conn)[0]["alert_id"]
    now = datetime(2025, 3, 4, tzinfo=timezone.utc)
    with pytest.raises(feedback.FeedbackInvalid, match=f"feedback for alert {alert_id}: outcomeTimestamp: "):
        feedback.record_feedback(conn, alert_id, {"outcome": "accepted", "outcomeTimestamp": stamp}, now=now)
    assert conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0
    ok = feedback.record_feedback(conn, alert_id, {"outcome": "accepted", "outcomeTimestamp": "2025-03-04T23:00:00+02:00"},
                                  now=now)  # within a day ahead (clocks differ)
    assert not ok.duplicate


# --- text from the CRM is made printable (issue 16, item 9) ---------------------------------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07Already\nknown\u202e\x9b31m"


def test_control_characters_and_terminal_escapes_are_stripped_before_storing(conn):
    record(conn, [1])
    alert_id = outbox.list_alerts(conn)[0]["alert_id"]
    feedback.record_feedback(conn, alert_id, overridden(code="known\x1b[31m", display=HOSTILE))
    assert conn.execute("SELECT override_code, override_display FROM feedback").fetchone()[:] == ("known", "Already known31m")
    [r] = feedback.report(conn)
    assert r.top_override_reasons == [("known", "Already known31m", 1)]


def test_text_stored_before_the_fix_is_made_printable_when_reported(conn):
    record(conn, [1])
    alert_id = outbox.list_alerts(conn)[0]["alert_id"]
    outbox.mark_delivered(conn, alert_id)
    conn.execute("INSERT INTO feedback (alert_id, outcome, override_code, override_display, outcome_timestamp, received)"
                 " VALUES (?, 'overridden', ?, ?, '2025-03-02T08:00:00+02:00', '2025-03-02T06:00:01Z')",
                 (alert_id, "x\x1b[5m", HOSTILE))
    [r] = feedback.report(conn)
    assert r.top_override_reasons == [("x", "Already known31m", 1)]
