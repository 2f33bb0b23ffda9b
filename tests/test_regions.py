"""Other regions for external validation: `simulate --region`, their own municipalities and sourced
targets, the contracts that hold each dataset to its region, and features that read them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from data_contracts.errors import ContractError
from data_contracts.regions import REGIONS, UnknownRegionError
from data_contracts.validate import validate_dataset
from synthetic.calibration import compare_to_targets
from synthetic.config import SimulatorConfig
from synthetic.regions import region_config
from synthetic.simulate import simulate

SIZE = dict(customers=8_000, years=2, seed=11, compute_truth=False)


@pytest.fixture(scope="module")
def regions():
    return {name: simulate(region_config(name, **SIZE)) for name in REGIONS}


def _share_75(ds) -> float:
    end_year = pd.Timestamp(ds.metadata["extract_start"]).year
    return float(((end_year - ds.customers["birth_year"]) >= 75).mean())


def test_eksote_is_the_default_config_unchanged():
    assert region_config("eksote", customers=500, seed=3) == SimulatorConfig(customers=500, seed=3)


def test_unknown_region_names_the_known_ones():
    with pytest.raises(UnknownRegionError, match="eksote, vantaa-kerava, kainuu"):
        region_config("lapland")
    with pytest.raises(ValueError, match="municipalities of kainuu"):
        SimulatorConfig(region="kainuu")  # Eksote's municipalities with Kainuu's name: refused


def test_each_region_has_its_municipalities_and_keeps_the_contract(regions):
    for name, ds in regions.items():
        assert ds.metadata["region"] == name and ds.metadata["name"] == f"synthetic-{name}-seed11"
        assert set(ds.customers["municipality"]) == set(REGIONS[name].municipalities)
        validate_dataset(ds.events, ds.customers, ds.metadata)
    # units carry the region's municipality names, never Eksote's
    kainuu_units = set(regions["kainuu"].events["unit"].dropna())
    assert any(u.startswith("HC/Kajaani") for u in kainuu_units)
    assert not any("Lappeenranta" in u or "Imatra" in u for u in kainuu_units)


def test_a_dataset_is_held_to_the_region_it_names(regions):
    ds = regions["kainuu"]
    with pytest.raises(ContractError, match="municipalities of Eksote"):
        validate_dataset(ds.events, ds.customers, {**ds.metadata, "region": "eksote"})
    legacy = {k: v for k, v in ds.metadata.items() if k != "region"}  # written before regions: Eksote
    with pytest.raises(ContractError, match="municipalities of Eksote"):
        validate_dataset(ds.events, ds.customers, legacy)
    with pytest.raises(ContractError, match="dataset.json: region: unknown region 'atlantis'"):
        validate_dataset(ds.events, ds.customers, {**ds.metadata, "region": "atlantis"})


def test_regions_differ_the_way_their_sources_say(regions):
    share = {name: _share_75(ds) for name, ds in regions.items()}
    assert share["vantaa-kerava"] < share["eksote"] < share["kainuu"]
    other = {name: float((ds.customers["language"] == "other").mean()) for name, ds in regions.items()}
    assert other["vantaa-kerava"] > 3 * other["eksote"]
    homecare = {}
    for name, ds in regions.items():
        table = compare_to_targets(ds).set_index("quantity")
        row = table.loc["share of 75+ in regular home care"]
        # each region is measured against its own sourced target (read from dataset.json)
        assert row["target"] == region_config(name).care.homecare_share_75_target.value
        homecare[name] = row["measured"]
    assert homecare["vantaa-kerava"] < homecare["eksote"] < homecare["kainuu"]


def test_features_of_another_region_have_municipality_not_known(regions):
    from features.build import build_tables
    from features.history import History

    ds = regions["vantaa-kerava"]
    history = History.from_frames(ds.events, ds.customers)
    tables = build_tables(history, pd.Timestamp(ds.metadata["extract_start"]), pd.Timestamp(ds.metadata["extract_end"]),
                          segments=["acute"], warmup_days=365, workers=1)
    acute = dict(tables)["acute"]
    assert len(acute) > 0
    assert acute["municipality"].isna().all()  # the model's categories are Eksote's
    assert list(acute["municipality"].cat.categories) == list(REGIONS["eksote"].municipalities)
    assert acute["language"].notna().all()


def test_cli_simulates_a_region_and_refuses_an_unknown_one(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
                              capture_output=True, text=True)

    out = tmp_path / "kainuu"
    done = run("simulate", "--region", "kainuu", "--customers", "300", "--years", "1", "--no-truth", "--out", str(out))
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["region"] == "kainuu"
    assert set(pd.read_parquet(out / "customers.parquet")["municipality"]) <= set(REGIONS["kainuu"].municipalities)
    refused = run("simulate", "--region", "lapland", "--customers", "300", "--out", str(tmp_path / "x"))
    assert refused.returncode != 0
    assert "--region: unknown region 'lapland'; known regions: eksote, vantaa-kerava, kainuu" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "x").exists()
    assert np.isfinite(meta["customers"])
