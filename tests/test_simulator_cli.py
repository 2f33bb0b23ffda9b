"""`sote-risk simulate`: writes the folder atomically, refuses bad input with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
        capture_output=True,
        text=True,
    )


def test_simulate_writes_dataset_and_truth(tmp_path):
    out = tmp_path / "region"
    result = run_cli("simulate", "--customers", "400", "--years", "1", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("events.parquet", "customers.parquet", "dataset.json", "truth/risk.parquet",
                 "truth/latent.parquet", "truth/interventions.parquet"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["source"] == "synthetic" and meta["seed"] == 3
    assert meta["extract_start"] == "2022-01-01T00:00:00" and meta["extract_end"] == "2023-01-01T00:00:00"
    events = pd.read_parquet(out / "events.parquet")
    assert list(events.columns) == ["subject_id", "time", "code", "numeric_value", "service_area", "unit", "cost_eur"]
    assert str(events["time"].dtype) == "datetime64[us]"
    risk = pd.read_parquet(out / "truth" / "risk.parquet")
    assert {"subject_id", "prediction_time", "outcome", "horizon_days", "true_probability"} <= set(risk.columns)
    assert [p.name for p in tmp_path.iterdir()] == ["region"]  # no temporary folder left behind


@pytest.mark.parametrize(
    "args, message",
    [
        (["--customers", "-5"], "--customers"),
        (["--customers", "0"], "--customers"),
        (["--years", "-1"], "--years"),
    ],
)
def test_bad_sizes_are_one_line_errors(tmp_path, args, message):
    out = tmp_path / "x"
    result = run_cli("simulate", *args, "--out", str(out))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error:")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_existing_non_empty_output_is_refused_untouched(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli("simulate", "--customers", "100", "--years", "1", "--out", str(out))
    assert result.returncode != 0 and result.stderr.startswith("error:")
    assert "not empty" in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_unwritable_output_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("simulate", "--customers", "100", "--years", "1", "--out", str(blocker / "sub"))
    assert result.returncode != 0 and result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_empty_existing_folder_is_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = run_cli("simulate", "--customers", "200", "--years", "1", "--out", str(out), "--no-truth")
    assert result.returncode == 0, result.stderr
    assert (out / "events.parquet").is_file()
