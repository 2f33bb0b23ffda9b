"""Simulator shifts (config.ShiftConfig): a coding change changes only the records from its month
on; a home care capacity cut changes the world from its month on, and the truth with it; no shift
leaves every output as it was."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from synthetic.config import CodingChange, HomeCareCut, ShiftConfig, SimulatorConfig
from synthetic.simulate import simulate

START = dt.date(2023, 1, 1)
BASE = dict(customers=2500, years=2, seed=5)


@pytest.fixture(scope="module")
def quiet():
    return simulate(SimulatorConfig(**BASE))


@pytest.fixture(scope="module")
def recoded():
    shifts = ShiftConfig(coding=(CodingChange(start=START, code="ICPC2/R74", recorded_as="ICD10/J18.9"),
                                 CodingChange(start=START, code="ICPC2/K86")))
    return simulate(SimulatorConfig(**BASE, shifts=shifts))


def _before(events: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    return events[events["time"] < pd.Timestamp(date)].reset_index(drop=True)


def test_no_shift_is_the_default_and_says_nothing(quiet):
    assert not SimulatorConfig().shifts.any
    assert "shifts" not in quiet.metadata


def test_a_coding_change_renames_or_drops_the_code_from_its_month_only(quiet, recoded):
    q, r = quiet.events, recoded.events
    pd.testing.assert_frame_equal(_before(q, START), _before(r, START))
    after_q, after_r = q[q["time"] >= pd.Timestamp(START)], r[r["time"] >= pd.Timestamp(START)]
    assert (after_q["code"] == "ICPC2/R74").sum() > 100 and (after_q["code"] == "ICPC2/K86").sum() > 100
    assert not after_r["code"].isin(["ICPC2/R74", "ICPC2/K86"]).any()
    # R74 became J18.9, K86 disappeared, nothing else changed (same rows, same times).
    expected = after_q[after_q["code"] != "ICPC2/K86"].copy()
    expected["code"] = expected["code"].replace({"ICPC2/R74": "ICD10/J18.9"})
    key = ["subject_id", "time", "code", "unit"]
    a = expected[key].sort_values(key, kind="stable").reset_index(drop=True)
    b = after_r[key].sort_values(key, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))
    assert recoded.metadata["shifts"]["coding"][0]["recorded_as"] == "ICD10/J18.9"


def test_a_coding_change_leaves_the_world_and_its_truth_alone(quiet, recoded):
    pd.testing.assert_frame_equal(quiet.risk, recoded.risk)
    pd.testing.assert_frame_equal(quiet.latent, recoded.latent)
    pd.testing.assert_frame_equal(quiet.customers, recoded.customers)


def test_a_coding_change_refuses_structural_codes_and_dates_outside_the_extract():
    with pytest.raises(ValidationError, match="cannot change"):
        CodingChange(start=START, code="ADMIT/UNPLANNED")
    with pytest.raises(ValidationError, match="cannot change"):
        CodingChange(start=START, code="ICPC2/R74", recorded_as="RAI/CPS")  # carries a value
    with pytest.raises(ValidationError, match="first day of a month"):
        CodingChange(start=dt.date(2023, 1, 15), code="ICPC2/R74")
    with pytest.raises(ValidationError, match="inside the extract"):
        SimulatorConfig(**BASE, shifts=ShiftConfig(coding=(CodingChange(start=dt.date(2030, 1, 1), code="ICPC2/R74"),)))


def test_a_home_care_cut_changes_the_world_from_its_month_and_the_truth_knows(quiet):
    cut = simulate(SimulatorConfig(**BASE, shifts=ShiftConfig(
        homecare_cut=HomeCareCut(start=START, need_rise=0.1, assessment_multiplier=0.5))))
    # Nothing recorded before the cut's month changes.
    pd.testing.assert_frame_equal(_before(quiet.events, START), _before(cut.events, START))

    def starts(ds):
        ev = ds.events
        return int(((ev["code"] == "HOMECARE/START") & (ev["time"] >= pd.Timestamp(START))).sum())

    assert starts(cut) < 0.6 * starts(quiet)
    late = pd.Timestamp(dt.date(2023, 10, 1))

    def share(ds):
        lat = ds.latent
        old = lat[(lat["month"] == late) & (lat["age"] >= 75)]
        return old["home_care"].mean()

    assert share(cut) < share(quiet)
    # The truth at an index date before the cut looks through it: its home-care failure rows differ,
    # while the truth of months before the cut's horizon (>180 days before) does not.
    risk_q, risk_c = quiet.risk, cut.risk
    hf = lambda r, t: r[(r["outcome"] == "homecare_failure") & (r["prediction_time"] == t)]  # noqa: E731
    early = pd.Timestamp(dt.date(2022, 3, 1))
    np.testing.assert_array_equal(hf(risk_q, early)["true_probability"], hf(risk_c, early)["true_probability"])
    just_before = pd.Timestamp(dt.date(2022, 12, 1))
    assert not np.array_equal(hf(risk_q, just_before)["true_probability"].to_numpy(),
                              hf(risk_c, just_before)["true_probability"].to_numpy())
    # Truth and outcomes agree after the cut as they do without it (the truth is the shifted world's).
    after = cut.risk[(cut.risk["prediction_time"] >= pd.Timestamp(START)) & cut.risk["observed"].notna()
                     & (cut.risk["outcome"] == "hospitalisation")]
    observed, expected = after["observed"].astype(float).sum(), after["true_probability"].sum()
    assert abs(observed - expected) < 4 * np.sqrt(expected) + 0.05 * expected
