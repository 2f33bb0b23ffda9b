"""A score as an HL7 FHIR R4 RiskAssessment, valid by fhir.resources (scores from the serving
region: the real feature pipeline and the pinned models)."""

from __future__ import annotations

import pandas as pd
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from alerts.fhir import risk_assessment
from scoring.scorer import Scorer
from vocabulary import vocabulary


@pytest.fixture(scope="module")
def scored():
    """Every risk (with its top 3 reasons) of a few members of every problem, with the scorer."""
    from tests.serving_fixture import make_backend, members, models

    scorer = Scorer(make_backend())
    ids = list(dict.fromkeys(s for problem in sorted(models()) for s in members(problem, limit=2)))
    _, results = scorer.score_customers(ids, None, 3)
    return scorer, [(item, risk) for item in results for risk in item.risks]


def _resource(scorer, item, risk, band=None, lang="en"):
    champion = scorer.champion(risk.problem)
    return risk_assessment(
        subject_id=item.customer_id, problem=risk.problem, outcome_label=vocabulary().problem_label(risk.problem, lang),
        time=pd.Timestamp(item.as_of), horizon_days=champion.horizon_days, probability=risk.probability,
        band=band or risk.band, model_version=risk.model_version, pipeline_version=risk.pipeline_version,
        reasons=risk.reasons, lang=lang,
    )


@pytest.mark.slow
def test_every_scored_risk_makes_a_valid_resource_carrying_the_score(scored):
    scorer, risks = scored
    assert {risk.problem for _, risk in risks} == set(scorer.champions)
    for item, risk in risks:
        parsed = RiskAssessment.model_validate(_resource(scorer, item, risk))
        assert parsed.subject.reference == f"Patient/{item.customer_id}"
        assert parsed.status == "final" and parsed.occurrenceDateTime is not None
        assert parsed.code.coding[0].code == risk.problem
        prediction = parsed.prediction[0]
        assert float(prediction.probabilityDecimal) == pytest.approx(risk.probability, abs=1e-6)
        assert prediction.outcome.text == risk.label_en
        horizon = scorer.champion(risk.problem).horizon_days
        assert str(prediction.whenPeriod.end) == (pd.Timestamp(item.as_of) + pd.Timedelta(days=horizon)).date().isoformat()
        assert f"{risk.problem}/{risk.model_version}" == parsed.method.coding[0].code
        assert risk.pipeline_version in parsed.method.text
        assert risk.reasons and [n.text for n in parsed.note] == [
            ("(+) " if r.direction == "up" else "(-) ") + r.text_en for r in risk.reasons]


@pytest.mark.slow
@pytest.mark.parametrize("band, code", [("low", "low"), ("moderate", "moderate"), ("high", "high"), ("very_high", "high")])
def test_bands_map_to_hl7_risk_probability_codes(scored, band, code):
    scorer, risks = scored
    item, risk = risks[0]
    for lang in ("en", "fi"):
        parsed = RiskAssessment.model_validate(_resource(scorer, item, risk, band=band, lang=lang))
        qualitative = parsed.prediction[0].qualitativeRisk
        assert qualitative.coding[0].code == code
        assert qualitative.coding[0].system == "http://terminology.hl7.org/CodeSystem/risk-probability"
        assert qualitative.text == vocabulary().band_label(band, lang)


@pytest.mark.slow
def test_finnish_resource_carries_the_finnish_reasons(scored):
    scorer, risks = scored
    item, risk = next((item, risk) for item, risk in risks if len(risk.reasons) == 3)
    parsed = RiskAssessment.model_validate(_resource(scorer, item, risk, lang="fi"))
    assert [n.text for n in parsed.note] == [("(+) " if r.direction == "up" else "(-) ") + r.text_fi for r in risk.reasons]
    assert parsed.prediction[0].outcome.text == risk.label_fi == vocabulary().problem_label(risk.problem, "fi")
    assert [n.text for n in parsed.note] != [n.text for n in RiskAssessment.model_validate(_resource(scorer, item, risk)).note]


def test_resource_without_reasons_has_no_note():
    resource = risk_assessment(
        subject_id=1, problem="elderly-hospitalisation", outcome_label="x", time=pd.Timestamp("2023-07-01"), horizon_days=180,
        probability=0.5, band="high", model_version="1", pipeline_version="p", reasons=[],
    )
    assert "note" not in resource and resource["occurrenceDateTime"].endswith("+03:00")  # summer time in Finland
    winter = risk_assessment(
        subject_id=1, problem="elderly-hospitalisation", outcome_label="x", time=pd.Timestamp("2023-01-15"), horizon_days=90,
        probability=0.5, band="high", model_version="1", pipeline_version="p", reasons=[],
    )
    assert winter["occurrenceDateTime"].endswith("+02:00") and winter["prediction"][0]["whenPeriod"]["end"] == "2023-04-15"


def test_every_problem_id_makes_a_valid_resource_id():
    """Problem ids hold underscores (elderly-homecare_failure); a FHIR id may not."""
    problems = [p.id for p in vocabulary().problems()]
    assert "elderly-homecare_failure" in problems
    for problem in problems:
        resource = risk_assessment(
            subject_id=7, problem=problem, outcome_label="x", time=pd.Timestamp("2023-07-01"),
            horizon_days=180, probability=0.5, band="high", model_version="1", pipeline_version="p", reasons=[],
        )
        RiskAssessment.model_validate(resource)
        assert resource["id"] == f"7-{problem.replace('_', '-')}-20230701" and "_" not in resource["id"]
        assert resource["code"]["coding"][0]["code"] == problem  # the code keeps the real id
