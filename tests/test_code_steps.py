"""Events per code and month (features/code_volumes.py) and the step rule read from them
(training/code_steps.py): counts equal a naive count; a code no longer recorded, or newly
recorded, is a step in its first month and only then; steady and seasonal codes, rare codes,
short histories and open months are not judged a step. The monitor's use of the steps, on a
simulated coding change, is in tests/test_monitoring.py.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from features.code_volumes import code_months
from training.code_steps import StepRule, code_steps

START, END = "2022-01-01", "2023-01-01"


def test_code_months_equal_a_naive_count():
    rng = np.random.default_rng(7)
    n = 3000
    # events from a month before the extract to a month after it: those outside are not counted
    seconds = rng.integers(pd.Timestamp("2021-12-01").value // 10**9, pd.Timestamp("2023-02-01").value // 10**9, n)
    events = pd.DataFrame({"subject_id": rng.integers(1, 50, n), "time": pd.to_datetime(seconds, unit="s"),
                           "code": rng.choice(["ENC/HC_NURSE", "ENC/HC_DOCTOR", "IOT/FALL_ALARM"], n, p=[0.6, 0.39, 0.01])})
    events.loc[0, ["time", "code"]] = [pd.Timestamp("2021-12-15"), "ICD10/J18.9"]  # a code seen only outside
    counted = code_months(events, START, END)

    naive = Counter()
    for time, code in zip(events["time"], events["code"]):
        if pd.Timestamp(START) <= time < pd.Timestamp(END):
            naive[(code, pd.Timestamp(time.year, time.month, 1))] += 1
    months = pd.date_range(START, periods=12, freq="MS")
    codes = sorted(set(events["code"]))
    assert list(counted["code"].unique()) == codes
    assert len(counted) == len(codes) * 12
    for row in counted.itertuples(index=False):
        assert row.events == naive[(row.code, pd.Timestamp(row.month))], (row.code, row.month)
    assert set(counted["month"]) == set(months)
    assert counted.loc[counted["code"] == "ICD10/J18.9", "events"].sum() == 0  # zeros, not missing rows
    assert counted["events"].sum() == sum(naive.values())
    # a categorical code column (how the contracts may read it) counts the same
    as_category = events.assign(code=events["code"].astype("category"))
    pd.testing.assert_frame_equal(code_months(as_category, START, END), counted)


def _volumes(series: dict[str, np.ndarray], start: str = "2022-01-01") -> pd.DataFrame:
    rows = []
    for code, counts in series.items():
        months = pd.date_range(start, periods=len(counts), freq="MS")
        rows += [(code, m, int(c)) for m, c in zip(months, counts)]
    return pd.DataFrame(rows, columns=["code", "month", "events"])


AS_OF = "2026-01-01"  # after every month of the 48-month series below


def test_a_code_no_longer_recorded_is_a_step_in_its_first_month_only():
    counts = np.random.default_rng(1).poisson(300, 48)
    counts[30:] = 0
    steps = code_steps(_volumes({"ENC/HC_NURSE": counts}), AS_OF)
    assert list(zip(steps["code"], steps["month"], steps["direction"])) == [
        ("ENC/HC_NURSE", pd.Timestamp("2024-07-01"), "fall")]  # month 30 counted from 2022-01
    row = steps.iloc[0]
    before = counts[18:30]
    assert (row["previous_low"], row["previous_high"], row["previous_months"]) == (before.min(), before.max(), 12)
    assert row["previous_mean"] == pytest.approx(before.mean())


def test_a_newly_recorded_code_is_a_rise_in_its_first_month_only():
    counts = np.zeros(48, dtype=int)
    counts[24:] = np.random.default_rng(2).poisson(200, 24)
    steps = code_steps(_volumes({"ASSESS/HTA": counts}), AS_OF)
    assert list(zip(steps["month"], steps["direction"])) == [(pd.Timestamp("2024-01-01"), "rise")]


def test_a_halving_is_a_step_and_a_dip_inside_the_range_is_not():
    rng = np.random.default_rng(3)
    halved = rng.poisson(1000, 48)
    halved[36:] = rng.poisson(300, 12)
    dipped = rng.poisson(1000, 48)
    dipped[36] = 700  # well below the mean, yet above half the lowest month
    steps = code_steps(_volumes({"A": halved, "B": dipped}), AS_OF)
    assert list(steps["code"]) == ["A"] and steps.iloc[0]["month"] == pd.Timestamp("2025-01-01")


@pytest.mark.parametrize("seed", range(20))
def test_steady_and_seasonal_codes_are_never_a_step(seed):
    """20 seeds x 10 codes x 42 judged months: no step where nothing changed, at volumes from the
    rule's smallest judged mean to a region's nurse visits, with and without a winter peak."""
    rng = np.random.default_rng(seed)
    month = np.arange(48)
    series = {}
    for mean in (50, 120, 1000, 35_000, 200_000):
        series[f"steady-{mean}"] = rng.poisson(mean, 48)
        series[f"seasonal-{mean}"] = rng.poisson(mean * (1 + 0.45 * np.cos(2 * np.pi * month / 12)))
    assert code_steps(_volumes(series), AS_OF).empty


def test_rare_codes_short_histories_and_open_months_are_not_judged():
    rng = np.random.default_rng(4)
    rare = rng.poisson(20, 48)
    rare[30:] = 0
    assert code_steps(_volumes({"R": rare}), AS_OF).empty  # a mean of 20 is under min_events 50
    assert len(code_steps(_volumes({"R": rare}), AS_OF, StepRule(min_events=10))) == 1
    early = rng.poisson(500, 48)
    early[5:] = 0  # five months of history before the fall
    assert code_steps(_volumes({"E": early}), AS_OF).empty
    assert len(code_steps(_volumes({"E": early}), AS_OF, StepRule(min_history=5))) == 1
    late = rng.poisson(500, 48)
    late[47] = 0  # the series' last month, 2025-12
    assert code_steps(_volumes({"L": late}), "2025-12-31").empty  # not over yet
    assert list(code_steps(_volumes({"L": late}), "2026-01-01")["month"]) == [pd.Timestamp("2025-12-01")]


def test_only_the_codes_asked_for_are_judged():
    counts = np.random.default_rng(5).poisson(300, 48)
    counts[30:] = 0
    volumes = _volumes({"A": counts, "B": counts})
    assert list(code_steps(volumes, AS_OF, codes={"B"})["code"]) == ["B"]
    assert code_steps(volumes, AS_OF, codes=set()).empty


def test_reading_the_counts_of_a_features_folder(tmp_path):
    from base.errors import SoteRiskError
    from features.io import read_code_months, write_parquet

    assert read_code_months(tmp_path) is None  # a folder built before the counts were kept
    counts = _volumes({"A": np.arange(14), "B": np.arange(14) * 2})
    parts = tmp_path / "region" / "code_months"
    parts.mkdir(parents=True)
    write_parquet(counts[counts["code"] == "A"], parts / "part-00000.parquet")  # the Spark engine: a part a shard
    write_parquet(counts.assign(events=counts["events"] + 1), parts / "part-00001.parquet")
    summed = read_code_months(tmp_path / "region")
    expected = counts.assign(events=np.where(counts["code"] == "A", 2 * counts["events"] + 1, counts["events"] + 1))
    pd.testing.assert_frame_equal(summed, expected.astype({"code": "string"}).reset_index(drop=True))
    (tmp_path / "code_months.parquet").write_bytes(b"not parquet")
    with pytest.raises(SoteRiskError, match="code counts cannot be read"):
        read_code_months(tmp_path)
