"""Childhood-onset chronic conditions (asthma, epilepsy, type 1 diabetes, cerebral palsy) and family adversity:
prevalence and incidence against the sources, effects of exactly the configured size (present vs
switched off), and the conditions showing in the records only for those who have them."""

from __future__ import annotations

import numpy as np
import pytest

from synthetic.config import SimulatorConfig
from synthetic.latent import (
    CONDITIONS, compute_norms, condition_incidence, condition_prevalence, initial_state, rates,
)
from synthetic.simulate import simulate

CONFIG = SimulatorConfig()
CODES = {"asthma": "ICD10/J45", "epilepsy": "ICD10/G40", "type1_diabetes": "ICD10/E10", "cerebral_palsy": "ICD10/G80"}


def test_incidence_and_prevalence_match_the_finnish_figures():
    c = CONFIG.conditions
    ages = np.arange(0, 15, 1 / 12) + 1 / 24  # under 15, as the registers report
    t1d = condition_incidence(c.type1_diabetes, ages).mean()
    assert abs(t1d - c.t1d_incidence_target.value) < 0.1 * c.t1d_incidence_target.value
    epi = condition_incidence(c.epilepsy, np.arange(0, 16, 1 / 12)).mean()
    assert abs(epi - c.epilepsy_incidence_target.value) < 0.15 * c.epilepsy_incidence_target.value
    children = np.arange(0, 18, 1 / 12) + 1 / 24
    epi_prev = condition_prevalence(c.epilepsy, children).mean()
    assert 0.0025 < epi_prev < 0.0055, epi_prev  # 3.2-3.9 per 1,000 children in Finnish studies
    asthma_prev = condition_prevalence(c.asthma, children).mean()
    assert 0.04 < asthma_prev < 0.08, asthma_prev
    t1d_prev = condition_prevalence(c.type1_diabetes, children).mean()
    assert 0.003 < t1d_prev < 0.007, t1d_prev  # ~0.5 % of Finnish children
    cp = condition_prevalence(c.cerebral_palsy, np.array([3.0, 17.0, 60.0]))
    assert np.all((cp > 0.0018) & (cp < 0.0025)), cp  # 2-2.5 per 1,000, diagnosed by age 2, lifelong
    # They persist into adulthood: type 1 diabetes never remits, so prevalence keeps rising.
    assert condition_prevalence(c.type1_diabetes, np.array([40.0]))[0] > condition_prevalence(c.type1_diabetes, np.array([17.0]))[0]


def _children_state(n: int = 40_000, seed: int = 3):
    rng = np.random.default_rng(seed)
    age = rng.uniform(0, 18, n)
    mi = 2022 * 12
    birth = (mi - np.floor(age * 12)).astype("int64")
    s = initial_state(CONFIG, age, rng.random(n) < 0.5, birth, rng)
    return s, mi


def _with(**changes):
    return CONFIG.model_copy(update=changes)


def test_condition_and_family_effects_have_exactly_the_configured_size():
    s, mi = _children_state()
    norms = compute_norms(CONFIG, s, mi, np.ones(len(s), bool))
    on = rates(s, mi, CONFIG, norms)
    c = CONFIG.conditions
    flat = c.model_copy(update={
        name: getattr(c, name).model_copy(update={
            "admission_rr_child": getattr(c, name).admission_rr_child.model_copy(update={"value": 1.0}),
            "er_rr_child": 1.0})
        for _, name in CONDITIONS})
    ch = CONFIG.child
    off_config = _with(conditions=flat, child=ch.model_copy(update={
        "family_log_hazard": ch.family_log_hazard.model_copy(update={"value": 0.0})}))
    off = rates(s, mi, off_config, norms)  # same norms: the ratio is the effect itself
    expected = np.zeros(len(s))
    for field, name in CONDITIONS:
        expected += np.where(getattr(s, field), np.log(getattr(c, name).admission_rr_child.value), 0.0)
    expected += ch.family_log_hazard.value * s.fam_r
    # on the medical admissions (injury admissions have their own propensity, latent._eta)
    np.testing.assert_allclose(np.log((on.adm_d - on.adm_inj_d) / (off.adm_d - off.adm_inj_d)), expected, atol=1e-9)
    np.testing.assert_allclose(on.adm_inj_d, off.adm_inj_d)
    for field, _ in CONDITIONS:
        assert getattr(s, field).sum() > 0, field  # each condition present in 40,000 children


def test_band_normalisation_keeps_the_childrens_mean_hazard():
    s, mi = _children_state()
    active = np.ones(len(s), bool)
    r = rates(s, mi, CONFIG, compute_norms(CONFIG, s, mi, active))
    flat = _with(child=CONFIG.child.model_copy(update={
        "family_log_hazard": CONFIG.child.family_log_hazard.model_copy(update={"value": 0.0})}))
    r0 = rates(s, mi, flat, compute_norms(flat, s, mi, active))
    for band in range(4):
        rows = r.band == band
        assert abs(r.adm_d[rows].mean() / r0.adm_d[rows].mean() - 1) < 1e-9


@pytest.fixture(scope="module")
def ds():
    return simulate(SimulatorConfig(customers=6000, years=2, seed=21, compute_truth=False))


def test_conditions_show_in_the_records_of_those_who_have_them_only(ds):
    lat = ds.latent
    # The latent table holds each month's first-day state: an onset in the last month shows
    # only in the events, so look at events before that month.
    ev = ds.events[ds.events["time"] < lat["month"].max()]
    for column, code in CODES.items():
        ever = set(lat.loc[lat[column], "subject_id"])
        coded = set(ev.loc[ev["code"] == code, "subject_id"])
        assert ever, column
        assert coded <= ever, f"{code} recorded for someone who never had {column}"
        # Present all along (the first month to the last) -> on record within two years for most.
        months = lat.groupby("subject_id")[column].agg(["all", "size"])
        steady = set(months.index[months["all"] & (months["size"] == months["size"].max())])
        assert len(coded & steady) / len(steady) > 0.8, column


def test_children_with_a_condition_are_admitted_more(ds):
    lat = ds.latent
    kids = lat[lat["age"] < 18]
    any_condition = kids[list(CODES)].any(axis=1)
    ratio = kids.loc[any_condition, "unplanned_admission_per_year"].mean() / kids.loc[~any_condition, "unplanned_admission_per_year"].mean()
    assert 1.4 < ratio < 4.0, ratio  # ~2.2 expected (mostly asthma); the individual log hazard u is noisy
