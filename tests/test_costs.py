"""The segment cost view (costs/) against naive oracles: a hand-made region whose costs are added
up by hand (tests/_cost_data.py), and a small simulated region whose totals must equal the plain
sum of `cost_eur` per year; bad input named by its option; the CLI's one-line errors."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from costs import CostInputError, cost_view, make_group, presets
from costs.production import MODELS
from costs.table import long_table, write_csv
from tests._cost_data import AREAS_2024, END, PER_CUSTOMER_2024, START, TOTAL_2024, tiny_frames, tiny_history


@pytest.fixture(scope="module")
def tiny():
    return cost_view(tiny_history(), START, END, 2024, make_group(group="heart-failure-50-65"))


def test_totals_segments_and_areas_add_up_by_hand(tiny):
    assert tiny.total_cost == TOTAL_2024
    seg = tiny.segments
    assert seg.loc["all", "customers"] == 6 and seg.loc["all", "cost_eur"] == TOTAL_2024  # customer 6 moved away in 2023
    expected = {"elderly": ({1, 4}, 3410 + 51), "children": ({2}, 391), "acute": ({1, 2}, 3410 + 391),
                "depression": ({3}, 3125), "none": ({5, 7}, 102)}
    for row, (members, cost) in expected.items():
        assert seg.loc[row, "customers"] == len(members), row
        assert seg.loc[row, "cost_eur"] == pytest.approx(cost), row
    assert seg.loc["elderly", "cost_per_customer"] == pytest.approx((3410 + 51) / 2)
    areas = tiny.areas.loc["all"]
    for area, cost in AREAS_2024.items():
        assert areas.loc[area, "cost_eur"] == pytest.approx(cost), area
    assert areas["cost_eur"].sum() == pytest.approx(TOTAL_2024)
    assert areas.loc["HOSPITAL", "users"] == 2 and areas.loc["EMERGENCY", "events"] == 2
    assert tiny.areas.loc[("children", "EMERGENCY"), "cost_eur"] == 340


def test_concentration_is_the_costliest_customers_share(tiny):
    top = tiny.concentration.loc["all"]
    ranked = sorted(PER_CUSTOMER_2024.values(), reverse=True)
    for percent in (1, 5, 10):
        k = math.ceil(6 * percent / 100)
        assert top.loc[percent, "customers"] == k
        assert top.loc[percent, "share_of_cost"] == pytest.approx(sum(ranked[:k]) / TOTAL_2024)
    assert tiny.curve["cost_share"].iloc[-1] == pytest.approx(1.0) and tiny.curve["cost_share"].is_monotonic_increasing


def test_production_models_per_customer_day_by_hand(tiny):
    p = tiny.production
    assert list(p.index) == list(MODELS)
    # customer 1: home care 2024-01-01..07-01 (182 days) less the 4-day stay; with remote visits 07-01..2025-01-01
    assert p.loc["home_care", "customer_days"] == pytest.approx(182 - 4)
    assert p.loc["home_care", "own_cost_eur"] == 29 and p.loc["home_care", "all_cost_eur"] == 29 + 340
    assert p.loc["home_care_remote", "customer_days"] == pytest.approx(184)
    assert p.loc["home_care_remote", "own_cost_eur"] == 29 + 12
    # stays: customer 1's 4 days (3,000) and 2 of customer 3's 4 days (half of 3,000 belongs to 2023)
    assert p.loc["hospital", "customer_days"] == pytest.approx(6) and p.loc["hospital", "customers"] == 2
    assert p.loc["hospital", "own_cost_eur"] == pytest.approx(4500) and p.loc["hospital", "own_cost_per_day"] == pytest.approx(750)
    # 24-hour care from 2024-10-01: 92 days, no cost on its events, so the catalogue's 200 EUR a day is added
    assert p.loc["care24h", "customer_days"] == pytest.approx(92) and p.loc["care24h", "catalogue_daily_eur"] == 200
    assert p.loc["care24h", "own_cost_per_day"] == pytest.approx(200)
    assert p.loc["care24h", "all_cost_per_day"] == pytest.approx(200 + 51 / 92)
    assert p.loc["home_care_robot", "customers"] == 0 and np.isnan(p.loc["home_care_robot", "own_cost_per_day"])


def test_heart_failure_50_65_preset_works_out_of_the_box(tiny):
    g = tiny.group
    assert g.group.name == "heart-failure-50-65" and g.codes == ("ICD10/I50.9",)
    assert g.summary["customers"] == 2 and g.summary["cost_eur"] == pytest.approx(3125 + 51)  # 3 and 7, not 4 (aged 80)
    assert g.areas.loc["HOSPITAL", "cost_eur"] == 3000
    assert list(g.other_diagnoses.index) == ["ICD10/F32.1"] and g.other_diagnoses.loc["ICD10/F32.1", "customers"] == 1
    assert g.production.loc["hospital", "customer_days"] == pytest.approx(2)


def test_ad_hoc_groups_filter_codes_age_and_segment():
    history = tiny_history()

    def members(**options) -> int:
        return int(cost_view(history, START, END, 2024, make_group(**options)).group.summary["customers"])

    assert members(codes="ICD10/I50") == 3
    assert members(codes="ICD10/I50", age="75-") == 1
    assert members(codes="ICD10/I50,ICD10/F32.1", age="50-65") == 2
    assert members(age="0-17") == 1 and members(age="80+") == 2
    assert members(segment="elderly") == 2 and members(segment="elderly", codes="HOMECARE/") == 1


@pytest.mark.parametrize("options, option", [
    ({"codes": "ICD10/I99"}, "codes"), ({"codes": "NOPE"}, "codes"), ({"codes": " , "}, "codes"),
    ({"age": "50_65"}, "age"), ({"age": "65-50"}, "age"), ({"age": "fifty"}, "age"), ({"age": "50-200"}, "age"),
    ({"segment": "teenagers"}, "segment"), ({"group": "no-such-group"}, "group"),
    ({"group": "heart-failure-50-65", "age": "50-65"}, "age"),
])
def test_bad_group_options_name_the_option(options, option):
    with pytest.raises(CostInputError) as raised:
        make_group(**options)
    assert raised.value.option == option and str(raised.value).startswith(f"--{option} ")


@pytest.mark.parametrize("year", [2022, 2025, 1999])
def test_a_year_outside_the_data_is_refused(year):
    with pytest.raises(CostInputError, match=r"^--year .*outside the data \(they cover 2023\.\.2024"):
        cost_view(tiny_history(), START, END, year)


def test_presets_are_valid_and_default_year_is_the_last_whole_one():
    assert "heart-failure-50-65" in presets()
    assert cost_view(tiny_history(), START, END).year == 2024
    assert cost_view(tiny_history(), START, pd.Timestamp("2024-07-01")).year == 2023
    partial = cost_view(tiny_history(), START, pd.Timestamp("2024-07-01"), 2024)
    assert partial.partial and partial.total_cost == 29 + 340 + 3000 + 12 * 0 + 51 + 3000 + 125 + 51 + 51


def test_long_csv_holds_every_figure(tiny, tmp_path):
    path = tmp_path / "costs.csv"
    write_csv(tiny, path)
    table = pd.read_csv(path)
    assert table.columns.tolist() == ["year", "table", "row", "service_area", "model", "top_percent", "measure", "value"]
    pick = table[(table["table"] == "segments") & (table["row"] == "all") & (table["measure"] == "cost_eur")]
    assert pick["value"].tolist() == [TOTAL_2024]
    assert len(table) == len(long_table(tiny)) and not list(tmp_path.glob(".*tmp*"))


# --- a small simulated region: totals are the plain sums -----------------------------------------


@pytest.fixture(scope="module")
def simulated():
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    return simulate(SimulatorConfig(customers=600, seed=11, years=2))


def test_simulated_totals_equal_the_plain_sum_per_year(simulated):
    from features import History

    events, meta = simulated.events, simulated.metadata
    history = History.from_frames(events, simulated.customers)
    start, end = pd.Timestamp(meta["extract_start"]), pd.Timestamp(meta["extract_end"])
    plain = events.groupby(events["time"].dt.year)["cost_eur"].sum()
    per_area = events.groupby([events["time"].dt.year, "service_area"])["cost_eur"].sum()
    for year in plain.index:
        view = cost_view(history, start, end, int(year))
        assert view.total_cost == pytest.approx(plain[year], rel=1e-12)
        assert view.segments.loc["all", "cost_eur"] == pytest.approx(plain[year], rel=1e-12)
        for area, cost in view.areas.loc["all", "cost_eur"].items():
            assert cost == pytest.approx(per_area.get((year, area), 0.0), rel=1e-12, abs=1e-6), (year, area)
        in_year = events[events["time"].dt.year == year]
        customer_costs = np.sort(in_year.groupby("subject_id")["cost_eur"].sum().to_numpy())[::-1]
        n = int(view.segments.loc["all", "customers"])
        for percent, item in view.concentration.loc["all"].iterrows():
            k = math.ceil(n * percent / 100)
            assert item["share_of_cost"] == pytest.approx(customer_costs[:k].sum() / plain[year], rel=1e-9)
        seg = view.segments.drop(index=["all", "none"])
        assert (seg["cost_eur"] <= plain[year] + 1e-6).all() and (seg["customers"] <= n).all()
        assert view.production.loc["hospital", "own_cost_per_day"] == pytest.approx(750, rel=1e-3)


# --- the command line --------------------------------------------------------------------------


def run_cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {"SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from data_contracts.io import Dataset, write_dataset

    events, customers = tiny_frames()
    folder = tmp_path_factory.mktemp("costs-cli") / "data"
    meta = {"name": "tiny", "source": "synthetic", "seed": 0, "customers": len(customers), "extract_start": START.isoformat(),
            "extract_end": END.isoformat(), "simulator_version": "test", "created": "2024-01-01T00:00:00+00:00"}
    write_dataset(Dataset(events, customers, meta), folder, validate=False)
    return folder


def test_cli_prints_tables_and_writes_the_csv(tiny_dataset, tmp_path):
    out = tmp_path / "out.csv"
    result = run_cli(tmp_path / "home", "costs", "--data", str(tiny_dataset), "--group", "heart-failure-50-65", "--csv", str(out))
    assert result.returncode == 0, result.stderr
    assert "EUR 7,079 in total" in result.stdout and "heart failure patients aged 50-65 [heart-failure-50-65]" in result.stdout
    assert "24-hour care" in result.stdout and out.exists()
    table = pd.read_csv(out)
    group = table[(table["row"] == "group") & (table["table"] == "segments") & (table["measure"] == "customers")]
    assert group["value"].tolist() == [2]


@pytest.mark.parametrize("args, option", [
    (["--codes", "ICD10/I99"], "--codes"), (["--age", "50_65"], "--age"), (["--year", "2030"], "--year"),
    (["--segment", "teens"], "--segment"), (["--group", "nope"], "--group"), (["--data", "/nonexistent/x"], "--data"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tiny_dataset, tmp_path, args, option):
    out = tmp_path / "out.csv"
    if "--data" not in args:
        args = ["--data", str(tiny_dataset), *args]
    result = run_cli(tmp_path / "home", "costs", *args, "--csv", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option} "), result.stderr
    assert "Traceback" not in result.stderr and not out.exists() and not list(tmp_path.glob("*.csv*"))
