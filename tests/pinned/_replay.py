"""What every re-pin script shares: the pins as stored, the same cases replayed through today's
code (as tests/test_pinned_scores.py makes them), and writing the proven result back. Each
script (repin_*.py) then proves that only the changes it declares differ."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd

import tests.test_pinned_scores as t
from alerts.fhir import risk_assessment
from features import pipeline_version
from serving.responses import batch_item, explain_response, score_response
from vocabulary import vocabulary

PINS = Path("tests/pinned/pins.json.gz")


def stored() -> tuple[dict[str, Any], str]:
    """The pins as stored, with the pinned-pipeline placeholder read as today's version."""
    text = gzip.decompress(PINS.read_bytes()).decode().replace(t.PINNED_PIPELINE, pipeline_version())
    return json.loads(text), text


def pinned_scorer(text: str) -> Any:
    """The scorer of the pinned region and models, as tests/test_pinned_scores.py builds it."""
    return t.scorer.__wrapped__(json.loads(text))


def replayed(old: dict[str, Any], scorer: Any) -> dict[str, Any]:
    """Every case and batch of the pins answered again by today's code."""
    new = json.loads(json.dumps(old))
    for case in new["cases"]:
        as_of = t._as_of(case["as_of"])
        score = scorer.score_customer(case["customer_id"], as_of, 5)
        case["score"] = score_response(score).model_dump(mode="json")
        for risk in score.risks:
            champion = scorer.champion(risk.problem)
            case["fhir"][risk.problem] = risk_assessment(
                subject_id=case["customer_id"], problem=risk.problem, time=pd.Timestamp(score.as_of),
                outcome_label=vocabulary().problem_label(champion.problem, "en"), horizon_days=champion.horizon_days,
                probability=risk.probability, band=risk.band, model_version=risk.model_version,
                pipeline_version=risk.pipeline_version, reasons=risk.reasons, gate=risk.gate,
            )
        for problem in case["explain"]:
            case["explain"][problem] = explain_response(scorer.explain(case["customer_id"], problem, as_of)).model_dump(mode="json")
    for date in new["batch"]:
        ids = [item["customer_id"] for item in new["batch"][date]]
        _, items = scorer.score_customers(ids, t._as_of(None if date == "None" else date), 3)
        new["batch"][date] = [batch_item(i).model_dump(mode="json") for i in items]
    return new


def write(new: dict[str, Any]) -> None:
    text = json.dumps(new, ensure_ascii=False).replace(pipeline_version(), t.PINNED_PIPELINE)
    PINS.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
