"""explain/: contributions -> family reasons in Finnish and English, chains and charts."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from explain.catalogue import FeatureText
from explain.chains import suggest_chains
from explain.plots import mean_abs_importance, shap_summary_svg, trend_svg, waterfall_svg
from explain.reasons import (
    card_reason, explain_row, explain_vector, feature_sentence, format_value, top_reasons, top_reasons_vector,
)
from tests.serving_fixture import CATALOGUE, FEATURES, shared_fixture, toy_rows


@pytest.fixture(scope="module")
def explained():
    events, customers, models = shared_fixture()
    model = models["elderly-hospitalisation"]
    ids = customers["subject_id"].tolist()[:60]
    rows = toy_rows(events, customers, ids, [pd.Timestamp("2023-12-01")] * len(ids))
    return model, rows, model.contributions(rows)


def test_values_are_formatted_for_each_language():
    assert format_value(5.0, "en") == "5"
    assert format_value(2.25, "en") == "2.2" or format_value(2.25, "en") == "2.3"
    assert format_value(1.5, "fi") == "1,5"
    assert format_value(float("nan"), "fi") == "ei tietoa"
    assert format_value(None, "en") == "no data"
    assert format_value("F", "en") == "F"


def test_template_carries_the_customers_value():
    text = CATALOGUE["er_visits_90d"]
    assert feature_sentence(text, 5.0, "en") == "5 emergency visits in the last 90 days"
    assert feature_sentence(text, 5.0, "fi") == "5 päivystyskäyntiä viimeisen 90 päivän aikana"
    bare = FeatureText(name="x", description_en="Bed days", unit="days")
    assert feature_sentence(bare, 3.0, "en") == "Bed days: 3 days"


def test_contributions_and_reasons_add_up_to_the_raw_score(explained):
    model, rows, contributions = explained
    raw = model.raw_score(rows)
    for i in range(len(rows)):
        explanation = explain_row(contributions.iloc[i], rows.iloc[i], CATALOGUE)
        assert explanation.raw_score == pytest.approx(raw[i], abs=1e-6)
        by_reason = explanation.base_value + math.fsum(r.contribution for r in explanation.reasons)
        assert by_reason == pytest.approx(raw[i], abs=1e-6)
        assert len(explanation.contributions) == len(FEATURES)


def test_reasons_are_grouped_by_family_largest_first(explained):
    _, rows, contributions = explained
    explanation = explain_row(contributions.iloc[0], rows.iloc[0], CATALOGUE)
    families = [r.family for r in explanation.reasons]
    assert sorted(families) == sorted({t.family for t in CATALOGUE.values()})
    sizes = [abs(r.contribution) for r in explanation.reasons]
    assert sizes == sorted(sizes, reverse=True)
    demographics = next(r for r in explanation.reasons if r.family == "demographics")
    assert {f.feature for f in demographics.features} <= {"age_years", "sex"}
    for reason in explanation.reasons:
        assert reason.direction == ("up" if reason.contribution > 0 else "down")
        assert reason.text_en and reason.text_fi
    assert len(top_reasons(explanation, 2)) == 2 and top_reasons(explanation, 0) == []


def test_unknown_feature_falls_back_to_its_name():
    contributions = pd.Series({"mystery": 0.5, "bias": -1.0})
    explanation = explain_row(contributions, pd.Series({"mystery": 2.0}), {})
    assert explanation.reasons[0].family == "other"
    assert "mystery" in explanation.reasons[0].text_en


def test_card_reason_has_the_fields_the_crm_card_reads(explained):
    _, rows, contributions = explained
    reason = explain_row(contributions.iloc[0], rows.iloc[0], CATALOGUE).reasons[0]
    assert set(card_reason(reason)) == {"text_en", "text_fi", "direction", "feature"}


def test_chains_follow_risk_raising_reasons():
    def reason(family, feature, contribution):
        contributions = pd.Series({feature: contribution, "bias": 0.0})
        text = FeatureText(name=feature, family=family)
        return explain_row(contributions, pd.Series({feature: 3.0}), {feature: text}).reasons[0]

    chains = suggest_chains([reason("medication", "missed_doses_30d", 0.4), reason("falls", "fall_alarms_180d", 0.2),
                             reason("emergency", "er_visits_90d", 0.3)])
    assert [c.chain for c in chains] == ["medication_robot", "home_rehabilitation", "care_coordinator_review"]
    assert suggest_chains([reason("falls", "fall_alarms_180d", -0.2)]) == []  # lowers the risk: no chain
    assert all(c.label_fi and c.label_en for c in chains)


def test_waterfall_is_valid_svg_with_a_bar_per_step(explained):
    _, rows, contributions = explained
    explanation = explain_row(contributions.iloc[0], rows.iloc[0], CATALOGUE)
    for lang in ("en", "fi"):
        svg = waterfall_svg(explanation, lang, max_steps=3)
        root = ET.fromstring(svg)
        bars = root.findall("{http://www.w3.org/2000/svg}rect")
        assert len(bars) == 1 + 3 + 1 + 1  # base, three families, "other", total
    assert "Päivystys" in waterfall_svg(explanation, "fi") or "Kotihoito" in waterfall_svg(explanation, "fi")


def test_trend_chart_leaves_gaps_outside_the_cohort():
    svg = trend_svg([("01/23", 0.1), ("02/23", None), ("03/23", 0.3), ("04/23", 0.35)], (0.1, 0.25, 0.5), "trend")
    root = ET.fromstring(svg)
    assert len(root.findall("{http://www.w3.org/2000/svg}circle")) == 3
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 1  # the lone first point has no line


def test_global_importance_and_shap_summary(explained):
    _, rows, contributions = explained
    importance = mean_abs_importance(contributions)
    assert "bias" not in importance.index and list(importance) == sorted(importance, reverse=True)
    svg = shap_summary_svg(contributions, rows)
    assert svg.startswith("<svg") and "er_visits_90d" in svg


def test_vector_explanations_equal_the_row_path(explained):
    """The service's shortcut (top reasons from a pred_contrib row, sentences only for shown
    members) gives exactly top_reasons(explain_row(...), k), for every k."""
    model, rows, contributions = explained
    names = model.feature_names
    for i in range(len(rows)):
        long = explain_row(contributions.iloc[i], rows.iloc[i], CATALOGUE)
        vector, values = contributions.iloc[i].to_numpy(), [rows.iloc[i][n] for n in names]
        assert explain_vector(names, vector, values, CATALOGUE) == long
        for k in (0, 1, 2, 3, 5, 10):
            assert top_reasons_vector(names, vector, values, CATALOGUE, k) == top_reasons(long, k)


def test_vector_reasons_keep_ties_zero_and_opposite_members_as_the_row_path():
    """Equal family sums keep catalogue order, an all-zero family shows every member, members
    pushing against their family are left out but still count in its sum."""
    texts = {f"f{i}": FeatureText(name=f"f{i}", family=family) for i, family in enumerate("aabbccdd")}
    names = list(texts)
    cases = [
        [0.5, -0.2, 0.1, 0.2, -0.3, 0.0, 0.0, 0.0, 0.1],  # a=0.3, b=0.3 (tie), c=-0.3 (tie), d=0
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0],  # every family zero
        [1.0, -3.0, 2.0, 0.0, 0.0, 0.0, 0.5, -0.5, 0.0],
    ]
    for contributions in cases:
        values = [float(i) for i in range(len(names))]
        long = explain_row(pd.Series(contributions, index=[*names, "bias"]), pd.Series(values, index=names), texts)
        for k in range(0, 6):
            assert top_reasons_vector(names, np.array(contributions), values, texts, k) == top_reasons(long, k)
