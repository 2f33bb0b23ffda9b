"""The multi-region layout (scaleout/layout.py) and `simulate --regions` planning, without Spark;
and the one line a Spark command prints when there is no Java runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleout import layout
from scaleout.simulate import plan_regions


def _region(root: Path, name: str, ids) -> None:
    folder = root / layout.region_folder(name)
    folder.mkdir(parents=True)
    pd.DataFrame({"subject_id": np.asarray(ids, dtype="int64")}).to_parquet(folder / "customers.parquet")
    (folder / "dataset.json").write_text("{}", encoding="utf-8")


def _manifest(root: Path, names: list[str]) -> None:
    entries = [layout.RegionEntry(n, "eksote", i, i * layout.SUBJECT_ID_STRIDE, 3, 0) for i, n in enumerate(names)]
    layout.write_dataset_manifest(root, layout.dataset_manifest(entries, source="test"))


def test_default_plan_is_eksote_with_consecutive_seeds_and_disjoint_id_ranges():
    plans = plan_regions(3, customers=100, years=2, seed=11)
    assert [p.name for p in plans] == ["eksote-11", "eksote-12", "eksote-13"]
    assert {p.parameters for p in plans} == {"eksote"}  # the external regions stay held out unless named
    assert [p.subject_id_offset for p in plans] == [0, 10_000_000, 20_000_000]
    named = plan_regions(2, customers=100, years=2, seed=3, parameter_sets=["eksote", "kainuu"])
    assert [(p.name, p.parameters) for p in named] == [("eksote-3", "eksote"), ("kainuu-4", "kainuu")]
    with pytest.raises(layout.LayoutError, match="names 1 parameter set"):
        plan_regions(2, customers=100, years=2, seed=3, parameter_sets=["eksote"])


def test_shared_subject_ids_are_refused_naming_regions_and_an_id(tmp_path):
    _region(tmp_path, "a-1", [100_001, 100_002, 100_003])
    _region(tmp_path, "b-2", [10_100_001, 100_003, 10_100_002])
    _manifest(tmp_path, ["a-1", "b-2"])
    dataset = layout.read_dataset_manifest(tmp_path)
    assert dataset.names == ("a-1", "b-2")
    with pytest.raises(layout.SharedSubjectError, match=r"regions a-1 and b-2 share 1 subject id\(s\), e\.g\. 100003"):
        layout.check_unique_subjects(dataset)


def test_disjoint_ids_pass_and_an_unfinished_dataset_is_named(tmp_path):
    _region(tmp_path, "a-1", [100_001, 100_002])
    _region(tmp_path, "b-2", [10_100_001])
    with pytest.raises(layout.LayoutError, match="not a multi-region dataset"):
        layout.read_dataset_manifest(tmp_path)  # no manifest yet: unfinished
    _manifest(tmp_path, ["a-1", "b-2"])
    layout.check_unique_subjects(layout.read_dataset_manifest(tmp_path))
    assert layout.is_multi_region(tmp_path) and not layout.is_multi_region(tmp_path / "region=a-1")
    (tmp_path / "region=b-2" / "dataset.json").unlink()
    with pytest.raises(layout.LayoutError, match="region b-2 has no dataset folder"):
        layout.read_dataset_manifest(tmp_path)


def test_read_segment_keeps_the_writers_dtypes_and_adds_the_region(tmp_path):
    from features.io import write_parquet

    def part(ids, labels) -> pd.DataFrame:
        return pd.DataFrame({
            "subject_id": np.asarray(ids, dtype="int64"),
            "prediction_time": np.array(["2024-01-01"] * len(ids), dtype="datetime64[us]"),
            "sex": pd.Categorical(["F"] * len(ids), categories=["M", "F"]),  # categories in the catalogue's order
            "label_x": pd.array(labels, dtype="boolean"),
            "censor_x": pd.array([None] * len(ids), dtype="string"),
        })

    parts = {("r-1", 0): part([5, 3], [True, None]), ("r-1", 1): part([4], [False]), ("r-2", 0): part([9], [None])}
    for (region, shard), frame in parts.items():
        folder = tmp_path / layout.region_folder(region) / layout.segment_folder("elderly")
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(frame, folder / f"part-{shard:05d}.parquet")
    (tmp_path / layout.FEATURES_MANIFEST).write_text(json.dumps(layout.features_manifest(
        pipeline_version="v", source={}, segments={"elderly": {"r-1": {}, "r-2": {}}})), encoding="utf-8")

    table = layout.read_segment(tmp_path, "elderly")
    assert table["region"].tolist() == ["r-1", "r-1", "r-1", "r-2"]
    assert table["subject_id"].tolist() == [3, 4, 5, 9]
    expected = part([1], [True]).dtypes
    pd.testing.assert_series_equal(table.drop(columns="region").dtypes, expected)
    assert table["label_x"].isna().tolist() == [True, False, False, True]
    assert layout.read_segment(tmp_path, "elderly", regions=["r-2"])["subject_id"].tolist() == [9]
    with pytest.raises(layout.LayoutError, match="no region"):
        layout.read_segment(tmp_path, "elderly", regions=["nowhere"])


def test_without_java_a_spark_command_says_what_to_install_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update(PATH=str(tmp_path), SOTE_RISK_HOME=str(tmp_path / "home"))
    result = subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", "simulate", "--regions", "2",
                             "--customers", "50", "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: the Spark engine needs a Java runtime: "
                                     "sudo apt-get install -y openjdk-17-jre-headless")
    assert not (tmp_path / "out").exists()


def test_each_engine_refuses_the_other_kind_of_dataset_in_one_line(tmp_path):
    _region(tmp_path / "data", "a-1", [100_001])
    _manifest(tmp_path / "data", ["a-1"])

    def features_build(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "SOTE_RISK_HOME": str(tmp_path / "home")}
        return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", "features", "build", *args,
                               "--out", str(tmp_path / "features")], capture_output=True, text=True, env=env)

    pandas = features_build("--data", str(tmp_path / "data"))
    assert pandas.returncode == 2 and len(pandas.stderr.strip().splitlines()) == 1
    assert "is a multi-region dataset (regions.json): build its features with --engine spark" in pandas.stderr
    spark = features_build("--engine", "spark", "--data", str(tmp_path / "data" / "region=a-1"))
    assert spark.returncode == 2 and len(spark.stderr.strip().splitlines()) == 1
    assert "--engine spark reads a multi-region dataset" in spark.stderr and "use --engine pandas" in spark.stderr
    assert not (tmp_path / "features").exists()


def test_the_session_settings_keep_spark_on_this_machine_and_on_this_python():
    from scaleout.session import SparkSettings, spark_conf

    local = spark_conf(SparkSettings(python="/opt/venv/bin/python"))
    assert local["spark.master"] == "local[*]"
    assert local["spark.driver.host"] == local["spark.driver.bindAddress"] == "127.0.0.1"
    assert local["spark.ui.enabled"] == "false" and local["spark.sql.session.timeZone"] == "UTC"
    assert local["spark.pyspark.python"] == local["spark.executorEnv.PYSPARK_PYTHON"] == "/opt/venv/bin/python"
    assert not any("jars.packages" in key or "jars.repositories" in key for key in local)  # nothing downloaded
    cluster = spark_conf(SparkSettings(master="spark://head:7077"))
    assert "spark.driver.bindAddress" not in cluster and "spark.executorEnv.PYTHONPATH" not in cluster
    with pytest.raises(ValueError):
        SparkSettings(driver_memory="lots")
