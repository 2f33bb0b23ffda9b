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
    challenger = {"test_auroc": "0.6190", "test_ece": "0.0712", "baseline_auroc": "0.6498", "subgroup_flags_auroc": "2",
                  "subgroup_flags_calibration": "1", "subgroup_flagged": flagged_subgroups(SUBGROUPS)}
    reasons = record_reasons(challenger, {"test_auroc": "0.6400"}, Gates(min_auroc_over_baseline=0.01))
    return reasons + record_reasons({}, None, Gates())


def test_every_recorded_reason_is_said_in_both_languages():
    recorded = _recorded()
    assert len(recorded) == 5  # calibration, subgroups, baseline, champion, nothing recorded
    en, fi = gate_reasons(recorded, "en"), gate_reasons(recorded, "fi")
    assert en == [
        "Calibration error on the test period 0.0712 is above the limit 0.05",
        "Subgroups where the model does worse than allowed: 3 (Sex F: discrimination (AUROC 0.612; 1,234 rows, 56 outcomes); "
        "Municipality Luumäki: discrimination, calibration (AUROC 0.551, O/E 1.93; 310 rows, 21 outcomes))",
        "Test-period AUROC 0.6190 does not beat the simple baseline's 0.6498 by the required 0.01",
        "Test-period AUROC 0.6190 is worse than the model in use before (0.6400)",
        "No test-period AUROC or calibration error was recorded",
    ]
    assert fi == [
        "Kalibraatiovirhe testijaksolla 0,0712 ylittää rajan 0,05",
        "Alaryhmiä, joissa malli toimii sallittua huonommin: 3 (Sukupuoli F: erottelukyky (AUROC 0,612; 1\u00a0234 riviä, "
        "56 tapahtumaa); Kunta Luumäki: erottelukyky, kalibraatio (AUROC 0,551, O/E 1,93; 310 riviä, 21 tapahtumaa))",
        "Testijakson AUROC 0,6190 ei ylitä yksinkertaisen vertailumallin arvoa 0,6498 vaaditulla erolla 0,01",
        "Testijakson AUROC 0,6190 on heikompi kuin käytössä olleen mallin 0,6400",
        "Testijakson AUROC-arvoa tai kalibraatiovirhettä ei ole kirjattu",
    ]
    for text in fi:
        assert problems(text, "fi") == [], text
    for text in en:
        assert problems(text, "en") == [], text


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
