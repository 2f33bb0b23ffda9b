"""The feature-pipeline version stamped on every feature output.

sha256 over the catalogue, the segment spec and a code version constant: any change to what a
feature means, which features a segment has, or how they are computed (bump CODE_VERSION when
the code changes results) gives a new version, so a model never meets features it was not
trained on without the mismatch being visible.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

CODE_VERSION = "features-5"  # 2: a service ending and restarting at one instant stays open; 3: interRAI IADL and DRS; 4: childhood-onset conditions, ER diagnoses, chronic medication refills, injuries, living situation, alcohol, self-harm; 5: home care minutes per visit, interRAI falls


@lru_cache(maxsize=1)
def pipeline_version() -> str:
    from features.catalogue import catalogue_json
    from features.spec import segment_spec

    payload = json.dumps(
        {"code_version": CODE_VERSION, "catalogue": catalogue_json(), "segments": _plain(segment_spec().raw)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _plain(value):
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
