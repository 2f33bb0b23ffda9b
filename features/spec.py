"""What features/ takes from the problem vocabulary (vocabulary/problems.yaml): the segments, the
families each computes, their outcomes and cohort rules, checked against the families that exist.

The vocabulary declares; this module only adds the check that every family a segment names is
implemented here (features/families/), so a typo fails at the first feature call, not later.
"""

from __future__ import annotations

from functools import lru_cache

from base.errors import SoteRiskError
from vocabulary import Outcome, Segment, VocabularyError, vocabulary

UnknownSegmentError = VocabularyError  # a segment the vocabulary does not declare


def segment(name: str) -> Segment:
    return vocabulary().segment(name)


@lru_cache(maxsize=None)
def segment_families(name: str) -> tuple[str, ...]:
    """The segment's feature families (shared first), each implemented in features/families/."""
    from features.families import FAMILIES

    families = vocabulary().families(name)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SoteRiskError(f"vocabulary/problems.yaml: segment {name!r} names unknown feature families {unknown}; "
                            f"implemented: {', '.join(FAMILIES)}")
    return families


def segment_outcomes(name: str) -> tuple[str, ...]:
    return vocabulary().segment(name).outcomes


def outcome(name: str) -> Outcome:
    return vocabulary().outcome(name)


def segment_names() -> tuple[str, ...]:
    return tuple(vocabulary().segments)
