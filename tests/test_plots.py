"""The clinician page's charts: the waterfall ends at the risk the page shows, and the trend says
why months are missing."""

from __future__ import annotations

import re

import numpy as np
import pytest

from explain.plots import trend_svg, waterfall_rows, waterfall_svg
from vocabulary import numbers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def explained():
    from scoring.scorer import Scorer
    from tests.serving_fixture import make_backend, members

    scorer = Scorer(make_backend())
    out = []
    for problem in ("elderly-hospitalisation", "acute-hospitalisation", "elderly-homecare_failure"):
        for subject in members(problem, limit=15):
            out.append((scorer.champion(problem), scorer.explain(subject, problem, None)))
    return out


def test_the_waterfall_walks_from_the_average_to_the_shown_risk(explained):
    """Every step starts where the previous ended, each step's change is the change in the
    calibrated probability, and the last bar is the probability the page shows (bit for bit)."""
    for champion, item in explained:
        rows = waterfall_rows(item, champion.model.calibrator.transform, "en", item.probability)
        assert rows[-1][2] == item.probability
        assert rows[0][2] == float(champion.model.calibrator.transform(np.array([item.base_value]))[0])
        for previous, row in zip(rows[:-1], rows[1:-1]):
            assert row[1] == previous[2]
        assert rows[-2][2] == item.probability
        # the positions are the contributions added in turn: before the last step the calibrated
        # sum is the shown probability up to the contributions' rounding
        assert float(champion.model.calibrator.transform(np.array([item.raw_score]))[0]) == pytest.approx(item.probability, abs=1e-9)
        for _, start, end, kind in rows[1:-1]:
            assert kind == ("up" if end > start else "down" if end < start else "none")


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_the_waterfall_labels_are_percentages_in_the_language(explained, lang):
    champion, item = explained[0]
    svg = waterfall_svg(item, champion.model.calibrator.transform, item.probability, lang)
    values = re.findall(r'<text class="value"[^>]*>([^<]+)</text>', svg)
    assert values[-1] == numbers.percent(item.probability, lang).replace("\u00a0", "\u00a0")
    unit = "%-yks." if lang == "fi" else "pp"
    assert all(v.endswith(unit) for v in values[1:-1]) and "log-odds" not in svg


def test_trend_marks_each_missing_month_with_its_reason_and_keeps_the_last_label():
    points = [("01/24", 0.1, None), ("02/24", None, "not_eligible"), ("03/24", None, "outside"), ("04/24", 0.3, None)]
    words = {"outside": "outside the group", "not_eligible": "in hospital"}
    svg = trend_svg(points, (0.1, 0.25, 0.5), "title", words, "en")
    assert re.findall(r'class="gap" data-why="([a-z_]+)"', svg) == ["not_eligible", "outside"]
    assert re.findall(r'class="gap-legend"[^>]*>([^<]+)<', svg) == ["in hospital", "outside the group"]
    last = re.findall(r'<text x="[^"]+" y="[^"]+" text-anchor="(\w+)" fill="#555">04/24</text>', svg)
    assert last == ["end"]  # drawn inside the chart, not cut at its edge
    assert "30.0%" in svg and "\u00a0%" in trend_svg(points, (0.1, 0.25, 0.5), "t", words, "fi")


def test_model_card_summaries_drawn_at_once_in_threads_do_not_draw_on_each_other():
    """The service renders model cards in a thread pool; pyplot's current figure is one per
    process, and two cards at once failed with a 500 (found by the parallel schemathesis runs)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pandas as pd

    from explain.plots import shap_summary_svg

    rng = np.random.default_rng(3)
    features = pd.DataFrame(rng.normal(size=(300, 6)), columns=[f"f{i}" for i in range(6)])
    contributions = pd.DataFrame(rng.normal(size=(300, 6)), columns=features.columns).assign(bias=0.1)
    with ThreadPoolExecutor(8) as pool:
        drawn = list(pool.map(lambda _: shap_summary_svg(contributions, features), range(24)))
    assert all(svg.startswith("<svg") and svg.count("<svg") == 1 for svg in drawn)
    assert len({svg.count("<path") for svg in drawn}) == 1  # each the same picture, none with another's marks
