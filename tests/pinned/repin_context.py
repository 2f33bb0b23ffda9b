"""Re-pins tests/pinned/pins.json.gz after reasons were split, and proves it. Run from the
repository root: `python tests/pinned/repin_context.py`.

Re-pin after reasons were split into reasons (families to act on) and context (background):
- /score and /score_batch risks: the old top-k reasons without the background families are the
  first reasons of the new list (the rest are the next families to act on, which the old k cut
  off); every old background reason is in the new context, unchanged; context holds only
  background families; nothing else differs.
- /explain answers: new reasons == old reasons without background families; new context == the
  old background reasons, in order; nothing else differs.
- FHIR RiskAssessments: the old notes without those of background reasons are the first notes of
  the new list, one note a reason; nothing else differs."""
import sys

sys.path.insert(0, ".")
from features.catalogue import BACKGROUND_FAMILIES, feature_info  # noqa: E402
from tests.pinned import _replay  # noqa: E402

old, old_text = _replay.stored()
scorer = _replay.pinned_scorer(old_text)
new = _replay.replayed(old, scorer)

counts = {"risks": 0, "explains": 0, "moved_to_context": 0, "new_reasons": 0, "fhir": 0}


def split(reasons):
    return [r for r in reasons if r["family"] not in BACKGROUND_FAMILIES], [r for r in reasons if r["family"] in BACKGROUND_FAMILIES]

def same_except(a, b, keys, where):
    assert set(b) - set(a) <= {"context"}, (where, set(b) - set(a))
    for k in a:
        if k not in keys:
            assert a[k] == b[k], (where, k)

def risk(a, b, where):
    same_except(a, b, {"reasons"}, where)
    acts, background = split(a["reasons"])
    assert b["reasons"][:len(acts)] == acts, where
    families = {feature_info(n).family for n in scorer.champion(a["problem"]).model.feature_names}
    assert len(b["reasons"]) == min(len(a["reasons"]), len(families - BACKGROUND_FAMILIES)), where  # k reasons, if there are k
    assert all(r["family"] not in BACKGROUND_FAMILIES for r in b["reasons"]), where
    assert all(r["family"] in BACKGROUND_FAMILIES for r in b["context"]), where
    for r in background:
        assert r in b["context"], (where, r["family"])
    assert bool(b["context"]) == bool(a["reasons"]), where  # context comes with reasons (top_k > 0)
    counts["risks"] += 1
    counts["moved_to_context"] += len(background)
    counts["new_reasons"] += len(b["reasons"]) - len(acts)


def answer(a, b, where):
    same_except(a, b, {"risks"}, where)
    assert len(a["risks"]) == len(b["risks"]), where
    for i, (x, y) in enumerate(zip(a["risks"], b["risks"])):
        risk(x, y, f"{where}.risks[{i}]")
for i, (a, b) in enumerate(zip(old["cases"], new["cases"])):
    same_except(a, b, {"score", "explain", "fhir"}, f"case {i}")
    answer(a["score"], b["score"], f"case {i}.score")
    assert set(a["fhir"]) == set(b["fhir"])
    for old_risk, new_risk in zip(a["score"]["risks"], b["score"]["risks"], strict=True):
        x, y = a["fhir"][old_risk["problem"]], b["fhir"][new_risk["problem"]]
        same_except(x, y, {"note"}, f"case {i}.fhir")
        first = len(x["note"]) - len(old_risk["reasons"])  # notes before the reasons' (the gate's)
        kept = x["note"][:first] + [n for n, r in zip(x["note"][first:], old_risk["reasons"]) if r["family"] not in BACKGROUND_FAMILIES]
        assert y["note"][:len(kept)] == kept and len(y["note"]) == first + len(new_risk["reasons"]), (i, old_risk["problem"])
        counts["fhir"] += 1
    assert set(a["explain"]) == set(b["explain"])
    for problem in a["explain"]:
        x, y = a["explain"][problem], b["explain"][problem]
        same_except(x, y, {"reasons"}, f"case {i}.explain.{problem}")
        acts, background = split(x["reasons"])
        assert y["reasons"] == acts and y["context"] == background, (i, problem)
        counts["explains"] += 1
for date in old["batch"]:
    for j, (a, b) in enumerate(zip(old["batch"][date], new["batch"][date], strict=True)):
        answer(a, b, f"batch {date}[{j}]")
print(counts)
_replay.write(new)
