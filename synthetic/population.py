"""Who is in the region: the residents at the extract start, plus births and in-movers later.

Static attributes only (birth month, sex, municipality, language, entry time). Everything that
changes lives in latent.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from data_contracts.catalogue import LANGUAGES
from synthetic.config import SimulatorConfig
from synthetic.timeline import Calendar, month_index, month_start_days

NOT_ENTERING = -(10**6)  # entry month of residents present from the start
OLDER_FROM_BAND = 13  # the five-year band of 65-69: the 65+ of an ageing shift


@dataclass(frozen=True)
class Population:
    """Static attributes, one row per person in the pool (residents first, then entrants)."""

    birth_mi: np.ndarray  # int64 month index of birth
    female: np.ndarray  # bool
    municipality: np.ndarray  # int8 index into config.municipality_names()
    language: np.ndarray  # int8 index into LANGUAGES
    entry_mi: np.ndarray  # int64 month index of entry (NOT_ENTERING for residents)
    entry_t: np.ndarray  # float days of entry (-inf for residents)
    moved_in: np.ndarray  # bool: entered by moving in (MOVE/IN event); births have no event

    def __len__(self) -> int:
        return len(self.birth_mi)


def _band_weights(config: SimulatorConfig) -> np.ndarray:
    w = np.asarray(config.population.age_band_weights, dtype="float64")
    return w / w.sum()


def _draw_age_months(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    band = rng.choice(len(weights), size=n, p=weights)
    width = np.where(band == len(weights) - 1, 72, 60)
    return band * 60 + np.floor(rng.random(n) * width).astype("int64")


def _female(rng: np.random.Generator, age_months: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    shares = np.asarray(config.population.female_share_by_band)
    band = np.minimum(age_months // 60, len(shares) - 1)
    return rng.random(len(age_months)) < shares[band]


def move_out_yearly(config: SimulatorConfig, age_years: np.ndarray) -> np.ndarray:
    p = config.population
    return np.interp(age_years, p.move_out_age_knots, p.move_out_yearly)


def mover_weights(config: SimulatorConfig) -> np.ndarray:
    """In-movers' age structure over the five-year bands: population weight x moving rate."""
    weights = _band_weights(config)
    mover_w = weights * move_out_yearly(config, np.arange(len(weights)) * 5 + 2.5)
    return mover_w / mover_w.sum()


def build_population(config: SimulatorConfig, calendar: Calendar, rng: np.random.Generator) -> Population:
    n = config.customers
    weights = _band_weights(config)
    mun_w = np.array([s.value for _, s in config.population.municipality_sizes], dtype="float64")
    mun_index = np.arange(len(mun_w), dtype="int8")
    lang_w = np.array([s.value for _, s in config.population.language_shares], dtype="float64")
    lang_index = np.array([LANGUAGES.index(name) for name, _ in config.population.language_shares], dtype="int8")

    # Residents at the extract start.
    age_m = _draw_age_months(rng, n, weights)
    birth_mi = calendar.first_extract_mi - age_m
    female = _female(rng, age_m, config)

    # Expected flows per month, from the residents' age structure.
    band_mid_years = (np.arange(len(weights)) * 5 + 2.5)
    out_rate_by_band = move_out_yearly(config, band_mid_years)
    yearly_out = n * float(np.sum(weights * out_rate_by_band)) * config.population.move_in_balance
    yearly_births = n * config.population.births_per_1000.value / 1000.0
    months = calendar.n_extract
    n_in = rng.poisson(yearly_out / 12.0, size=months)
    n_birth = rng.poisson(yearly_births / 12.0, size=months)

    mover_w = mover_weights(config)
    in_month = np.repeat(np.arange(months), n_in)
    in_age = _draw_age_months(rng, len(in_month), mover_w)
    birth_month = np.repeat(np.arange(months), n_birth)

    entry_m = np.concatenate([in_month, birth_month])
    entry_mi = calendar.first_extract_mi + entry_m
    entrant_birth_mi = np.concatenate([entry_mi[: len(in_month)] - in_age, entry_mi[len(in_month):]])
    entrant_age = entry_mi - entrant_birth_mi
    starts = month_start_days(entry_mi)
    lengths = month_start_days(entry_mi + 1) - starts
    entry_t = starts + rng.random(len(entry_mi)) * lengths

    total = n + len(entry_mi)
    return Population(
        birth_mi=np.concatenate([birth_mi, entrant_birth_mi]).astype("int64"),
        female=np.concatenate([female, _female(rng, entrant_age, config)]),
        municipality=mun_index[rng.choice(len(mun_w), size=total, p=mun_w / mun_w.sum())],
        language=lang_index[rng.choice(len(lang_w), size=total, p=lang_w / lang_w.sum())],
        entry_mi=np.concatenate([np.full(n, NOT_ENTERING, dtype="int64"), entry_mi]).astype("int64"),
        entry_t=np.concatenate([np.full(n, -np.inf), entry_t]),
        moved_in=np.concatenate([np.zeros(n, bool), np.ones(len(in_month), bool), np.zeros(len(birth_month), bool)]),
    )


def older_in_movers(config: SimulatorConfig, pop: Population, rng: np.random.Generator) -> tuple[Population, np.ndarray]:
    """The population with config.shifts.ageing applied, and the rows whose in-mover changed.

    Each in-mover from the shift's month on is, with probability q, replaced by one drawn from the
    65+ part of the movers' age structure (age and sex; municipality, language and entry time stay).
    With 65+ share s of the movers and multiplier k, q = (k - 1) s / (1 + (k - 1) s) gives exactly
    the structure whose 65+ weights are k times as large, renormalised, and keeps every other
    in-mover as drawn. Draws are fixed-shape (one of each per in-mover) from `rng`, a stream of the
    shift's own, so nothing else in the population changes."""
    shift = config.shifts.ageing
    if shift is None:
        return pop, np.zeros(0, dtype="int64")
    mover_w = mover_weights(config)
    share = float(mover_w[OLDER_FROM_BAND:].sum())
    k = shift.in_movers_65_plus_multiplier
    q = (k - 1.0) * share / (1.0 + (k - 1.0) * share)
    older_w = np.where(np.arange(len(mover_w)) >= OLDER_FROM_BAND, mover_w, 0.0)
    movers = np.flatnonzero(pop.moved_in)
    u = rng.random(len(movers))
    age_m = _draw_age_months(rng, len(movers), older_w / older_w.sum())
    female = _female(rng, age_m, config)
    pick = (pop.entry_mi[movers] >= month_index(shift.start)) & (u < q)
    who = movers[pick]
    birth_mi, is_female = pop.birth_mi.copy(), pop.female.copy()
    birth_mi[who] = pop.entry_mi[who] - age_m[pick]
    is_female[who] = female[pick]
    return replace(pop, birth_mi=birth_mi, female=is_female), who
