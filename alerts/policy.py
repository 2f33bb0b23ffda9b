"""The alert policy of one problem, as typed data (an experiment spec's `alert_policy` section).

Risk bands come from scoring/bands.py: the same `band_for` gives the band the CRM shows and the
band the alert rules read, so the two never differ.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scoring.bands import Band, BandThresholds


class AlertPolicy(BaseModel):
    """When a score becomes an alert, and how many alerts a team can take a day.

    - `threshold` and/or `min_band`: the level that triggers an alert (both given: both must
      hold). At least one of them, or `alert_on_band_rise`, must be set.
    - `alert_on_band_rise`: a band higher than at the customer's previous score also triggers.
    - `cooldown_days`: this problem raises no new card for a customer within this many days of
      the customer's last card (naming any problem; counted between index times), unless this
      problem's band is higher than it was then.
    - `capacity_per_municipality_per_day`: how many cards (customers) the coordinators of one
      municipality can take per day; None means no budget. One team takes every problem's
      cards, so the smallest capacity the served problems state applies to all cards. Over
      budget, the highest risks go first and the rest wait in the queue (see alerts/rules.py
      for what waiting means).
    - `queue_max_days`: a waiting card older than this expires unsent (the shortest of the
      served problems' applies).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    min_band: Band | None = None
    bands: BandThresholds = BandThresholds()
    cooldown_days: int = Field(30, ge=0)
    capacity_per_municipality_per_day: int | None = Field(None, ge=1)
    alert_on_band_rise: bool = False
    queue_max_days: int = Field(7, ge=0)

    @model_validator(mode="after")
    def _has_a_trigger(self) -> "AlertPolicy":
        if self.threshold is None and self.min_band is None and not self.alert_on_band_rise:
            raise ValueError(
                "alert_policy: set threshold, min_band or alert_on_band_rise; "
                "otherwise no score could ever alert"
            )
        return self
