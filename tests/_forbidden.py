"""What no text a person reads may contain (issue 14): a reusable checker for any sentence, card,
page text or FHIR note, in Finnish or English.

`problems(text, lang)` lists every forbidden pattern found (empty: clean), each named with the
piece of text that broke it. The patterns are the ones the issue found in delivered cards and
pages, and the ways each language writes numbers (vocabulary/numbers.py):

- a template's placeholder left in ("{value}");
- a missing value pasted into a sentence ("no data", "ei tietoa": "Asthma last recorded no data
  days ago", "PHQ-9 muuttui ei tietoa pistettä");
- a raw value pasted in: "N", "Y", "True", "False", "nan", "None", "null"; a flag as a number
  ("diagnoosi kirjattu 0", "on record: 1", "lives alone (0/1): 1");
- "0 days ago" / "0 päivää sitten" (said "less than a day ago");
- numbers not written the language's way: no thousands separator ("45578", "4557"), English
  grouping or a decimal point in Finnish ("45,578", "−2.07"), a decimal comma in English, a
  Finnish thousands separator that is not a no-break space, two numbers side by side ("PHQ-9 342
  days ago"), a hyphen for a minus ("-2"), "−0", a percentage without the Finnish space
  ("25,4%") or with an English one ("25.4 %"), euros in the other language's order or as
  "EUR"/"euroa" after a number ("45578 euroa");
- English: a plural noun after 1 ("1 emergency department visits"); Finnish: a partitive after 1
  ("1 päivää sitten");
- English words in Finnish text: every word of the project's English texts (the feature
  catalogue, family names and keys, the problem vocabulary, the service chains) that is not also
  a word of its Finnish texts, and the English words the issue found on Finnish pages.

`allow` lists strings to leave out of the check (a pseudonym, a model version: identifiers, not
numbers a person reads as amounts).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

NBSP = "\u00a0"
MINUS = "\u2212"

# Count nouns of the catalogue's English sentences, as plurals: none may follow a 1.
ENGLISH_PLURALS = (
    "days", "years", "minutes", "points", "visits", "contacts", "admissions", "alarms", "doses", "assessments",
    "notifications", "dispensings", "fees", "diagnoses", "presentations", "conditions", "units", "gaps",
    "readmissions", "placements", "injuries", "appointments", "stays", "discharges", "falls",
)
# Finnish partitives that follow numbers other than 1 (1 takes the nominative: "1 päivä").
FINNISH_PARTITIVES = (
    "päivää", "vuotta", "minuuttia", "pistettä", "sairautta", "yksikköä", "käyntiä", "hoitopäivää", "euroa",
    "kertaa", "kuukautta",
)
# English words the issue found on Finnish pages (family names as headings) and a card's own words.
ISSUE_ENGLISH = ("Utilisation", "Demographics", "Cost", "Emergency", "Homecare", "Assessments", "Diagnoses",
                 "risk", "reasons", "model", "version", "estimate", "available", "flagged", "why")

_PATTERNS: tuple[tuple[str, str, str], ...] = (  # (name, regex, languages)
    ("a placeholder left in", r"\{[A-Za-z_]*\}", "en fi"),
    ("a missing value pasted in", r"(?i)\bno data\b|\bei tietoa\b|\bnot available\b", "en fi"),
    ("a raw value pasted in", r"(?<![\w/.\-])(?:N|Y|True|False|true|false|nan|NaN|None|null|inf)(?![\w/\-])", "en fi"),
    ("a flag pasted as a number",
     r"(?i)(?:on record|kirjattu|in use|käytössä|running|käynnissä|attender|suurkäyttäjä|\(0/1\))\s*:?\s*[01](?![\d.,\u00a0])",
     "en fi"),
    ("zero days ago", r"(?<![\d.,\u00a0])0 (?:days? ago|päivää sitten|päivä sitten)", "en fi"),
    ("a number without thousands separators",
     r"(?<![\w.,\u00a0:/\-])(?:\d{5,}|(?!(?:19|20)\d\d(?![\d]))\d{4})(?![\w])", "en fi"),
    ("two numbers side by side", r"\d \d", "en fi"),
    ("a minus written as a hyphen", r"(?<![\w)\]\-])-\d", "en fi"),
    ("a negative zero", r"[\u2212\-]0(?:[.,]0+)?(?![\d.,])", "en fi"),
    # "45,578" is English grouping; "0,612" is a Finnish decimal (no number is grouped after a 0)
    ("English thousands grouping in Finnish", r"(?<![\d,])(?!0,)\d{1,3}(?:,\d{3})+(?![\d,])", "fi"),
    ("a decimal point in Finnish", r"(?<![\w.])\d+\.\d+(?![\d.])", "fi"),
    ("a Finnish thousands separator that is not a no-break space", r"(?<![\d,])\d{1,3}(?: \d{3})+(?![\d,])", "fi"),
    ("a percentage without the Finnish space", r"\d%", "fi"),
    ("a euro sign before the number in Finnish", r"€\s?[\u2212\-]?\d", "fi"),
    ("a decimal comma in English", r"(?<![\w,])\d+,\d{1,2}(?![\d,])", "en"),
    ("a space before the percent sign in English", r"\d[\s\u00a0]%", "en"),
    ("a euro sign after the number in English", r"\d[\s\u00a0]?€", "en"),
    ("euros as EUR or euroa after a number", r"\d[\s\u00a0]*(?:EUR|euroa)\b", "en fi"),
    ("a plural after 1 in English",
     r"(?<![\d.,\u00a0])[+\u2212]?\b1 (?:[A-Za-z()\-]+ ){0,5}?(?:" + "|".join(ENGLISH_PLURALS) + r")\b", "en"),
    ("a partitive after 1 in Finnish",
     r"(?<![\d.,\u00a0])[+\u2212]?\b1 (?:" + "|".join(FINNISH_PARTITIVES) + r")\b", "fi"),
)
_COMPILED = tuple((name, re.compile(regex), langs.split()) for name, regex, langs in _PATTERNS)
_WORD = re.compile(r"[A-Za-zÅÄÖåäöÉéÜü]+")


def problems(text: str, lang: str, *, allow: Iterable[str] = ()) -> list[str]:
    """Every forbidden pattern in `text` (read in `lang`), as "what: «piece» in «text»"."""
    if lang not in ("en", "fi"):
        raise ValueError(f"language {lang!r}: expected 'en' or 'fi'")
    for kept in allow:  # whole tokens only: allowing version "13" keeps "130 days" checked
        if kept:
            text = re.sub(rf"(?<![\w.,\u00a0]){re.escape(str(kept))}(?![\w.,\u00a0])", "", text)
    found = []
    for name, pattern, langs in _COMPILED:
        if lang in langs:
            found += [f"{name}: «{m.group(0)}» in «{text}»" for m in pattern.finditer(text)]
    if lang == "fi":
        english = english_only_words()
        found += [f"an English word in Finnish: «{w}» in «{text}»" for w in _WORD.findall(text) if w.lower() in english]
    return found


@lru_cache(maxsize=1)
def english_only_words() -> frozenset[str]:
    """Lower-case words (3 letters or more) of the project's English texts that none of its
    Finnish texts use ("interRAI", "Diabetes", "Imatra" are in both and allowed)."""
    en, fi = _project_words()
    return frozenset(w for w in en - fi if len(w) >= 3)


def _project_words() -> tuple[set[str], set[str]]:
    from explain.chains import default_rules
    from features.catalogue import FAMILY_WORDS, catalogue

    english: list[str] = list(ISSUE_ENGLISH)
    finnish: list[str] = []
    for entry in catalogue():
        for name, value in _fields(entry):
            if name == "en" or name.endswith("_en"):
                english.append(value)
            elif name == "fi" or name.endswith("_fi"):
                finnish.append(value)
        for _, word_en, word_fi in getattr(entry, "value_words", ()):
            english.append(word_en)
            finnish.append(word_fi)
    for family, (word_en, word_fi) in FAMILY_WORDS.items():
        english += [word_en, family.replace("_", " ")]
        finnish.append(word_fi)
    for rule in default_rules():
        english += [rule.label_en, rule.why_en]
        finnish += [rule.label_fi, rule.why_fi]
    text = resources.files("vocabulary").joinpath("problems.yaml").read_text(encoding="utf-8")
    for key, value in _leaves(yaml.safe_load(text)):
        if key == "en":
            english.append(value)
        elif key == "fi":
            finnish.append(value)
    words = lambda texts: {w.lower() for t in texts for w in _WORD.findall(t)}  # noqa: E731
    return words(english), words(finnish)


def _fields(entry: Any) -> Iterator[tuple[str, str]]:
    """(field name, text) of a catalogue entry's word fields, nested Said records included."""
    for f in dataclasses.fields(entry):
        value = getattr(entry, f.name)
        if isinstance(value, str):
            yield f.name, value
        elif isinstance(value, tuple):
            for item in value:
                if dataclasses.is_dataclass(item):
                    yield from _fields(item)


def _leaves(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v, key)
    elif isinstance(node, str):
        yield key, node
