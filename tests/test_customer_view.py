"""The coordinator's customer view (/ui/customers/{id}): the timeline over a span, services running
now, risks over the span, alerts with their CRM feedback.

In-process on the serving region (tests/serving_fixture.py: the real feature pipeline and the
pinned champions), the timeline's marks are checked against a naive count of the customer's events
in the span, lane by lane; over HTTP from a real `sote-risk serve` on the fixture home, in Finnish
and English, for customers picked from the data by their events, with an alert and its feedback
in the outbox; bad spans named; every read audited once, as before.
"""

from __future__ import annotations

import html
import re
import shutil
import sqlite3

import httpx
import pandas as pd
import pytest

from explain.timeline import LANES, customer_timeline, lane_codes, lane_of_code
from features.history import code_list
from serving.auth import create_key
from tests.serving_fixture import region, store

ELDERLY = "elderly-hospitalisation"


def span_of(months: int = 24) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = store().resolve_time(None)
    return end - pd.DateOffset(months=months), end


def events_in_span(months: int = 24) -> pd.DataFrame:
    start, end = span_of(months)
    events = region().events
    return events[(events["time"] >= start) & (events["time"] <= end)]


def naive_lane_counts(subject: int, months: int = 24) -> dict[str, int]:
    mine = events_in_span(months)
    mine = mine[mine["subject_id"] == subject]
    return {lane.key: int(mine["code"].isin(lane_codes(lane.key)).sum()) for lane in LANES}


def customer_with(*prefixes: str, months: int = 24) -> int:
    """The customer with the most events in the span among those with an event of every prefix."""
    events = events_in_span(months)
    chosen = None
    for prefix in prefixes:
        have = set(events.loc[events["code"].str.startswith(prefix), "subject_id"])
        chosen = have if chosen is None else chosen & have
    assert chosen, f"no customer of the test region has {prefixes} in the span"
    counts = events[events["subject_id"].isin(chosen)].groupby("subject_id").size()
    return int(counts.idxmax())


def test_every_catalogue_code_is_on_exactly_one_lane():
    assert (lane_of_code() >= 0).all()
    listed = [code for lane in LANES for code in lane_codes(lane.key)]
    assert sorted(listed) == sorted(code_list())


def test_marks_equal_a_naive_count_of_the_customers_events_in_the_span():
    """Every lane of 300 customers with events in the span: the marks' events add up to the plain
    count of the lane's codes in [start, end]; a stay is one bar per stay that overlaps the span."""
    start, end = span_of()
    held = store()
    subjects = sorted(set(events_in_span()["subject_id"]))[:300]
    for subject in subjects:
        timeline = customer_timeline(held.history, subject, start, end, held.start)
        naive = naive_lane_counts(subject)
        assert {k: timeline.events_in(k) for k in naive} == naive, subject
        assert set(timeline.lanes) <= {k for k, v in naive.items() if v} | {"homecare", "remote", "medrobot", "rehab", "care24h",
                                                                           "child_welfare", "hospital"}
    subject = customer_with("ADMIT/")
    events = region().events
    mine = events[events["subject_id"] == subject].sort_values("time")
    admits = mine[mine["code"].str.startswith("ADMIT/")]["time"].tolist()
    discharges = mine[mine["code"] == "DISCHARGE"]["time"].tolist()
    stays = [(a, next((d for d in discharges if d >= a), None)) for a in admits]
    overlapping = [s for s in stays if s[0] <= end and (s[1] is None or s[1] >= start)]
    bars = customer_timeline(held.history, subject, start, end, held.start).lanes["hospital"]
    assert len(bars) == len(overlapping) and all(b.kind == "period" for b in bars)


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_a_service_running_since_before_the_span_is_drawn_without_a_zero_count(lang):
    """A medication robot or remote visits started before the span and still running: the lane
    shows the bar across the span, and its label says no count (it has no event in the span)
    rather than "(0)", which would read as "nothing here"."""
    from explain.timeline_svg import timeline_svg

    start, end = span_of()
    held = store()
    events = region().events
    exits = set(events.loc[events["code"].isin(["DEATH", "MOVE/OUT", "CARE24H/START"]) & (events["time"] <= end),
                           "subject_id"])
    found = []
    for code, lane in (("MEDROBOT/START", "medrobot"), ("REMOTE/START", "remote")):
        started = set(events.loc[(events["code"] == code) & (events["time"] < start), "subject_id"])
        in_span = set(events_in_span().loc[events_in_span()["code"].isin(lane_codes(lane)), "subject_id"])
        found += [(s, lane) for s in sorted(started - exits - in_span)[:3]]
    assert found, "the test region has no service running since before the span"
    for subject, lane in found:
        timeline = customer_timeline(held.history, subject, start, end, held.start)
        assert timeline.lanes[lane] and timeline.events_in(lane) == 0, (subject, lane)
        svg = timeline_svg(timeline, [], [], lang)
        label = re.search(rf'<g class="lane" data-lane="{lane}"><rect[^>]*/>\s*<text[^>]*>([^<]*)(<tspan[^<]*</tspan>)?</text>',
                          svg)
        assert label and label.group(1) and label.group(2) is None, (subject, lane, label and label.group(0))


# --- over HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(fixture_home_template, tmp_path_factory):
    from alerts import outbox
    from alerts.feedback import record_feedback
    from tests.serving_server import start_service
    from tests.test_serving_http import record_sent_alerts
    from tests.serving_fixture import members

    home = tmp_path_factory.mktemp("customer-view") / "home"
    shutil.copytree(fixture_home_template, home)
    keys = {role: create_key(home / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    alerted = members(ELDERLY)[1:4]  # as test_serving_http's cards: members scored above the (tiny) threshold
    cards = record_sent_alerts(home / "outbox.db", alerted)
    conn = outbox.connect(home / "outbox.db")
    try:
        record_feedback(conn, cards[0], {"card": cards[0], "outcome": "accepted", "outcomeTimestamp": "2025-01-03T08:00:00Z"})
        record_feedback(conn, cards[1], {"card": cards[1], "outcome": "overridden", "outcomeTimestamp": "2025-01-03T09:00:00Z",
                                         "overrideReason": {"reason": {"code": "already-known", "display": "Already known"}}})
    finally:
        conn.close()
    service = start_service(home)
    client = httpx.Client(base_url=service.url, timeout=120)
    try:
        yield client, keys, home, dict(zip(alerted, cards))
    finally:
        client.close()
        service.stop()


def get(live, path: str, role: str = "clinician") -> httpx.Response:
    client, keys, _, _ = live
    return client.get(path, headers={"Authorization": f"Bearer {keys[role]}"})


def lane_events(page: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for lane, events in re.findall(r'<[a-z]+ class="mark [a-z]+" data-lane="([a-z_0-9]+)" data-events="(\d+)"', page):
        found[lane] = found.get(lane, 0) + int(events)
    return found


@pytest.mark.parametrize("prefixes", [("ENC/EMERGENCY", "ADMIT/", "HOMECARE/VISIT"), ("IOT/", "RAI/", "MEDROBOT/"),
                                      ("PHQ9", "MED/"), ("CHILDWELFARE/",), ("REMOTE/VIDEO_VISIT",)])
@pytest.mark.parametrize("lang", ["en", "fi"])
def test_lanes_and_marks_over_http_equal_the_data(live, prefixes, lang):
    subject = customer_with(*prefixes)
    response = get(live, f"/ui/customers/{subject}?lang={lang}")
    assert response.status_code == 200, response.text[:300]
    page = response.text
    assert len(re.findall(r'<svg[^>]*class="timeline"', page)) == 1
    drawn = re.findall(r'<g class="lane" data-lane="([a-z_0-9-]+)"', page)
    naive = naive_lane_counts(subject)
    expected = {LANES[lane_of_code()[code_list().index(c)]].key for c in events_in_span()[
        events_in_span()["subject_id"] == subject]["code"] if any(c.startswith(p) for p in prefixes)}
    assert expected <= set(drawn)
    counted = lane_events(page)
    assert {k: counted.get(k, 0) for k in naive} == naive
    # each lane's label says the count of its events in the span, and says none when it has none
    # (a service running since before the span): never "(0)" beside a bar
    said = dict(re.findall(r'<g class="lane" data-lane="([a-z_0-9]+)"><rect[^>]*/>\s*<text[^>]*>[^<]*'
                           r'(?:<tspan fill="#777"> \(([\d\u00a0,]+)\)</tspan>)?</text>', page))
    assert set(counted) <= set(said), (counted, said)
    for lane, text in said.items():
        events = counted.get(lane, 0)
        assert text != "0", lane
        assert (int(re.sub(r"[\u00a0,]", "", text)) if text else 0) == events, (lane, text, events)
    words = {"en": ("Services and interventions running now", "Risks now", "Alerts and CRM feedback"),
             "fi": ("Nyt käynnissä olevat palvelut ja interventiot", "Riskit nyt", "Hälytykset ja asiakkuudenhallinnan palaute")}
    assert all(w in page for w in words[lang])


def test_risk_rows_are_monthly_over_the_span_and_equal_scoring_at_each_date(live):
    from scoring.scorer import Scorer
    from tests.serving_fixture import make_backend

    subject = next(iter(live[3]))
    page = get(live, f"/ui/customers/{subject}?lang=en&months=12").text
    points = re.findall(r'<circle class="risk-(point|gap)" data-risk="([a-z-]+)"[^>]*><title>([^<]+)</title>', page)
    mine = [(kind, text) for kind, problem, text in points if problem == ELDERLY]
    assert len(mine) == 12 + 1 - 0 or len(mine) == 13  # the first of 12 months and the view's date
    scorer = Scorer(make_backend())
    end = store().resolve_time(None)
    series = scorer.trend(subject, end, 13, since=end - pd.DateOffset(months=12))[ELDERLY]
    from vocabulary.numbers import percent

    for (kind, text), (_, p, _) in zip(mine, series):
        assert (kind == "point") == (p is not None)
        if p is not None:
            assert html.unescape(text).endswith(percent(p, "en"))


def test_alerts_and_their_feedback_are_listed_and_marked(live):
    _, _, _, cards = live
    (first, card_a), (second, card_b) = list(cards.items())[:2]
    for subject, card, outcome, said in ((first, card_a, "accepted", "accepted"), (second, card_b, "overridden", "Already known")):
        page = get(live, f"/ui/customers/{subject}?lang=en").text
        row = re.search(rf'<tr class="alert" data-alert="{card}" data-status="(\w+)" data-outcome="(\w+)">(.*?)</tr>', page, re.S)
        assert row and row.group(2) == outcome and said in row.group(3)
        assert f'class="alert-mark" data-outcome="{outcome}"' in page
    quiet = customer_with("ENC/")
    if quiet not in cards:
        assert 'id="no-alerts"' in get(live, f"/ui/customers/{quiet}?lang=fi").text


def test_services_running_now_say_since_when(live):
    from explain.timeline import customer_timeline

    subject = customer_with("HOMECARE/VISIT")
    held = store()
    running = customer_timeline(held.history, subject, *span_of(), held.start).running
    page = get(live, f"/ui/customers/{subject}?lang=fi").text
    listed = re.findall(r'<li data-code="([A-Z0-9/_]+)">', page)
    assert listed == [r.code for r in running]


@pytest.mark.parametrize("query, status, field", [
    ("months=0", 400, "months"), ("months=61", 400, "months"), ("months=abc", 400, "months"),
    ("months=37", 422, "months"),  # the data begin 36 months before their end
    ("as_of=2030-01-01", 422, "as_of"), ("as_of=2021-06-01", 422, "as_of"),
    ("months=37&colour=red", 400, "colour"),  # a parameter the page does not take: 400 before the span's 422
])
def test_a_bad_span_is_refused_naming_the_parameter(live, query, status, field):
    subject = next(iter(live[3]))
    response = get(live, f"/ui/customers/{subject}?lang=en&{query}")
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body.get("field") == field, body
    if query == "months=37":
        assert "before the data" in body["detail"] and "at most 36 months" in body["detail"]


def test_the_longest_span_the_data_allow_opens_and_the_default_is_24_months(live):
    subject = next(iter(live[3]))
    assert get(live, f"/ui/customers/{subject}?lang=en&months=36").status_code == 200
    page = get(live, f"/ui/customers/{subject}?lang=en").text
    assert "(24 months)" in page and "Risk over the past 24 months" in page


def test_each_page_read_is_audited_once_as_before(live):
    _, _, home, cards = live
    subject = next(iter(cards))

    def rows() -> int:
        with sqlite3.connect(home / "audit.db") as db:
            return db.execute("select count(*) from audit where customer=? and endpoint='page'", (subject,)).fetchone()[0]

    before = rows()
    assert get(live, f"/ui/customers/{subject}?lang=fi&months=6").status_code == 200
    assert rows() == before + 1


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "fi"])
def test_the_view_in_chromium_draws_without_console_errors(tmp_path, live, lang):
    from tests.test_page_chromium import rendered, run_chromium

    subject = customer_with("ENC/EMERGENCY", "HOMECARE/VISIT", "IOT/", "RAI/")
    page = get(live, f"/ui/customers/{subject}?lang={lang}").text
    dom = rendered(tmp_path, f"view-{lang}.html", page)  # asserts no console output
    assert len(re.findall(r'<svg[^>]*class="timeline"', dom)) == 1 and 'class="mark ' in dom
    shot = tmp_path / f"view-{lang}.png"
    (tmp_path / "view.html").write_text(page, encoding="utf-8")
    result = run_chromium(tmp_path, (tmp_path / "view.html").as_uri(), f"--screenshot={shot}", "--window-size=1366,1400")
    assert result.returncode == 0 and shot.exists()
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.std() > 0.05
    green = ((pixels[..., 1] > 0.55) & (pixels[..., 0] < 0.35) & (pixels[..., 2] < 0.5)).sum()
    assert green > 300  # the home care bars
