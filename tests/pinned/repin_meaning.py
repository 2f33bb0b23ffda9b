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
import sys
from collections import Counter

sys.path.insert(0, ".")
from tests.pinned import _replay  # noqa: E402
from vocabulary import vocabulary  # noqa: E402

OLD_WORDS = {"en": "alive at the end of those", "fi": "olivat elossa näiden"}
old, old_text = _replay.stored()
scorer = _replay.pinned_scorer(old_text)
new = _replay.replayed(old, scorer)

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
_replay.write(new)
