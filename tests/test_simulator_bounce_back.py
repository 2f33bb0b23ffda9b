"""Bounce-back admissions (issue 4): non-admitted ER visits are drawn in latent.advance(), written
by services.emergency() as drawn, and raise the admission hazard of the following months.

Checked where the mechanism acts (the hazards, the state's memory, the band normalisation) and
where it shows (admissions after non-admitted ER visits in the events), against the same world
with it switched off.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthetic.calibration import _Measure, compare_to_targets
from synthetic.config import SimulatorConfig
from synthetic.latent import (
    DAYS_PER_MONTH,
    N_U,
    N_Z,
    U_ER,
    Indicators,
    band_of,
    band_targets,
    compute_norms,
    advance,
    initial_state,
    rates,
)
from synthetic.simulate import simulate
from synthetic.timeline import month_start_days

OFF = {"bounce_back_monthly": ((0, 0.0),)}
MI = 2022 * 12 + 2  # March 2022: 31 days


def _config(care: dict | None = None, **update) -> SimulatorConfig:
    config = SimulatorConfig(**update)
    return config.model_copy(update={"care": config.care.model_copy(update=care or {})})


def _people(config: SimulatorConfig, n: int = 40_000, seed: int = 0):
    """People of all ages whose recent-visit memory is drawn as the world draws it: last month's
    visits at their own ER hazard, plus a fifth of the month before's."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(0, 95, n)
    s = initial_state(config, age, rng.random(n) < 0.55, (MI - age * 12).astype("int64"), rng)
    r0 = rates(s, MI, config, compute_norms(config, s, MI, np.ones(n, bool)))
    last, before = rng.poisson(r0.er_d * DAYS_PER_MONTH), rng.poisson(r0.er_d * DAYS_PER_MONTH)
    return s.replace(er_recent=last + config.care.bounce_back_memory * before)


def _quiet(n: int) -> Indicators:
    zero = np.zeros(n, bool)
    return Indicators(admitted=zero, hip=zero, discharged=zero, c24_now=zero)


def test_the_excess_hazard_has_exactly_the_configured_size_by_age():
    config = SimulatorConfig()
    s = _people(config)
    on = rates(s, MI, config, compute_norms(config, s, MI, np.ones(len(s), bool)))
    profile = dict(config.care.bounce_back_monthly)
    p = np.where(on.age >= 18, profile[18], profile[0])
    expected = -np.log1p(-p) / DAYS_PER_MONTH * np.minimum(s.er_recent, config.care.bounce_back_cap)
    assert np.allclose(on.bounce_d, expected, rtol=1e-12, atol=0)
    assert (on.bounce_d[s.er_recent == 0] == 0).all() and (on.bounce_d[s.er_recent > 0] > 0).all()
    # A month with one visit before gives the stated excess monthly probability (adults).
    one = (s.er_recent == 1.0) & (on.age >= 18)
    assert np.allclose(-np.expm1(-on.bounce_d[one] * DAYS_PER_MONTH), profile[18])
    # Switched off: no excess anywhere.
    off_config = _config(care=OFF)
    off = rates(s, MI, off_config, compute_norms(off_config, s, MI, np.ones(len(s), bool)))
    assert (off.bounce_d == 0).all()


def test_band_normalisation_keeps_admissions_on_target_with_the_excess_inside():
    """The bounce-back excess is part of each band's admissions, not added on top."""
    config = SimulatorConfig()
    s = _people(config)
    active = np.ones(len(s), bool)
    r = rates(s, MI, config, compute_norms(config, s, MI, active))
    off_config = _config(care=OFF)
    r_off = rates(s, MI, off_config, compute_norms(off_config, s, MI, active))
    targets = band_targets(config)
    band = band_of(r.age)
    for b in np.unique(band):
        sel = band == b
        target = targets["adm"][b] + targets["adm_inj"][b]
        assert np.isclose(r.adm_d[sel].mean(), target, rtol=1e-9)
        assert np.isclose(r_off.adm_d[sel].mean(), target, rtol=1e-9)
    # ... and moves admission risk towards the people with recent visits.
    recent = s.er_recent > 0
    assert (r.adm_d[recent] / r_off.adm_d[recent]).mean() > 1.2
    others = r.adm_d[~recent] / r_off.adm_d[~recent]
    assert others.max() <= 1.0 + 1e-12 and others.mean() < 0.95  # (1.0 in a band without recent visitors)


def test_advance_draws_the_months_er_visits_from_their_own_uniform_row():
    config = SimulatorConfig()
    s = _people(config, n=60_000)
    r = rates(s, MI, config, compute_norms(config, s, MI, np.ones(len(s), bool)))
    rng = np.random.default_rng(3)
    U, Z = rng.random((N_U, len(s))), rng.standard_normal((N_Z, len(s)))
    new, ch = advance(s, MI, r, U, Z, _quiet(len(s)), config)
    days = month_start_days(MI + 1) - month_start_days(MI)
    mean = r.er_d * days
    # Poisson with the month's mean: the total and the zero share (a law check, 5+ SE margins).
    assert abs(ch["er_visits"].sum() - mean.sum()) < 5 * np.sqrt(mean.sum())
    zero = np.exp(-mean)
    assert abs((ch["er_visits"] == 0).mean() - zero.mean()) < 5 * np.sqrt(zero.mean() * (1 - zero.mean()) / len(s))
    # The memory decays and counts the new visits.
    assert np.allclose(new.er_recent, config.care.bounce_back_memory * s.er_recent + ch["er_visits"])
    # Only row U_ER decides the count: another draw of every other row leaves it unchanged.
    U2 = np.random.default_rng(4).random((N_U, len(s)))
    U2[U_ER] = U[U_ER]
    _, ch2 = advance(s, MI, r, U2, Z, _quiet(len(s)), config)
    assert np.array_equal(ch["er_visits"], ch2["er_visits"])
    # Inactive people draw none and keep their memory.
    active = np.arange(len(s)) % 2 == 0
    frozen, ch3 = advance(s, MI, r, U, Z, _quiet(len(s)), config, active=active)
    assert (ch3["er_visits"][~active] == 0).all()
    assert np.array_equal(frozen.er_recent[~active], s.er_recent[~active])


@pytest.fixture(scope="module")
def pair():
    """The same world with and without bounce-back admissions."""
    on = SimulatorConfig(customers=6000, years=2, seed=11, compute_truth=False)
    off = _config(care=OFF, customers=6000, years=2, seed=11, compute_truth=False)
    return simulate(on), simulate(off)


def _after_er(ds, days: int, lo: int, hi: int) -> float:
    """The measure `validate` uses (calibration targets), from the events only."""
    return _Measure(ds).admission_after_er(days, lo, hi)


def test_admissions_after_non_admitted_er_visits_rise_when_on(pair):
    on, off = pair
    adult_on, adult_off = _after_er(on, 30, 18, 65), _after_er(off, 30, 18, 65)
    # Off, 18-64 ER visitors are admitted within 30 days about as rarely as their age peers (~0.5 %).
    assert adult_off < 0.012
    assert adult_on > adult_off + 0.012
    assert _after_er(on, 30, 65, 200) > _after_er(off, 30, 65, 200)


def test_er_visits_are_unchanged_in_number_by_the_effect(pair):
    """Visits are drawn from the same uniforms either way; only states moved by the extra
    admissions (frailty jumps, time in hospital) change a few of them."""
    on, off = pair
    n_on = int((on.events["code"] == "ENC/EMERGENCY").sum())
    n_off = int((off.events["code"] == "ENC/EMERGENCY").sum())
    assert abs(n_on - n_off) < 0.03 * n_off


def test_the_calibration_targets_are_measured_and_met_in_a_small_world(pair):
    on, _ = pair
    table = compare_to_targets(on).set_index("quantity")
    for quantity in ("30-day unplanned admission after a non-admitted ER visit, 18-64",
                     "7-day unplanned admission after a non-admitted ER visit, 65+"):
        assert np.isfinite(table.loc[quantity, "measured"])
        assert table.loc[quantity, "ok"], table.loc[quantity].to_dict()
