"""Suggested service chains tied to the reasons that raise a customer's risk.

The rules are data (service_chains.json): a chain is suggested when a risk-raising reason has a
member feature (or its family) whose name contains one of the rule's keywords; the page, the
CRM card and /explain all ask suggest_chains. Keywords rather than
exact names, because the feature catalogue belongs to features/ and grows without us. This table
is the one owner of the chain codes and their fi/en labels: the clinician page and the CRM card
(alerts/cards.py) both read it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from explain.reasons import Reason


class ChainRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: str
    keywords: tuple[str, ...]
    label_en: str
    label_fi: str
    why_en: str
    why_fi: str


class SuggestedChain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chain: str
    label_en: str
    label_fi: str
    why_en: str
    why_fi: str
    because_of: list[str]  # the reason families that triggered it


@lru_cache(maxsize=1)
def default_rules() -> tuple[ChainRule, ...]:
    text = resources.files("explain").joinpath("service_chains.json").read_text(encoding="utf-8")
    return tuple(ChainRule.model_validate(rule) for rule in json.loads(text))


MIN_EFFECT = 0.05  # log-odds: smaller pushes are noise, not a reason to start a service chain


def _present(value: object) -> bool:
    """A feature that is absent (0 missed doses, no data) is no reason for its chain."""
    return value is not None and value != 0 and value != 0.0


def suggest_chains(reasons: list[Reason], rules: tuple[ChainRule, ...] | None = None) -> list[SuggestedChain]:
    """Chains whose keywords match a member feature that raises the risk by at least MIN_EFFECT
    and is present for the customer, in the order of the reasons."""
    rules = default_rules() if rules is None else rules
    found: dict[str, SuggestedChain] = {}
    for reason in reasons:
        if reason.direction != "up":
            continue
        drivers = [f for f in reason.features if f.contribution >= MIN_EFFECT and _present(f.value)]
        if not drivers:
            continue
        names = [f.feature.lower() for f in drivers] + [reason.family.lower()]
        for rule in rules:
            if any(keyword in name for keyword in rule.keywords for name in names):
                chain = found.setdefault(
                    rule.chain,
                    SuggestedChain(
                        chain=rule.chain, label_en=rule.label_en, label_fi=rule.label_fi,
                        why_en=rule.why_en, why_fi=rule.why_fi, because_of=[],
                    ),
                )
                if reason.family not in chain.because_of:
                    chain.because_of.append(reason.family)
    return list(found.values())
