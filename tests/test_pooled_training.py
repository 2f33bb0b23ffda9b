"""Pooled training over regions (issue 17 item 4): the Spark-built table against a naive pandas
construction, the negatives' weights against observed/expected, leave-one-region-out folds, and
the command line's refusals.

The data: two regions of the training tests' synthetic feature table (tests/_training_data.py: a
known logistic risk model behind the labels, censoring and ineligible rows), the second with
another seed and its subject ids offset by the layout's stride, written in the multi-region
features layout in two parts a region (as the Spark engine writes shards).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._training_data import fast_spec_dict, synthetic_feature_table
from training.spec import parse_spec

REGIONS = ("north", "south")
FRACTION = 0.25


def write_multi_region(root: Path, *, subjects: int = 450, drift: float = 0.03) -> tuple[Path, dict[str, pd.DataFrame]]:
    """FEATURES/region=<r>/segment=elderly/part-0000{0,1}.parquet + features.json; returns the
    folder and each region's whole table."""
    from scaleout.layout import SUBJECT_ID_STRIDE, features_manifest, region_folder, segment_folder

    tables = {}
    segments: dict[str, dict[str, dict[str, int]]] = {"elderly": {}}
    for number, region in enumerate(REGIONS):
        frame, _ = synthetic_feature_table(subjects=subjects, seed=3 + number, drift=drift)
        frame["subject_id"] = frame["subject_id"] + number * SUBJECT_ID_STRIDE
        folder = root / region_folder(region) / segment_folder("elderly")
        folder.mkdir(parents=True)
        half = frame["subject_id"] % 2 == 0  # two shards by customer
        for part, rows in enumerate((frame.loc[half], frame.loc[~half])):
            rows.to_parquet(folder / f"part-{part:05d}.parquet", index=False)
        tables[region] = frame
        segments["elderly"][region] = {"rows": len(frame), "customers": int(frame["subject_id"].nunique()), "parts": 2}
    manifest = features_manifest(pipeline_version="test-pipeline-1", source={"data": None}, segments=segments)
    (root / "features.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root, tables


def spec_without_bagging(**overrides):
    """The fast test spec without the shipped spec's balanced bagging, whose per-iteration
    negative sampling would shift the booster's raw probabilities by itself."""
    raw = fast_spec_dict(**overrides)
    for key in ("bagging_freq", "pos_bagging_fraction", "neg_bagging_fraction"):
        raw["search"]["fixed"].pop(key, None)
    return parse_spec(raw)


def naive_draw(subject_id: int, stamp: pd.Timestamp, seed: int) -> float:
    """keep_draw with Python integers, one row at a time: splitmix64's finaliser, masked to 64 bits."""
    mask, golden = (1 << 64) - 1, 0x9E3779B97F4A7C15

    def mix(x: int) -> int:
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    micros = (stamp - pd.Timestamp("1970-01-01")) // pd.Timedelta(microseconds=1)
    x = mix((subject_id + ((seed * golden) & mask)) & mask)
    x = mix(x ^ ((micros + golden) & mask))
    return (x >> 11) / float(1 << 53)


def naive_pooled(tables: dict[str, pd.DataFrame], spec, fraction: float, seed: int):
    """The pooled table the obvious way: all regions' rows in one frame, split_table, then each
    training row kept when positive or when its naive draw < fraction (weight 1/fraction)."""
    from training.splits import split_table

    frame = pd.concat([t.assign(region=r) for r, t in tables.items()], ignore_index=True)
    split = split_table(frame, spec)
    train = split.train
    label = train[spec.label_column].astype(bool).to_numpy()
    draws = np.array([naive_draw(int(s), t, seed) for s, t in zip(train["subject_id"], train["prediction_time"])])
    kept = label | (draws < fraction)
    weight = np.where(label, 1.0, 1.0 / fraction)[kept]
    return split, train.loc[kept].reset_index(drop=True), weight


def same_rows(frame: pd.DataFrame, columns) -> pd.DataFrame:  # noqa: ANN001
    order = ["region", "subject_id", "prediction_time"]
    out = frame[list(columns)].copy()
    out["region"] = out["region"].astype(str)
    return out.sort_values(order, kind="stable").reset_index(drop=True)


# ---- pure parts ------------------------------------------------------------------------------


def test_keep_draw_is_splitmix_per_row_uniform_and_order_free():
    from training.pooled import keep_draw

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 40_000_000, 200)
    times = pd.Series(pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 60, 200) * 30, unit="D")).astype("datetime64[us]")
    fast = keep_draw(ids, times, 7)
    assert fast.tolist() == [naive_draw(int(i), t, 7) for i, t in zip(ids, times)]
    order = rng.permutation(200)
    assert np.array_equal(keep_draw(ids[order], times.iloc[order], 7), fast[order])
    assert not np.array_equal(keep_draw(ids, times, 8), fast)
    many = keep_draw(np.arange(100_000), pd.Series(pd.Timestamp("2024-03-01"), index=range(100_000)), 1)
    kept = float((many < 0.25).mean())
    assert abs(kept - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 100_000)  # binomial: four standard errors


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_a_fraction_outside_zero_one_is_refused(fraction):
    from training.pooled import PooledTrainingError, check_fraction

    with pytest.raises(PooledTrainingError, match="negatives-fraction"):
        check_fraction(fraction)


# ---- Spark: the table equals the naive one (the session is conftest's `spark`: one a test run; a
# module's own would stop the shared one when it ends) ----------------------------------------


@pytest.fixture(scope="module")
def multi_region(tmp_path_factory):
    return write_multi_region(tmp_path_factory.mktemp("pooled") / "features")


@pytest.mark.slow
def test_the_spark_table_is_the_naive_pandas_table(spark, multi_region):
    from scaleout.pooled import build_pooled_table

    root, tables = multi_region
    spec = parse_spec(fast_spec_dict())
    table = build_pooled_table(spark, root, spec, negatives_fraction=FRACTION, seed=11)
    split, train, weight = naive_pooled(tables, spec, FRACTION, 11)

    assert table.regions == REGIONS and table.anchor == split.anchor and table.periods == split.periods
    columns = list(table.train.columns)
    assert "region" in columns and "noise_feature" in columns and "label_homecare_failure" not in columns
    # the same rows and values, in the pandas engine's dtypes (categoricals, nullable booleans, us timestamps)
    pd.testing.assert_frame_equal(table.train.astype({"region": str}), same_rows(train, columns))
    expected_weight = pd.Series(weight, index=same_rows(train.assign(w=weight), [*columns, "w"]).index)
    assert np.array_equal(table.train_weight, same_rows(train.assign(w=weight), [*columns, "w"])["w"].to_numpy())
    assert len(expected_weight) == len(table.train_weight)
    label = table.train[spec.label_column].astype(bool).to_numpy()
    assert set(table.train_weight[label]) == {1.0} and set(table.train_weight[~label]) == {1 / FRACTION}
    assert label.sum() == split.train[spec.label_column].astype(bool).sum()  # every positive kept
    kept_share = (~label).sum() / (~split.train[spec.label_column].astype(bool)).sum()
    assert 0.2 < kept_share < 0.3
    # validation and test are never thinned
    pd.testing.assert_frame_equal(table.validation.astype({"region": str}), same_rows(split.validation, columns))
    pd.testing.assert_frame_equal(table.test.astype({"region": str}), same_rows(split.test, columns))
    assert table.train_rows_before == {r: int((split.train["region"] == r).sum()) for r in REGIONS}


@pytest.mark.slow
def test_regions_whose_extracts_end_apart_are_refused(spark, tmp_path):
    from scaleout.pooled import build_pooled_table
    from training.pooled import PooledTrainingError

    root, _ = write_multi_region(tmp_path / "features", subjects=60)
    part = root / "region=south" / "segment=elderly" / "part-00000.parquet"
    frame = pd.read_parquet(part)
    frame["prediction_time"] = (frame["prediction_time"] + pd.DateOffset(months=6)).astype("datetime64[us]")
    frame.to_parquet(part, index=False)
    other = root / "region=south" / "segment=elderly" / "part-00001.parquet"
    frame = pd.read_parquet(other)
    frame["prediction_time"] = (frame["prediction_time"] + pd.DateOffset(months=6)).astype("datetime64[us]")
    frame.to_parquet(other, index=False)
    with pytest.raises(PooledTrainingError, match="different months"):
        build_pooled_table(spark, root, parse_spec(fast_spec_dict()), negatives_fraction=0.5)


# ---- leave-one-region-out folds (pandas table) ------------------------------------------------


def pooled_from_naive(tables, spec, fraction: float = FRACTION, seed: int = 11):
    from training.pooled import PooledTable

    split, train, weight = naive_pooled(tables, spec, fraction, seed)
    order = lambda f: f.sort_values(["region", "subject_id", "prediction_time"], kind="stable")  # noqa: E731
    train = train.assign(w=weight)
    train = order(train).reset_index(drop=True)
    return PooledTable(train.drop(columns="w"), order(split.validation).reset_index(drop=True),
                       order(split.test).reset_index(drop=True), train["w"].to_numpy(), split.periods, split.anchor,
                       REGIONS, fraction, seed, "test-pipeline-1", "span")


def test_a_fold_trains_on_the_other_regions_and_tests_on_the_held_out_test_period(tmp_path, monkeypatch):
    import training.pipeline
    from training.pooled import leave_one_region_out

    _, tables = write_multi_region(tmp_path / "features")
    spec = parse_spec(fast_spec_dict())
    table = pooled_from_naive(tables, spec)
    seen = {}

    def fake_train(spec, split, *, train_weight, **kwargs):  # noqa: ANN001, ANN003
        held = kwargs["extra_params"]["held_out_region"]
        seen[held] = (split, train_weight, kwargs)
        metrics = {"test_rows": len(split.test), "test_events": 1.0}
        model = type("M", (), {"metadata": {"validation_auroc": 0.5}})()
        return type("R", (), {"metrics": metrics, "model": model, "run_id": "r"})()

    monkeypatch.setattr(training.pipeline, "train_on_split", fake_train)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    _, frame = leave_one_region_out(spec, table, None, progress=lambda _: None)
    assert list(frame["held_out"]) == list(REGIONS)

    from training.splits import split_table

    for held, (split, weight, kwargs) in seen.items():
        others = [r for r in REGIONS if r != held]
        assert kwargs["register"] is False and kwargs["nested"] is True
        assert set(split.train["region"].astype(str)) == set(others)
        assert set(split.validation["region"].astype(str)) == set(others)
        assert not set(split.train["subject_id"]) & set(tables[held]["subject_id"])
        # the test rows are exactly the held-out region's usable test-period rows, nothing else
        own = split_table(tables[held], spec).test
        assert sorted(zip(split.test["subject_id"], split.test["prediction_time"])) == \
            sorted(zip(own["subject_id"], own["prediction_time"]))
        assert split.test["prediction_time"].min() >= split.periods[2].start
        # weights travel with their rows
        expected = table.train_weight[table.train["region"].astype(str).isin(others).to_numpy()]
        assert np.array_equal(weight, expected)


def test_a_fold_cannot_test_on_a_region_it_trains_on(tmp_path):
    from training.pooled import PooledTrainingError, train_fold

    _, tables = write_multi_region(tmp_path / "features", subjects=120)
    spec = parse_spec(fast_spec_dict())
    table = pooled_from_naive(tables, spec)
    with pytest.raises(PooledTrainingError, match="also trains on"):
        train_fold(spec, table, None, REGIONS, "north", kind="loro", progress=lambda _: None)


# ---- the weights keep probabilities right ---------------------------------------------------


def booster_oe(table, spec, weight) -> float:  # noqa: ANN001
    """The tuned booster's own probabilities (no calibrator) on the test period: observed / expected."""
    from training.evaluate import observed_expected
    from training.splits import select_features
    from training.tuning import tune, training_data
    from models.inputs import FeatureBlock, Inputs, model_input

    names = select_features(list(table.train.columns), spec)
    data = training_data(table.train, table.validation, spec, names, weight)
    result = tune(spec, data, storage="sqlite:///:memory:", study_name="oe")
    inputs = Inputs(spec.problem, names, data.categories)
    test_x = model_input(inputs, FeatureBlock.from_frame(table.test, names, data.categories, spec.problem))
    return observed_expected(table.test[spec.label_column].astype(bool).to_numpy(), result.booster.predict(test_x))


@pytest.mark.slow
def test_weighting_kept_negatives_by_one_over_f_keeps_the_probabilities_right(tmp_path):
    """Negatives at F=0.25 with weight 4: the booster's O/E on the test period is within noise of 1
    and of the unthinned model's; with the weights dropped it is far below 1 (the probabilities
    about four times the odds), which is what the test would see if the pipeline lost them.
    No drift in this table, so the test period's rate is the training period's."""
    _, tables = write_multi_region(tmp_path / "features", subjects=900, drift=0.0)
    spec = spec_without_bagging()
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"trials": 1})})
    full = pooled_from_naive(tables, spec, fraction=1.0)
    thinned = pooled_from_naive(tables, spec, fraction=0.25)
    assert len(thinned.train) < 0.35 * len(full.train)

    oe_full = booster_oe(full, spec, full.train_weight)
    oe_weighted = booster_oe(thinned, spec, thinned.train_weight)
    oe_unweighted = booster_oe(thinned, spec, None)
    events = int(full.test[spec.label_column].astype(bool).sum())
    noise = 3 / np.sqrt(events)  # three standard errors of a Poisson count of the test's outcomes
    assert abs(oe_full - 1) < noise
    assert abs(oe_weighted - 1) < noise, (oe_weighted, events)
    assert abs(np.log(oe_weighted / oe_full)) < noise
    assert oe_unweighted < 0.6, oe_unweighted


# ---- command line -----------------------------------------------------------------------------


def run_cli(*args: str, home: Path, monkeypatch, capsys) -> tuple[int, str, str]:  # noqa: ANN001
    """The console entry point in this process (no interpreter start a case): (exit code, stdout, stderr)."""
    from sote_risk.cli import main

    monkeypatch.setenv("SOTE_RISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(sys, "argv", ["sote-risk", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.slow
def test_the_pooled_options_are_refused_in_one_line_where_they_mean_nothing(tmp_path, multi_region, monkeypatch, capsys):
    from tests._training_data import write_tables

    root, _ = multi_region
    single, _ = write_tables(tmp_path / "single")
    home = tmp_path / "home"
    cases = [
        (("train", "-p", "elderly-hospitalisation", "--features", str(single), "--negatives-fraction", "0.5"),
         "--negatives-fraction applies to a multi-region features folder only"),
        (("train", "-p", "elderly-hospitalisation", "--features", str(root), "--negatives-fraction", "0"),
         "--negatives-fraction must be in (0, 1]"),
        (("evaluate", "-p", "elderly-hospitalisation", "--leave-one-region-out", "--features", str(single)),
         "--leave-one-region-out needs a multi-region features folder"),
        (("evaluate", "-p", "elderly-hospitalisation", "--leave-one-region-out", "--features", str(root),
          "--external", str(tmp_path)), "--leave-one-region-out and --external"),
        (("evaluate", "-p", "elderly-hospitalisation", "--held-out", "north", "--features", str(root)),
         "--held-out belongs to --leave-one-region-out"),
    ]
    for args, message in cases:
        code, out, err = run_cli(*args, home=home, monkeypatch=monkeypatch, capsys=capsys)
        assert code not in (0, None), args
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, err)
        assert "Traceback" not in out + err


@pytest.mark.slow
def test_the_pooled_model_is_registered_and_judged_region_by_region(tmp_path, monkeypatch):
    """train_pooled on the pandas-built table (1 trial): a registered challenger, and per region
    the figures of that model on that region's test rows alone (recomputed here from its
    probabilities), each a nested MLflow run."""
    import mlflow

    from models.registry import load_model
    from training.evaluate import auroc, observed_expected
    from training.pooled import train_pooled

    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    _, tables = write_multi_region(tmp_path / "features")
    spec = parse_spec(fast_spec_dict())
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"trials": 1})})
    table = pooled_from_naive(tables, spec)
    result, per_region = train_pooled(spec, table, None, progress=lambda _: None)

    assert result.model_version == "1"
    assert load_model(spec.problem, "challenger", expected_pipeline_version="test-pipeline-1").metadata["pooled"]["negatives_fraction"] == FRACTION
    assert list(per_region["region"]) == list(REGIONS)
    for row in per_region.to_dict("records"):
        rows = table.test.loc[table.test["region"].astype(str) == row["region"]]
        y = rows[spec.label_column].astype(bool).to_numpy()
        p = result.model.predict_proba(rows)
        assert row["test_rows"] == len(rows) and row["test_events"] == y.sum()
        assert row["test_auroc"] == pytest.approx(auroc(y, p))
        assert row["test_observed_expected"] == pytest.approx(observed_expected(y, p))
        assert row["test_auroc_ci_low"] < row["test_auroc"] < row["test_auroc_ci_high"]
    children = mlflow.search_runs(experiment_names=[f"sote-risk/{spec.problem}"], filter_string="tags.kind = 'evaluate-region'")
    assert sorted(children["tags.region"]) == sorted(REGIONS)
    assert set(children["tags.mlflow.parentRunId"]) == {result.run_id}
