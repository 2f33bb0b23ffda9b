"""The oracle reads only a truth on the labels' definition: a dataset simulated before death became
a competing event (simulator < 1.5) has a death-censored truth, and its oracle metrics are skipped."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from _training_data import fast_spec_dict
from training.data import read_truth
from training.spec import parse_spec


def _dataset(tmp_path, version):
    (tmp_path / "truth").mkdir()
    pd.DataFrame({"subject_id": [1], "prediction_time": pd.to_datetime(["2023-01-01"]), "outcome": ["hospitalisation"],
                  "horizon_days": [90], "true_probability": [0.1]}).to_parquet(tmp_path / "truth" / "risk.parquet")
    if version is not None:
        (tmp_path / "dataset.json").write_text(json.dumps({"simulator_version": version}), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("version, read", [("1.4.0", False), ("1.5.0", True), ("2.0.0", True), ("bench", True), (None, True)])
def test_truth_before_the_competing_death_definition_is_not_read(tmp_path, version, read):
    truth = read_truth(_dataset(tmp_path, version), parse_spec(fast_spec_dict()))
    assert (truth is not None) == read
