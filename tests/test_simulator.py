"""The simulator: determinism, code catalogue, structural invariants of events, config, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthetic.codes import catalogue
from synthetic.config import SimulatorConfig, sourced_parameters
from synthetic.simulate import simulate


@pytest.fixture(scope="module")
def ds():
    return simulate(SimulatorConfig(customers=3000, seed=7))


@pytest.fixture(scope="module")
def small_pair():
    config = SimulatorConfig(customers=1500, years=1, seed=11)
    return simulate(config), simulate(config)


def _times(ds, code):
    ev = ds.events
    return ev.loc[ev["code"] == code, ["subject_id", "time"]]


def test_same_seed_gives_identical_bytes(small_pair, tmp_path):
    from synthetic.io import write_simulated

    a, b = small_pair
    write_simulated(a, tmp_path / "a")
    write_simulated(b, tmp_path / "b")
    for name in ("events.parquet", "customers.parquet", "truth/risk.parquet", "truth/latent.parquet",
                 "truth/interventions.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_different_seed_gives_different_data(small_pair):
    a, _ = small_pair
    other = simulate(SimulatorConfig(customers=1500, years=1, seed=12, compute_truth=False))
    assert len(a.events) != len(other.events) or not a.events.equals(other.events)
    assert not a.customers["birth_year"].equals(other.customers["birth_year"])


def test_every_catalogue_code_and_only_those(ds):
    cat = catalogue()
    assert set(ds.events["code"].unique()) == set(cat.codes)
    area = dict(zip(cat.codes, cat.service_area))
    assert (ds.events["service_area"] == ds.events["code"].map(area)).all()


def test_values_and_costs_follow_the_catalogue():
    import io
    from importlib.util import find_spec
    from pathlib import Path

    path = Path(next(iter(find_spec("data_contracts").submodule_search_locations))) / "codes.csv"
    codes = pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")))
    ds = simulate(SimulatorConfig(customers=1000, years=1, seed=3, compute_truth=False))
    ev = ds.events.merge(codes, on="code", how="left")
    ranged = ev["value_min"].notna()
    v = ev.loc[ranged, "numeric_value"]
    assert v.notna().all()
    assert ((v >= ev.loc[ranged, "value_min"]) & (v <= ev.loc[ranged, "value_max"])).all()
    discharge = ev["code"] == "DISCHARGE"
    assert np.allclose(ev.loc[discharge, "cost_eur"], ev.loc[discharge, "numeric_value"] * 750)
    event_cost = ev["cost_basis"] == "event"
    assert np.allclose(ev.loc[event_cost, "cost_eur"], ev.loc[event_cost, "unit_cost_eur"])
    assert (ev["cost_eur"] >= 0).all()


def test_population_shape(ds):
    c = ds.customers
    assert c["subject_id"].is_unique and (c["subject_id"] > 0).all()
    assert set(c["municipality"]) <= {"Lappeenranta", "Imatra", "Lemi", "Luumäki", "Parikkala", "Rautjärvi",
                                      "Ruokolahti", "Savitaipale", "Taipalsaari"}
    shares = c["municipality"].value_counts(normalize=True)
    assert 0.45 < shares["Lappeenranta"] < 0.62 and 0.14 < shares["Imatra"] < 0.24
    lang = c["language"].value_counts(normalize=True)
    assert lang["fi"] > 0.93 and lang.get("other", 0) > 0.02
    age = 2022 - c["birth_year"].astype(int)
    residents = c[c["birth_year"] <= 2021]
    assert 0.11 < (2022 - residents["birth_year"].astype(int) >= 76).mean() < 0.17  # ~13-14 % aged 75+
    assert age.max() <= 110


def test_events_sorted_and_inside_the_extract(ds):
    ev = ds.events
    key = ev["subject_id"].to_numpy() * 10**12 + (ev["time"].astype("int64").to_numpy() // 10**6 - 1_600_000_000)
    assert np.all(np.diff(key) >= 0)
    start, end = pd.Timestamp(ds.metadata["extract_start"]), pd.Timestamp(ds.metadata["extract_end"])
    assert ev["time"].min() >= start and ev["time"].max() <= end
    assert set(ev["subject_id"]) <= set(ds.customers["subject_id"])
    birth = ds.customers.set_index("subject_id")
    born = pd.to_datetime(dict(year=birth["birth_year"], month=birth["birth_month"], day=1))
    assert (ev["time"].to_numpy() >= born.reindex(ev["subject_id"]).to_numpy()).all()


def test_nothing_after_death_or_moving_out(ds):
    ev = ds.events
    exits = ev[ev["code"].isin(["DEATH", "MOVE/OUT"])]
    assert exits["subject_id"].is_unique
    limit = exits.set_index("subject_id")["time"]
    t_exit = limit.reindex(ev["subject_id"]).to_numpy()
    after = ~pd.isna(t_exit) & (ev["time"].to_numpy() > t_exit)
    assert not after.any()
    # The exit is the subject's last event.
    last = ev.groupby("subject_id").tail(1)
    assert set(exits["subject_id"]) <= set(last.loc[last["code"].isin(["DEATH", "MOVE/OUT"]), "subject_id"])


def _stays(ds) -> pd.DataFrame:
    ev = ds.events
    fam = ev[ev["code"].isin(["ADMIT/UNPLANNED", "ADMIT/PLANNED", "DISCHARGE"])].reset_index(drop=True)
    is_admit = fam["code"] != "DISCHARGE"
    same = fam["subject_id"].eq(fam["subject_id"].shift(-1))
    nxt_is_dis = (~is_admit).shift(-1, fill_value=False) & same
    # Alternation: an ADMIT is followed (same customer) by DISCHARGE or nothing; a DISCHARGE follows an ADMIT.
    prev_admit = is_admit.shift(1, fill_value=False) & fam["subject_id"].eq(fam["subject_id"].shift(1))
    assert prev_admit[~is_admit].all(), "DISCHARGE without a running stay"
    assert not (is_admit & is_admit.shift(-1, fill_value=False) & same).any(), "overlapping stays"
    stays = fam[is_admit].copy()
    stays["end"] = fam["time"].shift(-1)[is_admit].where(nxt_is_dis[is_admit])
    return stays


def test_stays_never_overlap_and_open_only_at_extract_end(ds):
    stays = _stays(ds)
    open_ = stays[stays["end"].isna()]
    exits = set(ds.events.loc[ds.events["code"].isin(["DEATH", "MOVE/OUT"]), "subject_id"])
    assert not set(open_["subject_id"]) & exits, "a stay is left open at death or moving away"
    assert open_["subject_id"].is_unique
    last_admit = stays.groupby("subject_id")["time"].max()
    assert (open_.set_index("subject_id")["time"] == last_admit.reindex(open_["subject_id"])).all()
    assert (stays["end"].dropna() >= stays.loc[stays["end"].notna(), "time"]).all()


def test_no_events_inside_a_stay_but_its_own(ds):
    stays = _stays(ds)
    end = pd.Timestamp(ds.metadata["extract_end"])
    iv = stays.assign(end=stays["end"].fillna(end))
    ev = ds.events
    merged = ev.merge(iv[["subject_id", "time", "end"]].rename(columns={"time": "a"}), on="subject_id")
    inside = (merged["time"] > merged["a"]) & (merged["time"] < merged["end"])
    assert not inside.any(), merged.loc[inside, ["subject_id", "time", "code"]].head()


def test_services_running_at_the_start_appear_at_extract_start(ds):
    ev = ds.events
    start = pd.Timestamp(ds.metadata["extract_start"])
    at_start = ev[ev["time"] == start]
    for code in ("HOMECARE/START", "CARE24H/START", "MEDROBOT/START", "REMOTE/START", "CHILDWELFARE/OPEN_CARE_START"):
        assert (at_start["code"] == code).sum() > 0, code
    # Home care episodes alternate START / END per customer.
    hc = ev[ev["code"].isin(["HOMECARE/START", "HOMECARE/END"])]
    is_start = hc["code"].eq("HOMECARE/START")
    prev_same = hc["subject_id"].eq(hc["subject_id"].shift(1))
    assert not (is_start & is_start.shift(1, fill_value=False) & prev_same).any()
    assert (is_start.shift(1, fill_value=False) & prev_same)[~is_start].all()


def test_interrai_and_medication_robot_shapes(ds):
    ev = ds.events
    rai = ev[ev["code"].str.startswith("RAI/")]
    per_visit = rai.groupby(["subject_id", "time"])["code"].nunique()
    assert (per_visit == 10).all()  # MAPLe, CPS, ADL-H, IADL, CHESS, DRS, lives alone, carer distress, ABS, falls
    hc_clients = set(ev.loc[ev["code"] == "HOMECARE/START", "subject_id"])
    assert set(rai["subject_id"]) <= hc_clients
    dispense = ev[ev["code"] == "MEDROBOT/DISPENSE"]
    assert dispense.groupby(["subject_id", dispense["time"].dt.date]).size().max() == 1
    robots = set(ev.loc[ev["code"] == "MEDROBOT/START", "subject_id"])
    assert set(dispense["subject_id"]) <= robots


def test_truth_rows_only_for_people_in_the_region(ds):
    risk = ds.risk
    assert set(risk["outcome"]) == {"hospitalisation", "homecare_failure"}
    assert (risk["prediction_time"].dt.day == 1).all() and (risk["prediction_time"].dt.hour == 0).all()
    assert risk["true_probability"].between(0, 1).all()
    ev = ds.events
    exits = ev[ev["code"].isin(["DEATH", "MOVE/OUT"])].set_index("subject_id")["time"]
    t_exit = exits.reindex(risk["subject_id"]).to_numpy()
    assert not (~pd.isna(t_exit) & (risk["prediction_time"].to_numpy() >= t_exit)).any()
    entries = ev[ev["code"] == "MOVE/IN"].set_index("subject_id")["time"]
    t_in = entries.reindex(risk["subject_id"]).to_numpy()
    assert not (~pd.isna(t_in) & (risk["prediction_time"].to_numpy() < t_in)).any()
    hosp = risk[risk["outcome"] == "hospitalisation"]
    assert hosp.groupby("prediction_time").size().min() > 2800


def test_latent_and_interventions_tables(ds):
    lat = ds.latent
    for col in ("frailty", "cognition", "depressed", "family_risk", "home_care", "care24h"):
        assert col in lat.columns
    assert lat["frailty"].between(0, 1).all()
    iv = ds.interventions
    assert set(iv["intervention"]) == {"home_care", "home_rehabilitation", "remote_visits", "medication_robot"}
    robot = iv[iv["intervention"] == "medication_robot"]
    assert np.allclose(robot["hazard_multiplier_admission"], 0.90)
    assert (iv["end"].isna() | (iv["end"] >= iv["start"])).all()


def test_config_is_typed_frozen_and_sourced():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SimulatorConfig(customers=10, no_such_field=1)
    with pytest.raises(ValidationError):
        SimulatorConfig(customers=-1)
    config = SimulatorConfig()
    with pytest.raises(ValidationError):
        config.customers = 5
    rows = sourced_parameters(config)
    assert len(rows) >= 20
    assert all(r["year"] and r["source"] for r in rows)


def test_contracts_accept_the_simulated_dataset(ds):
    import data_contracts

    data_contracts.validate_dataset(ds.events, ds.customers, ds.metadata)


@pytest.mark.slow
def test_calibration_targets_at_default_size():
    from synthetic.calibration import compare_to_targets

    default = SimulatorConfig()
    assert default.customers == 20_000
    dataset = simulate(default.model_copy(update={"compute_truth": False}))
    table = compare_to_targets(dataset)
    assert len(table) >= 15
    bad = table[~table["ok"]]
    assert bad.empty, bad[["quantity", "target", "measured", "tolerance"]].to_string()


def test_care24h_spread_factors_scale_the_hazard_and_average_one_among_clients():
    """Falls, depression and acute instability multiply the 24-hour care hazard by their stated
    sizes, and the norm divides their mean out over the 65+ home care clients (they redistribute
    the risk, the 24-hour care share stays calibrated)."""
    from synthetic.latent import _c24_extra, compute_norms, initial_state, rates

    config = SimulatorConfig(customers=2000, seed=3)
    rng = np.random.default_rng(0)
    n = 20_000
    age = rng.uniform(60, 100, n)
    mi = 2022 * 12
    s = initial_state(config, age, rng.random(n) < 0.6, (mi - age * 12).astype("int64"), rng)
    s = s.replace(fall_hist=rng.exponential(0.3, n))
    active = np.ones(n, bool)
    norms = compute_norms(config, s, mi, active)
    clients = (age >= 65) & s.hc & ~s.c24
    assert clients.sum() > 1000
    assert np.isclose((_c24_extra(s, config)[clients] / norms.c24).mean(), 1.0)
    r = rates(s, mi, config, norms)
    c = config.care
    calm = s.replace(fall_hist=np.zeros(n), acute=np.zeros(n), dep=np.zeros(n, bool))
    ref = rates(calm, mi, config, norms).c24_d
    fell = rates(calm.replace(fall_hist=np.full(n, 1.0)), mi, config, norms).c24_d
    sad = rates(calm.replace(dep=np.ones(n, bool)), mi, config, norms).c24_d
    on = clients & (ref > 0)
    assert np.allclose(fell[on] / ref[on], np.exp(c.care24h_fall_log_hazard))
    assert np.allclose(sad[on] / ref[on], c.care24h_depression_multiplier)
    capped = rates(calm.replace(fall_hist=np.full(n, 5.0)), mi, config, norms).c24_d
    assert np.allclose(capped[on] / ref[on], np.exp(2 * c.care24h_fall_log_hazard))
    assert (r.c24_d[r.age < 65] == 0).all() and (r.c24_d[s.c24] == 0).all()



def test_a_stay_begun_after_the_move_to_24_hour_care_still_ends_at_death():
    """The region run (130,000, seed 42) had a customer admitted from 24-hour care who died during
    the stay; only the earlier moment (the move) was checked, so the stay ran past the death and,
    in the burn-in, into the newcomer who took the slot (an orphan DISCHARGE the contracts refuse)."""
    from synthetic.timed import end_stays_at

    admit = np.array([-21.8, 0.0, 5.0, 0.0])
    discharge = np.array([6.6, 10.0, 8.0, 3.0])
    c24 = np.array([-25.4, 4.0, np.inf, np.inf])  # before the stay / during it / none / none
    death = np.array([-20.8, 6.0, 7.0, np.inf])  # during / after the move / during / none
    ended = end_stays_at(admit, discharge, c24, death)
    np.testing.assert_array_equal(ended, [-20.8, 4.0, 7.0, 3.0])
