"""explain/: contributions -> family reasons in Finnish and English, chains and charts, on the
real feature catalogue, with real rows and TreeSHAP of the serving region's elderly model."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from explain.chains import MIN_EFFECT, suggest_chains
from explain.plots import mean_abs_importance, shap_summary_svg, trend_svg, waterfall_svg
from explain.reasons import context, explanation, family_label, feature_sentence, format_value, top_reasons
from features import catalogue, feature_info
from features.catalogue import BACKGROUND_FAMILIES, FAMILY_WORDS

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def explained():
    """The elderly hospitalisation model, 60 members' real feature rows and their TreeSHAP."""
    from features import compute_features
    from tests.serving_fixture import members, models, store

    model = models(["elderly-hospitalisation"])["elderly-hospitalisation"]
    time = pd.Timestamp("2024-12-01")
    ids = members("elderly-hospitalisation", time, limit=60)
    rows = compute_features(None, None, ids, [time] * len(ids), "elderly", history=store().history)
    return model, rows, model.contributions(rows)


def _explanation(model, rows, contributions, i):
    names = model.feature_names
    return explanation(names, contributions.iloc[i].to_numpy(), list(rows.iloc[i][names]))


def test_values_are_formatted_for_each_language():
    """vocabulary/numbers.py writes them: no-break thousands space and decimal comma in Finnish,
    the minus sign, a sign on changes, shares as percentages, whole euros."""
    assert format_value(5.0, "en") == "5"
    assert format_value(2.25, "en", 1) in ("2.2", "2.3")
    assert format_value(1.5, "fi", 1) == "1,5"
    assert format_value(0.123, "en", decimals=2) == "0.12"
    assert format_value(45578.0, "fi") == "45\u00a0578" and format_value(45578.0, "en") == "45,578"
    assert format_value(-2.07, "fi", 2) == "\u22122,07"
    assert format_value(3.0, "en", 0, "signed") == "+3" and format_value(-2.0, "fi", 0, "signed") == "\u22122"
    assert format_value(0.04, "en", 1, "signed") == "0.0"  # shown as zero: no sign
    assert format_value(0.254, "fi", 1, "percent") == "25,4\u00a0%" and format_value(0.25, "en", 0, "percent") == "25%"
    assert format_value(45578.4, "fi", 0, "euros") == "45\u00a0578\u00a0€" and format_value(45578.4, "en", 0, "euros") == "€45,578"
    for missing in (None, float("nan")):
        with pytest.raises(ValueError, match="missing value has no number"):
            format_value(missing, "fi")


def test_template_carries_the_customers_value():
    info = feature_info("er_visits_90d")
    assert feature_sentence(info, 5.0, "en") == "5 emergency department visits in the last 90 days"
    assert feature_sentence(info, 5.0, "fi") == "Päivystyskäyntejä viimeisen 90 päivän aikana: 5"
    assert feature_sentence(info, 1.0, "en") == "1 emergency department visit in the last 90 days"
    assert feature_sentence(info, 0.0, "fi") == "Ei päivystyskäyntejä viimeisen 90 päivän aikana"
    age = feature_info("age_years")
    assert feature_sentence(age, 82.0, "en") == "Age 82 years" and feature_sentence(age, 82.0, "fi") == "Ikä 82 vuotta"
    assert feature_sentence(feature_info("sex"), "F", "fi") == "Sukupuoli: nainen"
    assert feature_sentence(feature_info("language"), "sv", "en") == "Language of service: Swedish"
    heart = feature_info("dx_heart_failure")
    assert feature_sentence(heart, 1.0, "en") == "Heart failure diagnosis on record"
    assert feature_sentence(heart, 0.0, "en") == "No heart failure diagnosis on record"
    cost = feature_info("cost_eur_365d")
    assert feature_sentence(cost, 45578.4, "fi") == "Palvelujen kustannukset viimeisen 365 päivän aikana: 45\u00a0578\u00a0€"
    assert feature_sentence(cost, 45578.4, "en") == "Services costing €45,578 in the last 365 days"


def test_a_value_is_said_as_it_is_shown():
    """0.3 days is shown as 0 days: "less than a day ago"; 0.6 days as 1: the singular; with one
    decimal 1.04 days is "1.0 days", not the singular."""
    info = feature_info("discharge_days_since")
    assert feature_sentence(info, 0.3, "en") == "Discharged from hospital less than a day ago"
    assert feature_sentence(info, 0.6, "en") == "Discharged from hospital 1 day ago"
    assert feature_sentence(info, 0.6, "fi") == "Kotiutunut sairaalasta 1 päivä sitten"
    assert feature_sentence(info, 12.4, "fi") == "Kotiutunut sairaalasta 12 päivää sitten"
    assert feature_sentence(feature_info("bed_days_last_stay"), 1.04, "en") == "The last hospital stay lasted 1.0 days"


def test_unknown_categories_are_refused_naming_the_feature():
    with pytest.raises(ValueError, match="feature 'sex': value 'X' is not one of its categories"):
        feature_sentence(feature_info("sex"), "X", "en")


def test_numeric_catalogue_sentences_carry_their_value_in_both_languages():
    for info in catalogue():
        if info.kind != "numeric":
            continue
        for lang in ("en", "fi"):
            sentence = feature_sentence(info, 3.0, lang)
            assert "{value}" not in sentence and format_value(3.0, lang, info.decimals, info.shown_as) in sentence, (info.name, lang)
        assert feature_sentence(info, 3.0, "en") != feature_sentence(info, 3.0, "fi"), info.name


def test_never_sentences_are_said_for_missing_values_and_zero_is_a_value():
    """The catalogue's never_* sentences describe a missing value (NaN: "never assessed", "no
    stay on record"); a value of 0 is a real value (0 days since the last visit, CPS 0, no
    change between two assessments) and never gets the "never" sentence."""
    for info in catalogue():
        zero = info.categories[0] if info.kind == "categorical" else 0.0
        for lang, never in (("en", info.never_en), ("fi", info.never_fi)):
            assert never
            assert feature_sentence(info, None, lang) == never == feature_sentence(info, float("nan"), lang), (info.name, lang)
            assert feature_sentence(info, zero, lang) != never, (info.name, lang)


def test_family_labels_are_in_each_language():
    """A Finnish page (waterfall, reasons) names each family in Finnish."""
    for family in sorted({info.family for info in catalogue()}):
        assert family_label(family, "en") and family_label(family, "fi")
        assert family_label(family, "fi") != family_label(family, "en"), family


@pytest.mark.slow
def test_contributions_and_reasons_add_up_to_the_raw_score(explained):
    model, rows, contributions = explained
    raw = model.raw_score(rows)
    for i in range(len(rows)):
        long = _explanation(model, rows, contributions, i)
        assert long.raw_score == pytest.approx(raw[i], abs=1e-9)
        assert long.base_value == contributions["bias"].iloc[i]
        by_family = long.base_value + math.fsum(r.contribution for r in long.reasons + long.context)
        assert by_family == pytest.approx(raw[i], abs=1e-9)
        assert [c.feature for c in long.contributions] == model.feature_names


@pytest.mark.slow
def test_reasons_are_grouped_by_family_largest_first(explained):
    model, rows, contributions = explained
    for i in range(len(rows)):
        long = _explanation(model, rows, contributions, i)
        families = [r.family for r in long.reasons + long.context]
        assert sorted(families) == sorted({feature_info(n).family for n in model.feature_names})
        for part in (long.reasons, long.context):
            sizes = [abs(r.contribution) for r in part]
            assert sizes == sorted(sizes, reverse=True)
        for reason in long.reasons + long.context:
            assert {f.feature for f in reason.features} <= {n for n in model.feature_names if feature_info(n).family == reason.family}
            members = [c for c in long.contributions if c.family == reason.family]
            assert reason.contribution == pytest.approx(math.fsum(c.contribution for c in members), abs=1e-12)
            assert reason.direction == ("up" if reason.contribution > 0 else "down")
            assert reason.text_en and reason.text_fi and reason.text_en != reason.text_fi
            assert reason.text_en == "; ".join(f.text_en for f in reason.features[:3])
            assert reason.text_fi == "; ".join(f.text_fi for f in reason.features[:3])
        assert len(top_reasons(model.feature_names, contributions.iloc[i].to_numpy(), list(rows.iloc[i][model.feature_names]), 2)) == 2


@pytest.mark.slow
def test_a_reason_shows_the_members_pushing_its_way_and_names_the_largest(explained):
    """What the CRM card and the chains read: the family's members that push the same way as
    the family, largest first; `feature` is the largest of them."""
    model, rows, contributions = explained
    for i in range(len(rows)):
        for reason in _explanation(model, rows, contributions, i).reasons:
            shown = [f.contribution for f in reason.features]
            assert [abs(c) for c in shown] == sorted((abs(c) for c in shown), reverse=True)
            if any(c != 0 and (c > 0) == (reason.contribution > 0) for c in shown):
                assert all(c != 0 and (c > 0) == (reason.contribution > 0) for c in shown)
            assert reason.feature == reason.features[0].feature


@pytest.mark.slow
def test_values_and_sentences_are_the_customers_own(explained):
    model, rows, contributions = explained
    long = _explanation(model, rows, contributions, 0)
    for item in long.contributions:
        value = rows.iloc[0][item.feature]
        assert item.value == (None if pd.isna(value) else (value if isinstance(value, str) else float(value)))
        assert item.text_en == feature_sentence(feature_info(item.feature), item.value, "en")
        assert item.text_fi == feature_sentence(feature_info(item.feature), item.value, "fi")


def test_a_feature_without_catalogue_words_is_refused():
    with pytest.raises(ValueError, match="'mystery_feature' has no entry in the feature catalogue"):
        explanation(["er_visits_90d", "mystery_feature"], [0.5, 0.1, -1.0], [2.0, 1.0])
    with pytest.raises(ValueError, match="mystery_feature"):
        top_reasons(["mystery_feature"], [0.5, -1.0], [2.0], 1)


def _reason(feature, contribution, value=3.0):
    return explanation([feature], [contribution, 0.0], [value]).reasons[0]


def test_chains_follow_risk_raising_reasons():
    medication, falls, emergency = "missed_doses_30d", "fall_alarms_90d", "er_frequent_attender"
    chains = suggest_chains([_reason(medication, 0.4), _reason(falls, 0.2), _reason(emergency, 0.3, 1.0)])
    assert [c.chain for c in chains] == ["medication_robot", "home_rehabilitation", "care_coordinator_review"]
    assert [c.because_of for c in chains] == [[feature_info(n).family] for n in (medication, falls, emergency)]
    assert all(c.label_fi and c.label_en and c.label_fi != c.label_en for c in chains)
    assert suggest_chains([_reason(falls, -0.2)]) == []  # lowers the risk: no chain
    assert suggest_chains([_reason(falls, 0.2, 0.0)]) == []  # no fall alarms: nothing to act on
    assert suggest_chains([_reason(falls, MIN_EFFECT / 2)]) == []  # too small a push


@pytest.mark.slow
def test_waterfall_is_valid_svg_with_a_bar_per_step(explained):
    """One bar for the average customer, each background family (marked as background), the
    largest reasons, "other factors" and this customer; every family is in one bar."""
    model, rows, contributions = explained
    long = _explanation(model, rows, contributions, 0)
    assert len(long.reasons) > 3 and len(long.context) == 2

    def sigmoid(x):
        return 1 / (1 + np.exp(-np.asarray(x, dtype=float)))

    shown = float(sigmoid(long.raw_score))
    steps = len(long.context) + 3
    for lang in ("en", "fi"):
        svg = waterfall_svg(long, sigmoid, shown, lang, max_steps=steps)
        root = ET.fromstring(svg)
        assert len(root.findall(f"{SVG}rect")) == 1 + 2 + 3 + 1 + 1  # base, background, three reasons, "other", total
        texts = [t.text for t in root.findall(f"{SVG}text")]
        marker = "taustatekijä" if lang == "fi" else "context"
        for item in long.context:
            assert f"{item.label_fi if lang == 'fi' else item.label_en} ({marker})" in texts
        for reason in long.reasons[:3]:
            assert (reason.label_fi if lang == "fi" else reason.label_en) in texts
    assert "Miten syyt muodostavat riskin" in waterfall_svg(long, sigmoid, shown, "fi")
    every = ET.fromstring(waterfall_svg(long, sigmoid, shown, "en", max_steps=len(long.reasons) + 2))
    assert len(every.findall(f"{SVG}rect")) == 1 + 2 + len(long.reasons) + 1  # no "other" step left


def test_trend_chart_leaves_gaps_outside_the_cohort():
    points = [("01/23", 0.1, None), ("02/23", None, "outside"), ("03/23", 0.3, None), ("04/23", 0.35, None)]
    svg = trend_svg(points, (0.1, 0.25, 0.5), "trend", {"outside": "outside the group"})
    root = ET.fromstring(svg)
    filled = [c for c in root.findall(f"{SVG}circle") if c.get("fill") != "none"]
    assert len(filled) == 3  # the scored months; the gap is an open circle on the axis
    assert [c.get("data-why") for c in root.findall(f"{SVG}circle") if c.get("class") == "gap"] == ["outside"]
    assert len(root.findall(f"{SVG}polyline")) == 1  # the lone first point has no line


@pytest.mark.slow
def test_global_importance_and_shap_summary(explained):
    model, rows, contributions = explained
    importance = mean_abs_importance(contributions)
    assert "bias" not in importance.index and list(importance) == sorted(importance, reverse=True)
    assert set(importance.index) == set(model.feature_names)
    assert importance.iloc[0] == pytest.approx(contributions[importance.index[0]].abs().mean())
    svg = shap_summary_svg(contributions, rows)
    assert svg.startswith("<svg") and importance.index[0] in svg


@pytest.mark.slow
def test_top_reasons_equal_the_long_way(explained):
    """The service's shortcut (families ranked on their sums, sentences only for shown members)
    gives exactly explanation(...).reasons[:k], for every k."""
    model, rows, contributions = explained
    names = model.feature_names
    for i in range(len(rows)):
        vector, values = contributions.iloc[i].to_numpy(), list(rows.iloc[i][names])
        long = explanation(names, vector, values)
        for k in (0, 1, 2, 3, 5, 10, len(long.reasons) + 1):
            assert top_reasons(names, vector, values, k) == long.reasons[:k]
        assert context(names, vector, values) == long.context


@pytest.mark.slow
def test_reasons_are_what_a_nurse_can_act_on_and_background_is_context(explained):
    """Naive oracle: sum each family's contributions by hand from the catalogue; reasons are
    exactly the families outside age, sex, municipality, language and service costs, ranked by
    |sum|, and context exactly those five features' families. On these rows the background moves
    the score (so the split is seen, not vacuous)."""
    assert BACKGROUND_FAMILIES == {"demographics", "cost"}
    background_features = {info.name for info in catalogue() if info.family in BACKGROUND_FAMILIES}
    assert {"age_years", "sex", "municipality", "language", "cost_eur_365d"} <= background_features
    model, rows, contributions = explained
    names = model.feature_names
    background_would_lead = 0
    for i in range(len(rows)):
        vector, values = contributions.iloc[i].to_numpy(), list(rows.iloc[i][names])
        sums: dict[str, float] = {}
        for name, value in zip(names, vector[: len(names)]):
            family = [info.family for info in catalogue() if info.name == name][0]
            sums[family] = sums.get(family, 0.0) + float(value)
        ranked = sorted(sums, key=lambda f: abs(sums[f]), reverse=True)
        background_would_lead += ranked[0] in BACKGROUND_FAMILIES
        long = explanation(names, vector, values)
        assert [r.family for r in long.reasons] == [f for f in ranked if f not in BACKGROUND_FAMILIES]
        assert [r.family for r in long.context] == [f for f in ranked if f in BACKGROUND_FAMILIES]
        for reason in long.reasons + long.context:
            assert reason.contribution == pytest.approx(sums[reason.family], abs=1e-9)
        top = top_reasons(names, vector, values, 3)
        assert len(top) == 3 and not {r.family for r in top} & BACKGROUND_FAMILIES
    assert background_would_lead > 0, "no row where age or cost would have been the first reason: the test sees nothing"


def test_every_family_is_either_a_reason_or_context():
    from features.catalogue import is_background

    assert {f for f in FAMILY_WORDS if is_background(f)} == BACKGROUND_FAMILIES
    with pytest.raises(KeyError, match="unknown feature family"):
        is_background("astrology")


def test_top_reasons_keep_ties_zero_and_opposite_members_as_the_long_way():
    """Equal family sums keep catalogue order, an all-zero family shows every member, members
    pushing against their family are left out but still count in its sum."""
    by_family: dict[str, list[str]] = {}
    for info in catalogue():
        if info.kind != "categorical":
            by_family.setdefault(info.family, []).append(info.name)
    families = [f for f in ("utilisation", "emergency", "hospital", "homecare") if len(by_family.get(f, ())) >= 2]
    assert len(families) == 4
    names = [name for family in families for name in by_family[family][:2]]
    cases = [
        [0.5, -0.25, 0.125, 0.125, -0.25, 0.0, 0.0, 0.0, 0.1],  # 1st=0.25, 2nd=0.25 (tie), 3rd=-0.25 (tie), 4th=0
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0],  # every family zero
        [1.0, -3.0, 2.0, 0.0, 0.0, 0.0, 0.5, -0.5, 0.0],
    ]
    values = [float(i) for i in range(len(names))]
    for contributions in cases:
        long = explanation(names, contributions, values)
        for k in range(0, 6):
            assert top_reasons(names, np.array(contributions), values, k) == long.reasons[:k]
    first = explanation(names, cases[0], values)
    assert [r.family for r in first.reasons[:3]] == families[:3]  # ties keep the given order
    assert [f.feature for f in first.reasons[0].features] == [names[0]]  # the opposite member is left out
    zero = explanation(names, cases[1], values)
    assert all(len(r.features) == 2 for r in zero.reasons)  # an all-zero family shows every member
