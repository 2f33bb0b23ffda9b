"""MEDS out (issue 15 item 7): labels per task that the meds package's own LabelSchema accepts, the
censored rows kept apart, no index month whose window runs past the extract end, and test-period
predictions in MEDS prediction format, written atomically."""

from __future__ import annotations

import meds
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _feature_data import EXTRACT_END, EXTRACT_START, random_population
from data_contracts.errors import ContractError
from data_contracts.meds_tasks import (
    CENSORED_DIR,
    LABELS_DIR,
    PREDICTION_SCHEMA,
    prediction_table,
    task_labels,
    validate_prediction_table,
    write_predictions,
    write_task_labels,
)

T1, T2 = pd.Timestamp("2022-01-01"), pd.Timestamp("2022-02-01")


def combined() -> pd.DataFrame:
    """Our all-problems label frame, as features build writes labels.parquet."""
    return pd.DataFrame({
        "subject_id": np.array([2, 1, 1, 1, 3], dtype="int64"),
        "prediction_time": pd.to_datetime([T1, T2, T1, T1, T1]).astype("datetime64[us]"),
        "boolean_value": pd.array([True, False, None, True, None], dtype="boolean"),
        "problem": ["acute-hospitalisation"] * 3 + ["elderly-hospitalisation"] * 2,
        "censor": pd.array([None, None, "moved_away", None, "extract_end"], dtype="string"),
    })


def test_labels_split_per_task_core_columns_only_censored_apart():
    tasks = task_labels(combined())
    assert set(tasks) == {"acute-hospitalisation", "elderly-hospitalisation"}
    acute = tasks["acute-hospitalisation"]
    assert acute.labels.column_names == ["subject_id", "prediction_time", "boolean_value"]
    meds.LabelSchema.validate(acute.labels)
    # sorted by subject then time; the censored row is not among the labels
    assert acute.labels.to_pydict() == {"subject_id": [1, 2], "prediction_time": [T2.to_pydatetime(), T1.to_pydatetime()],
                                        "boolean_value": [False, True]}
    assert acute.censored.to_pydict() == {"subject_id": [1], "prediction_time": [T1.to_pydatetime()], "censor": ["moved_away"]}
    elderly = tasks["elderly-hospitalisation"]
    assert elderly.labels.num_rows == 1 and elderly.censored.column("censor").to_pylist() == ["extract_end"]


def test_a_null_label_without_a_reason_is_refused():
    frame = combined()
    frame.loc[0, "boolean_value"] = pd.NA
    with pytest.raises(ContractError, match="null where no censor reason"):
        task_labels(frame)


def test_write_task_labels_layout(tmp_path):
    counts = write_task_labels(tmp_path, combined())
    assert counts == {"acute-hospitalisation": {"labels": 2, "positives": 1, "censored": 1},
                      "elderly-hospitalisation": {"labels": 1, "positives": 1, "censored": 1}}
    for task in counts:
        labels = pq.read_table(tmp_path / LABELS_DIR / task / "0.parquet")
        meds.LabelSchema.validate(labels)
        assert labels.column_names == ["subject_id", "prediction_time", "boolean_value"]
        censored = pq.read_table(tmp_path / CENSORED_DIR / task / "0.parquet")
        assert "boolean_value" not in censored.column_names  # no MEDS tool takes these for labels
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")} == {
        f"{folder}/{task}/0.parquet" for folder in (LABELS_DIR, CENSORED_DIR) for task in counts
    }


def test_features_build_writes_meds_labels_without_incomplete_windows(tmp_path):
    """End to end through features/io.write_tables: every task's labels pass meds.LabelSchema, no
    label's window runs past the extract end (before the fix the last months kept their
    positives), every such row sits in labels_censored with reason extract_end, and labels plus
    censored rows are exactly the eligible rows of the feature table."""
    from features.build import build_tables
    from features.history import History
    from features.io import write_tables
    from features.spec import outcome, segment_outcomes

    customers, events = random_population(120, seed=5)
    history = History.from_frames(events, customers)
    out = tmp_path / "features"
    tables = dict(build_tables(history, EXTRACT_START, EXTRACT_END, segments=["elderly", "acute"]))
    manifest = write_tables(out, tables.items(), source={})
    assert set(manifest["tasks"]) == {"elderly-hospitalisation", "elderly-homecare_failure", "acute-hospitalisation"}
    checked_late = 0
    for segment, table in tables.items():
        for name in segment_outcomes(segment):
            task = f"{segment}-{name}"
            labels = pq.read_table(out / LABELS_DIR / task / "0.parquet")
            meds.LabelSchema.validate(labels)
            assert labels.column_names == ["subject_id", "prediction_time", "boolean_value"]
            labels = labels.to_pandas()
            censored = pq.read_table(out / CENSORED_DIR / task / "0.parquet").to_pandas()
            window_end = pd.Timedelta(days=outcome(name).horizon_days)
            late = labels["prediction_time"] + window_end > EXTRACT_END
            assert not late.any(), f"{task}: {int(late.sum())} labels whose window runs past the extract end"
            late_rows = table.loc[table[f"eligible_{name}"] & (table["prediction_time"] + window_end > EXTRACT_END)]
            checked_late += len(late_rows)
            late_censored = censored.loc[censored["prediction_time"] + window_end > EXTRACT_END]
            assert len(late_censored) == len(late_rows) and (late_censored["censor"] == "extract_end").all()
            eligible = table.loc[table[f"eligible_{name}"], ["subject_id", "prediction_time"]]
            both = pd.concat([labels[["subject_id", "prediction_time"]], censored[["subject_id", "prediction_time"]]])
            assert len(both) == len(eligible)
            pd.testing.assert_frame_equal(both.sort_values(["subject_id", "prediction_time"]).reset_index(drop=True),
                                          eligible.sort_values(["subject_id", "prediction_time"]).reset_index(drop=True),
                                          check_dtype=False)
    assert checked_late > 0, "no index month with an incomplete window: the test would prove nothing"


def keys() -> pd.DataFrame:
    return pd.DataFrame({"subject_id": np.array([1, 1, 2], dtype="int64"),
                         "prediction_time": pd.to_datetime([T1, T2, T1]).astype("datetime64[us]")})


def test_prediction_table_is_meds_prediction_format():
    table = prediction_table(keys(), np.array([True, False, False]), np.array([0.7, 0.2, 0.4]), threshold=0.4)
    assert table.schema.equals(PREDICTION_SCHEMA)
    meds.LabelSchema.validate(table.select(["subject_id", "prediction_time", "boolean_value"]))
    # the alert as the alert metrics count it: probability >= threshold
    assert table.column("predicted_boolean_value").to_pylist() == [True, False, True]
    assert table.column("predicted_boolean_probability").type == pa.float64()


@pytest.mark.parametrize("bad, message", [
    (lambda t: t.drop_columns(["predicted_boolean_value"]), "columns must be exactly"),
    (lambda t: t.append_column("problem", pa.array(["x"] * t.num_rows)), "columns must be exactly"),
    (lambda t: t.set_column(4, "predicted_boolean_probability", pa.array([0.1, 1.5, 0.2])), "0..1"),
    (lambda t: t.set_column(4, "predicted_boolean_probability", pa.array([0.1, 0.5, 0.2], pa.float32())), "must be double, not float"),
    (lambda t: t.set_column(2, "boolean_value", pa.array([True, None, False])), "not MEDS labels"),
])
def test_bad_prediction_tables_are_refused(bad, message):
    table = prediction_table(keys(), np.array([True, False, False]), np.array([0.7, 0.2, 0.4]), threshold=0.5)
    with pytest.raises(ContractError, match=message):
        validate_prediction_table(bad(table))


def test_censored_outcomes_have_no_place_in_predictions():
    with pytest.raises(ContractError, match="unknown"):
        prediction_table(keys(), pd.array([True, None, False], dtype="boolean"), np.array([0.7, 0.2, 0.4]), threshold=0.5)


def test_write_predictions_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "predictions" / "acute-hospitalisation" / "test.parquet"
    table = prediction_table(keys(), np.array([True, False, False]), np.array([0.7, 0.2, 0.4]), threshold=0.5)
    write_predictions(path, table)
    assert pq.read_table(path).equals(table)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError):
        write_predictions(path, prediction_table(keys(), np.array([False] * 3), np.array([0.1] * 3), threshold=0.5))
    assert pq.read_table(path).equals(table)  # the old file, whole
    assert [p.name for p in path.parent.iterdir()] == ["test.parquet"]  # no temporary left behind
