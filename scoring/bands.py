"""Risk bands: the calibrated probability cut by a problem's three ascending thresholds.

The band names and their words are the vocabulary's (vocabulary/problems.yaml); each problem's
thresholds travel with its model (the experiment spec's alert_policy.bands). Scores, pages,
FHIR resources, cards and the alert rules all take a band from `band_for`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vocabulary import BANDS, Band

__all__ = ["BANDS", "Band", "BandThresholds", "band_for", "band_rank"]


def band_rank(band: str) -> int:
    """Order of a band (low=0 .. very_high=3); an unknown band is a programming error."""
    try:
        return BANDS.index(band)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"unknown risk band {band!r}; expected one of {', '.join(BANDS)}") from None


class BandThresholds(BaseModel):
    """Lower edges (inclusive) of the moderate, high and very high bands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    moderate: float = Field(0.10, gt=0.0, lt=1.0)
    high: float = Field(0.25, gt=0.0, lt=1.0)
    very_high: float = Field(0.50, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ascending(self) -> "BandThresholds":
        if not self.moderate < self.high < self.very_high:
            raise ValueError(
                "bands: thresholds must ascend (moderate < high < very_high), got "
                f"{self.moderate}, {self.high}, {self.very_high}"
            )
        return self


def band_for(probability: float, bands: BandThresholds) -> Band:
    """The risk band of one calibrated probability."""
    if probability >= bands.very_high:
        return "very_high"
    if probability >= bands.high:
        return "high"
    if probability >= bands.moderate:
        return "moderate"
    return "low"
