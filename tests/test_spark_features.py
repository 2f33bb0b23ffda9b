"""The Spark engine (scaleout/): `simulate --regions` on Spark, and features on Spark equal to the
pandas engine's tables, row for row, column for column, dtype for dtype (issue 17's target).

One small population for the module (two Eksote regions of 1,500 residents, 3 years), simulated
by the Spark path itself; the Spark tests share the session fixture of tests/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleout import layout

SEEDS = (31, 32)  # never the held-out 20261206 (docs/PROTOCOL.md)
RESIDENTS = 1_500
SHARD_CUSTOMERS = 400  # >= 4 shards a region: the tables are stitched across shard boundaries


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["subject_id", "prediction_time"], kind="stable").reset_index(drop=True)


def assert_same_table(expected: pd.DataFrame, actual: pd.DataFrame, what: str) -> None:
    """Same rows, columns (names and order), dtypes (categories included) and values, after
    sorting by (subject_id, prediction_time): every column, labels and censoring included."""
    assert len(expected) > 0, f"{what}: an empty table proves nothing"
    pd.testing.assert_frame_equal(_sorted(expected), _sorted(actual), check_exact=True, obj=what)


@pytest.fixture(scope="module")
def regions(spark, tmp_path_factory) -> Path:
    from scaleout.simulate import plan_regions, simulate_regions

    out = tmp_path_factory.mktemp("regions") / "data"
    plans = plan_regions(len(SEEDS), customers=RESIDENTS, years=3, seed=SEEDS[0], truth=False)
    simulate_regions(spark, plans, out)
    return out


@pytest.fixture(scope="module")
def spark_features(spark, regions, tmp_path_factory) -> Path:
    from scaleout.features import build_features

    out = tmp_path_factory.mktemp("spark-features") / "features"
    build_features(spark, regions, out, shard_customers=SHARD_CUSTOMERS)
    return out


@pytest.mark.spark
def test_simulate_regions_writes_one_complete_dataset_a_region_with_disjoint_ids(regions, spark):
    from data_contracts.io import read_dataset

    dataset = layout.read_dataset_manifest(regions)
    assert dataset.names == ("eksote-31", "eksote-32")
    assert [r.subject_id_offset for r in dataset.regions] == [0, layout.SUBJECT_ID_STRIDE]
    ids = {}
    for entry in dataset.regions:
        single = read_dataset(dataset.folder(entry.name))  # a single-region dataset as today, contracts and all
        assert single.metadata["region"] == entry.parameters == "eksote"
        assert single.metadata["seed"] == entry.seed
        assert (len(single.customers), len(single.events)) == (entry.customers, entry.events)
        ids[entry.name] = single.customers["subject_id"]
        assert ids[entry.name].between(entry.subject_id_offset, entry.subject_id_offset + layout.SUBJECT_ID_STRIDE - 1).all()
    assert not set(ids["eksote-31"]) & set(ids["eksote-32"])
    layout.check_unique_subjects(dataset)
    # Spark reads the regions' events as one table with `region` as a partition column
    events = spark.read.option("basePath", str(dataset.root.absolute())).parquet(*dataset.table_paths("events"))
    counts = {row["region"]: row["count"] for row in events.groupBy("region").count().collect()}
    assert counts == {entry.name: entry.events for entry in dataset.regions}


@pytest.mark.spark
def test_a_spark_task_runs_the_simulator_itself_and_the_offset_changes_only_the_ids(regions):
    """Region 1 (seed 32, ids offset by 10,000,000) is the plain single-region simulation of seed
    32 with every id shifted: same events, customers and order."""
    from data_contracts.io import read_dataset
    from synthetic.regions import region_config
    from synthetic.simulate import simulate

    plain = simulate(region_config(customers=RESIDENTS, years=3, seed=SEEDS[1], compute_truth=False))
    written = read_dataset(regions / "region=eksote-32", validate=False)
    for expected, actual in ((plain.events, written.events), (plain.customers, written.customers)):
        shifted = actual.assign(subject_id=actual["subject_id"] - layout.SUBJECT_ID_STRIDE)
        pd.testing.assert_frame_equal(expected.reset_index(drop=True), shifted)


@pytest.mark.spark
def test_spark_engine_tables_equal_the_pandas_engines_for_every_region_and_segment(regions, spark_features, tmp_path):
    from features import io
    from features.build import build_tables
    from features.spec import segment_names

    manifest = layout.read_features_manifest(spark_features)
    assert manifest["regions"] == ["eksote-31", "eksote-32"]
    compared = 0
    for name, folder in layout.read_dataset_manifest(regions).folders().items():
        loaded = io.load(folder)
        pandas_out = tmp_path / name
        io.write_tables(pandas_out, build_tables(loaded.history, loaded.extract_start, loaded.extract_end), source={},
                        code_months=loaded.code_months)
        # the code counts monitoring reads: the shards' parts summed equal the whole region's count
        spark_counts = io.read_code_months(spark_features / layout.region_folder(name))
        pd.testing.assert_frame_equal(spark_counts, io.read_code_months(pandas_out))
        assert spark_counts["events"].sum() == len(loaded.history.time)  # every event of the region, once
        for segment in segment_names():
            parts = layout.segment_parts(spark_features, segment, name)
            assert len(parts) >= 3, f"{name} {segment}: the test needs several shards, got {len(parts)}"
            expected = pd.read_parquet(pandas_out / f"{segment}.parquet")  # the pandas engine's table as training reads it
            actual = layout.read_segment(spark_features, segment, regions=[name])
            assert actual.pop("region").eq(name).all()
            assert_same_table(expected, actual, f"{name} {segment}")
            assert manifest["segments"][segment][name]["rows"] == len(expected)
            compared += 1
    assert compared == 2 * len(segment_names())


@pytest.mark.spark
def test_reading_every_region_stacks_them_with_a_region_column(spark_features):
    both = layout.read_segment(spark_features, "elderly")
    assert list(both["region"].cat.categories) == ["eksote-31", "eksote-32"]
    per_region = [layout.read_segment(spark_features, "elderly", regions=[r]) for r in ("eksote-31", "eksote-32")]
    pd.testing.assert_frame_equal(both, pd.concat(per_region, ignore_index=True))
    assert json.loads((spark_features / layout.FEATURES_MANIFEST).read_text())["engine"] == "spark"


def test_the_comparison_catches_a_customer_cut_at_a_shard_boundary_and_any_changed_column(tmp_path):
    """Why the identity test can fail: a shard holding only part of a customer's events gives
    other rows (the property the Spark engine relies on is that shards hold whole customers),
    and the comparison sees a single changed label or a changed dtype. Without Spark."""
    from data_contracts.io import read_dataset
    from scaleout.features import RegionSpan, build_shard
    from synthetic.io import write_simulated
    from synthetic.regions import region_config
    from synthetic.simulate import simulate

    folder = tmp_path / "one"
    write_simulated(simulate(region_config(customers=300, years=3, seed=33, compute_truth=False)), folder)
    data = read_dataset(folder)
    metadata = {k: v for k, v in data.metadata.items() if k != "customers"}
    span = RegionSpan("one", str(folder), data.metadata["extract_start"], data.metadata["extract_end"], metadata)

    def elderly(events: pd.DataFrame) -> pd.DataFrame:
        (_, table), = build_shard(events, data.customers, span, segments=["elderly"], warmup_days=365, validate=False)
        return table

    whole = elderly(data.events)
    # the busiest elderly customer's events cut in two at the middle of the extract, as a shard
    # boundary through a customer would: this shard keeps only the first half
    busiest = data.events.loc[data.events["subject_id"].isin(whole["subject_id"]), "subject_id"].value_counts().index[0]
    middle = data.extract_start + (data.extract_end - data.extract_start) / 2
    cut = data.events[~((data.events["subject_id"] == busiest) & (data.events["time"] >= middle))].reset_index(drop=True)
    with pytest.raises(AssertionError):
        assert_same_table(whole, elderly(cut), "cut shard")

    flipped = whole.copy()
    row = int(np.flatnonzero(flipped["label_hospitalisation"].notna().to_numpy())[0])
    flipped.loc[row, "label_hospitalisation"] = not bool(flipped.loc[row, "label_hospitalisation"])
    with pytest.raises(AssertionError, match="label_hospitalisation"):
        assert_same_table(whole, flipped, "flipped label")
    categorical = next(c for c in whole.columns if isinstance(whole[c].dtype, pd.CategoricalDtype))
    with pytest.raises(AssertionError, match=categorical):
        assert_same_table(whole, whole.astype({categorical: "str"}), "lost categorical")
    assert_same_table(whole, whole.sample(frac=1.0, random_state=0), "row order")  # order alone is not a difference


def test_shards_cover_every_customer_once_and_read_as_slices_of_the_region(tmp_path):
    """Range shards: equal customer counts, open-ended first and last (an event of an unknown
    subject still reaches a shard's contract check), and the shards' frames concatenated are the
    region's frames as the pandas engine reads them (rows, order, dtypes). Without Spark."""
    from data_contracts.io import read_dataset
    from scaleout.features import RegionSpan, read_shard, shard_counts, shard_ranges
    from synthetic.io import write_simulated
    from synthetic.regions import region_config
    from synthetic.simulate import simulate

    folder = tmp_path / "one"
    write_simulated(simulate(region_config(customers=200, years=1, seed=34, compute_truth=False)), folder)
    whole = read_dataset(folder, validate=False)
    ids = whole.customers["subject_id"].to_numpy()
    shards = shard_ranges("one", ids[::-1], 4)
    assert [s.index for s in shards] == [0, 1, 2, 3] and shards[0].lo is None and shards[-1].hi is None
    assert [a.hi for a in shards[:-1]] == [b.lo for b in shards[1:]]
    span = RegionSpan("one", str(folder), whole.metadata["extract_start"], whole.metadata["extract_end"], {})
    pieces = [read_shard(span, s) for s in shards]
    sizes = [len(c) for _, c in pieces]
    assert sum(sizes) == len(ids) and max(sizes) - min(sizes) <= 1
    pd.testing.assert_frame_equal(pd.concat([e for e, _ in pieces], ignore_index=True), whole.events)
    pd.testing.assert_frame_equal(pd.concat([c for _, c in pieces], ignore_index=True), whole.customers)
    assert shard_counts({"a": 25_000, "b": 100}, shard_customers=10_000, min_tasks=8) == {"a": 4, "b": 4}
    assert shard_counts({"a": 25_000}, shard_customers=10_000, min_tasks=2) == {"a": 3}
