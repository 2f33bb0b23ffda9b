"""A score as an HL7 FHIR R4 RiskAssessment, valid by fhir.resources."""

from __future__ import annotations

import pandas as pd
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from alerts.fhir import risk_assessment
from scoring.scorer import Scorer
from tests.serving_fixture import END, make_backend, shared_fixture


@pytest.fixture(scope="module")
def scored():
    events, customers, models = shared_fixture()
    scorer = Scorer(make_backend(events, customers, models))
    _, results = scorer.score_customers(list(range(1, 60)), None, 3)
    return next(r for r in results if r.risks)


@pytest.mark.parametrize("band, code", [("low", "low"), ("moderate", "moderate"), ("high", "high"), ("very_high", "high")])
def test_resource_validates_and_carries_the_score(scored, band, code):
    risk = scored.risks[0]
    resource = risk_assessment(
        subject_id=scored.customer_id, problem=risk.problem, outcome_label=risk.label_en, time=pd.Timestamp(END),
        horizon_days=90, probability=risk.probability, band=band, model_version=risk.model_version,
        pipeline_version=risk.pipeline_version, reasons=risk.reasons,
    )
    parsed = RiskAssessment.model_validate(resource)
    assert parsed.subject.reference == f"Patient/{scored.customer_id}"
    assert parsed.status == "final" and parsed.occurrenceDateTime is not None
    prediction = parsed.prediction[0]
    assert float(prediction.probabilityDecimal) == pytest.approx(risk.probability, abs=1e-6)
    assert prediction.qualitativeRisk.coding[0].code == code
    assert prediction.outcome.text == risk.label_en
    assert str(prediction.whenPeriod.end) == "2024-03-31"
    assert risk.model_version in parsed.method.coding[0].code
    assert [n.text for n in parsed.note] == [("(+) " if r.direction == "up" else "(-) ") + r.text_en for r in risk.reasons]


def test_resource_without_reasons_has_no_note(scored):
    risk = scored.risks[0]
    resource = risk_assessment(
        subject_id=1, problem=risk.problem, outcome_label="x", time=pd.Timestamp("2023-07-01"), horizon_days=180,
        probability=0.5, band="high", model_version="1", pipeline_version="p", reasons=[],
    )
    assert "note" not in resource and resource["occurrenceDateTime"].endswith("+03:00")  # summer time in Finland


def test_every_problem_id_makes_a_valid_resource_id():
    """Problem ids hold underscores (elderly-homecare_failure); a FHIR id may not."""
    resource = risk_assessment(
        subject_id=7, problem="elderly-homecare_failure", outcome_label="x", time=pd.Timestamp("2023-07-01"),
        horizon_days=180, probability=0.5, band="high", model_version="1", pipeline_version="p", reasons=[],
    )
    assert resource["id"] == "7-elderly-homecare-failure-20230701"
    assert resource["code"]["coding"][0]["code"] == "elderly-homecare_failure"  # the code keeps the real id
