"""Scoring's answers and refusals as the HTTP API gives them: response types and status codes.

Scoring (scoring/) knows no HTTP; this is the one place that says which refusal is a 404, a 409
or a 422, and how a CustomerRisks becomes a ScoreResponse. Every route and the guard's own
/predict_row answer through here, so the same refusal has the same status and body everywhere.
"""

from __future__ import annotations

from typing import Any

from base.errors import SoteRiskError
from scoring.errors import ReloadRefused, UnknownCustomer, UnknownProblem
from scoring.results import CustomerRisks, Explained, Risk, RowProbability
from scoring.champions import Gate
from serving.problems import problem
from serving.api_types import BatchItem, ExplainResponse, ModelGate, PredictRowResponse, ProblemRisk, ScoreResponse
from vocabulary import vocabulary

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownCustomer, 404),
    (UnknownProblem, 404),
    (ReloadRefused, 409),
)


def http_status(error: SoteRiskError) -> int:
    """404 for what does not exist, 409 for a refused reload, 422 for the rest (the request was
    understood but cannot be answered); an error may carry its own (`status`, e.g. feedback)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return int(getattr(error, "status", 422))


def error_body(error: SoteRiskError) -> tuple[int, dict[str, Any]]:
    """Status and problem details (serving/problems.py) naming the field: the detail is one
    line unless a 422 (whose message may list fields)."""
    status = http_status(error)
    message = str(error) if status == 422 else str(error).splitlines()[0]
    return status, problem(status, message, getattr(error, "field", None))


def model_gate(gate: Gate) -> ModelGate:
    words = vocabulary()
    return ModelGate(status=gate.status, reasons=list(gate.reasons), label_en=words.gate_label(gate.status, "en"),
                     label_fi=words.gate_label(gate.status, "fi"))


def problem_risk(risk: Risk) -> ProblemRisk:
    words = vocabulary()
    return ProblemRisk(problem=risk.problem, label_en=risk.label_en, label_fi=risk.label_fi, probability=risk.probability,
                       band=risk.band, model_version=risk.model_version, pipeline_version=risk.pipeline_version,
                       reasons=risk.reasons, context=risk.context, gate=model_gate(risk.gate), meaning_en=words.meaning(risk.problem, "en"),
                       meaning_fi=words.meaning(risk.problem, "fi"))


def score_response(item: CustomerRisks) -> ScoreResponse:
    return ScoreResponse(customer_id=item.customer_id, as_of=item.as_of, risks=[problem_risk(r) for r in item.risks], note=item.note)


def batch_item(item: CustomerRisks) -> BatchItem:
    return BatchItem(customer_id=item.customer_id, as_of=item.as_of, risks=[problem_risk(r) for r in item.risks],
                     note=item.note, error=item.error)


def explain_response(item: Explained) -> ExplainResponse:
    return ExplainResponse(
        customer_id=item.customer_id, problem=item.problem, as_of=item.as_of, model_version=item.model_version,
        pipeline_version=item.pipeline_version, probability=item.probability, band=item.band, base_value=item.base_value,
        raw_score=item.raw_score, contributions=item.contributions, reasons=item.reasons, context=item.context, suggested_chains=item.suggested_chains,
        gate=model_gate(item.gate), meaning_en=vocabulary().meaning(item.problem, "en"),
        meaning_fi=vocabulary().meaning(item.problem, "fi"),
    )


def row_response(item: RowProbability) -> PredictRowResponse:
    return PredictRowResponse(problem=item.problem, probability=item.probability, band=item.band, model_version=item.model_version,
                              gate=model_gate(item.gate))
