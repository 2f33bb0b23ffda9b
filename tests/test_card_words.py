"""Every CDS card of a population run reads clean in Finnish and English (issue 14's patterns).

A population run (alerts/population.py) on the test region (tests/serving_fixture.py: the real
feature pipeline, the five pinned champions) at a low alert threshold, so that a few hundred
customers get cards. Each card the run builds is built again in both languages with
alerts/cards.py build_card, exactly as the CRM would get it, and its summary, detail,
suggestions, link labels and the notes of every FHIR RiskAssessment in it are read with
tests/_forbidden.py. The cards in the outbox are the cards checked. The reasons inside the cards
are the catalogue's sentences of the customers' own values, and a "never" sentence is said only
for a missing value (the issue found "No home care visits in the last 90 days" beside 24.7 visits
a month).

The test only reads what build_card returns: it finds the cards' inputs by watching the run call
build_card, so it does not depend on the card's input type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from explain.reasons import Reason, feature_sentence
from features import feature_info
from tests._forbidden import problems

AS_OF = dt.date(2024, 12, 1)
LOW_THRESHOLD = 0.002  # every problem alerts on a few per cent of its cohort: many cards
LANGS = ("en", "fi")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(what the run passed to build_card, the cards in the outbox)."""
    from alerts import outbox, population
    from tests.serving_fixture import make_backend, models

    chosen = models()
    for model in chosen.values():
        model.metadata["threshold"] = LOW_THRESHOLD  # the threshold training chose (the specs state budgets)
    conn = outbox.connect(tmp_path_factory.mktemp("cards") / "outbox.db")
    inputs = []
    real = population.build_card

    def watched(item, *args, **kwargs):
        inputs.append(item)
        return real(item, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(population, "build_card", watched)
        population.run_population(make_backend(chosen), conn, AS_OF, today=AS_OF)
    delivered = [outbox.get_alert(conn, a["alert_id"])["payload"] for a in outbox.list_alerts(conn, limit=1_000_000)]
    conn.close()
    return inputs, delivered


def built(run) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    from alerts.cards import build_card

    inputs, _ = run
    for item in inputs:
        for lang in LANGS:
            yield item, lang, build_card(item, language=lang)


def reasons_of(item: Any) -> list[Reason]:
    """The reasons a card input carries (one problem's, or each of several problems')."""
    risks = getattr(item, "risks", None)
    groups = [getattr(risk, "reasons", ()) for risk in risks] if risks is not None else [item.reasons]
    return [r if isinstance(r, Reason) else Reason.model_validate(r) for group in groups for r in group]


def identifiers(item: Any) -> list[str]:
    """Pseudonym and model versions: identifiers a card may show, not amounts."""
    risks = getattr(item, "risks", None) or [item]
    # a version only where the card names it: a bare "1" would hide "(1-5)" or "1 päivää sitten"
    versions = [str(getattr(risk, "model_version", "")) for risk in risks]
    return [str(item.subject_id)] + [f"{words} {v}" for v in versions for words in ("model version", "mallin versio")]


def risk_assessments(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("resourceType") == "RiskAssessment":
            yield node
        for value in node.values():
            yield from risk_assessments(value)
    elif isinstance(node, list):
        for value in node:
            yield from risk_assessments(value)


def read_texts(card: dict[str, Any]) -> list[str]:
    """What a person reads on a card (not its codes, ids and URLs)."""
    return ([card["summary"], card.get("detail", "")] + [s["label"] for s in card.get("suggestions", [])]
            + [link["label"] for link in card.get("links", [])])


def note_language(note: str, reasons: list[Reason]) -> str:
    """A FHIR note is one reason's text in one language, or the model's gate record in words when
    the model did not pass its checks (alerts/fhir.py)."""
    from vocabulary import vocabulary

    for lang in ("fi", "en"):
        for status in ("forced", "unchecked"):
            if note.startswith(f"⚠ {vocabulary().gate_label(status, lang)}"):
                return lang
    if any(r.text_fi and note.endswith(r.text_fi) for r in reasons):
        return "fi"
    if any(r.text_en and note.endswith(r.text_en) for r in reasons):
        return "en"
    raise AssertionError(f"FHIR note is no reason's text: «{note}»")


def test_the_run_makes_many_cards_and_the_outbox_holds_the_cards_checked(run):
    inputs, delivered = run
    assert len(inputs) == len(delivered) >= 200
    assert len({item.subject_id for item in inputs}) >= 150
    rebuilt: dict[str, list[dict[str, Any]]] = {}
    for _, _, card in built(run):
        rebuilt.setdefault(card["uuid"], []).append(card)
    for card in delivered:
        assert card in rebuilt[card["uuid"]], card["uuid"]


@pytest.mark.parametrize("lang", LANGS)
def test_no_card_has_a_forbidden_pattern(run, lang):
    found, texts, notes = [], 0, 0
    for item, language, card in built(run):
        if language != lang:
            continue
        allow = identifiers(item)
        for text in read_texts(card):
            texts += 1
            found += [f"card {card['uuid']}: {p}" for p in problems(text, lang, allow=allow)]
        for resource in risk_assessments(card):
            for note in resource.get("note", []):
                notes += 1
                found += [f"card {card['uuid']} FHIR note: {p}"
                          for p in problems(note["text"], note_language(note["text"], reasons_of(item)), allow=allow)]
    assert texts > 600 and notes > 600
    assert not found, f"{len(found)} problems in {texts} card texts and {notes} FHIR notes:\n" + "\n".join(found[:40])


def test_the_reasons_in_cards_are_true_sentences_of_the_customers_values(run):
    """Each reason's members say the catalogue's sentence of the customer's own value, the
    "never" sentence only when the value is missing, and the reason's text joins them."""
    inputs, _ = run
    checked = 0
    for item in inputs:
        for reason in reasons_of(item):
            assert reason.text_en == "; ".join(f.text_en for f in reason.features[:3])
            assert reason.text_fi == "; ".join(f.text_fi for f in reason.features[:3])
            for member in reason.features:
                info = feature_info(member.feature)
                for lang, text, never in (("en", member.text_en, info.never_en), ("fi", member.text_fi, info.never_fi)):
                    assert text == feature_sentence(info, member.value, lang), (member.feature, member.value, lang)
                    assert (text == never) == (member.value is None), (member.feature, member.value, text)
                    checked += 1
    assert checked > 2000
