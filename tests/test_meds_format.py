"""MEDS export/import: the MEDS package's own schemas accept the export, and import gives back
exactly the same events and customers."""

from __future__ import annotations

import json

import meds
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from base.atomic import OutputError

import _contract_frames as tf
from data_contracts import ContractError, Dataset, export_meds, import_meds, to_meds_data


def dataset(customers: pd.DataFrame | None = None) -> Dataset:
    customers = tf.customers() if customers is None else customers
    return Dataset(tf.events(), customers, tf.metadata(customers=len(customers)))


def with_quiet_customer() -> pd.DataFrame:
    """A customer with no events at all must still survive the round trip (static rows only)."""
    extra = pd.DataFrame(
        {"subject_id": [5], "birth_year": [1935], "birth_month": [1], "sex": ["M"], "municipality": ["Parikkala"], "language": ["sv"]}
    ).astype(tf.customers().dtypes.to_dict())
    return pd.concat([tf.customers(), extra], ignore_index=True)  # deliberately not sorted by id


def test_round_trip_gives_back_identical_events_and_customers(tmp_path):
    original = dataset(with_quiet_customer())
    export_meds(original, tmp_path / "meds")
    back = import_meds(tmp_path / "meds")
    pd.testing.assert_frame_equal(back.events, original.events, check_exact=True)
    expected_customers = original.customers.sort_values("subject_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back.customers, expected_customers, check_exact=True)
    assert list(back.events.columns) == list(original.events.columns)
    assert back.metadata == original.metadata


def test_export_passes_the_meds_packages_own_schemas(tmp_path):
    root = export_meds(dataset(), tmp_path / "meds")
    shards = sorted((root / "data").glob("*.parquet"))
    assert shards
    for shard in shards:
        meds.DataSchema.validate(pq.read_table(shard))
    meds.CodeMetadataSchema.validate(pq.read_table(root / meds.code_metadata_filepath))
    meds.SubjectSplitSchema.validate(pq.read_table(root / meds.subject_splits_filepath))
    content = json.loads((root / meds.dataset_metadata_filepath).read_text())
    meds.DatasetMetadataSchema.validate(content)
    assert {"dataset_name", "dataset_version", "etl_name", "etl_version", "meds_version"} <= content.keys()
    assert content["meds_version"] == meds.__version__


def test_export_layout_static_rows_and_death_code():
    table = to_meds_data(dataset()).to_pandas()
    first = table[table["subject_id"] == 11]
    # static rows first (null time), then birth, then the events in their order
    assert first["time"].head(3).isna().all()
    assert set(first["code"].head(3)) == {"SEX//F", "MUNICIPALITY//Imatra", "LANGUAGE//fi"}
    assert first["code"].iloc[3] == meds.birth_code
    assert first["time"].iloc[3] == pd.Timestamp("1940-03-01")
    assert meds.death_code in set(first["code"]) and "DEATH" not in set(first["code"])
    # MEDS needs each subject contiguous and sorted by time
    assert table["subject_id"].is_monotonic_increasing
    for _, rows in table.groupby("subject_id"):
        assert rows["time"].dropna().is_monotonic_increasing


def test_every_code_in_the_data_is_described(tmp_path):
    root = export_meds(dataset(), tmp_path / "meds")
    described = set(pq.read_table(root / meds.code_metadata_filepath).column("code").to_pylist())
    used = set(pq.read_table(root / "data").column("code").to_pylist())
    assert used <= described


def test_subjects_are_never_split_across_shards(tmp_path):
    root = export_meds(dataset(with_quiet_customer()), tmp_path / "meds", subjects_per_shard=1)
    shards = sorted((root / "data").glob("*.parquet"))
    assert len(shards) == 4
    seen = [set(pq.read_table(s).column("subject_id").to_pylist()) for s in shards]
    assert all(len(s) == 1 for s in seen) and len(set().union(*seen)) == 4
    back = import_meds(root)
    pd.testing.assert_frame_equal(back.events, tf.events(), check_exact=True)


def test_fractional_values_keep_full_precision():
    data = to_meds_data(dataset()).to_pandas()
    discharge = data[data["code"] == "DISCHARGE"]
    assert discharge["numeric_value_f64"].iloc[0] == 3.1666666666666665
    assert discharge["numeric_value"].dtype == np.float32


def test_export_refuses_invalid_data_and_a_non_empty_target(tmp_path):
    bad = Dataset(tf.events(tf.replace_row(4, code="NOPE")), tf.customers(), tf.metadata())
    with pytest.raises(ContractError, match="codes.csv"):
        export_meds(bad, tmp_path / "meds")
    assert not (tmp_path / "meds").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        export_meds(dataset(), tmp_path / "full")


def test_import_validates_with_the_contracts(tmp_path):
    root = export_meds(dataset(), tmp_path / "meds")
    shard = root / "data" / "0.parquet"
    table = pq.read_table(shard).to_pandas()
    table.loc[table["code"] == "PHQ9", ["numeric_value", "numeric_value_f64"]] = 99.0
    pq.write_table(pq.read_table(shard).from_pandas(table, schema=pq.read_schema(shard), preserve_index=False), shard)
    with pytest.raises(ContractError, match="value_min..value_max"):
        import_meds(root)


def test_import_needs_every_static_row(tmp_path):
    root = export_meds(dataset(), tmp_path / "meds")
    shard = root / "data" / "0.parquet"
    table = pq.read_table(shard)
    keep = [c != "LANGUAGE//sv" for c in table.column("code").to_pylist()]
    pq.write_table(table.filter(pa.array(keep)), shard)
    with pytest.raises(ContractError, match="static rows"):
        import_meds(root)


def test_import_of_a_non_meds_shard_names_the_file(tmp_path):
    root = export_meds(dataset(), tmp_path / "meds")
    pd.DataFrame({"subject_id": ["a"], "time": [1]}).to_parquet(root / "data" / "0.parquet")
    with pytest.raises(ContractError, match=r"0.parquet: not MEDS data"):
        import_meds(root)
