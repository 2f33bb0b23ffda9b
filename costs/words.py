"""Words of the cost view (costs/words.yaml): service areas, production models, the row names."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from base.errors import SoteRiskError
from vocabulary import Words, vocabulary


class _Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service_areas: dict[str, Words]
    models: dict[str, Words]
    groups: dict[str, Words]


@lru_cache(maxsize=1)
def words() -> _Words:
    text = resources.files("costs").joinpath("words.yaml").read_text(encoding="utf-8")
    try:
        return _Words.model_validate(yaml.safe_load(text))
    except ValueError as error:
        raise SoteRiskError(f"costs/words.yaml: {error}") from None


def area_label(area: str, lang: str) -> str:
    found = words().service_areas.get(area)
    return found(lang) if found is not None else area  # type: ignore[arg-type]


def model_label(model: str, lang: str) -> str:
    return words().models[model](lang)  # type: ignore[arg-type]


def row_label(row: str, lang: str) -> str:
    """A row of the segment table: all, none, or a segment's name."""
    if row in words().groups:
        return words().groups[row](lang)  # type: ignore[arg-type]
    return vocabulary().segment(row).name(lang)  # type: ignore[arg-type]
