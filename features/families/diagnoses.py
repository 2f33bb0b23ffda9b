"""Chronic conditions ever on record (days since the childhood-onset ones were last coded), and
recent hip fractures and weakness."""

from __future__ import annotations

import numpy as np

from features.catalogue import CHRONIC_CONDITIONS, CONDITION_RECENCY
from features.families._common import as_float, days_since_last
from features.windows import Timeline, group


def compute(tl: Timeline) -> dict[str, np.ndarray]:
    flags = {name: tl.count_ever(group(*codes)) > 0 for name, codes in CHRONIC_CONDITIONS.items()}
    out = {"chronic_conditions": as_float(sum(f.astype(np.int64) for f in flags.values()))}
    out.update({f"dx_{name}": as_float(flag) for name, flag in flags.items()})
    out.update({f"dx_{name}_days_since": days_since_last(tl, group(*CHRONIC_CONDITIONS[name])) for name in CONDITION_RECENCY})
    out["hip_fracture_365d"] = as_float(tl.count(group("ICD10/S72.0"), 365))
    out["dx_weakness_365d"] = as_float(tl.count(group("ICPC2/A04"), 365))
    return out
