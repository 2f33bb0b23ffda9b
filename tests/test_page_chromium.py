"""The clinician page and model card rendered in real headless Chromium (Debian's package).

The page is rendered by serving/pages.py, the code the service's /ui route calls (the route
itself is exercised over HTTP in test_serving_http.py); here a real browser must show the
reasons, the band and both charts, in Finnish and English, without console errors.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from serving.pages import customer_page, model_card
from scoring.scorer import Scorer, card_sample
from tests.serving_fixture import END, make_backend, shared_fixture

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:  # CI installs it (.ci/run); a missing browser is a failure, not a skip
        pytest.fail("chromium not found: apt-get install -y chromium")
    return found


def run_chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True, text=True, timeout=60, check=False,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def scorer():
    events, customers, models = shared_fixture()
    return Scorer(make_backend(events, customers, models))


@pytest.fixture(scope="module")
def subject(scorer):
    """A customer with a risk-raising reason that suggests a chain."""
    _, results = scorer.score_customers(list(range(1, 120)), None, 5)
    for item in results:
        if any(r.band in ("high", "very_high") for r in item.risks):
            return item.customer_id
    pytest.fail("fixture has no high-risk customer")


@pytest.mark.parametrize("lang, words", [("en", ("Main reasons", "emergency visits in the last 90 days")),
                                         ("fi", ("Tärkeimmät syyt", "päivystyskäyntiä viimeisen 90 päivän aikana"))])
def test_page_shows_reasons_band_and_charts_in_chromium(tmp_path, scorer, subject, lang, words):
    html, risks = customer_page(scorer, subject, None, lang)
    page = tmp_path / f"customer-{lang}.html"
    page.write_text(html, encoding="utf-8")
    result = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert console_messages(result.stderr) == []
    for word in words:
        assert word in dom
    sections = re.findall(r'<section class="risk" id="risk-([a-z_-]+)"', dom)
    assert sections == [r.problem for r in risks] and sections
    for risk in risks:
        assert f'data-band="{risk.band}"' in dom
        assert f"v{risk.model_version}" in dom and f"/ui/model_card/{risk.problem}" in dom
    assert dom.count('class="waterfall"') == len(risks) and dom.count('class="trend"') == len(risks)
    assert 'class="reason up"' in dom


def test_page_screenshot_is_not_blank(tmp_path, scorer, subject):
    html, _ = customer_page(scorer, subject, None, "en")
    page = tmp_path / "customer.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "page.png"
    result = run_chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1100,1600")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.std() > 0.05  # text, badges and bars, not an empty page
    red = ((pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.4) & (pixels[..., 2] < 0.4)).sum()
    assert red > 200  # the risk-raising bars and reasons are drawn in red


def test_console_errors_would_be_caught(tmp_path):
    """Oracle for the check above: a page with a script error does produce console lines."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>undefinedFunction()</script></body></html>")
    result = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert any("undefinedFunction" in line for line in console_messages(result.stderr))


def test_model_card_renders_with_shap_summary(tmp_path, scorer):
    sample = card_sample(scorer, "elderly-hospitalisation", 60)
    html = model_card(scorer, "elderly-hospitalisation", "en", sample)
    page = tmp_path / "card.html"
    page.write_text(html, encoding="utf-8")
    result = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console_messages(result.stderr) == []
    assert "What the model relies on" in result.stdout and "er_visits_90d" in result.stdout
    assert "<svg" in result.stdout and pd.Timestamp(END).year == 2024
