"""The feature function's contract: batch = online, catalogue coverage, versions, bad input as one
clear error, and the CLI (no leakage: test_features_leakage.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from _feature_data import EXTRACT_END, EXTRACT_START, random_population, timeline
from features import catalogue, compute_features, feature_names, pipeline_version, segment_names
from features.build import build_tables, index_dates, meds_labels
from features.catalogue import MUNICIPALITIES, SERVICE_CATEGORIES
from features.history import History, HistoryError
from features.spec import UnknownSegmentError
from features.pipeline import TimeOutsideDataError
from base.errors import SoteRiskError


@pytest.fixture(scope="module")
def population():
    return random_population(120, seed=5)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


# Leakage (events after t change nothing at t, for every code and feature): test_features_leakage.py.


# -- batch = online --------------------------------------------------------------------------------
@pytest.mark.slow
def test_online_row_equals_batch_row(population):
    customers, events = population
    history = History.from_frames(events, customers)
    for segment, table in build_tables(history, EXTRACT_START, EXTRACT_END, warmup_days=365):
        assert len(table) > 0
        rows = table.sample(min(8, len(table)), random_state=1)
        for _, row in rows.iterrows():
            sid, t = int(row["subject_id"]), row["prediction_time"]
            one = events[events["subject_id"] == sid]  # the history the service holds for this customer
            online = compute_features(one, customers[customers["subject_id"] == sid], [sid], [t], segment, span=(None, None))
            batch = table.loc[[row.name], online.columns]
            _assert_same(online, batch)
            # and through a prebuilt region-wide History (the service's precomputed state)
            _assert_same(compute_features(None, None, [sid], [t], segment, history=history), batch)


def test_row_order_and_pseudonym_do_not_matter(population):
    customers, events = population
    ids = customers["subject_id"].to_numpy()[:30]
    times = [pd.Timestamp("2022-06-01")] * 30
    forward = compute_features(events, customers, ids, times, "elderly")
    backward = compute_features(events.iloc[::-1], customers.iloc[::-1], ids[::-1], times[::-1], "elderly")
    _assert_same(forward, backward.iloc[::-1])
    shifted_c, shifted_e = customers.assign(subject_id=customers["subject_id"] + 10**9), events.assign(subject_id=events["subject_id"] + 10**9)
    renamed = compute_features(shifted_e, shifted_c, ids + 10**9, times, "elderly")
    _assert_same(forward.drop(columns="subject_id"), renamed.drop(columns="subject_id"))


# -- catalogue and version ------------------------------------------------------------------------
def test_every_produced_feature_has_a_complete_catalogue_entry(population):
    customers, events = population
    entries = {e.name: e for e in catalogue()}
    ids = np.repeat(customers["subject_id"].to_numpy(), 3)
    times = np.tile(np.array(["2021-06-01", "2022-06-01", "2023-06-01"], dtype="datetime64[us]"), len(customers))
    for segment in segment_names():
        frame = compute_features(events, customers, ids, times, segment)
        produced = [c for c in frame.columns if c not in ("subject_id", "prediction_time", "pipeline_version")]
        assert produced == feature_names(segment)
        missing = [c for c in produced if c not in entries]
        assert not missing, f"features without a catalogue entry: {missing}"
        for name in produced:
            e = entries[name]
            assert e.direction in (-1, 0, 1)
            assert e.description_en and e.description_fi and e.unit_en and e.unit_fi
            if e.kind == "flag":  # the template is the set flag's sentence, no_* the other
                assert e.no_en and e.no_fi and "{value}" not in e.template_en + e.template_fi + e.no_en + e.no_fi, name
            else:
                assert "{value}" in e.template_en and "{value}" in e.template_fi, name
            if e.kind == "categorical":
                assert list(frame[name].cat.categories) == list(e.categories)
                assert [code for code, _, _ in e.value_words] == list(e.categories), name
            else:
                assert frame[name].dtype == np.float64
                if frame[name].isna().any():
                    assert e.never_en and e.never_fi, f"{name} can be NaN but has no 'never' sentence"


def test_every_family_has_words_in_both_languages():
    from features.catalogue import FAMILY_WORDS, family_words
    from features.families import FAMILIES

    families = {entry.family for entry in catalogue()}
    assert families == set(FAMILIES) == set(FAMILY_WORDS)
    for family in families:
        en, fi = family_words(family, "en"), family_words(family, "fi")
        assert en and fi and en != fi, family


def test_catalogue_matches_the_code_catalogue():
    from data_contracts.catalogue import MUNICIPALITIES as CONTRACT_MUNICIPALITIES
    from data_contracts.catalogue import load_code_catalogue

    codes = load_code_catalogue().set_index("code")
    assert tuple(MUNICIPALITIES) == tuple(CONTRACT_MUNICIPALITIES)
    for category in SERVICE_CATEGORIES:
        assert set(codes.loc[list(category.codes), "service_area"]) == {category.service_area}, category.name
    for e in catalogue():
        assert set(e.codes) <= set(codes.index), e.name


def test_pipeline_version_is_sha256_and_stamped(population):
    customers, events = population
    version = pipeline_version()
    assert len(version) == 64 and int(version, 16) >= 0
    frame = compute_features(events, customers, [customers["subject_id"].iloc[0]], ["2022-01-01"], "acute")
    assert (frame["pipeline_version"] == version).all() and frame.attrs["pipeline_version"] == version


def test_vocabulary_declares_families_as_data():
    from features.spec import segment_families, segment_names, segment_outcomes

    for name in segment_names():
        assert segment_families(name)[:4] == ("demographics", "utilisation", "cost", "diagnoses")
    assert segment_outcomes("elderly") == ("hospitalisation", "homecare_failure")


# -- bad input --------------------------------------------------------------------------------------
def test_index_time_outside_the_data_is_an_error(population):
    customers, events = population
    sid = customers["subject_id"].iloc[0]
    with pytest.raises(TimeOutsideDataError, match="before the data's span"):
        compute_features(events, customers, [sid], ["2015-01-01"], "elderly")
    with pytest.raises(TimeOutsideDataError, match="after the data's span"):
        compute_features(events, customers, [sid], ["2030-01-01"], "elderly", span=(EXTRACT_START, EXTRACT_END))
    with pytest.raises(TimeOutsideDataError):
        next(build_tables(History.from_frames(events, customers), EXTRACT_START, EXTRACT_END, times=[pd.Timestamp("2030-01-01")]))


def test_unknown_segment_is_an_error_naming_it(population):
    customers, events = population
    with pytest.raises(UnknownSegmentError, match="'teens'"):
        compute_features(events, customers, [customers["subject_id"].iloc[0]], ["2022-01-01"], "teens")


@pytest.mark.parametrize("table, column", [("events", "code"), ("events", "time"), ("customers", "birth_year")])
def test_missing_column_is_an_error_naming_it(population, table, column):
    customers, events = population
    frames = {"events": events, "customers": customers}
    frames[table] = frames[table].drop(columns=column)
    with pytest.raises(HistoryError, match=f"{table}: missing column.*{column}"):
        compute_features(frames["events"], frames["customers"], [customers["subject_id"].iloc[0]], ["2022-01-01"], "elderly")


def test_unknown_code_or_subject_is_an_error(population):
    customers, events = population
    bad = events.copy()
    bad.loc[0, "code"] = "ENC/NOPE"
    with pytest.raises(SoteRiskError, match="ENC/NOPE"):
        compute_features(bad, customers, [customers["subject_id"].iloc[0]], ["2022-01-01"], "elderly")
    with pytest.raises(SoteRiskError, match="999999"):
        compute_features(events, customers, [999999], ["2022-01-01"], "elderly")


def test_customer_without_events_gets_zeros_and_never():
    customers, events = timeline(42, birth_year=1930)
    frame = compute_features(events, customers, [42], ["2023-01-01"], "elderly")
    assert frame.loc[0, "age_years"] == 93
    assert frame.loc[0, "er_visits_365d"] == 0 and frame.loc[0, "cost_eur_365d"] == 0
    assert np.isnan(frame.loc[0, "er_visits_days_since"]) and np.isnan(frame.loc[0, "rai_maple_last"])


def test_callers_frames_are_not_mutated(population):
    customers, events = population
    before_e, before_c = events.copy(), customers.copy()
    compute_features(events, customers, customers["subject_id"].to_numpy()[:5], ["2022-01-01"] * 5, "depression")
    pd.testing.assert_frame_equal(events, before_e)
    pd.testing.assert_frame_equal(customers, before_c)


# -- batch tables and CLI --------------------------------------------------------------------------
def test_index_dates_are_month_starts_after_the_warmup():
    dates = index_dates("2021-01-01", "2024-01-01", warmup_days=365)
    assert dates[0] == pd.Timestamp("2022-01-01") and dates[-1] == pd.Timestamp("2023-12-01") and len(dates) == 24
    assert index_dates("2021-01-15 08:00", "2021-04-01", warmup_days=0) == [pd.Timestamp("2021-02-01"), pd.Timestamp("2021-03-01")]


@pytest.mark.slow
def test_cli_build_writes_tables_with_labels_and_version(population, tmp_path):
    customers, events = population
    data = tmp_path / "data"
    data.mkdir()
    events.to_parquet(data / "events.parquet", index=False)
    customers.to_parquet(data / "customers.parquet", index=False)
    (data / "dataset.json").write_text(json.dumps({
        "name": "t", "source": "synthetic", "seed": 5, "customers": len(customers), "extract_start": str(EXTRACT_START),
        "extract_end": str(EXTRACT_END), "simulator_version": "test", "created": "2024-01-01T00:00:00"}))
    out = tmp_path / "features"
    # the random population is rough on purpose (e.g. events after death), so skip contract validation
    result = subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", "features", "build", "--data", str(data),
                             "--out", str(out), "--no-validate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    from features.io import read_version

    for segment in segment_names():
        table = pd.read_parquet(out / f"{segment}.parquet")
        assert read_version(out / f"{segment}.parquet") == pipeline_version()
        assert list(table.columns[:2]) == ["subject_id", "prediction_time"] and table.columns[-1] == "pipeline_version"
        assert str(table["prediction_time"].dtype) == "datetime64[us]"
        assert table["municipality"].dtype == "category"
        for outcome in ("hospitalisation",):
            assert str(table[f"label_{outcome}"].dtype) == "boolean"
            assert not (table[f"label_{outcome}"].isna() & table[f"censor_{outcome}"].isna() & table[f"eligible_{outcome}"]).any()
    labels = pd.read_parquet(out / "labels.parquet")
    assert list(labels.columns) == ["subject_id", "prediction_time", "boolean_value", "problem", "censor"]
    assert set(labels["problem"]) == {"elderly-hospitalisation", "elderly-homecare_failure", "children-hospitalisation",
                                      "acute-hospitalisation", "depression-hospitalisation"}
    manifest = json.loads((out / "features.json").read_text())
    assert manifest["pipeline_version"] == pipeline_version()
    assert not list(tmp_path.glob("features.tmp-*"))
    # beside the tables, the events per code and month that monitoring reads (a naive count)
    from features.io import read_code_months

    counts = read_code_months(out)
    inside = events[(events["time"] >= EXTRACT_START) & (events["time"] < EXTRACT_END)]
    naive = inside.groupby([inside["code"].astype(str), inside["time"].dt.to_period("M").dt.to_timestamp()]).size()
    kept = counts[counts["events"] > 0].set_index(["code", "month"])["events"]
    assert kept.to_dict() == {(c, pd.Timestamp(m)): n for (c, m), n in naive.items()}
    assert counts.groupby("code").size().eq(len(pd.period_range(EXTRACT_START, EXTRACT_END - pd.Timedelta("1us"), freq="M"))).all()


def test_meds_labels_satisfy_the_labels_contract(population):
    from data_contracts.schemas import labels_schema

    customers, events = population
    history = History.from_frames(events, customers)
    for segment, table in build_tables(history, EXTRACT_START, EXTRACT_END, segments=["elderly"]):
        labels_schema().validate(meds_labels(table, segment))


@pytest.mark.slow
def test_cli_describe_and_bad_segment():
    from typer.testing import CliRunner

    from sote_risk.cli import app

    result = CliRunner().invoke(app, ["features", "describe", "--lang", "fi", "--segment", "children"])
    assert result.exit_code == 0 and "childwelfare_placements_365d" in result.stdout and "Kodin ulkopuoliset" in result.stdout
    # the refusal as a user sees it: the entry point's one line on stderr, no traceback
    bad = subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", "features", "describe", "--segment", "teens"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown segment 'teens'" in bad.stderr and "Traceback" not in bad.stderr


def test_history_from_arrow_equals_from_frames(population, tmp_path):
    """The serving loader's Arrow path (Parquet -> arrays, dictionary-encoded codes and units)
    builds the same history as the frame path, so the same features follow."""
    import pyarrow.parquet as pq

    customers, events = population
    events = events.copy()
    events.loc[events.index[::7], "unit"] = None  # units missing here and there
    path = tmp_path / "events.parquet"
    events.to_parquet(path, index=False)
    from_frames = History.from_frames(events, customers)
    for table in (pq.read_table(path), pq.read_table(path, read_dictionary=["code", "unit"])):
        from_arrow = History.from_arrow(table, customers)
        for name in ("subject_ids", "birth_month_index", "sex", "municipality", "language", "ptr", "time", "code", "value", "cost"):
            np.testing.assert_array_equal(getattr(from_arrow, name), getattr(from_frames, name), err_msg=name)
        # unit codes are numbered per source; the same events must share (or not share) a unit
        assert ((from_arrow.unit < 0) == (from_frames.unit < 0)).all()
        known = from_frames.unit >= 0
        pairs = set(zip(from_arrow.unit[known].tolist(), from_frames.unit[known].tolist()))
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
        ids, times = customers["subject_id"].to_numpy()[:40], ["2023-06-01"] * 40
        pd.testing.assert_frame_equal(compute_features(None, None, ids, times, "elderly", history=from_arrow),
                                      compute_features(None, None, ids, times, "elderly", history=from_frames))
    with pytest.raises(HistoryError, match="not in data_contracts/codes.csv"):
        bad = events.assign(code=events["code"].where(events.index != 3, "NOPE/X"))
        bad.to_parquet(path, index=False)
        History.from_arrow(pq.read_table(path), customers)


@pytest.mark.parametrize("presorted", [True, False])
def test_event_order_equals_a_three_key_lexsort(presorted):
    """History's event order: (customer, time, code), stable, on input sorted by customer and time
    (the fast path: ties at one instant ordered by code) and on shuffled input (the full sort)."""
    from features.history import _event_order

    rng = np.random.default_rng(3)
    n = 5000
    cust = np.sort(rng.integers(0, 60, n))
    time = rng.integers(0, 40, n)  # many ties at one instant
    code = rng.integers(0, 300, n)
    if presorted:
        order = np.lexsort((time, cust))
        cust, time = cust[order], time[order]
    else:
        shuffle = rng.permutation(n)
        cust, time, code = cust[shuffle], time[shuffle], code[shuffle]
    np.testing.assert_array_equal(_event_order(cust, time, code), np.lexsort((code, time, cust)))
