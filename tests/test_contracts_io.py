"""Reading and writing dataset folders: validation at the boundary, one-line file errors, atomic writes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from base.atomic import OutputError

import _contract_frames as tf
from data_contracts import ContractError, Dataset, read_dataset, write_dataset


def dataset() -> Dataset:
    return Dataset(tf.events(), tf.customers(), tf.metadata())


def test_write_then_read_gives_back_the_same_frames(tmp_path):
    target = write_dataset(dataset(), tmp_path / "ds")
    back = read_dataset(target)
    pd.testing.assert_frame_equal(back.events, tf.events(), check_exact=True)
    pd.testing.assert_frame_equal(back.customers, tf.customers(), check_exact=True)
    assert back.metadata == tf.metadata()
    assert back.extract_end == pd.Timestamp("2024-12-31 23:59")
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left behind


def test_write_refuses_invalid_data_and_writes_nothing(tmp_path):
    bad = Dataset(tf.events(tf.replace_row(4, code="NOPE")), tf.customers(), tf.metadata())
    with pytest.raises(ContractError, match="codes.csv"):
        write_dataset(bad, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="already exists"):
        write_dataset(dataset(), tmp_path / "ds")
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["keep.txt"]


def test_overwrite_replaces_the_folder_and_extra_tables_travel_with_it(tmp_path):
    target = tmp_path / "ds"
    write_dataset(dataset(), target)
    truth = pd.DataFrame({"subject_id": [11], "true_probability": [0.3]})
    write_dataset(dataset(), target, overwrite=True, extra_tables={"truth/risk.parquet": truth})
    pd.testing.assert_frame_equal(pd.read_parquet(target / "truth" / "risk.parquet"), truth)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_failure_while_writing_leaves_no_half_written_folder(tmp_path):
    class Boom(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):  # noqa: D401 - a frame that fails mid-write
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_dataset(dataset(), tmp_path / "ds", extra_tables={"truth/risk.parquet": Boom({"a": [1]})})
    assert list(tmp_path.iterdir()) == []


def test_corrupt_parquet_is_a_one_line_error_naming_the_file(tmp_path):
    target = write_dataset(dataset(), tmp_path / "ds")
    (target / "events.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ContractError) as info:
        read_dataset(target)
    message = str(info.value)
    assert "events.parquet" in message and "not a readable Parquet file" in message
    assert "\n" not in message


def test_missing_files_are_named(tmp_path):
    target = write_dataset(dataset(), tmp_path / "ds")
    (target / "customers.parquet").unlink()
    with pytest.raises(ContractError, match="customers.parquet nor customers.csv"):
        read_dataset(target)
    (target / "dataset.json").unlink()
    with pytest.raises(ContractError, match=r"dataset.json: file not found"):
        read_dataset(target)
    with pytest.raises(ContractError, match="dataset folder not found"):
        read_dataset(tmp_path / "nowhere")


def test_broken_json_is_named(tmp_path):
    target = write_dataset(dataset(), tmp_path / "ds")
    (target / "dataset.json").write_text("{not json")
    with pytest.raises(ContractError, match="dataset.json: not readable JSON"):
        read_dataset(target)


def test_read_validates_at_the_boundary(tmp_path):
    target = tmp_path / "ds"
    write_dataset(dataset(), target)
    tf.events(tf.replace_row(4, numeric_value=99.0)).to_parquet(target / "events.parquet", index=False)
    with pytest.raises(ContractError, match="value_min..value_max"):
        read_dataset(target)


def test_csv_is_an_alternative_input(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    tf.events().to_csv(folder / "events.csv", index=False)
    tf.customers().to_csv(folder / "customers.csv", index=False)
    (folder / "dataset.json").write_text(json.dumps(tf.metadata()))
    back = read_dataset(folder)
    pd.testing.assert_frame_equal(back.events, tf.events(), check_exact=True)
    pd.testing.assert_frame_equal(back.customers, tf.customers())


def test_csv_with_unparsable_values_names_the_file(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    tf.events().to_csv(folder / "events.csv", index=False)
    tf.customers().assign(birth_year="nineteen-forty").to_csv(folder / "customers.csv", index=False)
    (folder / "dataset.json").write_text(json.dumps(tf.metadata()))
    with pytest.raises(ContractError, match="customers.csv: not a readable CSV"):
        read_dataset(folder)
