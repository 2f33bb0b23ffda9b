"""vocabulary/gates.py: the failed gates and flagged subgroups that training records, said in
Finnish and English. The records are made by the real writers (training/promotion.py
gate_reasons, training/pipeline.py flagged_subgroups), so a change of their format fails here."""

from __future__ import annotations

import pandas as pd
import pytest

from scoring.champions import gate_of
from tests._forbidden import problems
from training.pipeline import flagged_subgroups
from training.promotion import gate_reasons as record_reasons
from training.spec import Gates
from vocabulary.gates import flagged_groups, gate_reason, gate_reasons

SUBGROUPS = pd.DataFrame([
    {"attribute": "sex", "value": "F", "flag_auroc": True, "flag_calibration": False, "auroc": 0.6123, "o_e": 1.04,
     "rows": 1234, "events": 56},
    {"attribute": "municipality", "value": "Luumäki", "flag_auroc": True, "flag_calibration": True, "auroc": 0.5512, "o_e": 1.93,
     "rows": 310, "events": 21},
    {"attribute": "language", "value": "fi", "flag_auroc": False, "flag_calibration": False, "auroc": 0.74, "o_e": 1.0,
     "rows": 20000, "events": 900},
])


def _recorded() -> list[str]:
    """Every reason the promotion writes, from a challenger that fails every gate."""
    challenger = {"test_auroc": "0.6190", "test_observed_expected": "0.712", "test_observed_expected_ci_low": "0.583",
                  "test_observed_expected_ci_high": "0.861", "test_calibration_slope": "0.62",
                  "test_calibration_slope_ci_low": "-0.048", "test_calibration_slope_ci_high": "1.07",
                  "gain_over_baseline": "-0.0308", "gain_over_baseline_ci_low": "-0.062", "gain_over_baseline_ci_high": "0.004",
                  "baseline_auroc": "0.6498", "subgroup_flags_auroc": "2",
                  "subgroup_flags_calibration": "1", "subgroup_flagged": flagged_subgroups(SUBGROUPS)}
    reasons = record_reasons(challenger, {"test_auroc": "0.6400"}, Gates(min_auroc_over_baseline=0.01))
    return reasons + record_reasons({}, None, Gates())


def test_every_recorded_reason_is_said_in_both_languages():
    recorded = _recorded()
    # O/E, slope, subgroups, gain, champion; then nothing recorded: AUROC, O/E, slope, gain
    assert len(recorded) == 9
    en, fi = gate_reasons(recorded, "en"), gate_reasons(recorded, "fi")
    assert en == [
        "The ratio of observed to expected outcomes on the test period 0.71 (95% interval 0.58–0.86) is not wholly "
        "within 0.80–1.25",
        "The calibration slope on the test period 0.62 (95% interval \u22120.05 – 1.07) is not wholly within 0.70–1.40",
        "Subgroups where the model does worse than allowed: 3 (Sex F: discrimination (AUROC 0.612; 1,234 rows, 56 outcomes); "
        "Municipality Luumäki: discrimination, calibration (AUROC 0.551, O/E 1.93; 310 rows, 21 outcomes))",
        "The test-period gain in AUROC over the simple baseline \u22120.0308 is not shown beyond chance: its 95% interval "
        "\u22120.0620 – +0.0040 does not lie wholly above 0.01",
        "Test-period AUROC 0.6190 is worse than the model in use before (0.6400)",
        "No test-period AUROC was recorded",
        "The test period's ratio of observed to expected outcomes and its 95% interval were not recorded",
        "The test period's calibration slope and its 95% interval were not recorded",
        "The test period's gain over the simple baseline and its 95% interval were not recorded",
    ]
    assert fi == [
        "Havaittujen ja odotettujen tapahtumien suhde testijaksolla 0,71 (95\u00a0%:n väli 0,58–0,86) ei ole kokonaan "
        "välillä 0,80–1,25",
        "Kalibraation kulmakerroin testijaksolla 0,62 (95\u00a0%:n väli \u22120,05 – 1,07) ei ole kokonaan välillä 0,70–1,40",
        "Alaryhmiä, joissa malli toimii sallittua huonommin: 3 (Sukupuoli F: erottelukyky (AUROC 0,612; 1\u00a0234 riviä, "
        "56 tapahtumaa); Kunta Luumäki: erottelukyky, kalibraatio (AUROC 0,551, O/E 1,93; 310 riviä, 21 tapahtumaa))",
        "Testijakson AUROC-etu yksinkertaiseen vertailumalliin \u22120,0308 ei erotu sattumasta: sen 95\u00a0%:n väli "
        "\u22120,0620 – +0,0040 ei ole kokonaan arvon 0,01 yläpuolella",
        "Testijakson AUROC 0,6190 on heikompi kuin käytössä olleen mallin 0,6400",
        "Testijakson AUROC-arvoa ei ole kirjattu",
        "Testijaksolta ei ole kirjattu havaittujen ja odotettujen tapahtumien suhdetta eikä sen 95\u00a0%:n väliä",
        "Testijaksolta ei ole kirjattu kalibraation kulmakerrointa eikä sen 95\u00a0%:n väliä",
        "Testijaksolta ei ole kirjattu etua yksinkertaiseen vertailumalliin eikä sen 95\u00a0%:n väliä",
    ]
    for text in fi:
        assert problems(text, "fi") == [], text
    for text in en:
        assert problems(text, "en") == [], text


# Versions forced past the gates before they read intervals keep these records in their tags.
OLDER_RECORDS = ["test_ece 0.0712 > gate 0.05", "test_auroc 0.6190 does not beat the baseline's 0.6498 by 0.01",
                 "test_auroc 0.5841 does not beat the baseline's 0.6347", "challenger has no test_auroc/test_ece recorded"]


def test_records_of_the_older_gates_are_still_said():
    assert gate_reasons(OLDER_RECORDS, "en") == [
        "Calibration error on the test period 0.0712 is above the limit 0.05",
        "Test-period AUROC 0.6190 does not beat the simple baseline's 0.6498 by the required 0.01",
        "Test-period AUROC 0.5841 does not beat the simple baseline's 0.6347",
        "No test-period AUROC or calibration error was recorded",
    ]
    assert gate_reasons(OLDER_RECORDS, "fi") == [
        "Kalibraatiovirhe testijaksolla 0,0712 ylittää rajan 0,05",
        "Testijakson AUROC 0,6190 ei ylitä yksinkertaisen vertailumallin arvoa 0,6498 vaaditulla erolla 0,01",
        "Testijakson AUROC 0,5841 ei ylitä yksinkertaisen vertailumallin arvoa 0,6347",
        "Testijakson AUROC-arvoa tai kalibraatiovirhettä ei ole kirjattu",
    ]


def test_the_record_survives_the_registry_tag_with_its_semicolons():
    """promote stores the reasons as a JSON list: the subgroup reason holds "; " itself."""
    import json

    recorded = _recorded()
    tags = {"promoted_at": "x", "promotion_forced": "true", "promotion_forced_reasons": json.dumps(recorded)}
    assert list(gate_of(tags).reasons) == recorded


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_subgroups_none_unknown_and_an_unknown_format(lang):
    assert flagged_groups(None, lang) is None
    assert flagged_groups("none", lang) == [] and flagged_groups("", lang) == []
    assert flagged_groups("something new", lang) == ["something new"]  # shown as recorded, not lost
    assert gate_reason("a reason from a newer version", lang) == "a reason from a newer version"
