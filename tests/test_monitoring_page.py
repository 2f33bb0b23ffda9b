"""The monitoring page as people get it: over HTTP from a real `sote-risk serve` on the serving
region's fixture home, in Finnish and English, admin only, bad input named; and in real headless
Chromium (charts drawn, no console errors, every text piece written the language's way).

What it shows is the record of a monitoring run against a coding change (tests/test_monitoring.py's
`world`: the pinned serving region with care need assessments recorded differently from 2024-07),
so the page has breached months, realised and estimated performance.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tests._forbidden import problems
from tests.test_costs_page import get, pieces
from tests.test_monitoring import PROBLEM, world  # noqa: F401 (the fixture)
from tests.test_page_chromium import readable_text, rendered, run_chromium

pytestmark = pytest.mark.slow  # a service process, a browser
BY_REGION = "acute-hospitalisation"


@pytest.fixture(scope="module")
def record(world):  # noqa: F811 (the imported fixture)
    from training.monitor_run import report_record

    return report_record(world["shifted"], "champion", "run-0")


@pytest.fixture(scope="module")
def live(fixture_home_template, tmp_path_factory, world):  # noqa: F811
    from tests.serving_server import served_copy
    from training.monitor_run import write_latest

    def with_a_monitoring_run(home):
        write_latest(home / "monitoring", world["shifted"], "champion", "run-0")
        # another problem monitored region by region (its records: the two worlds', renamed)
        for region, report in (("north", "quiet"), ("south", "shifted")):
            write_latest(home / "monitoring", replace(world[report], problem=BY_REGION, region=region), "champion", "run-r")

    with served_copy(fixture_home_template, tmp_path_factory.mktemp("monitoring-page") / "home", with_a_monitoring_run) as served:
        yield served


@pytest.mark.parametrize("lang, title, breached, month", [
    ("en", "Model monitoring", "Thresholds breached:", "Aug 2024"),
    ("fi", "Mallin seuranta", "Raja-arvot ylittyivät:", "elo 2024"),
])
def test_monitoring_page_over_http_in_both_languages(live, lang, title, breached, month):
    response = get(live, f"/ui/monitoring/{PROBLEM}?lang={lang}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store" and "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert title in page and breached in page and month in page
    assert len(re.findall(r'<svg[^>]*class="(drift|auroc|observed-expected|slope|alert-rate)"', page)) == 5
    assert 'data-month="2024-08"' in page and 'class="breached"' in page
    assert 'data-feature="assessments_days_since"' in page
    other = "en" if lang == "fi" else "fi"
    assert f'href="{PROBLEM}?lang={other}"' in page


def test_a_problem_monitored_by_region_shows_the_region_with_the_newest_breach_and_links_the_others(live):
    shown = get(live, f"/ui/monitoring/{BY_REGION}?lang=en")
    assert shown.status_code == 200, shown.text[:300]
    page = shown.text
    assert '<p class="lead">Region south. ' in page and "Thresholds breached:" in page
    assert '<strong data-region="south">' in page and f'href="{BY_REGION}?lang=en&amp;region=north" data-region="north"' in page
    assert f'href="{BY_REGION}?lang=fi&amp;region=south"' in page  # the other language keeps the region
    north = get(live, f"/ui/monitoring/{BY_REGION}?lang=fi&region=north").text
    assert '<p class="lead">Alue north. ' in north and "Raja-arvot eivät ylittyneet" in north
    assert 'data-region="south">south</a> <span class="region-breached">(ylitys)</span>' in north


def test_monitoring_page_needs_an_admin_key(live):
    path = f"/ui/monitoring/{PROBLEM}?lang=en"
    assert get(live, path, role=None).status_code == 401
    for role in ("crm", "clinician"):
        refused = get(live, path, role=role)
        assert refused.status_code == 403 and role in refused.json()["detail"]


@pytest.mark.parametrize("path, status, said", [
    ("/ui/monitoring/no-such-problem", 404, "unknown problem"),
    (f"/ui/monitoring/{PROBLEM}?alias=challenger", 404, "no monitoring run"),
    ("/ui/monitoring/children-hospitalisation", 404, "no monitoring run"),
    (f"/ui/monitoring/{PROBLEM}?alias=Bad%20Alias", 400, "alias"),
    (f"/ui/monitoring/{PROBLEM}?lang=sv", 400, "lang"),
    (f"/ui/monitoring/{PROBLEM}?colour=red", 400, "colour"),  # every /ui page refuses parameters it does not take
    (f"/ui/monitoring/{BY_REGION}?region=nowhere", 404, "regions monitored: north, south"),
    (f"/ui/monitoring/{PROBLEM}?region=north", 404, "no region has been monitored"),
    (f"/ui/monitoring/{BY_REGION}?region=..%2Fnorth", 400, "region"),
])
def test_monitoring_page_bad_input_is_named(live, path, status, said):
    response = get(live, path)
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["status"] == status and said in (body["detail"] + str(body.get("field", ""))), body


# --- in a browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(record):
    from serving.monitor_page import monitoring_page

    return {lang: monitoring_page(record, lang) for lang in ("fi", "en")}


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_monitoring_page_in_chromium_draws_its_charts_without_errors(tmp_path, pages, lang):
    dom = rendered(tmp_path, f"monitoring-{lang}.html", pages[lang])  # asserts no console output
    for chart in ("drift", "auroc", "observed-expected", "slope", "alert-rate"):
        assert re.search(rf'<svg[^>]*class="{chart}"', dom), chart
    assert len(re.findall(r'<polyline class="series"', dom)) >= 6
    assert len(re.findall(r'<circle class="breach"', dom)) >= 5 * 5  # 5 breached months on each chart
    assert len(re.findall(r'<rect class="band"', dom)) > 10  # the realised figures' intervals
    found = [problem for piece in pieces(dom) for problem in problems(piece, lang, allow=["AUROC", "PSI"])]
    assert found == []
    text = readable_text(dom)
    assert ("elo 2024" if lang == "fi" else "Aug 2024") in text
    # the coding change said the way a person reads it: the code's own name, its count, the month
    said = {"fi": "äkillinen muutos kirjaamisessa: Hoidon tarpeen arviointi (terveydenhuolto), 0 kirjausta (heinä 2024)",
            "en": "a step in recording: Care need assessment (health care) recorded 0 times in Jul 2024"}[lang]
    assert said in " ".join(text.split())


def test_monitoring_page_screenshot_is_not_blank(tmp_path, pages):
    path = tmp_path / "monitoring.html"
    path.write_text(pages["en"], encoding="utf-8")
    shot = tmp_path / "monitoring.png"
    result = run_chromium(tmp_path, path.as_uri(), f"--screenshot={shot}", "--window-size=1100,2400")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.std() > 0.05
    red = ((pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)).sum()
    assert red > 100  # the breached months' marks


def test_a_sustained_calibration_breach_is_said_in_both_languages_with_its_month_count():
    from serving.monitor_page import _breach_text
    from training.spec import Monitoring

    month = {"month": "2026-05-01", "breach_kinds": "oe_sustained", "observed_expected": 1.17}
    thresholds = Monitoring().model_dump(mode="json")
    assert "3 complete months in a row" in _breach_text(month, thresholds, "en")
    assert "3 täyttä kuukautta peräkkäin" in _breach_text(month, thresholds, "fi")
    del thresholds["oe_sustained_months"]  # a record stored before the rule: the default count is said
    assert "3 complete months in a row" in _breach_text(month, thresholds, "en")
    assert "1.17" in _breach_text(month, thresholds, "en") and "1,17" in _breach_text(month, thresholds, "fi")
