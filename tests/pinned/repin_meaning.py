"""Re-pins tests/pinned/pins.json.gz after death became a competing event, and proves it. Run from
the repository root: `python tests/pinned/repin_meaning.py`.

Issue 15 ("death as a competing risk"): a death within the horizon without the outcome is now a
negative label, not a censored row, so the score is the cumulative incidence (the chance that the
outcome happens before death and within the horizon), and what the score means is said so
everywhere. The pinned models are fixed files, so their probabilities, contributions and reasons
cannot move; what this definition necessarily changes in a served answer is:
- `meaning_en` / `meaning_fi` of every /score and /score_batch risk and every /explain answer;
- the `rationale` of every FHIR RiskAssessment's prediction (the English meaning);
- the feature-pipeline version (the label rules are hashed: features/version.py CODE_VERSION
  features-7), which the pins never hold literally: tests/test_pinned_scores.py writes
  PINNED_PIPELINE in its place and reads the pins with the code's version.
The script replays every case through today's code and refuses to write unless the two JSON
trees have the same shape and every differing leaf is one of the fields above, the old value is
the old words (the risk for someone alive through the period) and the new value is exactly what
vocabulary/problems.yaml says for that answer's problem and language."""
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, ".")
import pandas as pd  # noqa: E402

import tests.test_pinned_scores as t  # noqa: E402
from alerts.fhir import risk_assessment  # noqa: E402
from features import pipeline_version  # noqa: E402
from serving.responses import batch_item, explain_response, score_response  # noqa: E402
from vocabulary import vocabulary  # noqa: E402

OLD_WORDS = {"en": "alive at the end of those", "fi": "olivat elossa näiden"}
path = Path("tests/pinned/pins.json.gz")
old_text = gzip.decompress(path.read_bytes()).decode()
old = json.loads(old_text.replace(t.PINNED_PIPELINE, pipeline_version()))
scorer = t.scorer.__wrapped__(json.loads(old_text.replace(t.PINNED_PIPELINE, pipeline_version())))
new = json.loads(json.dumps(old))
for case in new["cases"]:
    as_of = t._as_of(case["as_of"])
    score = scorer.score_customer(case["customer_id"], as_of, 5)
    case["score"] = score_response(score).model_dump(mode="json")
    for risk in score.risks:  # as tests/test_pinned_scores.py makes them
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

counts: Counter = Counter()
leaves: Counter = Counter()


def check_changed(where: str, key: str, problem: str, a: str, b: str) -> None:
    """A changed leaf must be a meaning (or a FHIR rationale) from the old words to today's."""
    lang = {"meaning_en": "en", "meaning_fi": "fi", "rationale": "en"}.get(key)
    assert lang is not None, (where, "only meanings may change", a, b)
    assert OLD_WORDS[lang] in a, (where, "the old value is not the old meaning", a)
    assert b == vocabulary().meaning(problem, lang), (where, b)
    counts[f"{key} ({'fhir' if key == 'rationale' else 'answers'})"] += 1


def compare(a, b, where: str, problem: str | None) -> None:
    """Walk both trees; they must have the same shape; leaves may differ only as check_changed allows."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert a.keys() == b.keys(), (where, set(a) ^ set(b))
        problem = a.get("problem", problem)
        for k in a:
            if isinstance(a[k], (dict, list)):
                compare(a[k], b[k], f"{where}.{k}", problem)
            else:
                leaves["all"] += 1
                if a[k] != b[k]:
                    check_changed(f"{where}.{k}", k, problem, a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{where}[{i}]", problem)
    else:
        leaves["all"] += 1
        assert a == b, where


for i, (a, b) in enumerate(zip(old["cases"], new["cases"], strict=True)):
    compare(a["score"], b["score"], f"case {i}.score", None)
    for problem in a["explain"]:
        compare(a["explain"][problem], b["explain"][problem], f"case {i}.explain.{problem}", problem)
    assert a["fhir"].keys() == b["fhir"].keys(), i
    for problem in a["fhir"]:
        compare(a["fhir"][problem], b["fhir"][problem], f"case {i}.fhir.{problem}", problem)
    assert {k: v for k, v in a.items() if k not in ("score", "explain", "fhir")} == \
           {k: v for k, v in b.items() if k not in ("score", "explain", "fhir")}, i
for date in old["batch"]:
    compare(old["batch"][date], new["batch"][date], f"batch {date}", None)
assert {k: v for k, v in old.items() if k not in ("cases", "batch")} == {k: v for k, v in new.items() if k not in ("cases", "batch")}
print(dict(counts), "of", leaves["all"], "leaves")
text = json.dumps(new, ensure_ascii=False).replace(pipeline_version(), t.PINNED_PIPELINE)
path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
