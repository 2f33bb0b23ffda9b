"""Parameter sets of the regions the simulator can draw (`sote-risk simulate --region NAME`).

Eksote (South Karelia) is the default and the region every other parameter in config.py is set
for. The others exist for external validation: a model trained on Eksote's data scored on another
county's, as a deployment that moves between populations is. They differ the way real counties
do, and only there; everything not named below (disease, care and hospital mechanisms) is
Eksote's, so what changes between regions is who lives there and how services are organised:

- **vantaa-kerava**, a younger urban region: far fewer old people (75+ ~7 % against ~14 %), more
  births, many more residents whose language is not Finnish or Swedish, more moving in and out,
  less morbidity at a given age, and less home care for the old.
- **kainuu**, a sparse, older region: more old people (75+ ~16 %), fewer births, young adults
  leaving, more morbidity at a given age, and more of the old in regular home care.

Figures that claim a public source are `Sourced` (approximate, rounded, as the Eksote ones);
the rest say they are assumptions. Choices of mechanism values (home care need threshold) were
made so that the simulated base rates meet the sourced targets (`sote-risk validate` compares
them), never on a model's performance.
"""

from __future__ import annotations

from typing import Any

from data_contracts.regions import DEFAULT_REGION, region
from synthetic.config import STATFIN, SimulatorConfig, src

THL_HOMECARE = "THL: share of 75+ in regular home care by region (national 11.0 %, regions 7.5-14.4 % in 2018); approx."
# Sparsely populated and urban regions differ in age-standardised morbidity (THL/Kela morbidity
# index: the east and north of Finland well above the national 100, the capital region below).
# Applied as a shift of the mean frailty logit at every age; sizes are assumptions.
MORBIDITY = "assumption shaped by the THL/Kela age-standardised morbidity index (capital region below the national level, Kainuu above it)"

# Relative size of the five-year age bands 0-4, ..., 95-99, 100+ (shaped to the regions' pyramids).
_VANTAA_KERAVA_AGES = (5.8, 6.0, 6.0, 5.6, 6.0, 7.6, 8.4, 8.0, 7.4, 6.6,
                       6.3, 6.0, 5.5, 4.8, 4.6, 3.6, 2.2, 1.2, 0.45, 0.10, 0.01)
_KAINUU_AGES = (3.6, 4.2, 4.8, 4.9, 4.8, 4.9, 4.9, 5.0, 5.0, 4.9,
                5.6, 6.8, 7.9, 8.3, 8.8, 6.9, 4.6, 2.8, 1.3, 0.30, 0.03)


def _vantaa_kerava(base: SimulatorConfig) -> dict[str, Any]:
    p, care, health = base.population, base.care, base.health
    return {
        "population": p.model_copy(update={
            "municipality_sizes": (
                ("Vantaa", src(247_000, "2023", STATFIN)),
                ("Kerava", src(38_000, "2023", STATFIN)),
            ),
            "language_shares": (
                ("fi", src(0.755, "2023", STATFIN + ", Vantaa and Kerava by language")),
                ("sv", src(0.023, "2023", STATFIN + ", Vantaa and Kerava by language")),
                ("other", src(0.222, "2023", STATFIN + ", Vantaa and Kerava by language (foreign-language ~22 %)")),
            ),
            "age_band_weights": _VANTAA_KERAVA_AGES,
            "age_band_source": src(0.074, "2023", STATFIN + ", Vantaa and Kerava: share aged 75+ ~7-8 %"),
            "births_per_1000": src(10.0, "2023", "Statistics Finland, live births per 1,000, Vantaa (approx.)"),
            # the capital region: moving across municipal borders is common at every working age
            "move_out_yearly": tuple(rate * 1.5 for rate in p.move_out_yearly),
            "move_in_balance": 1.1,  # a growing region (assumption)
        }),
        "health": health.model_copy(update={"frailty_logit_at_40": health.frailty_logit_at_40 - 0.10}),  # MORBIDITY
        "care": care.model_copy(update={
            "homecare_share_75_target": src(0.085, "2018", THL_HOMECARE + "; the capital region near the low end"),
            "need_threshold_homecare": care.need_threshold_homecare + 0.01,
        }),
    }


def _kainuu(base: SimulatorConfig) -> dict[str, Any]:
    p, care, health = base.population, base.care, base.health
    young_leave = tuple(rate * (1.4 if 17 <= age < 30 else 1.0) for age, rate in zip(p.move_out_age_knots, p.move_out_yearly))
    return {
        "population": p.model_copy(update={
            "municipality_sizes": (
                ("Kajaani", src(36_000, "2023", STATFIN)),
                ("Sotkamo", src(10_200, "2023", STATFIN)),
                ("Kuhmo", src(7_800, "2023", STATFIN)),
                ("Suomussalmi", src(7_500, "2023", STATFIN)),
                ("Paltamo", src(3_200, "2023", STATFIN)),
                ("Puolanka", src(2_400, "2023", STATFIN)),
                ("Hyrynsalmi", src(2_100, "2023", STATFIN)),
                ("Ristijärvi", src(1_200, "2023", STATFIN)),
            ),
            "language_shares": (
                ("fi", src(0.972, "2023", STATFIN + ", Kainuu by language")),
                ("sv", src(0.001, "2023", STATFIN + ", Kainuu by language")),
                ("other", src(0.027, "2023", STATFIN + ", Kainuu by language")),
            ),
            "age_band_weights": _KAINUU_AGES,
            "age_band_source": src(0.159, "2023", STATFIN + ", Kainuu: share aged 75+ ~15-16 %"),
            "births_per_1000": src(6.5, "2023", "Statistics Finland, live births per 1,000, Kainuu (approx.)"),
            "move_out_yearly": young_leave,  # young adults leave for study and work (assumption: 1.4 x Eksote's)
            "move_in_balance": 0.85,  # a shrinking region (assumption)
        }),
        "health": health.model_copy(update={"frailty_logit_at_40": health.frailty_logit_at_40 + 0.08}),  # MORBIDITY
        "care": care.model_copy(update={
            "homecare_share_75_target": src(0.135, "2018", THL_HOMECARE + "; sparse eastern and northern regions near the high end"),
            "need_threshold_homecare": care.need_threshold_homecare - 0.01,
        }),
    }


_PARAMETER_SETS = {"vantaa-kerava": _vantaa_kerava, "kainuu": _kainuu}


def region_config(name: str = DEFAULT_REGION, **fields: Any) -> SimulatorConfig:
    """The simulator's config for a region (Eksote's parameters with the region's own where it
    differs); `fields` set the rest (customers, years, seed, compute_truth, ...). An unknown region
    names the known ones."""
    known = region(name).name  # UnknownRegionError lists the regions
    base = SimulatorConfig(**fields)
    if known == DEFAULT_REGION:
        return base
    return SimulatorConfig(**{**base.model_dump(exclude={"population", "health", "care", "region"}),
                              **_PARAMETER_SETS[known](base), "region": known})
