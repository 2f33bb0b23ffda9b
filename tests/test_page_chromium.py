"""The clinician page and model card rendered in real headless Chromium (Debian's package).

The page is rendered by serving/pages.py, the code the service's /ui route calls (the route
itself is exercised over HTTP in test_serving_http.py), for a real customer of the test region
(tests/serving_fixture.py: the real feature pipeline and the pinned champions). A real browser
must show the band, the reasons the scoring path gives, the suggested chains and both charts, in
Finnish and English, without console errors.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest


from explain.chains import suggest_chains
from features.catalogue import BACKGROUND_FAMILIES
from scoring.scorer import Scorer
from vocabulary import numbers
from serving.model_card import model_card
from serving.pages import customer_page
from tests._forbidden import problems
from tests.serving_fixture import make_backend, members
from vocabulary import vocabulary

pytestmark = pytest.mark.slow  # a browser per test, on a region built on the real feature pipeline

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
]
TOP_K = 5  # what customer_page shows
HIGH = ("high", "very_high")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:  # CI installs it (.ci/run); a missing browser is a failure, not a skip
        pytest.fail("chromium not found: apt-get install -y chromium")
    return found


def run_chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True, text=True, timeout=120, check=False,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def rendered(tmp_path: Path, name: str, page: str) -> str:
    """The DOM Chromium builds from the page (no console output allowed)."""
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    result = run_chromium(tmp_path, path.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    return result.stdout


def section(dom: str, problem: str) -> str:
    start = dom.index(f'id="risk-{problem}"')
    return dom[start: dom.index("</section>", start)]


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def readable_text(dom: str) -> str:
    """The text a person reads, as the browser lays it out: no style or script, cells and items
    apart, entities resolved, no-break spaces kept (they are how Finnish groups digits)."""
    shown = re.sub(r"<(style|script)\b.*?</\1>", "", dom, flags=re.S)
    shown = re.sub(r"<(?:td|th|li|p|h[1-6]|tr|figcaption|nav)\b", lambda m: " " + m.group(), shown)
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", "", shown))).strip()


@pytest.fixture(scope="module")
def scorer():
    return Scorer(make_backend())


@pytest.fixture(scope="module")
def subject(scorer):
    """The highest-risk customer of the region (at the end of the data) who is scored for more than
    one problem, in a high band for one, with reasons both ways and a suggested service chain."""
    ids = sorted(set().union(*(members(p) for p in scorer.champions)))
    _, results = scorer.score_customers(ids, None, TOP_K)
    found = [
        item for item in results
        if len(item.risks) >= 2 and any(r.band in HIGH for r in item.risks)
        and {x.direction for r in item.risks for x in r.reasons} == {"up", "down"}
        and any(suggest_chains(r.reasons) for r in item.risks)
    ]
    assert found, "the test region has no customer to show"
    return max(found, key=lambda item: (max(r.probability for r in item.risks), -item.customer_id)).customer_id


@pytest.mark.parametrize("lang, heading, title", [("en", "Main reasons", "Risk summary for customer"),
                                                  ("fi", "Tärkeimmät syyt", "Riskiyhteenveto asiakkaalle")])
def test_page_shows_band_reasons_chains_and_charts_in_chromium(tmp_path, scorer, subject, lang, heading, title):
    page, risks = customer_page(scorer, subject, None, lang)
    dom = rendered(tmp_path, f"customer-{lang}.html", page)
    assert f"{title} {subject}" in text_of(dom)
    sections = re.findall(r'<section class="risk" id="risk-([a-z_-]+)"', dom)
    assert sections == [r.problem for r in risks] and len(sections) >= 2
    ups = downs = 0
    for risk in risks:
        shown, words = section(dom, risk.problem), vocabulary()
        visible = text_of(shown)
        assert f'data-band="{risk.band}"' in shown and words.band_label(risk.band, lang) in visible
        assert words.problem_label(risk.problem, lang) in visible and heading in visible
        # the reasons are the ones /explain gives for this customer and problem, in order
        reasons = scorer.explain(subject, risk.problem, None).reasons[:TOP_K]
        items = re.findall(r'<li class="reason (up|down)">(.*?)</li>', shown, flags=re.S)
        assert [d for d, _ in items] == [r.direction for r in reasons]
        for (_, item), reason in zip(items, reasons):
            label, text = (reason.label_fi, reason.text_fi) if lang == "fi" else (reason.label_en, reason.text_en)
            assert " ".join(f"{label}: {text}".split()) in text_of(item)  # no-break spaces collapse as shown
        ups += sum(d == "up" for d, _ in items)
        downs += sum(d == "down" for d, _ in items)
        assert re.findall(r'data-chain="([a-z_]+)"', shown) == [c.chain for c in suggest_chains(reasons)]
        # both charts, drawn by the browser as SVG
        assert len(re.findall(r'<svg[^>]*class="trend"', shown)) == 1
        assert len(re.findall(r'<svg[^>]*class="waterfall"', shown)) == 1 and 'class="bar ' in shown
        # the chart ends at the risk the page shows (the probability scale, not log-odds)
        waterfall = shown[shown.index('class="waterfall"'):]
        values = re.findall(r'<text class="value"[^>]*>([^<]+)</text>', waterfall[: waterfall.index("</svg>")])
        assert html.unescape(values[-1]) == numbers.percent(risk.probability, lang)
        assert words.meaning(risk.problem, lang) in visible
        # age, sex, municipality, language and costs: never a reason, shown as background
        background = scorer.explain(subject, risk.problem, None).context
        assert background and not {r.family for r in reasons} & BACKGROUND_FAMILIES
        assert re.findall(r'<ul class="context">.*?</ul>', shown, flags=re.S)
        assert re.findall(r'<li data-family="([a-z_]+)">', shown) == [r.family for r in background]
        for item in background:
            marker = "taustatekijä" if lang == "fi" else "context"
            assert f"{item.label_fi if lang == 'fi' else item.label_en} ({marker})" in waterfall
        # the model card link is relative to the page (/ui/customers/<id>), so it opens on any address
        assert f"v{risk.model_version}" in visible and f'href="../model_card/{risk.problem}?lang={lang}"' in shown
    assert ups and downs and any(r.band in HIGH for r in risks)
    # all the text a person reads, charts included: no forbidden pattern, no English in Finnish
    allow = [str(subject)] + [r.model_version for r in risks] + [r.pipeline_version for r in risks]
    assert problems(readable_text(dom), lang, allow=allow) == []


def test_page_screenshot_is_not_blank(tmp_path, scorer, subject):
    page, risks = customer_page(scorer, subject, None, "en")
    path = tmp_path / "customer.html"
    path.write_text(page, encoding="utf-8")
    shot = tmp_path / "page.png"
    result = run_chromium(tmp_path, path.as_uri(), f"--screenshot={shot}", "--window-size=1100,1600")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # text, badges and bars, not an empty page
    red = ((pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.4) & (pixels[..., 2] < 0.4)).sum()
    assert red > 200  # the high band's badge and the risk-raising reasons and bars are drawn in red


def test_console_errors_would_be_caught(tmp_path):
    """Oracle for the check above: a page with a script error does produce console lines."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>undefinedFunction()</script></body></html>")
    result = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert any("undefinedFunction" in line for line in console_messages(result.stderr))


CARD_METRICS = {"test_auroc": 0.7634, "test_auroc_ci_low": 0.7512, "test_auroc_ci_high": 0.7751, "baseline_auroc": 0.7171,
                "gain_over_baseline": 0.0463, "gain_over_baseline_ci_low": 0.0391, "gain_over_baseline_ci_high": 0.0533,
                "test_ece": 0.0021, "test_ece_ci_low": 0.0017, "test_ece_ci_high": 0.0049, "test_alerts_per_1000_per_month": 11.9,
                "test_ppv": 0.215, "test_sensitivity": 0.331, "test_median_lead_days": 38.0, "test_rows": 45578.0,
                "test_customers": 9120.0, "test_events": 1206.0, "test_calibration_slope": 0.94,
                "test_calibration_slope_ci_low": 0.87, "test_calibration_slope_ci_high": 1.02}
# no observed/expected: a version trained before it was computed; its lead time is the row-level
# one of those versions, which the card does not show as the per-customer figure it now says


@pytest.fixture(scope="module")
def carded():
    """A scorer whose elderly-hospitalisation champion carries what training and promotion write:
    test metrics in its metadata, and registry tags of a forced promotion with flagged subgroups."""
    from scoring.backend import Backend
    from scoring.champions import Gate, champion_from_model
    from tests.serving_fixture import models, store

    chosen = models()
    model = chosen["elderly-hospitalisation"]
    from training.spec import load_spec

    model.spec = load_spec("elderly-hospitalisation").as_dict()  # as a model trained on today's spec carries it
    model.metadata["metrics"] = dict(CARD_METRICS)
    model.metadata["periods"] = ["train [2022-01-01, 2023-04-01)", "validation [2023-08-01, 2024-02-01)",
                                 "test [2024-06-01, 2024-12-01)"]
    tags = {"promoted_at": "2026-12-06T05:00:00+00:00", "promotion_forced": "true",
            "promotion_forced_reasons": "test_auroc 0.6190 does not beat the baseline's 0.6498",
            "subgroup_flagged": "municipality=Luumäki:calibration (O/E 1.91; 1,204 rows, 41 events)"}
    champions = {p: champion_from_model(p, m, gate=Gate("passed")) for p, m in chosen.items()}
    champions["elderly-hospitalisation"] = champion_from_model("elderly-hospitalisation", model, gate=Gate(
        "forced", ("test_auroc 0.6190 does not beat the baseline's 0.6498",)), tags=tags)
    held = store()
    return Scorer(Backend(champions, lambda: held))


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_a_forced_models_risk_is_flagged_on_the_page_and_a_passed_ones_is_not(tmp_path, carded, lang):
    """A customer scored by the forced elderly model and a model that passed: in the browser, the
    forced one's section opens with the warning (its label and the failed gate in the language),
    the passed one's has none."""
    from vocabulary.gates import gate_reason

    forced = "elderly-hospitalisation"
    both = [s for s in members(forced) if len(carded.score_customer(s, None, 0).risks) >= 2]
    assert both, "no customer of the test region is scored for the forced problem and another"
    page, risks = customer_page(carded, both[0], None, lang)
    dom = rendered(tmp_path, f"forced-{lang}.html", page)
    for risk in risks:
        shown = section(dom, risk.problem)
        banners = re.findall(r'<p class="gate gate-(\w+)" role="alert" data-gate="\w+">(.*?)</p>', shown, flags=re.S)
        if risk.problem == forced:
            assert [status for status, _ in banners] == ["forced"]
            text = text_of(banners[0][1])
            assert vocabulary().gate_label("forced", lang) in text
            assert gate_reason("test_auroc 0.6190 does not beat the baseline's 0.6498", lang) in text
            assert shown.index('data-gate="forced"') < shown.index('class="probability"')  # before the figure
        else:
            assert banners == [] and risk.gate.status == "passed"


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_model_card_a_clinician_can_read(tmp_path, carded, lang):
    """The served card in each language: status with the gates it failed, intended use, who is
    scored, what the probability means, performance with intervals (and 'not computed' where the
    version has no figure), the subgroup rule with the spec's numbers, the flagged group, and the
    importance table in words; no English left on the Finnish card."""
    from explain.plots import mean_abs_importance
    from serving.model_card import WORDS
    from vocabulary import vocabulary

    problem = "elderly-hospitalisation"
    sample = carded.card_sample(problem, 60)
    assert sample is not None and 0 < len(sample[0]) <= 60
    dom = rendered(tmp_path, f"card-{lang}.html", model_card(carded, problem, lang, sample))
    visible = text_of(dom)
    t, words = WORDS[lang], vocabulary()
    spec = carded.champion(problem).model.spec
    failed = {"en": "Test-period AUROC 0.6190 does not beat the simple baseline's 0.6498",
              "fi": "Testijakson AUROC 0,6190 ei ylitä yksinkertaisen vertailumallin arvoa 0,6498"}[lang]
    assert words.gate_label("forced", lang) in visible and failed in visible
    assert (spec["intended_use_fi"] if lang == "fi" else spec["intended_use"]) in visible
    assert words.meaning(problem, lang) in visible and words.segment("elderly").description(lang) in visible
    auroc = f"{numbers.number(0.7634, lang, 3)} ({t['interval']} {numbers.number(0.7512, lang, 3)}–{numbers.number(0.7751, lang, 3)})"
    seen = lambda text: " ".join(text.split())  # noqa: E731 (how text_of collapses spaces, no-break ones too)
    assert seen(auroc) in visible and f"+{numbers.number(0.0463, lang, 3)}" in visible
    assert t["not_computed"] in visible  # observed/expected: not in this version's metrics
    table = {text_of(what): text_of(value) for what, value in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", dom, flags=re.S)}
    slope = f"{numbers.number(0.94, lang, 2)} ({t['interval']} {numbers.number(0.87, lang, 2)}–{numbers.number(1.02, lang, 2)})"
    assert table[seen(t["slope"])] == seen(f"{slope} · {t['slope_note']}")
    assert table[seen(t["lead"])] == t["not_computed"]  # per customer: not in this version's metrics
    assert seen(numbers.number(45578, lang)) in visible and seen(numbers.percent(0.215, lang)) in visible
    gates = spec["gates"]
    assert seen(t["subgroup_rule"].format(rows=numbers.number(gates["min_subgroup_rows"], lang),
                                          events=numbers.number(gates["min_subgroup_events"], lang),
                                          auroc=numbers.number(gates["subgroup_auroc_tolerance"], lang, 2),
                                          oe=numbers.number(gates["subgroup_oe_tolerance"], lang, 2))) in visible
    flagged = {"en": "Municipality Luumäki: calibration (O/E 1.91; 1,204 rows, 41 outcomes)",
               "fi": "Kunta Luumäki: kalibraatio (O/E 1,91; 1 204 riviä, 41 tapahtumaa)"}[lang]
    assert flagged in visible
    top = list(mean_abs_importance(sample[0]).index[:5])
    listed = re.findall(r'<tr data-feature="([a-z0-9_]+)">', dom)
    assert listed[:5] == top  # the table follows the sample's mean |SHAP|, described in the language
    from features.catalogue import feature_info

    for name in top:
        info = feature_info(name)
        assert (info.description_fi if lang == "fi" else info.description_en) in visible
    assert re.search(r'<figure class="summary">\s*<svg', dom)  # shap's beeswarm, inline
    # what a person reads (the chart's own SVG text is shap's, feature names on its axis): no
    # forbidden pattern, no English word on the Finnish card, no feature or problem identifier
    champion = carded.champion(problem)
    readable = readable_text(re.sub(r'<figure class="summary">.*?</figure>', "", dom, flags=re.S))
    assert problems(readable, lang, allow=[champion.version, champion.model.pipeline_version[:16]]) == []
    assert problem not in readable and not [name for name in top if name in readable]
    if lang == "fi":
        finnish = re.sub(r"\{[a-z_]+\}", "", " ".join(WORDS["fi"].values()))  # placeholders are no words
        english = set(re.findall(r"[A-Za-z]{4,}", " ".join(WORDS["en"].values()))) - {"AUROC"}
        assert not [w for w in re.findall(r"[A-Za-z]{4,}", finnish) if w in english]


def test_the_test_period_reads_as_dates_with_its_last_day():
    from serving.model_card import _test_period

    assert _test_period(["train [2022-01-01, 2025-01-01)", "test [2026-02-01, 2026-08-01)"]) == "2026-02-01 – 2026-07-31"
    assert _test_period(["test something else"]) == "something else"  # shown as recorded, not lost
    assert _test_period(None) is None and _test_period([]) is None
