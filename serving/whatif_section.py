"""The customer view's what-if lines: per problem and intervention, the estimated change of the risk
if the intervention started now, or one short line on why there is no estimate (training/whatif.py
decides; this module reads the customer's history and words it, in Finnish and English).

The estimates are read from <home>/interventions/ (written by `sote-risk evaluate-intervention
--store`) once per change of the files (`EstimateShelf`), so a page read costs one customer's
covariates (a few small joins over their own events), not a pass over the region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from features import History
from features.history import code_list
from training.interventions import INTERVENTIONS, one_customer_covariates
from training.whatif import MIN_CELL_STARTERS, WhatIf, WhatIfEstimate, customer_whatif, read_estimates
from vocabulary import numbers

Language = Literal["fi", "en"]

NAMES = {
    "en": {"remote_visits": "remote home care visits", "medication_robot": "a medication robot",
           "home_rehabilitation": "home rehabilitation"},
    "fi": {"remote_visits": "kotihoidon etäkäynnit", "medication_robot": "lääkerobotti",
           "home_rehabilitation": "kotikuntoutus"},
}
WORDS = {
    "en": {
        "heading": "If a service started now",
        "note": "Estimated from the region's own records (a matched comparison of starters with similar customers "
                "who had not yet started), not a promise for one person.",
        "if": "If {name} started now",
        "change": "risk {risk} → {risk_with} (change {change} points, {level} interval [{low}, {high}]).",
        "rests": "Rests on: {n} similar {customers} who started it in {period}, compared with similar customers who "
                 "had not yet.",
        "customer": "customer", "customers": "customers",
        "none": "no estimate for this customer: {why}.",
        "all_none": "No service estimates for this problem: {why}.",
        "why": {
            "no_estimate": "none has been stored for this region", "other_data": "it was made from another dataset",
            "outcome": "they are estimated for unplanned hospitalisation within 90 days only",
            "too_few": "too few starters to estimate from ({n})", "already_on": "started it before (the estimate is for a first start)",
            "left": "no longer a resident", "care24h": "in 24-hour care", "new_resident": "moved in less than 90 days ago",
            "no_home_care": "estimated for home care clients only", "age": "estimated for those aged 65 or over only",
            "no_similar": "too few similar customers started it ({n}; at least {least} needed)",
            "age_range": "age outside that of similar customers who started it",
        },
    },
    "fi": {
        "heading": "Jos palvelu aloitettaisiin nyt",
        "note": "Arvioitu alueen omista tiedoista (aloittaneita verrattu samankaltaisiin, jotka eivät olleet vielä "
                "aloittaneet), ei lupaus yksittäiselle ihmiselle.",
        "if": "Jos {name} aloitettaisiin nyt",
        "change": "riski {risk} → {risk_with} (muutos {change} prosenttiyksikköä, {level}:n väli [{low}; {high}]).",
        "rests": "Perustuu: {n} samankaltaiseen asiakkaaseen, jotka aloittivat sen {period}, verrattuna "
                 "samankaltaisiin, jotka eivät olleet vielä aloittaneet.",
        "customer": "", "customers": "",
        "none": "ei arviota tälle asiakkaalle: {why}.",
        "all_none": "Ei palveluiden vaikutusarvioita tälle ennusteongelmalle: {why}.",
        "why": {
            "no_estimate": "niitä ei ole tallennettu tälle alueelle", "other_data": "ne on laskettu toisesta aineistosta",
            "outcome": "ne on laskettu vain päivystykselliselle sairaalahoidolle 90 päivän sisällä",
            "too_few": "liian vähän aloittaneita arvioon ({n})", "already_on": "aloitettu jo aiemmin (arvio koskee ensimmäistä aloitusta)",
            "left": "ei enää alueen asukas", "care24h": "ympärivuorokautisessa hoidossa",
            "new_resident": "muuttanut alueelle alle 90 päivää sitten",
            "no_home_care": "arvioitu vain kotihoidon asiakkaille", "age": "arvioitu vain 65 vuotta täyttäneille",
            "no_similar": "liian harva samankaltainen asiakas aloitti sen ({n}; vähintään {least} tarvitaan)",
            "age_range": "ikä on samankaltaisten aloittaneiden ikien ulkopuolella",
        },
    },
}
WHOLE = ("no_estimate", "other_data", "outcome")  # reasons that hold for every intervention of a problem alike


class EstimateShelf:
    """The stored estimates of a home, re-read when a file in the folder changes (not per page)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._stamp: tuple[Any, ...] | None = None
        self._found: dict[str, WhatIfEstimate] = {}

    def estimates(self) -> dict[str, WhatIfEstimate]:
        stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self.folder.glob("*.json"))) \
            if self.folder.is_dir() else ()
        if stamp != self._stamp:
            self._found, self._stamp = read_estimates(self.folder), stamp
        return self._found


@lru_cache(maxsize=1)
def _wanted_codes() -> np.ndarray:
    from features.history import code_ids
    from training.interventions import COVARIATE_CODES

    return code_ids(list(COVARIATE_CODES))


def covariates_of(history: History, subject_id: int, time: pd.Timestamp) -> pd.Series:
    """One customer's trial covariates at `time` (training.interventions.one_customer_covariates)
    from the held history's arrays."""
    index = int(history.customer_index(np.array([subject_id]))[0])
    rows = slice(int(history.ptr[index]), int(history.ptr[index + 1]))
    times = history.time[rows]
    upto = int(np.searchsorted(times, int(pd.Timestamp(time).value // 1000), side="left"))
    # only the codes the covariates read: an elderly customer's thousands of home care visits and
    # robot doses would otherwise be most of the page's time
    keep = np.flatnonzero(np.isin(history.code[rows][:upto], _wanted_codes()))
    codes = np.asarray(code_list(), dtype=object)[history.code[rows][keep]]
    birth = int(history.birth_month_index[index])
    return one_customer_covariates(times[keep].astype("datetime64[us]"), codes, history.value[rows][keep],
                                   birth // 12, birth % 12 + 1, subject_id, time)


@dataclass(frozen=True)
class Risk:
    """What the section needs of one problem's risk now."""

    problem: str
    probability: float
    outcome_code: str
    horizon_days: int


def whatifs(estimates: Mapping[str, WhatIfEstimate], history: History, subject_id: int, time: pd.Timestamp,
            risks: Sequence[Risk]) -> dict[str, list[WhatIf]]:
    """Per problem, the what-if of every intervention (in INTERVENTIONS' order)."""
    if not risks:
        return {}
    covariates = covariates_of(history, subject_id, time)
    out = {}
    for risk in risks:
        found = []
        for name in INTERVENTIONS:
            estimate = estimates.get(name)
            if estimate is not None and (estimate.dataset_customers, estimate.dataset_events) != (history.n_customers, history.n_events):
                found.append(WhatIf(name, "other_data", estimate=estimate))
                continue
            found.append(customer_whatif(estimate, name, covariates, risk.probability, risk.outcome_code, risk.horizon_days))
        out[risk.problem] = found
    return out


def _signed(value: float, lang: Language) -> str:
    """Percentage points with two decimals and their sign ("+0.08", "−1.20"; "0.00" unsigned): the
    changes are mostly fractions of a point, which one decimal would show as nothing."""
    text = numbers.number(value, lang, 2)
    return text if text.startswith(numbers.MINUS) or round(value, 2) == 0 else f"+{text}"


def _period(estimate: WhatIfEstimate) -> str:
    return f"{estimate.first_month:%m/%Y}–{estimate.last_month:%m/%Y}"


def section(found: Sequence[WhatIf], lang: Language) -> dict[str, Any]:
    """The words of one problem's what-if block: {"lines": [...]} or {"whole": why}."""
    w = WORDS[lang]
    reasons = {f.reason for f in found}
    if len(reasons) == 1 and next(iter(reasons)) in WHOLE:
        return {"whole": w["all_none"].format(why=w["why"][next(iter(reasons))]), "lines": []}
    lines = []
    for f in found:
        head = w["if"].format(name=NAMES[lang][f.intervention])
        if not f.supported:
            why = w["why"][f.reason].format(n=numbers.number(f.detail or 0, lang), least=MIN_CELL_STARTERS)
            lines.append({"intervention": f.intervention, "supported": False, "head": head, "text": w["none"].format(why=why)})
            continue
        e = f.estimate
        level = numbers.percent(e.level, lang, 0)  # fi "95 %", en "95%"
        change = w["change"].format(
            risk=numbers.percent(f.risk, lang), risk_with=numbers.percent(f.risk_with, lang),
            change=_signed(100 * f.change, lang), level=level, low=_signed(100 * f.change_low, lang),
            high=_signed(100 * f.change_high, lang))
        noun = w["customer"] if e.matched == 1 else w["customers"]
        rests = w["rests"].format(n=numbers.number(e.matched, lang), customers=noun, period=_period(e)).replace("  ", " ")
        lines.append({"intervention": f.intervention, "supported": True, "head": head, "text": change, "rests": rests,
                      "change": f.change, "low": f.change_low, "high": f.change_high})
    return {"whole": None, "lines": lines}
