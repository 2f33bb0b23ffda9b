"""The segment spec (segments.yaml): segments, their families and outcomes, cohort rules.

Declared as data so a segment's feature set is a list of family names, not a copy of code.
Read once per process (cached, immutable) and checked, so a typo fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from base.errors import SoteRiskError


class UnknownSegmentError(SoteRiskError):
    """A segment name that segments.yaml does not declare."""


@dataclass(frozen=True)
class Outcome:
    name: str
    code: str
    horizon_days: int


@dataclass(frozen=True)
class Segment:
    name: str
    description_en: str
    description_fi: str
    families: tuple[str, ...]  # shared families first, then the segment's own
    outcomes: tuple[str, ...]


@dataclass(frozen=True)
class SegmentSpec:
    raw: Mapping[str, Any]  # the parsed file, hashed into the pipeline version
    segments: Mapping[str, Segment]
    outcomes: Mapping[str, Outcome]
    rules: Mapping[str, Any]

    def segment(self, name: str) -> Segment:
        try:
            return self.segments[name]
        except (KeyError, TypeError):
            raise UnknownSegmentError(
                f"unknown segment {name!r}; known segments: {', '.join(self.segments)}"
            ) from None


def _parse(raw: dict[str, Any]) -> SegmentSpec:
    from features.families import FAMILIES  # the registry of implemented families

    shared = tuple(raw["shared_families"])
    outcomes = {
        name: Outcome(name, str(body["code"]), int(body["horizon_days"])) for name, body in raw["outcomes"].items()
    }
    segments = {}
    for name, body in raw["segments"].items():
        families = shared + tuple(f for f in body["families"] if f not in shared)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise SoteRiskError(f"features/segments.yaml: segment {name!r} names unknown families {unknown}")
        bad = [o for o in body["outcomes"] if o not in outcomes]
        if bad:
            raise SoteRiskError(f"features/segments.yaml: segment {name!r} names unknown outcomes {bad}")
        segments[name] = Segment(name, body["description_en"], body["description_fi"], families, tuple(body["outcomes"]))
    return SegmentSpec(
        raw=MappingProxyType(raw),
        segments=MappingProxyType(segments),
        outcomes=MappingProxyType(outcomes),
        rules=MappingProxyType(dict(raw["cohort_rules"])),
    )


@lru_cache(maxsize=1)
def segment_spec() -> SegmentSpec:
    text = resources.files("features").joinpath("segments.yaml").read_text(encoding="utf-8")
    return _parse(yaml.safe_load(text))


def segment_names() -> tuple[str, ...]:
    return tuple(segment_spec().segments)
