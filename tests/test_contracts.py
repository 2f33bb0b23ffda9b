"""Data contracts: every rule rejects a crafted bad frame with a message that says where and why."""

from __future__ import annotations

import pandas as pd
import pytest

import _contract_frames as tf
from data_contracts import (
    ContractError,
    load_code_catalogue,
    validate_customers,
    validate_dataset,
    validate_events,
    validate_labels,
    validate_predictions,
)
from data_contracts.errors import MAX_EXAMPLES
from base.errors import SoteRiskError


def failures_of(events=None, customers=None, metadata=None) -> ContractError:
    events = tf.events() if events is None else events
    customers = tf.customers() if customers is None else customers
    with pytest.raises(ContractError) as info:
        validate_dataset(events, customers, metadata or tf.metadata())
    return info.value


def only_failure(error: ContractError, table: str, column: str, rule_part: str):
    matching = [f for f in error.failures if f.table == table and f.column == column and rule_part in f.rule]
    assert matching, f"no {table}.{column} failure with {rule_part!r} in:\n{error}"
    return matching[0]


def test_valid_dataset_with_open_stay_passes():
    validate_dataset(tf.events(), tf.customers(), tf.metadata())


def test_contract_error_is_a_sote_risk_error():
    assert issubclass(ContractError, SoteRiskError)


def test_wrong_dtype_is_named_with_expected_and_found_type():
    bad = tf.events().astype({"cost_eur": "int64"})
    error = failures_of(events=bad)
    failure = only_failure(error, "events", "cost_eur", "wrong dtype")
    assert "float64" in failure.rule and "int64" in failure.detail
    assert "events.cost_eur: wrong dtype: expected float64 (got int64)" in str(error)


def test_time_as_text_is_a_wrong_dtype():
    bad = tf.events().astype({"time": "str"})
    only_failure(failures_of(events=bad), "events", "time", "wrong dtype")


def test_missing_column():
    error = failures_of(events=tf.events().drop(columns=["service_area"]))
    only_failure(error, "events", "service_area", "missing column")


def test_unexpected_column():
    error = failures_of(customers=tf.customers().assign(ssn="010101-123X"))
    only_failure(error, "customers", "ssn", "unexpected column")


def test_null_where_not_allowed_names_row_and_subject():
    rows = tf.replace_row(4, code=None)
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "code", "null not allowed")
    assert failure.rows == (4,) and failure.subject_ids == (11,)


def test_unknown_code():
    rows = tf.replace_row(13, code="REHAB/TELEPORT")
    error = failures_of(events=tf.events(rows))
    failure = only_failure(error, "events", "code", "codes.csv")
    assert failure.rows == (13,) and failure.subject_ids == (13,)
    assert "row 13 (subject_id 13)" in str(error)


def test_service_area_must_match_code():
    rows = tf.replace_row(4, service_area="PRIMARY")  # PHQ9 belongs to MENTAL
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "service_area", "catalogue")
    assert failure.rows == (4,)


def test_numeric_value_outside_code_range():
    rows = tf.replace_row(4, numeric_value=28.0)  # PHQ-9 is 0..27
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "numeric_value", "value_min..value_max")
    assert failure.rows == (4,) and failure.subject_ids == (11,)


def test_numeric_value_at_range_edge_is_valid():
    validate_dataset(tf.events(tf.replace_row(4, numeric_value=27.0)), tf.customers(), tf.metadata())


def test_discharge_cost_must_follow_length_of_stay():
    rows = tf.replace_row(7, cost_eur=100.0)
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "cost_eur", "length_of_stay_days")
    assert failure.rows == (7,)


def test_negative_cost():
    rows = tf.replace_row(1, cost_eur=-1.0)
    only_failure(failures_of(events=tf.events(rows)), "events", "cost_eur", ">= 0")


def test_event_before_birth_month():
    customers = tf.customers()
    customers.loc[1, ["birth_year", "birth_month"]] = [2023, 5]  # subject 12 born May 2023
    customers = customers.astype({"birth_year": "int16", "birth_month": "int8"})
    failure = only_failure(failures_of(customers=customers), "events", "time", "birth month")
    assert failure.rows == (9, 10) and failure.subject_ids == (12, 12)


def test_event_in_birth_month_is_valid():
    customers = tf.customers()
    customers.loc[1, ["birth_year", "birth_month"]] = [2023, 4]
    validate_dataset(tf.events(), customers.astype({"birth_year": "int16", "birth_month": "int8"}), tf.metadata())


def test_event_after_death():
    rows = [*tf.EVENT_ROWS[:9], (11, "2024-03-01 10:00", "ENC/HC_NURSE", None, "PRIMARY", "HC/Imatra", 51.0), *tf.EVENT_ROWS[9:]]
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "time", "after the customer's DEATH")
    assert failure.rows == (9,) and failure.subject_ids == (11,)


def test_second_death():
    rows = [*tf.EVENT_ROWS[:9], (11, "2024-03-01 10:00", "DEATH", None, "LIFE", None, 0.0), *tf.EVENT_ROWS[9:]]
    error = failures_of(events=tf.events(rows))
    assert only_failure(error, "events", "code", "die only once").rows == (9,)


def test_discharge_without_open_stay():
    rows = [r for i, r in enumerate(tf.EVENT_ROWS) if i != 2]  # drop the first admission
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "code", "DISCHARGE without an open hospital stay")
    assert failure.rows == (2,) and failure.subject_ids == (11,)


def test_overlapping_stays():
    rows = [r for i, r in enumerate(tf.EVENT_ROWS) if i != 3]  # first discharge missing: two admits in a row
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "code", "already open (overlap)")
    assert failure.rows == (5,)


@pytest.mark.parametrize(
    "start_row, end_code, row_of_end",
    [(0, "HOMECARE/END", 4), (12, "REHAB/END", 13), (10, "CHILDWELFARE/OPEN_CARE_END", 10)],
)
def test_service_end_without_start(start_row, end_code, row_of_end):
    rows = [r for i, r in enumerate(tf.EVENT_ROWS) if i != start_row]
    failure = only_failure(failures_of(events=tf.events(rows)), "events", "code", f"{end_code} without an open")
    assert failure.rows == (row_of_end,)


def test_open_services_at_extract_end_are_valid():
    rows = [r for i, r in enumerate(tf.EVENT_ROWS) if i not in (5, 11, 14)]  # drop every END
    validate_dataset(tf.events(rows), tf.customers(), tf.metadata())


def test_duplicate_customer_id():
    customers = tf.customers()
    customers.loc[2, "subject_id"] = 12
    error = failures_of(customers=customers)
    failure = only_failure(error, "customers", "subject_id", "duplicate")
    assert failure.rows == (1, 2)


def test_event_for_unknown_customer():
    customers = tf.customers().iloc[[0, 2]].reset_index(drop=True)
    error = failures_of(customers=customers, metadata=tf.metadata(customers=2))
    failure = only_failure(error, "events", "subject_id", "present in customers")
    assert failure.n_rows == 3 and failure.subject_ids == (12, 12, 12)


def test_unsorted_events():
    frame = tf.events()
    swapped = frame.iloc[[1, 0, *range(2, len(frame))]].reset_index(drop=True)
    only_failure(failures_of(events=swapped), "events", "time", "sorted")


def test_event_outside_extract_window():
    rows = tf.replace_row(15, time="2025-01-02 00:00")
    only_failure(failures_of(events=tf.events(rows)), "events", "time", "within the extract")


@pytest.mark.parametrize(
    "column, value, rule",
    [("sex", "X", "sex must be"), ("municipality", "Helsinki", "municipality"), ("language", "en", "language"),
     ("birth_month", 13, "birth_month"), ("birth_year", 1899, "birth_year")],
)
def test_customer_value_rules(column, value, rule):
    customers = tf.customers()
    customers[column] = customers[column].where(customers.index != 0, value).astype(customers[column].dtype)
    failure = only_failure(failures_of(customers=customers), "customers", column, rule)
    assert failure.rows == (0,) and failure.subject_ids == (11,)


def test_many_failures_are_reported_together_one_line_per_rule():
    rows = tf.replace_row(4, code="NOPE")
    rows = [(*r[:6], -5.0) for r in rows]  # every cost negative
    customers = tf.customers().assign(sex="X")
    error = failures_of(events=tf.events(rows), customers=customers)
    lines = str(error).splitlines()
    assert len(lines) == 1 + len(error.failures)
    assert any("events.code" in line for line in lines)
    assert any("customers.sex" in line for line in lines)
    cost = only_failure(error, "events", "cost_eur", ">= 0")
    assert cost.n_rows == len(rows) and len(cost.rows) == MAX_EXAMPLES
    assert f"{len(rows) - MAX_EXAMPLES} more" in cost.line()


def test_row_numbers_are_positions_even_with_a_custom_index():
    frame = tf.events(tf.replace_row(4, code="NOPE"))
    frame.index = frame.index + 1000
    failure = only_failure(failures_of(events=frame), "events", "code", "codes.csv")
    assert failure.rows == (4,)


def test_validation_does_not_mutate_the_callers_frames():
    events, customers = tf.events(tf.replace_row(4, code="NOPE")), tf.customers()
    before_e, before_c = events.copy(), customers.copy()
    with pytest.raises(ContractError):
        validate_dataset(events, customers, tf.metadata())
    pd.testing.assert_frame_equal(events, before_e)
    pd.testing.assert_frame_equal(customers, before_c)


def test_validate_events_and_customers_alone():
    validate_events(tf.events())
    validate_customers(tf.customers(), max_birth_year=2024)
    with pytest.raises(ContractError, match="birth_year"):
        validate_customers(tf.customers(), max_birth_year=2010)


def test_customer_count_in_metadata_must_match():
    error = failures_of(metadata=tf.metadata(customers=4))
    only_failure(error, "dataset.json", "customers", "number of customers")


def test_code_catalogue_is_cached_and_callers_get_a_copy():
    first = load_code_catalogue()
    first.loc[0, "code"] = "CHANGED"
    second = load_code_catalogue()
    assert second.loc[0, "code"] != "CHANGED"
    assert {"DISCHARGE", "DEATH", "PHQ9"} <= set(second["code"])
    assert second["code"].is_unique
    assert second.set_index("code").loc["PHQ9", ["value_min", "value_max"]].tolist() == [0.0, 27.0]


# Labels and predictions ------------------------------------------------------------------


def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_id": pd.array([11, 12], dtype="int64"),
            "prediction_time": pd.to_datetime(["2023-03-01", "2023-04-01"]).astype("datetime64[us]"),
            "boolean_value": pd.array([True, None], dtype="boolean"),
            "problem": pd.array(["elderly-hospitalisation"] * 2, dtype="str"),
            "censor": pd.array([None, "moved_away"], dtype="str"),
        }
    )


def predictions() -> pd.DataFrame:
    return labels().drop(columns=["boolean_value"]).assign(
        segment=pd.array(["elderly", "elderly"], dtype="str"),
        predicted_boolean_probability=[0.2, 0.9],
        model_version="3",
    )


def test_valid_labels_and_predictions_pass():
    validate_labels(labels())
    validate_labels(labels()[["subject_id", "prediction_time", "boolean_value"]].iloc[[0]])
    validate_predictions(predictions())


def test_label_null_without_censor_reason_is_refused():
    frame = labels().assign(censor=pd.array([None, None], dtype="str"))
    with pytest.raises(ContractError, match="null only where censor"):
        validate_labels(frame)


def test_death_is_not_a_censor_reason():
    """Death within the horizon is a negative (a competing event), so a label null for "death"
    comes from the old definition and is refused."""
    frame = labels().assign(censor=pd.array([None, "death"], dtype="str"))
    with pytest.raises(ContractError, match="censor must be one of moved_away, extract_end"):
        validate_labels(frame)


def test_label_prediction_time_must_be_month_start():
    frame = labels()
    frame.loc[0, "prediction_time"] = pd.Timestamp("2023-03-02")
    with pytest.raises(ContractError, match="first day of a month") as info:
        validate_labels(frame)
    assert info.value.failures[0].rows == (0,)


def test_labels_refuse_extra_columns():
    with pytest.raises(ContractError, match="unexpected column"):
        validate_labels(labels().assign(feature_x=1.0))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"predicted_boolean_probability": [0.2, 1.5]}, "probability must be in 0..1"),
        ({"problem": pd.array(["elderly-hospitalisation", "elderly-flu"], dtype="str")}, "one of the declared problems"),
        ({"segment": pd.array(["elderly", "children"], dtype="str")}, "start with its segment"),
    ],
)
def test_bad_predictions_are_refused(change, message):
    with pytest.raises(ContractError, match=message):
        validate_predictions(predictions().assign(**change))


def test_predictions_need_probability_column():
    with pytest.raises(ContractError, match="predicted_boolean_probability: missing column"):
        validate_predictions(predictions().drop(columns=["predicted_boolean_probability"]))
