"""The feature-pipeline version stamped on every feature output.

sha256 over what decides feature values and rows: a code version constant, each catalogue
entry's name, family, kind, category list and codes, and the vocabulary's cohort rules, segment
families, outcomes, horizons and eligibility. Any change to what a feature means, which features
a segment has, who is in a cohort or how labels are made gives a new version (bump CODE_VERSION
when the code changes results), so a model never meets features it was not trained on without
the mismatch being visible. Words (descriptions, sentences, fi/en names) are not hashed: fixing
what a nurse reads does not retire the models.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

CODE_VERSION = "features-8"  # 2: a service ending and restarting at one instant stays open; 3: interRAI IADL and DRS; 4: childhood-onset conditions, ER diagnoses, chronic medication refills, injuries, living situation, alcohol, self-harm; 5: home care minutes per visit, interRAI falls; 6: residency at t from the moves up to t only; 7: a horizon past the extract end censors positives too; 8: death within the horizon is a negative (competing event), not censored


@lru_cache(maxsize=1)
def pipeline_version() -> str:
    payload = json.dumps({"code_version": CODE_VERSION, **hashed_declarations()}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def hashed_declarations() -> dict:
    """The declarations the version covers, as plain data (tests check that words are not in it)."""
    from features.catalogue import catalogue
    from vocabulary import vocabulary

    words = vocabulary()
    return {
        "catalogue": [
            {"name": e.name, "family": e.family, "kind": e.kind, "categories": list(e.categories or ()), "codes": list(e.codes)}
            for e in catalogue()
        ],
        "shared_families": list(words.shared_families),
        "segments": {
            name: {"cohort": [c.model_dump(mode="json") for c in s.cohort], "families": list(s.families), "outcomes": list(s.outcomes)}
            for name, s in words.segments.items()
        },
        "outcomes": {
            name: {"code": o.code, "horizon_days": o.horizon_days, "eligible_when": list(o.eligible_when)}
            for name, o in words.outcomes.items()
        },
    }
