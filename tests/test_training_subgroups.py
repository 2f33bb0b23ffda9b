"""Subgroup gates: judged against the within-attribute AUROC and beyond sampling noise, so a
perfect model is not flagged and a model that fails one group is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.spec import Gates
from training.subgroups import audit, auroc_standard_error, within_auroc

GATES = Gates()  # the shipped defaults: AUROC tolerance 0.10, O/E tolerance 0.25


def _population(n: int, seed: int = 0):
    """Age band drives most of the risk; the model is the true probability (an oracle)."""
    rng = np.random.default_rng(seed)
    band = rng.choice(["<65", "65-79", "80+"], n, p=[0.6, 0.25, 0.15])
    base = pd.Series(band).map({"<65": -4.0, "65-79": -2.2, "80+": -0.8}).to_numpy()
    p = 1 / (1 + np.exp(-(base + rng.normal(0, 0.7, n))))
    y = (rng.random(n) < p).astype(float)
    town = rng.choice(["big", "small"], n, p=[0.97, 0.03])
    return pd.DataFrame({"age_band": band, "municipality": town}), y, p


def test_a_perfect_model_is_not_flagged_although_bands_rank_worse_than_overall():
    groups, y, p = _population(200_000)
    from training.evaluate import auroc

    table = audit(groups, y, p, threshold=0.3, gates=GATES)
    bands = table[table["attribute"] == "age_band"]
    # the old reference (overall AUROC) would flag: within a band age no longer discriminates
    assert (bands["auroc"] < auroc(y, p) - GATES.subgroup_auroc_tolerance).any()
    assert not table["flag_auroc"].any() and not table["flag_calibration"].any()
    assert np.allclose(bands["auroc_reference"], within_auroc(groups["age_band"].to_numpy(), y, p))


def test_a_group_the_model_fails_is_flagged():
    groups, y, p = _population(200_000, seed=1)
    small = (groups["municipality"] == "small").to_numpy()
    scrambled = p.copy()
    scrambled[small] = np.random.default_rng(2).permutation(p[small])  # no ranking inside the group
    table = audit(groups, y, scrambled, threshold=0.3, gates=GATES).set_index(["attribute", "value"])
    assert table.loc[("municipality", "small"), "flag_auroc"]
    over = p * np.where(small, 1.6, 1.0)  # the group's risk overstated by 60 %
    table = audit(groups, y, over, threshold=0.3, gates=GATES).set_index(["attribute", "value"])
    assert table.loc[("municipality", "small"), "flag_calibration"]
    assert not table.loc[("municipality", "big"), "flag_calibration"]


def test_sampling_noise_in_a_small_group_is_not_flagged_but_the_same_gap_in_a_large_one_is():
    rng = np.random.default_rng(3)

    def one_group(n: int, events: int):
        y = np.zeros(n)
        y[:events] = 1
        p = np.full(n, events / 1.3 / n)  # O/E = 1.3, beyond the 0.25 tolerance
        p[:events] += 0.01  # some ranking so AUROC is defined
        return pd.DataFrame({"municipality": ["x"] * n}), y, p + rng.uniform(0, 1e-4, n)

    small = audit(*one_group(400, 26), threshold=0.5, gates=GATES)  # |O - E| = 6 < 1.96 sqrt(20)
    large = audit(*one_group(8_000, 520), threshold=0.5, gates=GATES)  # |O - E| = 120 > 1.96 sqrt(400)
    assert small["o_e"].iloc[0] > 1.25 and not small["flag_calibration"].iloc[0]
    assert large["o_e"].iloc[0] > 1.25 and large["flag_calibration"].iloc[0]


def test_hanley_mcneil_standard_error_matches_a_simulation():
    rng = np.random.default_rng(4)
    from training.evaluate import auroc

    draws = []
    for _ in range(300):
        y = np.r_[np.ones(40), np.zeros(400)]
        s = np.r_[rng.normal(1.0, 1, 40), rng.normal(0, 1, 400)]
        draws.append(auroc(y, s))
    predicted = auroc_standard_error(float(np.mean(draws)), 40, 400)
    assert abs(np.std(draws) - predicted) / predicted < 0.2


def test_noise_counts_customers_not_rows():
    """One outcome labels ~3 monthly rows of a customer (90-day horizon): a calibrated model in
    groups of that shape is (almost) never flagged by the customer-clustered, family-wise rule,
    where a row-level Poisson rule at 95 % would flag one group in five."""
    rng = np.random.default_rng(6)
    groups_n, customers_each, rows_each = 120, 300, 3
    customer = np.repeat(np.arange(groups_n * customers_each), rows_each)
    y = np.repeat(rng.random(groups_n * customers_each) < 0.05, rows_each).astype(float)
    p = np.full(len(y), 0.05)  # the true probability: perfectly calibrated
    group = pd.DataFrame({"municipality": (customer // customers_each).astype(str)})
    table = audit(group, y, p, threshold=0.5, gates=GATES, subject_ids=customer)
    judged = table[table["judged"]]
    assert len(judged) > 100
    expected = judged["events"] / judged["o_e"]
    poisson_flags = ((judged["o_e"] - 1).abs().gt(GATES.subgroup_oe_tolerance)
                     & (judged["events"] - expected).abs().gt(1.96 * np.sqrt(expected))).sum()
    assert poisson_flags > 0.15 * len(judged)  # the row-level rule flags noise
    assert judged["flag_calibration"].sum() <= 2  # family-wise 5 %: at most a rare false flag
    assert (judged["customers"] == customers_each).all()


def test_a_flagged_group_s_small_counts_are_recorded_and_said_as_under_5():
    """A spec may judge groups with fewer than 5 outcomes; the registry tag and the words made of
    it (model cards, gate reasons) say '<5', never the count (issue 16)."""
    from training.pipeline import flagged_subgroups
    from vocabulary.gates import flagged_groups

    table = pd.DataFrame([{"attribute": "municipality", "value": "Lemi", "rows": 240, "customers": 60, "events": 3,
                           "auroc": 0.41, "o_e": 2.5, "flag_auroc": True, "flag_calibration": False}])
    tag = flagged_subgroups(table)
    assert tag == "municipality=Lemi:auroc (auroc 0.410; 240 rows, <5 events)"
    assert flagged_groups(tag, "fi") == ["Kunta Lemi: erottelukyky (AUROC 0,410; 240 riviä, <5 tapahtumaa)"]
    assert flagged_groups(tag, "en") == ["Municipality Lemi: discrimination (AUROC 0.410; 240 rows, <5 outcomes)"]


def test_published_tables_show_no_count_under_5_and_nothing_of_a_group_under_5_customers():
    from training.model_card import card_context
    from training.subgroups import published

    groups, y, p = _population(4_000, seed=2)
    groups.loc[groups.index[:3], "municipality"] = "tiny"  # 3 customers
    table = audit(groups, y, p, threshold=0.3, gates=GATES)
    shown = published(table)
    tiny = shown[shown["value"] == "tiny"].iloc[0]
    assert tiny["customers"] == "<5" and tiny["rows"] is None and tiny["events"] is None and np.isnan(tiny["auroc"])
    assert table[table["value"] == "tiny"]["customers"].iloc[0] == 3  # the gates' table keeps its numbers
    context = card_context(spec={"problem": "x", "segment": "s", "outcome": "o", "horizon_days": 90}, metrics={},
                           metadata={}, feature_names=[], subgroup_table=table, periods=[], notes=[])
    row = next(g for g in context["subgroups"] if g["value"] == "tiny")
    assert row["rows"] == row["events"] == row["auroc"] == "n/a" and "fewer than 5 customers" in row["flags"]
