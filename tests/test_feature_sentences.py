"""Every feature of the real catalogue (features/catalogue.py, not a fixture) says something true
and grammatical in Finnish and English for every kind of value: missing (None, NaN), zero, a
flag set and not set, small (1, and -1 for a change), typical and large values, every category.

The expectations do not come from the catalogue's own formatting fields: numbers are checked
against vocabulary/numbers.py by a small oracle that reads what a feature is (euros for the cost,
a percentage for a share 0-1, a sign for a change or trend, else a plain number with the entry's
decimals), and the words against tests/_forbidden.py (the issue's patterns, English words in
Finnish, a plural after 1, a partitive after 1).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest

from explain.reasons import feature_sentence
from features.catalogue import catalogue
from tests._forbidden import ENGLISH_PLURALS, FINNISH_PARTITIVES, problems
from vocabulary.numbers import MINUS, NBSP, euros, natural, percent

LANGS = ("en", "fi")
MISSING = (None, float("nan"))
NEGATION = {"en": re.compile(r"(?i)\b(no|not|never|none|fewer)\b"), "fi": re.compile(r"(?i)\b(ei|eikä|alle)\b")}


def number_kind(info: Any) -> str:
    """What the number of a feature is, from its name and unit (the oracle's own reading)."""
    if info.unit_en == "EUR":
        return "euros"
    if info.unit_en.startswith("share"):
        return "percent"
    if info.name.endswith(("_change", "_trend", "_slope_per_30d")):
        return "signed"
    return "number"


def expected_number(info: Any, value: float, lang: str) -> str:
    """The value as vocabulary/numbers.py writes it for this kind of feature."""
    kind = number_kind(info)
    if kind == "euros":
        return euros(value, lang)
    if kind == "percent":
        return percent(value, lang, info.decimals)
    text = natural(value, lang, info.decimals)
    return f"+{text}" if kind == "signed" and value > 0 else text


def values_of(info: Any) -> dict[str, list[Any]]:
    """The value kinds walked for one feature."""
    if info.kind == "categorical":
        return {"missing": list(MISSING), "category": list(info.categories)}
    if info.kind == "flag":
        return {"missing": list(MISSING), "set": [1.0], "not set": [0.0]}
    kind = number_kind(info)
    if kind == "percent":
        return {"missing": list(MISSING), "zero": [0.0], "typical": [0.25, 0.123], "large": [0.999, 1.0]}
    if kind == "euros":
        return {"missing": list(MISSING), "zero": [0.0], "small": [1.0], "typical": [450.6], "large": [45578.4, 1234567.0]}
    values = {"missing": list(MISSING), "zero": [0.0], "small": [1.0], "typical": [3.0, 12.4], "large": [1234.0, 45578.4]}
    if kind == "signed":
        values.update(small=[1.0, -1.0], typical=[3.0, -2.0, 12.4], large=[1234.0, -45578.4])
    return values


def fixed_numbers(info: Any) -> set[str]:
    """Numbers in the feature's own words (windows, scales, thresholds: "90 days", "(0-6)")."""
    texts = [getattr(info, f.name) for f in dataclasses.fields(info) if isinstance(getattr(info, f.name), str)]
    return {n for t in texts for n in re.findall(r"\d+", t)}


def walk(sentence: Callable[[Any, Any, str], str] = feature_sentence) -> tuple[int, list[str]]:
    """(how many sentences were read, every problem found) over the whole catalogue."""
    read, found = 0, []
    for info in catalogue():
        texts = {}
        for lang in LANGS:
            for kind, values in values_of(info).items():
                for v in values:
                    read += 1
                    try:
                        texts[lang, kind, repr(v)] = sentence(info, v, lang)
                    except Exception as error:  # noqa: BLE001 - a sentence that cannot be made is a finding
                        found.append(f"{info.name} [{kind} {v!r}] {lang}: no sentence ({type(error).__name__}: {error})")
        found += check_feature(info, texts)
    return read, found


def check_feature(info: Any, texts: dict[tuple[str, str, str], str]) -> list[str]:
    """Problems of one feature's sentences: texts[lang, value kind, repr(value)]."""
    found = []
    for (lang, kind, v), text in texts.items():
        found += [f"{info.name} [{kind} {v}] {lang}: {p}" for p in problems(text, lang) + _shape(text)]
        if kind in ("typical", "large"):
            want = expected_number(info, float(v), lang)
            if not re.search(rf"(?<![\d.,{NBSP}]){re.escape(want)}(?![\d]|[.,]\d)", text):
                found.append(f"{info.name} [{kind} {v}] {lang}: the number is not written «{want}»: «{text}»")
    for lang in LANGS:
        mine = {(kind, v): text for (language, kind, v), text in texts.items() if language == lang}
        missing = [mine.get(("missing", repr(v))) for v in MISSING]
        if None not in missing:
            if missing[0] != missing[1]:
                found.append(f"{info.name} {lang}: None and NaN read differently: {missing}")
            stray = set(re.findall(r"\d+", missing[0])) - fixed_numbers(info)
            if stray:
                found.append(f"{info.name} [missing] {lang}: a number for a missing value ({sorted(stray)}): «{missing[0]}»")
            found += [f"{info.name} [{kind} {v}] {lang}: reads as the missing value: «{text}»"
                      for (kind, v), text in mine.items() if kind != "missing" and text == missing[0]]
        if info.kind == "flag":
            yes, no = mine.get(("set", "1.0")), mine.get(("not set", "0.0"))
            if yes is not None and no is not None:
                if yes == no:
                    found.append(f"{info.name} {lang}: set and not set read the same: «{yes}»")
                if not NEGATION[lang].search(no) or NEGATION[lang].search(yes):
                    found.append(f"{info.name} {lang}: only the not-set sentence may be negative: «{yes}» / «{no}»")
                found += [f"{info.name} {lang}: a flag shown as a number: «{text}»"
                          for text in (yes, no) if set(re.findall(r"\d+", text)) - fixed_numbers(info)]
        if info.kind == "categorical":
            shown = [mine.get(("category", repr(c))) for c in info.categories]
            if None not in shown and len(set(shown)) != len(shown):
                found.append(f"{info.name} {lang}: categories read the same: {shown}")
            found += [f"{info.name} {lang}: the code {code!r} instead of a word: «{text}»"
                      for code, text in zip(info.categories, shown)
                      if text is not None and len(code) <= 2 and re.search(rf"(?<!\w){re.escape(code)}(?!\w)", text)]
        zero, small, typical = mine.get(("zero", "0.0")), mine.get(("small", "1.0")), mine.get(("typical", "3.0"))
        for a, b, what in ((zero, small, "0 and 1"), (small, typical, "1 and 3"), (zero, typical, "0 and 3")):
            if a is not None and a == b:
                found.append(f"{info.name} {lang}: {what} read the same: «{a}»")
    for (lang, kind, v), text in texts.items():
        if lang == "en" and texts.get(("fi", kind, v)) == text:
            found.append(f"{info.name} [{kind} {v}]: the same in English and Finnish: «{text}»")
    return found


def _shape(text: str) -> list[str]:
    """A sentence: not empty, no stray spaces, begins with a capital, a number or interRAI."""
    out = []
    if not text or text != text.strip() or "  " in text or re.search(r"\s[,;:.)]", text):
        out.append(f"badly spaced: «{text}»")
    elif not (text[0].isupper() or text[0].isdigit() or text[0] in f"+{MINUS}€" or text.startswith("interRAI")):
        out.append(f"does not begin a sentence: «{text}»")
    return out


def test_every_feature_reads_true_for_every_kind_of_value_in_both_languages():
    read, found = walk()
    assert read > 2 * len(catalogue()) * 4
    assert not found, f"{len(found)} problems in {read} sentences:\n" + "\n".join(found[:60])


def test_the_checker_knows_every_count_noun_of_the_catalogue():
    """tests/_forbidden.py finds a plural after 1 and a partitive after 1 from word lists: every
    English plural and Finnish partitive that follows a number in a catalogue sentence is on them
    (a noun added to the catalogue and missing here would slip through)."""
    english, finnish = set(), set()
    for info in catalogue():
        if info.kind != "numeric":
            continue
        for m in re.finditer(r"(?<![\d.,])\b3 ((?:[A-Za-z()\-]+ ){0,5})", feature_sentence(info, 3.0, "en") + " "):
            plurals = [w for w in m.group(1).split() if re.fullmatch(r"[a-z]+[^s]s", w) and not w.endswith(("is", "us"))]
            english |= set(plurals[:1])  # the counted noun: the first plural after the number
        for m in re.finditer(r"(?<![\d.,])\b3 ([a-zäö]+)", feature_sentence(info, 3.0, "fi")):
            if m.group(1).endswith(("ää", "aa", "tta", "ttä", "ia", "iä")):
                finnish.add(m.group(1))
    assert english and english <= set(ENGLISH_PLURALS), sorted(english - set(ENGLISH_PLURALS))
    assert finnish and finnish <= set(FINNISH_PARTITIVES), sorted(finnish - set(FINNISH_PARTITIVES))


@pytest.mark.parametrize("text, lang, what", [
    ("Asthma last recorded no data days ago", "en", "a missing value pasted in"),
    ("Epilepsia: kirjattu viimeksi ei tietoa päivää sitten", "fi", "a missing value pasted in"),
    ("Heart failure diagnosis on record: N", "en", "a raw value pasted in"),
    ("Frequent emergency department attender: 0", "en", "a flag pasted as a number"),
    ("Sydämen vajaatoiminta: diagnoosi kirjattu 0", "fi", "a flag pasted as a number"),
    ("Palvelujen kustannukset viimeisen 365 päivän aikana: 45578 euroa", "fi", "a number without thousands separators"),
    ("Muutos: -2.07", "fi", "a decimal point in Finnish"),
    ("Muutos: -2,07", "fi", "a minus written as a hyphen"),
    ("Riski 25.4 %", "en", "a space before the percent sign in English"),
    ("Riski: 25,4%", "fi", "a percentage without the Finnish space"),
    ("1 emergency department visits in the last 90 days", "en", "a plural after 1 in English"),
    ("Kotiutunut sairaalasta 1 päivää sitten", "fi", "a partitive after 1 in Finnish"),
    ("Utilisation", "fi", "an English word in Finnish"),
    ("Last PHQ-9 0 days ago", "en", "zero days ago"),
    ("Sex: {value}", "en", "a placeholder left in"),
    ("Services costing 45,578 EUR", "en", "euros as EUR or euroa after a number"),
    ("Kustannukset 45,578 euroa vuodessa", "fi", "English thousands grouping in Finnish"),
])
def test_the_checker_finds_the_issues_patterns(text, lang, what):
    assert any(p.startswith(what) for p in problems(text, lang)), problems(text, lang)


@pytest.mark.parametrize("text, lang", [
    ("Palvelujen kustannukset viimeisen 365 päivän aikana: 45\u00a0578\u00a0€", "fi"),
    ("Services costing €45,578 in the last 365 days", "en"),
    ("Testijakson AUROC 0,612 (luottamusväli 0,524–0,795)", "fi"),  # Finnish decimals, not English grouping
    ("Viimeisin interRAI kognitiivisen suoriutumisen mittari CPS (0-6): 3", "fi"),
    ("PHQ-9 changed by \u22122 points between the last two measurements", "en"),
    ("Korkea riski: suunnittelematon sairaalahoito 90 päivän sisällä (25,4\u00a0%)", "fi"),
    ("Tyypin 1 diabetes: diagnoosi kirjattu", "fi"),
    ("1 emergency department visit in the last 90 days", "en"),
    ("Kotiutunut sairaalasta 1 päivä sitten, 1.12.2024", "fi"),
])
def test_the_checker_passes_what_is_right(text, lang):
    assert problems(text, lang) == []


def test_words_do_not_move_the_pipeline_version(monkeypatch):
    """Every word of every entry changed: the feature-pipeline version (features.version) stays,
    so re-wording a sentence retires no model."""
    import importlib

    from features import version

    catalogue_module = importlib.import_module("features.catalogue")  # `features.catalogue` is also a function

    def reworded(entry: Any) -> Any:
        changes = {}
        for f in dataclasses.fields(entry):
            value = getattr(entry, f.name)
            if f.name.endswith(("_en", "_fi")) and isinstance(value, str):
                changes[f.name] = value + " (reworded)"
        changes["decimals"] = entry.decimals + 1
        if hasattr(entry, "said"):
            changes["said"] = ()
            changes["value_words"] = tuple((code, "x", "y") for code, _, _ in entry.value_words)
            changes["shown_as"] = "number"
        return dataclasses.replace(entry, **changes)

    today = version.hashed_declarations()
    words = tuple(reworded(e) for e in catalogue())
    monkeypatch.setattr(catalogue_module, "catalogue", lambda: words)
    assert version.hashed_declarations() == today
