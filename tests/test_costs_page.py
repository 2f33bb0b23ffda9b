"""The segment cost page as people get it: over HTTP from a real `sote-risk serve` on the serving
region's fixture home (tests/serving_fixture.py), in Finnish and English, admin only; and in real
headless Chromium (no console errors, charts drawn, a screenshot that is not blank).

The page names no customer, so it is not audited per customer; the guard asks for an admin key.
"""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests._forbidden import problems
from tests.test_page_chromium import console_messages, readable_text, rendered, run_chromium

pytestmark = pytest.mark.slow  # a service process, a browser


@pytest.fixture(scope="module")
def live(fixture_home_template, tmp_path_factory):
    from tests.serving_server import served_copy

    with served_copy(fixture_home_template, tmp_path_factory.mktemp("costs-page") / "home") as served:
        yield served


def get(live, path: str, role: str | None = "admin") -> httpx.Response:
    client, keys, _ = live
    return client.get(path, headers={"Authorization": f"Bearer {keys[role]}"} if role else {})


@pytest.mark.parametrize("lang, title, heading, group", [
    ("en", "Costs by customer segment", "Cost per customer-day by model of service production", "heart failure patients aged 50-65"),
    ("fi", "Kustannukset asiakassegmenteittäin", "Asiakaspäivän hinta palvelujen tuotantomalleittain",
     "50–65-vuotiaat sydämen vajaatoimintapotilaat"),
])
def test_cost_page_over_http_in_both_languages(live, lang, title, heading, group):
    response = get(live, f"/ui/costs?lang={lang}&group=heart-failure-50-65")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store" and "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert title in page and heading in page and group in page
    assert len(re.findall(r'<svg[^>]*class="(segment-areas|concentration|production)"', page)) == 4  # the group's bars too
    assert re.findall(r'<tr data-row="([a-z]+)">', page) == ["all", "elderly", "children", "acute", "depression", "none"]
    assert 'data-group="heart-failure-50-65"' in page and f'href="costs.csv?lang={lang}&amp;year=' in page
    # no customer on the page: its reads leave no per-customer audit row
    import sqlite3

    with sqlite3.connect(live[2] / "audit.db") as db:
        endpoints = {row[0] for row in db.execute("select endpoint from audit")} if db.execute(
            "select name from sqlite_master where name='audit'").fetchone() else set()
    assert not any("cost" in e for e in endpoints)


def test_cost_page_and_csv_need_an_admin_key(live):
    for path in ("/ui/costs?lang=en", "/ui/costs.csv"):
        assert get(live, path, role=None).status_code == 401
        for role in ("crm", "clinician"):
            refused = get(live, path, role=role)
            assert refused.status_code == 403 and role in refused.json()["detail"]


def test_csv_export_is_the_cost_view(live):
    import io

    import pandas as pd

    response = get(live, "/ui/costs.csv?group=heart-failure-50-65")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = pd.read_csv(io.StringIO(response.text))
    total = table[(table["table"] == "segments") & (table["row"] == "all") & (table["measure"] == "cost_eur")]["value"]
    assert len(total) == 1 and total.iloc[0] > 0 and (table["row"] == "group").any()


@pytest.mark.parametrize("query, status, field", [
    ("group=no-such-group", 404, "group"), ("codes=ICD10/I99", 422, "codes"), ("age=50_65", 422, "age"),
    ("segment=teens", 422, "segment"), ("year=2031", 422, "year"), ("year=abc", 400, "year"),
    ("year=1900&colour=red", 400, "colour"),  # a parameter the schema has no room for: 400 before any rule
])
def test_cost_page_bad_input_names_the_parameter(live, query, status, field):
    for path in ("/ui/costs", "/ui/costs.csv"):
        response = get(live, f"{path}?{query}")
        assert response.status_code == status, (path, response.text[:300])
        body = response.json()
        assert body["status"] == status and (body.get("field") == field or field in body["detail"]), body


# --- in a browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages():
    """The page in both languages for the serving region, rendered by the route's own code."""
    from costs import cost_view, make_group
    from serving.cost_page import cost_page
    from tests.serving_fixture import store

    held = store()
    view = cost_view(held.history, held.start, held.end, None, make_group(group="heart-failure"))
    return {lang: cost_page(view, lang, (held.start, held.end), "heart-failure") for lang in ("fi", "en")}


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_cost_page_in_chromium_draws_its_charts_without_errors(tmp_path, pages, lang):
    dom = rendered(tmp_path, f"costs-{lang}.html", pages[lang])  # asserts no console output
    assert len(re.findall(r'<svg[^>]*class="segment-areas"', dom)) == 2  # the region's and the group's
    assert len(re.findall(r'<rect class="bar"', dom)) > 10 and 'class="curve"' in dom
    assert len(re.findall(r'<circle class="top" data-top="(1|5|10)"', dom)) == 3
    found = [problem for piece in pieces(dom) for problem in problems(piece, lang, allow=[])]
    assert found == []
    assert "2022" in readable_text(dom)  # the year links


def pieces(dom: str) -> list[str]:
    """Every text node a person reads by itself: a table cell, a chart's label or tooltip, a
    sentence (numbers in neighbouring cells or bars are not "two numbers side by side"), entities
    resolved and no-break spaces kept."""
    shown = re.sub(r"<(style|script)\b.*?</\1>", "", dom, flags=re.S)
    out = [re.sub(r"[ \t\r\n]+", " ", html.unescape(text)).strip() for text in re.findall(r">([^<>]+)<", shown)]
    return [text for text in out if text]


def test_cost_page_screenshot_is_not_blank(tmp_path, pages):
    path = tmp_path / "costs.html"
    path.write_text(pages["en"], encoding="utf-8")
    shot = tmp_path / "costs.png"
    result = run_chromium(tmp_path, path.as_uri(), f"--screenshot={shot}", "--window-size=1100,2400")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.std() > 0.05
    red = ((pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)).sum()
    assert red > 500  # hospital care's share of the bars and the concentration curve's marks are red
