"""The per-customer what-if (issue 18, part 4): the simulator's what-if truth, the stored estimate,
who is supported, and the estimates checked against the truth over a simulated population."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from training.interventions import INTERVENTIONS, InterventionError, customer_covariates, intervention, trial_rows
from training.whatif import (
    MIN_CELL_STARTERS,
    calibration_by_decile,
    customer_whatif,
    estimate,
    population_whatifs,
    read_estimates,
    risk_with,
    write_estimate,
)


def test_the_whatif_switch_leaves_every_other_output_identical():
    """simulate(whatif_month=...) adds the what-if truth and changes nothing else; the forced start
    never raises a true risk (every effect is a hazard multiplier below 1 or a frailty gain)."""
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    config = SimulatorConfig(customers=2_000, years=2, seed=3)
    plain, with_truth = simulate(config), simulate(config, whatif_month=dt.date(config.start.year + 1, 3, 1))
    assert plain.whatif is None
    for name in ("events", "customers", "risk", "latent", "interventions"):
        assert getattr(plain, name).equals(getattr(with_truth, name)), name
    truth = with_truth.whatif
    assert set(truth["intervention"]) == set(INTERVENTIONS)
    assert (truth["true_probability_with"] <= truth["true_probability"] + 1e-12).all()
    mean = truth.assign(d=truth["true_probability_with"] - truth["true_probability"]).groupby("intervention")["d"].mean()
    assert (mean < 0).all(), mean
    with pytest.raises(ValueError, match="first day of an extract month"):
        simulate(config, whatif_month=dt.date(config.start.year + 1, 3, 2))


def _events(rows):
    return pd.DataFrame({"subject_id": [r[0] for r in rows], "time": pd.to_datetime([r[1] for r in rows]),
                         "code": [r[2] for r in rows], "numeric_value": [r[3] if len(r) > 3 else np.nan for r in rows]})


def test_customer_covariates_follow_the_trial_rules_on_a_hand_made_history():
    """Time zero 2024-06-01, grace month May: covariates as a trial row of May would have them."""
    events = _events([
        (1, "2023-01-01", "HOMECARE/START"), (1, "2024-05-10", "ENC/EMERGENCY"), (1, "2024-04-01", "RAI/CPS", 2.0),
        (2, "2023-01-01", "HOMECARE/START"), (2, "2024-01-05", "MEDROBOT/START"),
        (3, "2024-04-20", "MOVE/IN"), (3, "2024-04-21", "HOMECARE/START"),
        (4, "2023-01-01", "HOMECARE/START"), (4, "2024-05-20", "HOMECARE/END"),
        (5, "2022-01-01", "CARE24H/START"),
        (1, "2024-06-03", "REMOTE/START"),  # after time zero: not seen
    ])
    customers = pd.DataFrame({"subject_id": [1, 2, 3, 4, 5], "birth_year": [1940, 1950, 1940, 1940, 1930],
                              "birth_month": [6, 1, 1, 1, 1]})
    rows = customer_covariates(events, customers, np.array([1, 2, 3, 4, 5]), pd.Timestamp("2024-06-01")).set_index("subject_id")
    assert rows.loc[1, "age"] == 84.0 and rows.loc[1, "age_band"] == 1
    assert rows.loc[1, "er_visit"] and not rows.loc[1, "admitted"] and rows.loc[1, "cps_group"] == 2
    assert rows.loc[1, "home_care"] and pd.isna(rows.loc[1, "started_remote_visits"])
    assert rows.loc[2, "started_medication_robot"] == pd.Timestamp("2024-01-05")
    assert not rows.loc[3, "resident"] and rows.loc[1, "resident"]
    assert not rows.loc[4, "home_care"]  # ended within the grace month
    assert rows.loc[5, "care24h"]


@pytest.fixture(scope="module")
def region():
    """5,000 residents, 4 years, seed 21 (chosen before looking), what-if truth at 2025-01-01."""
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    return simulate(SimulatorConfig(customers=5_000, years=4, seed=21), whatif_month=dt.date(2025, 1, 1))


def _estimates(ds, bootstrap=100):
    start, end = pd.Timestamp(ds.metadata["extract_start"]), pd.Timestamp(ds.metadata["extract_end"])
    out = {}
    for name, iv in INTERVENTIONS.items():
        rows = trial_rows(ds.events, ds.customers, start, end, iv)
        out[name] = estimate(rows, iv, dataset_customers=len(ds.customers), dataset_events=len(ds.events),
                             extract_start=start, extract_end=end, bootstrap=bootstrap)
    return out


def test_estimate_round_trip_and_a_bad_file_named(tmp_path, region):
    found = _estimates(region, bootstrap=20)["home_rehabilitation"]
    assert found.matched >= 20 and found.rate_ratio_low <= found.rate_ratio <= found.rate_ratio_high
    assert sum(c.starters for c in found.cells) == found.matched
    write_estimate(tmp_path, found)
    assert read_estimates(tmp_path) == {"home_rehabilitation": found}
    assert [p.name for p in tmp_path.iterdir()] == ["home_rehabilitation.json"]  # no temporary file left
    (tmp_path / "remote_visits.json").write_text(json.dumps({"intervention": "remote_visits"}))
    with pytest.raises(InterventionError, match="remote_visits.json: not a what-if estimate"):
        read_estimates(tmp_path)
    with pytest.raises(InterventionError, match="unknown intervention 'robot'"):
        intervention("robot")


def test_risk_with_is_the_hazard_ratio_over_the_horizon():
    assert risk_with(0.2, 1.0) == pytest.approx(0.2)
    assert risk_with(0.2, 0.5) == pytest.approx(1 - 0.8 ** 0.5)
    assert risk_with(0.0, 0.7) == 0.0


def test_unsupported_customers_get_a_reason_and_no_number(region):
    """Every candidate: a number only where each rule holds, checked against the raw events."""
    ests = _estimates(region)
    at = pd.Timestamp("2025-01-01")
    truth = region.whatif
    risk = truth.drop_duplicates("subject_id").set_index("subject_id")["true_probability"]
    found = population_whatifs(ests, region.events, region.customers, risk, at)
    hidden = found["reason"].notna()
    assert hidden.any() and (~hidden).any()
    assert found.loc[hidden, ["change", "change_low", "change_high"]].isna().all().all()
    shown = found.loc[~hidden]
    assert shown[["change", "change_low", "change_high"]].notna().all().all()
    assert (shown["change_low"] <= shown["change"]).all() and (shown["change"] <= shown["change_high"]).all()
    # a naive oracle of the eligibility rules, from the raw events before time zero
    ev = region.events.loc[region.events["time"] < at]
    for name, iv in INTERVENTIONS.items():
        ids = shown.loc[shown["intervention"] == name, "subject_id"]
        for sid in ids.iloc[:40]:
            mine = ev.loc[ev["subject_id"] == sid]
            assert not (mine["code"] == iv.start_code).any(), (name, sid)
            assert not mine["code"].isin(["CARE24H/START", "DEATH", "MOVE/OUT"]).any(), (name, sid)
            if iv.home_care_at_baseline:
                care = mine.loc[mine["code"].isin(["HOMECARE/START", "HOMECARE/END"]), "code"]
                assert len(care) and care.iloc[-1] == "HOMECARE/START", (name, sid)
        cells = ests[name]
        covariates = customer_covariates(region.events, region.customers, ids.to_numpy(), at)
        for _, row in covariates.iterrows():
            cell = cells.cell(tuple(int(row[k]) for k in iv.match_on))
            assert cell is not None and cell.starters >= MIN_CELL_STARTERS


@pytest.mark.slow
def test_estimates_hold_the_true_change_over_the_population():
    """20,000 residents, 5 years, seed 17 and what-if date 2026-01-01 (chosen before looking): for
    each intervention the supported customers' mean true change in risk (the simulator's what-if
    truth) lies within the mean of their estimated intervals, and the decile table is the
    estimates' and the truth's means per decile of the estimated change."""
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    ds = simulate(SimulatorConfig(customers=20_000, years=5, seed=17), whatif_month=dt.date(2026, 1, 1))
    ests = _estimates(ds, bootstrap=200)
    truth = ds.whatif.assign(true_change=lambda f: f["true_probability_with"] - f["true_probability"])
    risk = truth.drop_duplicates("subject_id").set_index("subject_id")["true_probability"]
    found = population_whatifs(ests, ds.events, ds.customers, risk, pd.Timestamp("2026-01-01"))
    found = found.merge(truth[["subject_id", "intervention", "true_change"]], on=["subject_id", "intervention"])
    checked = 0
    for name in INTERVENTIONS:
        supported = found.loc[(found["intervention"] == name) & found["reason"].isna()]
        if len(supported) < 20:
            continue
        table = calibration_by_decile(supported)
        overall = table.iloc[-1]
        assert overall["customers"] == len(supported) == table["customers"].iloc[:-1].sum()
        assert overall["low"] <= overall["true"] <= overall["high"], (name, table)
        # per decile: the mean estimate is the mean of its customers' estimates, rising by decile
        assert table["estimated"].iloc[:-1].is_monotonic_increasing
        checked += 1
    assert checked >= 2


def test_customer_whatif_hides_other_outcomes_and_too_small_estimates(region):
    ests = _estimates(region, bootstrap=20)
    covariates = customer_covariates(region.events, region.customers, np.array([int(region.customers["subject_id"].iloc[0])]),
                                     pd.Timestamp("2025-01-01")).iloc[0]
    assert customer_whatif(ests["home_rehabilitation"], "home_rehabilitation", covariates, 0.1, "CARE24H/START", 180).reason == "outcome"
    assert customer_whatif(None, "remote_visits", covariates, 0.1, "ADMIT/UNPLANNED", 90).reason == "no_estimate"
    small = ests["home_rehabilitation"].model_copy(update={"matched": 5})
    assert customer_whatif(small, "home_rehabilitation", covariates, 0.1, "ADMIT/UNPLANNED", 90).reason == "too_few"


def test_the_page_covariates_equal_the_trial_covariates(region):
    """The page's one-customer path (numpy, from the held history's arrays) against the vectorised
    customer_covariates() the trials share, over 600 customers of the region (every candidate
    first: home care, 65+), at two dates."""
    from features import History
    from features.history import code_list
    from serving.whatif_section import covariates_of

    history = History.from_frames(region.events, region.customers)
    customer = np.repeat(history.subject_ids, np.diff(history.ptr))
    events = pd.DataFrame({"subject_id": customer, "time": history.time.astype("datetime64[us]"),
                           "code": np.asarray(code_list(), dtype=object)[history.code], "numeric_value": history.value})
    ids = np.unique(np.concatenate([region.whatif["subject_id"].unique()[:500], region.customers["subject_id"].to_numpy()[:100]]))
    seen = []
    for at in (pd.Timestamp("2025-01-01"), pd.Timestamp("2024-07-01")):
        expected = customer_covariates(events, region.customers, ids, at).set_index("subject_id")
        seen.append(expected)
        for sid in ids:
            got = covariates_of(history, int(sid), at)
            want = expected.loc[sid]
            for column in expected.columns:
                a, b = got[column], want[column]
                if pd.isna(b):
                    assert pd.isna(a), (sid, at, column, a, b)
                else:
                    assert a == b, (sid, at, column, a, b)
    # the comparison saw each rule both ways (an oracle test over customers all alike proves little)
    both = pd.concat(seen)
    for column in ("home_care", "resident", "care24h", "discharged", "admitted", "er_visit", "fall_alarm"):
        assert both[column].nunique() == 2, column
    assert both["cps_group"].nunique() == 4 and both["drs_group"].nunique() == 3
    assert both[[f"started_{name}" for name in INTERVENTIONS]].notna().any().all()


def test_cli_store_writes_the_estimate_the_view_reads(tmp_path):
    """`evaluate-intervention --store` end to end on a small simulated folder: one file in the home's
    interventions/, read back as the service reads it, and its line in the output."""
    from synthetic.config import SimulatorConfig
    from synthetic.io import write_simulated
    from synthetic.simulate import simulate
    from tests.test_interventions import run_cli

    folder, home = tmp_path / "region", tmp_path / "home"
    write_simulated(simulate(SimulatorConfig(customers=3_000, years=3, seed=5, compute_truth=False)), folder)
    result = run_cli("evaluate-intervention", "--intervention", "home_rehabilitation", "--data", str(folder), "--no-truth",
                     "--bootstrap", "20", "--store", home=home)
    assert result.returncode == 0, result.stderr
    assert f"what-if estimate stored: {home / 'interventions' / 'home_rehabilitation.json'}" in result.stdout
    assert [p.name for p in (home / "interventions").iterdir()] == ["home_rehabilitation.json"]
    found = read_estimates(home / "interventions")["home_rehabilitation"]
    assert found.bootstrap == 20 and found.matched > 0 and found.extract_start == dt.date(2022, 1, 1)


def test_no_matched_starter_is_an_error_and_nothing_is_stored(tmp_path, region):
    iv = intervention("remote_visits")
    start, end = pd.Timestamp(region.metadata["extract_start"]), pd.Timestamp(region.metadata["extract_end"])
    rows = trial_rows(region.events, region.customers, start, end, iv)
    rows = rows.loc[~rows["starter"]]  # nobody starts
    with pytest.raises(InterventionError, match="no starter of remote video visits has a comparable not-yet-starter"):
        estimate(rows, iv, dataset_customers=1, dataset_events=1, extract_start=start, extract_end=end)
