"""A score as an HL7 FHIR R4 RiskAssessment (validated with fhir.resources' R4B models, whose
RiskAssessment is the R4 resource unchanged).

The subject is the pseudonym (Patient/<subject_id>); the CRM maps it to its own patient. Bands
map to HL7's risk-probability codes (very high -> high, with our band in the text).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from explain.reasons import Reason
from scoring.champions import Gate
from vocabulary import vocabulary
from vocabulary.gates import gate_reasons

RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
PROBLEM_SYSTEM = "https://eksote.fi/sote-risk/problem"
GATE_EXTENSION = "https://eksote.fi/sote-risk/StructureDefinition/model-gate"  # passed | forced | unchecked
MODEL_SYSTEM = "https://eksote.fi/sote-risk/model"
HL7_CODE = {"low": "low", "moderate": "moderate", "high": "high", "very_high": "high"}
HELSINKI = "Europe/Helsinki"


def local_iso(time: pd.Timestamp) -> str:
    """FHIR dateTime with a time needs an offset: our times are naive local (Finnish) time."""
    return time.tz_localize(HELSINKI, ambiguous=True, nonexistent="shift_forward").isoformat()


def resource_id(subject_id: int, problem: str, time: pd.Timestamp) -> str:
    """A FHIR id ([A-Za-z0-9-.], at most 64): problem ids hold underscores (homecare_failure)."""
    return f"{subject_id}-{problem}-{time:%Y%m%d}".replace("_", "-")[:64]


def risk_assessment(
    *,
    subject_id: int,
    problem: str,
    outcome_label: str,
    time: pd.Timestamp,
    horizon_days: int,
    probability: float,
    band: str,
    model_version: str,
    pipeline_version: str,
    reasons: list[Reason],
    lang: str = "en",
    gate: Gate | None = None,
) -> dict[str, Any]:
    """The RiskAssessment as a JSON-ready dict, validated by fhir.resources (raises if invalid).

    The prediction's rationale says what the probability means (the vocabulary's words); the
    model's promotion record travels as an extension (GATE_EXTENSION: passed, forced, unchecked)
    and, when the model did not pass its checks, as the first note, in words."""
    from fhir.resources.R4B.riskassessment import RiskAssessment

    end = (time + pd.Timedelta(days=horizon_days)).date()
    text_of = (lambda r: r.text_fi) if lang == "fi" else (lambda r: r.text_en)
    direction = {"up": "+", "down": "-"}
    resource = {
        "resourceType": "RiskAssessment",
        "id": resource_id(subject_id, problem, time),
        "status": "final",
        "subject": {"reference": f"Patient/{subject_id}"},
        "occurrenceDateTime": local_iso(time),
        "code": {"coding": [{"system": PROBLEM_SYSTEM, "code": problem}], "text": outcome_label},
        "method": {
            "coding": [{"system": MODEL_SYSTEM, "code": f"{problem}/{model_version}",
                        "display": f"sote-risk {problem} model version {model_version}"}],
            "text": f"LightGBM model {problem} v{model_version}, feature pipeline {pipeline_version}, calibrated",
        },
        "prediction": [{
            "outcome": {"coding": [{"system": PROBLEM_SYSTEM, "code": problem.partition("-")[2]}], "text": outcome_label},
            "probabilityDecimal": round(float(probability), 6),
            "qualitativeRisk": {
                "coding": [{"system": RISK_PROBABILITY, "code": HL7_CODE[band]}],
                "text": vocabulary().band_label(band, lang),
            },
            "whenPeriod": {"start": local_iso(time), "end": end.isoformat()},
            "rationale": vocabulary().meaning(problem, lang),
        }],
    }
    notes = []
    if gate is not None:
        resource["extension"] = [{"url": GATE_EXTENSION, "valueCode": gate.status}]
        if gate.status != "passed":
            failed = f" ({'; '.join(gate_reasons(gate.reasons, lang))})" if gate.reasons else ""
            notes.append({"text": f"⚠ {vocabulary().gate_label(gate.status, lang)}{failed}"})
    notes += [{"text": f"({direction[r.direction]}) {text_of(r)}"} for r in reasons]
    if notes:
        resource["note"] = notes
    validated = RiskAssessment.model_validate(resource)
    return validated.model_dump(mode="json", exclude_none=True)

