"""Measure issue 14 on a demo home: what the CRM got, and what its words and pages break.

    .venv/bin/python benchmarks/card_words.py [HOME]      # default: .sote-risk

Reads the home folder's `outbox.db` (read only: an old outbox is never migrated) and, if the
demo kept it, `crm_receiver.db`, and prints, for the cards delivered in the outbox and for the
cards the demo's CRM receiver stored: how many, to how many distinct customers, and how many
break a rule of tests/_forbidden.py (with a breakdown by rule and an example of each). Then it
reads every Finnish page in `pages/` and counts the English words in its visible text.

Both outbox schemas are read: version 1 (commit 7ca9338: one row per alert, the payload an
English card) and version 2 (one card per customer per index date, in the CRM's language, named
in the card's `extension.language`). A card is checked in its own language only: it stores the
text of that one language.

What a person reads on a card: the summary, the detail (markdown, one line at a time: each
reason), the suggestion and link labels, the source label and topic, the override reasons. The
product's name ("sote-risk"), the pseudonym and model versions are identifiers, not words or
amounts, and are left out (`allow`).

A page's language is the file name's suffix (`-fi.html`, `-en.html`), else its `<html lang>`;
its visible text is everything outside tags, <script> and <style>, unescaped.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _forbidden import problems  # noqa: E402  (tests/ is not a package)

ENGLISH_WORD = "an English word in Finnish"
PRODUCT = "sote-risk"  # a name, on the card's source label: not an English word
SPACES = re.compile(r"[ \t\r\n\f\v]+")
IDENTIFIER = re.compile(r"(?<![\w-])[a-z0-9]+(?:[_-][a-z0-9]+)+(?![\w-])")  # feature names, problem ids
MARKDOWN = re.compile(r"^\s*(?:[-*]\s+)?|\*\*|(?<!\w)_|_(?!\w)")


@dataclass
class CardCounts:
    """What one source of cards (the outbox, or the CRM receiver) holds."""

    source: str
    cards: int = 0
    customers: set[int] = field(default_factory=set)
    languages: Counter[str] = field(default_factory=Counter)
    bad_cards: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)  # rule -> cards breaking it
    examples: dict[str, str] = field(default_factory=dict)  # rule -> one example
    english: Counter[str] = field(default_factory=Counter)  # English words on Finnish cards


def read_texts(card: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, text) of every text on a card a person reads."""
    yield "summary", str(card.get("summary", ""))
    for line in str(card.get("detail", "")).splitlines():
        text = MARKDOWN.sub("", line).strip()
        if text:
            yield "detail", text
    for item in card.get("suggestions") or []:
        yield "suggestion", str(item.get("label", ""))
    for item in card.get("links") or []:
        yield "link", str(item.get("label", ""))
    source = card.get("source") or {}
    yield "source", str(source.get("label", ""))
    yield "topic", str((source.get("topic") or {}).get("display", ""))
    for item in card.get("overrideReasons") or []:
        yield "override reason", str(item.get("display", ""))


def card_language(card: dict[str, Any]) -> str:
    return str((card.get("extension") or {}).get("language") or "en")  # version 1 cards: English only


def identifiers(card: dict[str, Any]) -> list[str]:
    """The product's name, the card's pseudonym and model versions (left out of the check)."""
    ext = card.get("extension") or {}
    versions = [ext.get("model_version")] + [r.get("model_version") for r in ext.get("risks") or []]
    # a version is allowed only where the card names it: a bare "1" would hide "(1-5)" or "1 päivää"
    phrases = [f"{words} {v}" for v in versions if v is not None for words in ("model version", "mallin versio")]
    pseudonym = ext.get("subject_pseudonym")
    return [PRODUCT, *([str(pseudonym)] if pseudonym is not None else []), *phrases]


def around(text: str, piece: str, chars: int = 45) -> str:
    """The piece in its context (the text may be long)."""
    at = max(text.find(piece), 0)
    start, end = max(at - chars, 0), at + len(piece) + chars
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def check_card(card: dict[str, Any], counts: CardCounts) -> None:
    lang = card_language(card)
    counts.cards += 1
    counts.customers.add(int((card.get("extension") or {}).get("subject_pseudonym", -1)))
    counts.languages[lang] += 1
    broken: set[str] = set()
    for name, text in read_texts(card):
        for found in problems(text, lang, allow=identifiers(card)):
            rule, _, rest = found.partition(": «")
            broken.add(rule)
            piece = rest.split("»", 1)[0]
            if rule == ENGLISH_WORD:
                counts.english[piece] += 1
            counts.examples.setdefault(rule, f"«{piece}» in {name} «{around(text, piece)}»")
    counts.bad_cards += bool(broken)
    counts.by_rule.update(broken)


def outbox_cards(db: Path) -> tuple[CardCounts, str]:
    """The delivered cards of an outbox, and its schema and statuses in words."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM alerts GROUP BY status").fetchall())
        counts = CardCounts("outbox (delivered)")
        for (payload,) in conn.execute("SELECT payload FROM alerts WHERE status = 'delivered'"):
            check_card(json.loads(payload), counts)
    finally:
        conn.close()
    kind = "one card per customer" if version >= 2 else "one row per alert"
    return counts, f"schema v{version} ({kind}); rows by status: {statuses}"


def received_cards(db: Path) -> CardCounts:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        counts = CardCounts("CRM receiver")
        for (body,) in conn.execute("SELECT body FROM received"):
            check_card(json.loads(body), counts)
    finally:
        conn.close()
    return counts


HIDDEN = ("script", "style", "metadata")


class _Text(HTMLParser):
    """Visible text of a page: data outside <script>, <style> and an SVG's <metadata> (matplotlib
    writes its version and a timestamp there), one chunk per line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.lang: str | None = None
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html" and self.lang is None:
            self.lang = dict(attrs).get("lang")
        if tag in HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        text = SPACES.sub(" ", data).strip(" ")  # not str.split(): it would break no-break spaces
        if text and not self._hidden:
            self.chunks.append(text)


def page_language(path: Path, parsed: _Text) -> str:
    match = re.search(r"-(fi|en)\.html$", path.name)
    return match.group(1) if match else (parsed.lang or "?")


def finnish_pages(pages: Path) -> tuple[list[str], Counter[str], int, Counter[str]]:
    """(Finnish pages read, English words found with their counts, how many of those are inside
    code identifiers, other rules broken, counted per piece)."""
    read: list[str] = []
    words: Counter[str] = Counter()
    others: Counter[str] = Counter()
    in_identifiers = 0
    for path in sorted(pages.glob("*.html")):
        parsed = _Text()
        parsed.feed(path.read_text(encoding="utf-8"))
        if page_language(path, parsed) != "fi":
            continue
        read.append(path.name + ("" if parsed.lang == "fi" else f" (html lang={parsed.lang})"))
        pseudonym = re.match(r"customer-(\d+)-", path.name)  # the page's own customer: an identifier
        allow = [pseudonym.group(1)] if pseudonym else []
        for chunk in parsed.chunks:
            found = [f.partition(": «") for f in problems(chunk, "fi", allow=allow)]
            english = [rest.split("»", 1)[0] for rule, _, rest in found if rule == ENGLISH_WORD]
            words.update(english)
            others.update(rule for rule, _, _ in found if rule != ENGLISH_WORD)
            if english:
                outside = sum(f.startswith(ENGLISH_WORD) for f in problems(IDENTIFIER.sub(" ", chunk), "fi"))
                in_identifiers += len(english) - outside
    return read, words, in_identifiers, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", nargs="?", default=".sote-risk", type=Path, help="the demo's home folder")
    home = parser.parse_args().home
    if not (home / "outbox.db").is_file():
        sys.exit(f"{home}: no outbox.db (run the demo into it first: SOTE_RISK_HOME={home} bin/sote-risk demo)")
    outbox, schema = outbox_cards(home / "outbox.db")
    sources = [outbox]
    if (home / "crm_receiver.db").exists():
        sources.append(received_cards(home / "crm_receiver.db"))
    print(f"home: {home.resolve()}\noutbox: {schema}\n")
    rules = sorted({r for c in sources for r in c.by_rule}, key=lambda r: -outbox.by_rule[r])
    width = max([34, *(len(r) + 4 for r in rules)])
    print(f"{'':{width}}" + "".join(f"{c.source:>22}" for c in sources))
    rows = [("cards", lambda c: c.cards), ("distinct customers", lambda c: len(c.customers)),
            ("card languages", lambda c: ", ".join(f"{k} {v}" for k, v in sorted(c.languages.items()))),
            ("cards with a forbidden pattern", lambda c: c.bad_cards)]
    for label, value in rows:
        print(f"{label:{width}}" + "".join(f"{value(c)!s:>22}" for c in sources))
    for rule in rules:
        print(f"  {rule:{width - 2}}" + "".join(f"{c.by_rule[rule]:>22}" for c in sources))
    if rules:
        print("\nexamples (first card breaking each rule):")
        for rule in rules:
            example = next(c.examples[rule] for c in sources if rule in c.examples)
            print(f"  {rule}: {example}")
    for c in sources:
        if c.english:
            print(f"English words on {c.source}'s Finnish cards: {sum(c.english.values())} ("
                  + ", ".join(f"{w} ×{n}" for w, n in c.english.most_common()) + ")")

    read, words, in_identifiers, others = finnish_pages(home / "pages")
    print(f"\nFinnish pages checked: {len(read)}" + "".join(f"\n  {name}" for name in read))
    print(f"English words on Finnish pages: {sum(words.values())} ({len(words)} distinct; "
          f"{in_identifiers} of them inside code identifiers such as er_visits_30d or acute-hospitalisation)")
    if words:
        print("  " + ", ".join(f"{w} ×{n}" for w, n in words.most_common()))
    if others:
        print("other forbidden patterns on Finnish pages: " + ", ".join(f"{r} ×{n}" for r, n in others.most_common()))


if __name__ == "__main__":
    main()
