"""`sote-risk validate` and `sote-risk meds export/import` through the real entry point."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import pytest

import _contract_frames as tf
from data_contracts import Dataset, read_dataset, write_dataset

pytestmark = pytest.mark.slow  # each case starts a Python process


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def good_dataset(tmp_path):
    return write_dataset(Dataset(tf.events(), tf.customers(), tf.metadata()), tmp_path / "ds")


def test_validate_ok_prints_a_summary(tmp_path):
    result = run_cli("validate", str(good_dataset(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "16" in result.stdout and "customers" in result.stdout  # 16 events, 3 customers
    assert "HOSPITAL" in result.stdout and "2023-01-01 .. 2024-12-30" in result.stdout
    assert "OK" in result.stdout


def test_validate_bad_data_lists_the_broken_rules_without_a_traceback(tmp_path):
    target = good_dataset(tmp_path)
    tf.events(tf.replace_row(4, code="NOPE")).to_parquet(target / "events.parquet", index=False)
    tf.customers().assign(sex="X").to_parquet(target / "customers.parquet", index=False)
    result = run_cli("validate", str(target))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "events.code: code must be in data_contracts/codes.csv: 1 row: row 4 (subject_id 11)" in result.stderr
    assert "customers.sex" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_corrupt_parquet_is_one_line(tmp_path):
    target = good_dataset(tmp_path)
    (target / "customers.parquet").write_bytes(b"garbage")
    result = run_cli("validate", str(target))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "customers.parquet" in lines[0] and lines[0].startswith("error: ")


def test_meds_round_trip_through_the_cli(tmp_path):
    source = good_dataset(tmp_path)
    exported = run_cli("meds", "export", str(source), str(tmp_path / "meds"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "meds" / "metadata" / "codes.parquet").exists()
    imported = run_cli("meds", "import", str(tmp_path / "meds"), str(tmp_path / "back"))
    assert imported.returncode == 0, imported.stderr
    back = read_dataset(tmp_path / "back")
    pd.testing.assert_frame_equal(back.events, tf.events(), check_exact=True)
    pd.testing.assert_frame_equal(back.customers, tf.customers(), check_exact=True)


def test_meds_export_refuses_a_non_empty_target(tmp_path):
    source = good_dataset(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    result = run_cli("meds", "export", str(source), str(tmp_path / "out"))
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["precious.txt"]


def test_calibration_hook_prints_the_simulators_comparison(tmp_path, monkeypatch):
    """When synthetic.calibration exists, validate prints its comparison table."""
    import types

    from typer.testing import CliRunner

    from sote_risk.cli import app

    seen = []

    def compare_to_targets(dataset):
        seen.append(len(dataset.events))
        return pd.DataFrame(
            {"quantity": ["deaths per 1000"], "target": [11.0], "measured": [12.5], "tolerance": [2.0], "ok": [True]}
        )

    fake = types.ModuleType("synthetic.calibration")
    fake.compare_to_targets = compare_to_targets
    monkeypatch.setitem(sys.modules, "synthetic.calibration", fake)
    result = CliRunner().invoke(app, ["validate", str(good_dataset(tmp_path))])
    assert result.exit_code == 0, result.output
    assert seen == [16]
    assert "calibration targets" in result.output and "deaths per 1000" in result.output


def test_calibration_hook_is_skipped_when_the_module_is_missing(monkeypatch):
    from sote_risk.commands.data import compare_to_calibration_targets

    monkeypatch.setitem(sys.modules, "synthetic.calibration", None)  # import raises ImportError
    assert compare_to_calibration_targets(Dataset(tf.events(), tf.customers(), tf.metadata())) is None
