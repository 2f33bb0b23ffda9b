"""The customer view's what-if block in headless Chromium (fi and en), on the serving tests' region
(tests/serving_fixture.py) with estimates learned from its own events, as `sote-risk
evaluate-intervention --store` learns them."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from scoring.scorer import Scorer
from serving.pages import customer_page
from serving.whatif_section import NAMES, EstimateShelf, whatifs, Risk
from tests._forbidden import problems
from tests.serving_fixture import make_backend, members, region, span
from tests.test_page_chromium import readable_text, rendered, section, text_of
from training.interventions import INTERVENTIONS, customer_covariates, trial_rows
from training.whatif import customer_whatif, estimate, write_estimate
from vocabulary import numbers

pytestmark = pytest.mark.slow  # a browser per page
PROBLEM = "elderly-hospitalisation"


@pytest.fixture(scope="module")
def scorer():
    return Scorer(make_backend())


@lru_cache(maxsize=1)
def region_estimates() -> dict:
    """The three estimates of the serving region, learned as `evaluate-intervention --store` does."""
    ds = region()
    start, end = span()
    return {name: estimate(trial_rows(ds.events, ds.customers, start, end, iv), iv, dataset_customers=len(ds.customers),
                           dataset_events=len(ds.events), extract_start=start, extract_end=end, bootstrap=100)
            for name, iv in INTERVENTIONS.items()}


@pytest.fixture(scope="module")
def estimates():
    return region_estimates()


@pytest.fixture(scope="module")
def chosen(scorer, estimates):
    """A customer of the elderly problems for whom home rehabilitation's estimate is supported, and
    one for whom it is not because they started it before."""
    time = scorer.backend.history.resolve_time(None)
    ids = members(PROBLEM)
    ds = region()
    rows = customer_covariates(ds.events, ds.customers, np.array(ids), time)
    supported, started = None, None
    for _, row in rows.iterrows():
        found = customer_whatif(estimates["home_rehabilitation"], "home_rehabilitation", row, 0.1, "ADMIT/UNPLANNED", 90)
        if found.supported and supported is None:
            supported = int(row["subject_id"])
        if found.reason == "already_on" and started is None:
            started = int(row["subject_id"])
    assert supported is not None and started is not None
    return supported, started


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_whatif_lines_in_the_browser(tmp_path, scorer, estimates, chosen, lang):
    supported, started = chosen
    time = scorer.backend.history.resolve_time(None)
    page, risks = customer_page(scorer, supported, None, lang, whatif=estimates)
    dom = rendered(tmp_path, "whatif.html", page)
    risk = next(r for r in risks if r.problem == PROBLEM)
    shown = section(dom, PROBLEM)
    items = dict(re.findall(r'<li data-intervention="([a-z_]+)" data-supported="yes">(.*?)</li>', shown, flags=re.S))
    assert "home_rehabilitation" in items
    # the numbers are the estimate carried to this customer's risk on the page
    found = whatifs(estimates, scorer.backend.history.history, supported, time,
                    [Risk(PROBLEM, risk.probability, "ADMIT/UNPLANNED", 90)])[PROBLEM]
    rehab = next(f for f in found if f.intervention == "home_rehabilitation")
    text = text_of(items["home_rehabilitation"])
    e = estimates["home_rehabilitation"]
    assert NAMES[lang]["home_rehabilitation"] in text
    def plain(value: str) -> str:  # as text_of() shows it (no-break spaces collapse)
        return " ".join(value.split())

    assert plain(f"{numbers.percent(risk.probability, lang)} → {numbers.percent(rehab.risk_with, lang)}") in text
    low, high = (plain(numbers.number(100 * v, lang, 2)) for v in (rehab.change_low, rehab.change_high))
    assert plain(numbers.number(abs(100 * rehab.change), lang, 2)) in text and low in text and high in text
    assert plain(numbers.number(e.matched, lang)) in text and f"{e.first_month:%m/%Y}–{e.last_month:%m/%Y}" in text
    if lang == "en":
        assert text.startswith("If home rehabilitation started now: risk ")
        assert "points, 95% interval [" in text
        assert "similar customers who started it in" in text and "who had not yet" in text
    # an estimate that is not supported shows its reason, never a number
    for intervention, body in re.findall(r'<li data-intervention="([a-z_]+)" data-supported="no">(.*?)</li>', shown, flags=re.S):
        assert "→" not in text_of(body) and "%" not in text_of(body), (intervention, body)
    # the problem without an estimate (home-care failure) says so in one line
    other = [r.problem for r in risks if r.problem.endswith("homecare_failure")]
    for problem in other:
        assert 'data-whatif="none"' in section(dom, problem)
    assert problems(readable_text(dom), lang, allow=[str(supported)] + [r.model_version for r in risks]
                    + [r.pipeline_version for r in risks]) == []

    page, _ = customer_page(scorer, started, None, lang, whatif=estimates)
    block = section(rendered(tmp_path, "started.html", page), PROBLEM)
    line = re.search(r'<li data-intervention="home_rehabilitation" data-supported="no">(.*?)</li>', block, flags=re.S)
    assert line and ("aiemmin" if lang == "fi" else "started it before") in text_of(line.group(1))


def test_estimates_of_another_dataset_are_not_shown(scorer, estimates, chosen):
    supported, _ = chosen
    other = {name: e.model_copy(update={"dataset_events": e.dataset_events + 1}) for name, e in estimates.items()}
    page, _ = customer_page(scorer, supported, None, "en", whatif=other)
    block = page[page.index(f'id="whatif-{PROBLEM}"'):]
    assert "it was made from another dataset" in block[: block.index("</div>")]
    assert 'data-supported="yes"' not in page


def test_the_shelf_rereads_changed_estimates(tmp_path, estimates):
    shelf = EstimateShelf(tmp_path / "interventions")
    assert shelf.estimates() == {}
    write_estimate(tmp_path / "interventions", estimates["home_rehabilitation"])
    assert set(shelf.estimates()) == {"home_rehabilitation"}
    changed = estimates["home_rehabilitation"].model_copy(update={"matched": 1_000_000})
    write_estimate(tmp_path / "interventions", changed)
    assert shelf.estimates()["home_rehabilitation"].matched == 1_000_000


def test_a_page_without_stored_estimates_has_no_block(scorer, chosen):
    page, _ = customer_page(scorer, chosen[0], None, "fi")
    assert 'class="whatif"' not in page
    page, _ = customer_page(scorer, chosen[0], None, "fi", whatif={})
    assert "niitä ei ole tallennettu" in page and pd.notna(page)
