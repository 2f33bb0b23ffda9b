"""Re-pins tests/pinned/pins.json.gz after a change of sentences only, and proves it.

Run from the repository root: `python tests/pinned/repin_sentences.py` (add `--check` to compare
without writing). It replays every pinned case through today's code exactly as
tests/test_pinned_scores.py does (/score with 5 reasons, /explain, the FHIR RiskAssessment, the
batches with 3), then walks the pinned and today's answers side by side and refuses to write
unless

- the two have the same shape (keys, list lengths, order) and every value that is not a sentence
  is identical: probabilities, bands, contributions, base values and raw scores, feature values,
  the order of reasons and of their features, labels, chains, versions;
- every difference is a sentence a person reads: the text_en / text_fi of a feature's
  contribution or of a reason, or the text of a FHIR note;
- every sentence of today's answers (changed or not) is what explain/reasons.py says for that
  feature and value (`feature_sentence`), a reason's text joins its first three features'
  sentences, and a FHIR note is "(+) " / "(-) " (unchanged) and its reason's English text.

It prints what changed, counted, and writes the new pins atomically (a temporary file renamed).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PINS = ROOT / "tests" / "pinned" / "pins.json.gz"


def scorer():  # noqa: ANN201 (scoring.scorer.Scorer)
    """The scorer of tests/test_pinned_scores.py's fixture: the pinned region and models."""
    from features import pipeline_version
    from models.pyfunc import load_risk_model
    from scoring.backend import Backend
    from scoring.champions import champion_from_model
    from scoring.history import HistoryStore
    from scoring.scorer import Scorer
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate
    from tests.test_pinned_scores import PINNED, PINNED_PIPELINE

    pinned = load()
    region = simulate(SimulatorConfig(customers=pinned["customers"], seed=pinned["seed"], years=pinned["years"]))
    models = {p.name: load_risk_model(p) for p in sorted((PINNED / "models").iterdir())}
    for model in models.values():
        assert model.pipeline_version == PINNED_PIPELINE
        model.pipeline_version = pipeline_version()
    store = HistoryStore.from_frames(region.events, region.customers, region.metadata["extract_start"],
                                     region.metadata["extract_end"])
    return Scorer(Backend({p: champion_from_model(p, m) for p, m in models.items()}, lambda: store))


def load() -> dict[str, Any]:
    """The pins as the test reads them (the pinned pipeline version replaced by today's)."""
    from features import pipeline_version
    from tests.test_pinned_scores import PINNED_PIPELINE

    text = gzip.decompress(PINS.read_bytes()).decode("utf-8")
    assert PINNED_PIPELINE in text
    return json.loads(text.replace(PINNED_PIPELINE, pipeline_version()))


def today(pinned: dict[str, Any]) -> dict[str, Any]:
    """The same cases through today's code, shaped as the pins."""
    import pandas as pd

    from alerts.fhir import risk_assessment
    from serving.responses import batch_item, explain_response, score_response
    from tests.test_pinned_scores import _as_of
    from vocabulary import vocabulary

    s = scorer()
    out = {key: value for key, value in pinned.items() if key not in ("cases", "batch")}
    out["cases"] = []
    for case in pinned["cases"]:
        as_of = _as_of(case["as_of"])
        score = s.score_customer(case["customer_id"], as_of, 5)
        explain = {p: explain_response(s.explain(case["customer_id"], p, as_of)).model_dump(mode="json") for p in case["explain"]}
        fhir = {}
        for risk in score.risks:
            champion = s.champion(risk.problem)
            fhir[risk.problem] = risk_assessment(
                subject_id=case["customer_id"], problem=risk.problem, time=pd.Timestamp(score.as_of),
                outcome_label=vocabulary().problem_label(champion.problem, "en"),
                horizon_days=champion.horizon_days, probability=risk.probability, band=risk.band,
                model_version=risk.model_version, pipeline_version=risk.pipeline_version, reasons=risk.reasons,
            )
        out["cases"].append({"customer_id": case["customer_id"], "as_of": case["as_of"],
                             "score": score_response(score).model_dump(mode="json"), "explain": explain, "fhir": fhir})
    out["batch"] = {}
    for date, expected in pinned["batch"].items():
        ids = [item["customer_id"] for item in expected]
        _, items = s.score_customers(ids, _as_of(None if date == "None" else date), 3)
        out["batch"][date] = [batch_item(i).model_dump(mode="json") for i in items]
    return out


def differences(old: Any, new: Any, path: tuple = ()) -> list[tuple[tuple, Any, Any]]:
    """(path, old, new) of every leaf that differs; a difference of shape is refused."""
    if isinstance(old, dict) and isinstance(new, dict):
        if list(old) != list(new):
            raise SystemExit(f"refused: keys differ at {path}: {list(old)} vs {list(new)}")
        return [d for key in old for d in differences(old[key], new[key], (*path, key))]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            raise SystemExit(f"refused: {len(old)} vs {len(new)} items at {path}")
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, (*path, i))]
    if type(old) is not type(new) or old != new:
        return [(path, old, new)]
    return []


def at(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def kind_of(tree: Any, path: tuple) -> str | None:
    """What a sentence at `path` is: a feature's, a reason's, a FHIR note's; None: not a sentence."""
    parent = at(tree, path[:-1])
    if path[-1] in ("text_en", "text_fi") and isinstance(parent, dict):
        if {"feature", "family", "value", "contribution"} <= set(parent):
            return "feature"
        if {"family", "feature", "label_en", "contribution", "direction", "features"} <= set(parent):
            return "reason"
    if path[-1] == "text" and len(path) >= 3 and path[-3] == "note" and "fhir" in path:
        return "note"
    return None


def leaves(tree: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(tree, dict):
        return [leaf for key, value in tree.items() for leaf in leaves(value, (*path, key))]
    if isinstance(tree, list):
        return [leaf for i, value in enumerate(tree) for leaf in leaves(value, (*path, i))]
    return [(path, tree)]


def check_sentence(tree: dict[str, Any], path: tuple, kind: str) -> None:
    """Today's sentence at `path` is what the code says for its feature, reason or note."""
    from explain.reasons import feature_sentence
    from features import feature_info

    text = at(tree, path)
    lang = "fi" if path[-1] == "text_fi" else "en"
    holder = at(tree, path[:-1])
    if kind == "feature":
        want = feature_sentence(feature_info(holder["feature"]), holder["value"], lang)
    elif kind == "reason":
        want = "; ".join(f[path[-1]] for f in holder["features"][:3])
    else:  # a FHIR note: the score's reason of the same problem and place
        case, problem, index = tree["cases"][path[1]], path[3], path[-2]
        reason = next(r for r in case["score"]["risks"] if r["problem"] == problem)["reasons"][index]
        want = f"({'+' if reason['direction'] == 'up' else '-'}) {reason['text_en']}"
    if text != want:
        raise SystemExit(f"refused: {kind} sentence at {path} is «{text}», the code says «{want}»")


def main(write: bool) -> None:
    from features import pipeline_version
    from tests.test_pinned_scores import PINNED_PIPELINE

    pinned = load()
    new = today(pinned)
    changed = differences(pinned, new)
    counts: Counter[str] = Counter()
    for path, old_text, new_text in changed:
        kind = kind_of(new, path)
        if kind is None or not isinstance(old_text, str) or not isinstance(new_text, str):
            raise SystemExit(f"refused: a difference that is not a sentence at {path}: {old_text!r} -> {new_text!r}")
        if kind == "note" and old_text[:4] != new_text[:4]:
            raise SystemExit(f"refused: a FHIR note changed its direction at {path}: {old_text[:4]!r} -> {new_text[:4]!r}")
        counts[f"{kind} {path[-1]}"] += 1
    every = [(path, kind) for path, value in leaves(new) if isinstance(value, str) and (kind := kind_of(new, path))]
    for path, kind in every:
        check_sentence(new, path, kind)
    total = Counter(f"{kind} {path[-1]}" for path, kind in every)
    print(f"{len(changed)} differences, every one a sentence; {len(every)} sentences checked against the code")
    for key in sorted(total):
        print(f"  {key:24s} {counts[key]:6d} changed of {total[key]:6d}")
    print("  everything else (probabilities, contributions, values, order of reasons and features, labels) identical")
    if not write:
        return
    text = json.dumps(new, ensure_ascii=False)
    assert PINNED_PIPELINE not in text
    text = text.replace(pipeline_version(), PINNED_PIPELINE)
    fd, tmp = tempfile.mkstemp(dir=PINS.parent, prefix=".pins-", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(gzip.compress(text.encode("utf-8"), mtime=0))
    os.replace(tmp, PINS)
    print(f"wrote {PINS.relative_to(ROOT)}")


if __name__ == "__main__":
    main(write="--check" not in sys.argv[1:])
