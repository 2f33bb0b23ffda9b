"""The feature tests' random population keeps its structure when the code catalogue grows."""

from __future__ import annotations

import pandas as pd

import _feature_data
from _feature_data import _PAIRED_OR_LIFE, random_population


def test_adding_a_code_leaves_stays_spells_and_life_events_unchanged(monkeypatch):
    _, before = random_population(80, seed=3)
    catalogue = _feature_data._catalogue()
    extra = catalogue.loc[["ENC/EMERGENCY"]].rename(index={"ENC/EMERGENCY": "ENC/TEST_ONLY_NEW_CODE"})
    monkeypatch.setattr(_feature_data, "_catalogue", lambda: pd.concat([catalogue, extra]))
    _, after = random_population(80, seed=3)

    def structure(events: pd.DataFrame) -> pd.DataFrame:
        rows = events[events["code"].isin(_PAIRED_OR_LIFE)]
        return rows[["subject_id", "time", "code", "numeric_value"]].sort_values(["subject_id", "time", "code"]).reset_index(drop=True)

    assert (after["code"] == "ENC/TEST_ONLY_NEW_CODE").any()  # the new code is drawn, so the code stream moved
    assert len(structure(before)) > 100
    pd.testing.assert_frame_equal(structure(before), structure(after))
