"""Home-care failure history in the records: the interRAI falls item (falls in the 90 days before an
assessment) records the simulated falls, without look-ahead, and switching it off changes nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthetic.config import SimulatorConfig
from synthetic.simulate import simulate


@pytest.fixture(scope="module")
def ds():
    return simulate(SimulatorConfig(customers=6000, years=2, seed=23, compute_truth=False))


def _month(t: pd.Series) -> pd.Series:
    return pd.to_datetime(t).dt.to_period("M")


def test_interrai_falls_item_counts_the_falls_of_the_three_months_before(ds):
    ev = ds.events
    falls = ev[ev["code"] == "RAI/FALLS"]
    maple = ev[ev["code"] == "RAI/MAPLE"]
    # One falls item per assessment, at the assessment's time.
    assert len(falls) == len(maple) > 300
    assert np.array_equal(np.sort(falls["time"].to_numpy()), np.sort(maple["time"].to_numpy()))
    assert set(falls["numeric_value"].unique()) <= {0.0, 1.0, 2.0}
    # Oracle: clients with fall sensors raise an alarm at every fall while in home care. For those in
    # home care at the start of the assessment's month and the three before, the item must equal the
    # alarms of those three calendar months, capped at 2 (a fall later in the month is not known yet).
    alarms = ev[ev["code"] == "IOT/FALL_ALARM"]
    sensor = set(ev.loc[ev["code"].isin(["IOT/FALL_ALARM", "IOT/INACTIVITY_ALARM"]), "subject_id"])
    a = falls[falls["subject_id"].isin(sensor)].copy()
    a["m"] = _month(a["time"])
    hc = ds.latent.assign(m=_month(ds.latent["month"])).set_index(["subject_id", "m"])["home_care"]
    steady = np.ones(len(a), bool)
    for back in range(4):
        key = pd.MultiIndex.from_arrays([a["subject_id"].to_numpy(), (a["m"] - back).to_numpy()])
        steady &= hc.reindex(key).eq(True).to_numpy()
    a = a[steady]
    assert len(a) > 100
    am = alarms.assign(m=_month(alarms["time"])).groupby(["subject_id", "m"]).size()
    expected = np.zeros(len(a))
    for back in (1, 2, 3):
        key = pd.MultiIndex.from_arrays([a["subject_id"].to_numpy(), (a["m"] - back).to_numpy()])
        expected += am.reindex(key).fillna(0).to_numpy()
    assert np.array_equal(a["numeric_value"].to_numpy(), np.minimum(expected, 2))
    assert (expected > 0).sum() >= 10  # the oracle saw falls, not only zeros
    # Home care clients fall: a tenth or more of the assessments record one (frailty drives falls).
    assert 0.05 < (falls["numeric_value"] > 0).mean() < 0.5


def test_switching_the_falls_item_off_drops_that_code_and_nothing_else():
    on = SimulatorConfig(customers=1500, years=1, seed=5, compute_truth=False)
    off = on.model_copy(update={"care": on.care.model_copy(update={"rai_records_falls": False})})
    ev_on, ev_off = simulate(on).events, simulate(off).events
    assert (ev_on["code"] == "RAI/FALLS").sum() > 20
    assert not (ev_off["code"] == "RAI/FALLS").any()
    kept = ev_on[ev_on["code"] != "RAI/FALLS"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, ev_off.reset_index(drop=True))
