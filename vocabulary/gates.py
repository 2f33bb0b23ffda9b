"""A model's promotion record in words, in Finnish and English.

Two records are stored as text in a model version's registry tags: the gates a forced challenger
failed (training/promotion.py `gate_reasons`: "gain_over_baseline -0.0310 (95% CI -0.0620 to
+0.0040) is not above 0"; versions forced before the gates read intervals hold the older
formats, "test_auroc 0.6190 does not beat the baseline's 0.6498", which are said too) and the subgroups training flagged (training/pipeline.py `flagged_subgroups`:
"sex=F:auroc (auroc 0.612; 1,234 rows, 56 events)"). Pages, cards, model cards and FHIR notes say
them to people, so they are parsed here and said in each language with its numbers. The formats
are fixed by those two writers (a test feeds their real output through here); a record in a
format not known here is shown as recorded rather than lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from vocabulary import Language
from vocabulary.numbers import number

_NUMBER = r"\d+(?:\.\d+)?"
_SIGNED = r"[+-]?\d+(?:\.\d+)?"


def _said(text: str, lang: Language) -> str:
    """A recorded number ("0.6190", "+0.0220", "-0.0100") in the language, with the decimals it
    was recorded with; a recorded plus sign is kept (a gain), a minus is the language's."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    shown = number(float(text), lang, decimals)
    return f"+{shown}" if text.startswith("+") and float(text) != 0 else shown


_FLAG = re.compile(r"(?P<attr>[a-z_]+)=(?P<value>[^:;]+):(?P<kinds>[a-z+]+) \((?P<measures>[^;]*); "
                   r"(?P<rows>[\d,]+|<5) rows, (?P<events>[\d,]+|<5) events\)")  # <5: a small count suppressed
_ATTRIBUTES = {"sex": ("Sex", "Sukupuoli"), "age_band": ("Age band", "Ikäryhmä"), "municipality": ("Municipality", "Kunta"),
               "language": ("Language of service", "Asiointikieli")}
_KINDS = {"auroc": ("discrimination", "erottelukyky"), "calibration": ("calibration", "kalibraatio")}
_COUNTS = {"en": "{rows} rows, {events} outcomes", "fi": "{rows} riviä, {events} tapahtumaa"}
_MEASURES = {"auroc": "AUROC", "O/E": "O/E"}


def _count(text: str, lang: Language) -> str:
    """A recorded count in the language; a suppressed one ('<5') as it is."""
    return text if text.startswith("<") else number(float(text.replace(",", "")), lang)


def flagged_groups(tag: str | None, lang: Language) -> list[str] | None:
    """The flagged subgroups a model version records, one phrase each ("Sukupuoli F: erottelukyky
    (AUROC 0,612; 1 234 riviä, 56 tapahtumaa)"). None: not recorded for this version; []: none."""
    if tag is None:
        return None
    if tag.strip() in ("", "none"):
        return []
    found_all = list(_FLAG.finditer(tag))
    if not found_all:
        return [tag.strip()]
    pick = 1 if lang == "fi" else 0
    out = []
    for found in found_all:
        attribute = _ATTRIBUTES.get(found["attr"], (found["attr"], found["attr"]))[pick]
        kinds = ", ".join(_KINDS.get(k, (k, k))[pick] for k in found["kinds"].split("+"))
        measures = re.sub(rf"(auroc|O/E) ({_NUMBER})", lambda m: f"{_MEASURES[m[1]]} {_said(m[2], lang)}", found["measures"])
        counts = _COUNTS[lang].format(rows=_count(found["rows"], lang), events=_count(found["events"], lang))
        out.append(f"{attribute} {found['value']}: {kinds} ({measures}; {counts})")
    return out


# What each figure with an interval is called, (English, Finnish) as the subject of a sentence and
# (English, Finnish partitive) as the object of "was not recorded".
_FIGURES = {
    "test_observed_expected": (("The ratio of observed to expected outcomes", "Havaittujen ja odotettujen tapahtumien suhde"),
                               ("ratio of observed to expected outcomes", "havaittujen ja odotettujen tapahtumien suhdetta")),
    "test_calibration_slope": (("The calibration slope", "Kalibraation kulmakerroin"),
                               ("calibration slope", "kalibraation kulmakerrointa")),
    "gain_over_baseline": (("The gain over the simple baseline", "Etu yksinkertaiseen vertailumalliin"),
                           ("gain over the simple baseline", "etua yksinkertaiseen vertailumalliin")),
}


# The recent-month figures a retrained challenger is compared on (training/promotion.py recent_reasons).
_RECENT = {
    "recent_auroc_gain": ("AUROC difference to the model in use", "AUROC-eroa käytössä olevaan malliin"),
    "recent_observed_expected": ("ratio of observed to expected outcomes",
                                 "havaittujen ja odotettujen tapahtumien suhdetta"),
}


def _months(first: str, last: str, lang: Language) -> str:
    """Recorded index months ('2024-04', '2024-06') as a span: "4/2024–6/2024", "2024-04 to 2024-06"."""
    if lang == "fi":
        return "–".join(f"{int(m[5:7])}/{m[:4]}" for m in (first, last))
    return f"{first} to {last}"


def _range(low: str, high: str) -> str:
    """Two numbers already said, as a range: "0,61–0,84"; spaced when a sign would touch the dash
    ("−0,0100 – +0,0540")."""
    signed = any(text[:1] in ("+", "-", "\u2212") for text in (low, high))
    return f"{low} – {high}" if signed else f"{low}–{high}"


def _figure(name: str, lang: Language, role: int) -> str:
    pair = _FIGURES.get(name, ((name, name), (name, name)))[role]
    return pair[1] if lang == "fi" else pair[0]


# (pattern of the recorded reason, English, Finnish): the words take the pattern's groups, numbers
# already said in the language. Older formats stay: versions forced past them keep their records.
_REASONS: tuple[tuple[re.Pattern[str], Callable[[dict[str, str], Language], str]], ...] = (
    (re.compile(r"challenger has no test_auroc/test_ece recorded"),
     lambda g, lang: ("Testijakson AUROC-arvoa tai kalibraatiovirhettä ei ole kirjattu" if lang == "fi"
                      else "No test-period AUROC or calibration error was recorded")),
    (re.compile(r"challenger has no test_auroc recorded"),
     lambda g, lang: "Testijakson AUROC-arvoa ei ole kirjattu" if lang == "fi" else "No test-period AUROC was recorded"),
    (re.compile(r"challenger has no (?P<metric>recent_[a-z_]+) interval recorded for the recent months"),
     lambda g, lang: (f"Viimeisimmiltä kuukausilta ei ole kirjattu {_RECENT.get(g['metric'], (g['metric'],) * 2)[1]} "
                      f"eikä sen 95\u00a0%:n väliä" if lang == "fi"
                      else f"The recent months' {_RECENT.get(g['metric'], (g['metric'],) * 2)[0]} and its 95% interval "
                      f"were not recorded")),
    (re.compile(r"the recent-month comparison was made against version (?P<compared>\w+), but the champion is "
                r"version (?P<champion>\w+)"),
     lambda g, lang: (f"Vertailu viimeisimpiin kuukausiin tehtiin versiota {g['compared']} vastaan, mutta käytössä on "
                      f"nyt versio {g['champion']}" if lang == "fi"
                      else f"The comparison on recent months was made against version {g['compared']}, but the model "
                      f"in use is now version {g['champion']}")),
    (re.compile(r"the compared months (?P<first>\d{4}-\d\d) to (?P<last>\d{4}-\d\d) are not all in the "
                r"challenger's test period"),
     lambda g, lang: (f"Vertaillut kuukaudet {_months(g['first'], g['last'], lang)} eivät kaikki ole uuden mallin "
                      f"testijaksolla (malli on oppinut osasta niitä)" if lang == "fi"
                      else f"The compared months {_months(g['first'], g['last'], lang)} are not all in the new "
                      f"model's test period (it learnt from some of them)")),
    (re.compile(rf"recent_auroc_gain (?P<gain>{_SIGNED}) \(95% CI (?P<low>{_SIGNED}) to (?P<high>{_SIGNED})\) on "
                rf"index months (?P<first>\d{{4}}-\d\d) to (?P<last>\d{{4}}-\d\d) reaches below (?P<floor>{_SIGNED})"),
     lambda g, lang: (f"Viimeisimmillä kuukausilla {_months(g['first'], g['last'], lang)} AUROC-ero käytössä olevaan "
                      f"malliin {g['gain']} (95\u00a0%:n väli {_range(g['low'], g['high'])}) ulottuu arvon {g['floor']} "
                      f"alapuolelle: uusi malli voi olla heikompi" if lang == "fi"
                      else f"On the recent months {_months(g['first'], g['last'], lang)} the AUROC difference to the "
                      f"model in use {g['gain']} (95% interval {_range(g['low'], g['high'])}) reaches below "
                      f"{g['floor']}: the new model may be worse")),
    (re.compile(rf"recent_observed_expected (?P<value>{_NUMBER}) \(95% CI (?P<low>{_NUMBER}) to (?P<high>{_NUMBER})\) "
                rf"is not within (?P<lo>{_NUMBER}) to (?P<hi>{_NUMBER}) and is farther from 1 than the champion's "
                rf"\((?P<theirs>{_NUMBER}|not recorded)\)"),
     lambda g, lang: (f"Viimeisimmillä kuukausilla havaittujen ja odotettujen tapahtumien suhde {g['value']} (95\u00a0%:n "
                      f"väli {_range(g['low'], g['high'])}) ei ole kokonaan välillä {_range(g['lo'], g['hi'])} ja on "
                      f"kauempana arvosta yksi kuin käytössä olevalla mallilla"
                      + (f" ({g['theirs']})" if g["theirs"] != "not recorded" else "") if lang == "fi"
                      else f"On the recent months the ratio of observed to expected outcomes {g['value']} (95% interval "
                      f"{_range(g['low'], g['high'])}) is not wholly within {_range(g['lo'], g['hi'])} and is farther "
                      f"from one than for the model in use" + (f" ({g['theirs']})" if g["theirs"] != "not recorded" else ""))),
    (re.compile(r"challenger has no (?P<metric>[a-z_]+) interval recorded"),
     lambda g, lang: (f"Testijaksolta ei ole kirjattu {_figure(g['metric'], lang, 1)} eikä sen 95\u00a0%:n väliä" if lang == "fi"
                      else f"The test period's {_figure(g['metric'], lang, 1)} and its 95% interval were not recorded")),
    (re.compile(rf"(?P<metric>test_observed_expected|test_calibration_slope) (?P<value>{_SIGNED}) \(95% CI "
                rf"(?P<low>{_SIGNED}) to (?P<high>{_SIGNED})\) is not within (?P<lo>{_NUMBER}) to (?P<hi>{_NUMBER})"),
     lambda g, lang: (f"{_figure(g['metric'], lang, 0)} testijaksolla {g['value']} (95\u00a0%:n väli {_range(g['low'], g['high'])}) "
                      f"ei ole kokonaan välillä {_range(g['lo'], g['hi'])}" if lang == "fi"
                      else f"{_figure(g['metric'], lang, 0)} on the test period {g['value']} (95% interval "
                      f"{_range(g['low'], g['high'])}) is not wholly within {_range(g['lo'], g['hi'])}")),
    (re.compile(rf"gain_over_baseline (?P<gain>{_SIGNED}) \(95% CI (?P<low>{_SIGNED}) to (?P<high>{_SIGNED})\) "
                rf"is not above (?P<floor>{_SIGNED})"),
     lambda g, lang: (f"Testijakson AUROC-etu yksinkertaiseen vertailumalliin {g['gain']} ei erotu sattumasta: sen 95\u00a0%:n "
                      f"väli {_range(g['low'], g['high'])} ei ole kokonaan arvon {g['floor']} yläpuolella" if lang == "fi"
                      else f"The test-period gain in AUROC over the simple baseline {g['gain']} is not shown beyond chance: "
                      f"its 95% interval {_range(g['low'], g['high'])} does not lie wholly above {g['floor']}")),
    (re.compile(rf"test_ece (?P<ece>{_NUMBER}) > gate (?P<limit>{_NUMBER})"),
     lambda g, lang: (f"Kalibraatiovirhe testijaksolla {g['ece']} ylittää rajan {g['limit']}" if lang == "fi"
                      else f"Calibration error on the test period {g['ece']} is above the limit {g['limit']}")),
    (re.compile(rf"test_auroc (?P<auroc>{_NUMBER}) does not beat the baseline's (?P<baseline>{_NUMBER})(?: by (?P<by>{_NUMBER}))?"),
     lambda g, lang: (f"Testijakson AUROC {g['auroc']} ei ylitä yksinkertaisen vertailumallin arvoa {g['baseline']}"
                      + (f" vaaditulla erolla {g['by']}" if g["by"] else "") if lang == "fi"
                      else f"Test-period AUROC {g['auroc']} does not beat the simple baseline's {g['baseline']}"
                      + (f" by the required {g['by']}" if g["by"] else ""))),
    (re.compile(rf"test_auroc (?P<auroc>{_NUMBER}) is worse than the champion's (?P<champion>{_NUMBER})"),
     lambda g, lang: (f"Testijakson AUROC {g['auroc']} on heikompi kuin käytössä olleen mallin {g['champion']}" if lang == "fi"
                      else f"Test-period AUROC {g['auroc']} is worse than the model in use before ({g['champion']})")),
    (re.compile(r"(?P<n>\d+) subgroup gap\(s\) beyond tolerance: (?P<groups>.*)"),
     lambda g, lang: (f"Alaryhmiä, joissa malli toimii sallittua huonommin: {g['n']} ({g['groups']})" if lang == "fi"
                      else f"Subgroups where the model does worse than allowed: {g['n']} ({g['groups']})")),
)


def gate_reason(recorded: str, lang: Language) -> str:
    """One failed gate as recorded by training/promotion.py, said in the language."""
    text = recorded.strip()
    for pattern, words in _REASONS:
        found = pattern.fullmatch(text)
        if found:
            groups = {k: v for k, v in found.groupdict().items()}
            for key, value in groups.items():
                if value is not None and key not in ("groups", "metric") and re.fullmatch(_SIGNED, value):
                    groups[key] = _said(value, lang)
            if "groups" in groups:
                groups["groups"] = "; ".join(flagged_groups(groups["groups"], lang) or [])
            return words(groups, lang)
    return text


def gate_reasons(recorded: Iterable[str], lang: Language) -> list[str]:
    """Every failed gate of a promotion record, said in the language."""
    return [gate_reason(r, lang) for r in recorded]
