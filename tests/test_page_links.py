"""Links that open: a clinician page and a model card opened from a signed link with no header,
over HTTP and in real headless Chromium, and the demo's saved pages opened offline.

A real `sote-risk serve` on the fixture home (tests/serving_fixture.py: the real feature pipeline
and the pinned champions), one process for the module. Links are signed here with the home's
secret (base/links.py), the way a CRM card, `sote-risk link` or `POST /page_link` signs them.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from base.links import customer_page_path, expiry_after, expiry_text, link_secret, model_card_path, sign
from serving.audit import read_audit
from serving.auth import create_key
from tests.serving_fixture import members, store
from tests.serving_server import REPO, ServiceProcess, service_env, start_service
from tests.test_page_chromium import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.slow

ELDERLY = "elderly-hospitalisation"
PUBLIC_URL = "https://sote.example.fi/riski"  # as behind a reverse proxy that strips /riski
HREFS = re.compile(r'<a class="(other-language|model-card)"[^>]*href="([^"]*)"')


@dataclass
class Site:
    service: ServiceProcess
    home: Path
    keys: dict[str, str]
    client: httpx.Client  # sends no Authorization header unless told
    member: int  # an elderly-hospitalisation member at the end of the data
    other: int  # another one
    day: str  # the end of the data, as a page's as_of

    def secret(self) -> bytes:
        return link_secret(self.home / "link_secret")

    def signed(self, path: str, expires_at: int | None = None) -> str:
        return sign(path, self.secret(), expires_at if expires_at is not None else expiry_after(2))

    def audit(self, customer: int) -> list:
        return read_audit(self.home / "audit.db", customer)


@pytest.fixture(scope="module")
def site(fixture_home_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("page-links") / "home"
    shutil.copytree(fixture_home_template, home)
    assert not (home / "link_secret").exists()  # `serve` makes it before its workers start
    keys = {role: create_key(home / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    service = start_service(home, SOTE_RISK_PUBLIC_URL=PUBLIC_URL, SOTE_RISK_LINK_DAYS="3")
    client = httpx.Client(base_url=service.url, timeout=60)
    member, other = members(ELDERLY, limit=2)
    try:
        yield Site(service, home, keys, client, member, other, store().resolve_time(None).date().isoformat())
    finally:
        client.close()
        service.stop()


def page_links(page: str) -> dict[str, list[str]]:
    """The page's language switch and model-card links (hrefs as the browser reads them)."""
    found: dict[str, list[str]] = {"other-language": [], "model-card": []}
    for kind, href in HREFS.findall(page):
        found[kind].append(html.unescape(href))
    return found


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def problems_on(page: str) -> list[str]:
    return re.findall(r'data-problem="([a-z_-]+)"', page)


# --- over HTTP -----------------------------------------------------------------------------------


def test_the_service_made_the_link_secret_private(site):
    assert (site.home / "link_secret").stat().st_mode & 0o777 == 0o600


def test_signed_customer_page_opens_without_a_header_and_is_audited(site):
    expires = expiry_after(2)
    link = site.signed(customer_page_path(site.member, dt.date.fromisoformat(site.day), "fi"), expires)
    assert f"?as_of={site.day}&lang=fi&exp={expires}&sig=" in link
    before = len(site.audit(site.member))
    response = site.client.get(link)
    assert "authorization" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store" and response.headers["referrer-policy"] == "no-referrer"
    assert "Tärkeimmät syyt" in response.text and 'data-band="' in response.text
    # the same read with a key shows the same risks
    keyed = site.client.get(customer_page_path(site.member, None, "fi"), headers={"Authorization": f"Bearer {site.keys['clinician']}"})
    shown = problems_on(response.text)
    assert shown and shown == problems_on(keyed.text)
    rows = site.audit(site.member)[before:]
    link_row = rows[0]
    assert (link_row.key_id, link_row.role, link_row.endpoint) == ("signed-link", "clinician", "page")
    assert link_row.link_expires == expiry_text(expires)
    assert link_row.problems == shown and link_row.model_versions == [f"{p}:1" for p in shown]
    assert rows[1].key_id in site.keys["clinician"] and rows[1].link_expires is None  # a key's read: no link
    assert link.split("&sig=")[1] not in site.service.log.read_text()  # a link is a credential: not logged


@pytest.mark.parametrize("lang, heading", [("fi", "Mallikortti"), ("en", "Model card")])
def test_signed_model_card_opens_without_a_header(site, lang, heading):
    response = site.client.get(site.signed(model_card_path(ELDERLY, lang)))
    assert response.status_code == 200, response.text[:300]
    assert f"{heading}: " in response.text and re.search(r"(Model version|Mallin versio) 1 ·", response.text)


def test_links_inside_a_signed_page_are_signed_with_its_expiry_and_open(site):
    expires = expiry_after(1)
    start = site.signed(customer_page_path(site.member, None, "fi"), expires)
    page = site.client.get(start)
    assert page.status_code == 200
    links = page_links(page.text)
    assert len(links["other-language"]) == 1 and len(links["model-card"]) == len(problems_on(page.text)) >= 1
    english = urljoin(site.service.url + start, links["other-language"][0])
    assert urlsplit(english).path == f"/ui/customers/{site.member}"
    assert query_of(english)["lang"] == "en" and query_of(english)["exp"] == str(expires) and "sig" in query_of(english)
    opened = site.client.get(english)
    assert opened.status_code == 200 and "Main reasons" in opened.text
    back = urljoin(english, page_links(opened.text)["other-language"][0])
    assert query_of(back)["lang"] == "fi" and site.client.get(back).status_code == 200
    for href, problem in zip(links["model-card"], problems_on(page.text)):
        card = urljoin(site.service.url + start, href)
        assert urlsplit(card).path == f"/ui/model_card/{problem}" and query_of(card)["exp"] == str(expires)
        shown = site.client.get(card)
        assert shown.status_code == 200 and "Mallikortti" in shown.text
        switch = urljoin(card, page_links(shown.text)["other-language"][0])
        assert query_of(switch)["lang"] == "en" and site.client.get(switch).status_code == 200
    # the links reach exactly as far as the link the page came from: a later expiry is refused
    later = english.replace(f"exp={expires}", f"exp={expires + 86_400}")
    assert site.client.get(later).status_code == 403


SPAN_LINKS = re.compile(r'<a class="span-link" data-months="(\d+)" href="([^"]*)"')
CURRENT_SPAN = re.compile(r'<strong aria-current="page" data-months="(\d+)">')
SPAN_SHOWN = re.compile(r'\((\d+) (?:months|kuukautta|month|kuukausi)\) · ')


def test_a_signed_page_links_to_its_other_spans_signed_with_its_expiry(site):
    expires = expiry_after(1)
    start = site.signed(customer_page_path(site.member, dt.date.fromisoformat(site.day), "en", 12), expires)
    page = site.client.get(start)
    assert page.status_code == 200, page.text[:300]
    assert CURRENT_SPAN.findall(page.text) == ["12"] and SPAN_SHOWN.search(page.text).group(1) == "12"
    spans = {int(m): html.unescape(href) for m, href in SPAN_LINKS.findall(page.text)}
    assert 12 not in spans and 6 in spans  # the current span is marked, not linked; a shorter one always fits
    first = store().start.normalize()
    for months, href in spans.items():  # every span offered fits the data, and each opens at that span
        assert (dt.date.fromisoformat(site.day) - pd_months(months)).date() >= first.date()
        url = urljoin(site.service.url + start, href)
        assert query_of(url)["months"] == str(months) and query_of(url)["exp"] == str(expires)
        assert query_of(url)["lang"] == "en" and query_of(url)["as_of"] == site.day
        opened = site.client.get(url)
        assert opened.status_code == 200, (months, opened.text[:200])
        assert CURRENT_SPAN.findall(opened.text) == [str(months)] and SPAN_SHOWN.search(opened.text).group(1) == str(months)
    # the span is covered by the signature: a link for 12 months does not open 60
    longer = urljoin(site.service.url + start, spans[6]).replace("months=6", "months=60")
    assert site.client.get(longer).status_code == 403


def pd_months(months: int):  # noqa: ANN201 (a pandas DateOffset)
    import pandas as pd

    return pd.DateOffset(months=months)


def test_a_page_opened_with_a_key_keeps_plain_links(site):
    headers = {"Authorization": f"Bearer {site.keys['clinician']}"}
    path = customer_page_path(site.member, None, "en")
    page = site.client.get(path, headers=headers)
    links = page_links(page.text)
    assert links["other-language"] == [f"{site.member}?lang=fi"]
    assert links["model-card"] and all(re.fullmatch(r"\.\./model_card/[a-z_-]+\?lang=en", h) for h in links["model-card"])
    card = site.client.get(model_card_path(ELDERLY, "en"), headers=headers)
    assert page_links(card.text)["other-language"] == [f"{ELDERLY}?lang=fi"]


def refusal(response: httpx.Response) -> str:
    return response.json()["detail"]


def test_expired_tampered_unsigned_and_other_page_links_are_refused(site):
    good = site.signed(customer_page_path(site.member, None, "fi"))
    expired = site.signed(customer_page_path(site.member, None, "fi"), int(time.time()) - 60)
    response = site.client.get(expired)
    assert response.status_code == 401 and "expired" in refusal(response)
    cases = {
        "another customer": good.replace(f"/customers/{site.member}?", f"/customers/{site.other}?"),
        "another language": good.replace("lang=fi", "lang=en"),
        "a longer life": re.sub(r"exp=(\d+)", lambda m: f"exp={int(m.group(1)) + 1}", good),
        "another signature": good[:-2] + ("00" if not good.endswith("00") else "11"),
        "another page's signature": model_card_path(ELDERLY, "fi") + "&" + good.split("?", 1)[1].split("&", 1)[1],
        "another secret": sign(customer_page_path(site.member, None, "fi"), b"0" * 64, expiry_after(1)),
        "no signature": good.split("&sig=")[0],
        "signature first": customer_page_path(site.member, None, "fi").replace("?", "?sig=" + good.split("&sig=")[1] + "&"),
    }
    for name, link in cases.items():
        response = site.client.get(link)
        assert response.status_code == 403 and "signature does not match" in refusal(response), (name, response.text)
        assert response.json()["field"] == "sig"
    unsigned = site.client.get(customer_page_path(site.member, None, "fi"))
    assert unsigned.status_code == 401 and "API key" in refusal(unsigned) and "signed link" in refusal(unsigned)
    # a valid signature opens only GET pages: never an API route, never with a (bad) key
    api = sign("/score", site.secret(), expiry_after(1))
    assert site.client.post(api, json={"customer_id": site.member}).status_code == 401
    assert site.client.get(good, headers={"Authorization": "Bearer sr_dead.beef"}).status_code == 401
    assert site.client.get(good).status_code == 200  # the untampered link still opens


@pytest.mark.parametrize("kind", ["expired", "tampered", "unsigned"])
def test_a_browser_is_told_why_in_one_line_in_both_languages(site, kind):
    path = customer_page_path(site.member, None, "fi")
    link = {"expired": site.signed(path, int(time.time()) - 60),
            "tampered": site.signed(path).replace("lang=fi", "lang=en"), "unsigned": path}[kind]
    response = site.client.get(link, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == {"expired": 401, "tampered": 403, "unsigned": 401}[kind]
    assert response.headers["content-type"].startswith("text/html") and "Traceback" not in response.text
    fi = re.search(r'<p id="reason-fi">([^<\n]+)</p>', response.text).group(1)
    en = re.search(r'<p id="reason-en" lang="en">([^<\n]+)</p>', response.text).group(1)
    words = {"expired": ("vanheni", "expired"), "tampered": ("allekirjoitus", "signature"),
             "unsigned": ("allekirjoitetulla linkillä", "signed link")}[kind]
    assert words[0] in fi and words[1] in en


def test_page_link_route_makes_links_for_clinicians_and_admins_and_audits_them(site):
    before = len(site.audit(site.other))
    made = site.client.post("/page_link", json={"customer_id": site.other, "lang": "en", "days": 2},
                            headers={"Authorization": f"Bearer {site.keys['clinician']}"})
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["url"].startswith(f"{PUBLIC_URL}/ui/customers/{site.other}?lang=en&exp=")
    expires = int(query_of(body["url"])["exp"])
    assert abs(expires - (time.time() + 2 * 86_400)) < 120 and body["expires"].startswith(expiry_text(expires)[:19])
    opened = site.client.get(body["url"][len(PUBLIC_URL):])  # what the proxy hands the service
    assert opened.status_code == 200 and "Main reasons" in opened.text
    made_row, read_row = site.audit(site.other)[before:]
    assert (made_row.endpoint, made_row.role, made_row.link_expires) == ("page_link", "clinician", expiry_text(expires))
    assert made_row.key_id in site.keys["clinician"]
    assert (read_row.key_id, read_row.endpoint, read_row.link_expires) == ("signed-link", "page", expiry_text(expires))
    admin = {"Authorization": f"Bearer {site.keys['admin']}"}
    default = site.client.post("/page_link", json={"customer_id": site.other, "as_of": site.day}, headers=admin).json()
    assert f"as_of={site.day}&lang=fi&exp=" in default["url"]
    assert abs(int(query_of(default["url"])["exp"]) - (time.time() + 3 * 86_400)) < 120  # SOTE_RISK_LINK_DAYS=3
    crm = site.client.post("/page_link", json={"customer_id": site.other}, headers={"Authorization": f"Bearer {site.keys['crm']}"})
    assert crm.status_code == 403
    assert site.client.post("/page_link", json={"customer_id": site.other}).status_code == 401
    unknown = site.client.post("/page_link", json={"customer_id": 999_999}, headers=admin)
    assert unknown.status_code == 404 and unknown.json()["field"] == "customer_id"
    too_long = site.client.post("/page_link", json={"customer_id": site.other, "days": 4}, headers=admin)
    assert too_long.status_code == 400 and too_long.json()["field"] == "days" and "SOTE_RISK_LINK_DAYS" in too_long.text
    outside = site.client.post("/page_link", json={"customer_id": site.other, "as_of": "1990-01-01"}, headers=admin)
    assert outside.status_code == 422 and outside.json()["field"] == "as_of"
    spanned = site.client.post("/page_link", json={"customer_id": site.other, "as_of": site.day, "months": 6}, headers=admin)
    assert spanned.status_code == 200 and query_of(spanned.json()["url"])["months"] == "6"
    opened = site.client.get(spanned.json()["url"][len(PUBLIC_URL):])
    assert opened.status_code == 200 and CURRENT_SPAN.findall(opened.text) == ["6"]
    before_data = site.client.post("/page_link", json={"customer_id": site.other, "as_of": site.day, "months": 60}, headers=admin)
    assert before_data.status_code == 422 and before_data.json()["field"] == "months" and "before the data" in before_data.text
    assert site.client.post("/page_link", json={"customer_id": site.other, "months": 0}, headers=admin).status_code == 400


def test_link_command_prints_a_link_that_opens(site, monkeypatch):
    from sote_risk.cli import app

    for name in [k for k in __import__("os").environ if k.startswith("SOTE_RISK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOTE_RISK_HOME", str(site.home))
    monkeypatch.setenv("SOTE_RISK_PUBLIC_URL", site.service.url + "/")
    runner = CliRunner()
    before = len(site.audit(site.member))
    result = runner.invoke(app, ["link", "--customer", str(site.member), "--as-of", site.day, "--lang", "en", "--days", "1"])
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith(f"{site.service.url}/ui/customers/{site.member}?as_of={site.day}&lang=en&exp=")
    assert abs(int(query_of(url)["exp"]) - (time.time() + 86_400)) < 120
    assert httpx.get(url, timeout=60).status_code == 200
    rows = site.audit(site.member)[before:]
    assert [(r.key_id, r.endpoint) for r in rows] == [("cli", "link"), ("signed-link", "page")]
    assert rows[0].link_expires == rows[1].link_expires == expiry_text(int(query_of(url)["exp"]))
    spanned = runner.invoke(app, ["link", "--customer", str(site.member), "--as-of", site.day, "--months", "6"])
    assert spanned.exit_code == 0, spanned.output
    shown = httpx.get(spanned.stdout.strip(), timeout=60)
    assert shown.status_code == 200 and CURRENT_SPAN.findall(shown.text) == ["6"]
    too_far = runner.invoke(app, ["link", "--customer", str(site.member), "--as-of", site.day, "--months", "60"])
    assert too_far.exit_code != 0 and "--months 60: the span would begin on" in str(too_far.exception)
    outside = runner.invoke(app, ["link", "--customer", str(site.member), "--as-of", "1990-01-01"])
    assert outside.exit_code != 0 and "--as-of 1990-01-01 is outside the data" in str(outside.exception)
    # as a user sees it: one line on stderr, no traceback, nothing on stdout
    unknown = subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", "link", "--customer", "999999"],
                             cwd=REPO, env=service_env(site.home), capture_output=True, text=True, timeout=120)
    assert unknown.returncode != 0 and unknown.stdout == ""
    assert unknown.stderr.strip().splitlines() == [f"error: --customer 999999: no such customer in {site.home / 'data'}"]


# --- in headless Chromium ------------------------------------------------------------------------


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page): navigate, click, read."""

    def __init__(self, tmp_path: Path) -> None:
        from httpx_ws import connect_ws

        profile = tmp_path / "chromium-profile"
        self.process = subprocess.Popen(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().count("\n") >= 1:
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited: {self.process.stderr.read()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self._client = httpx.Client(timeout=30)
        self._context = connect_ws(page["webSocketDebuggerUrl"], self._client, max_message_size_bytes=64 * 1024 * 1024)
        self._ws = self._context.__enter__()
        self._id = 0
        self.events: list[dict] = []  # since the last navigation
        self.earlier: list[dict] = []  # before it (console errors of every page opened count)
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Log.enable")  # what the page's Content-Security-Policy blocks is reported here

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self._ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = self._ws.receive_json(timeout=60)
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def _wait_for_load(self) -> None:
        deadline = time.monotonic() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, "the page did not load"
            self.events.append(self._ws.receive_json(timeout=60))

    def open(self, url: str) -> dict:
        self.earlier += self.events
        self.events = []
        self.call("Page.navigate", url=url)
        self._wait_for_load()
        return self.state()

    def click(self, selector: str) -> dict:
        """Click the first element matching `selector` as a user would, and wait for the next page."""
        self.earlier += self.events
        self.events = []
        found = self.evaluate(f"(() => {{ const a = document.querySelector({json.dumps(selector)}); if (!a) return false; a.click(); return true; }})()")
        assert found, f"nothing matches {selector}"
        self._wait_for_load()
        return self.state()

    def evaluate(self, expression: str):  # noqa: ANN201 (any JSON value)
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def state(self) -> dict:
        """Where the page is, the HTTP status it came with, its language and its headings."""
        return self.evaluate(
            "({url: location.href, status: (performance.getEntriesByType('navigation')[0] || {}).responseStatus,"
            " lang: document.documentElement.lang, h1: (document.querySelector('h1') || {}).textContent || '',"
            " text: document.body.innerText})"
        )

    def console_errors(self) -> list[dict]:
        return [e for e in self.earlier + self.events if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]

    def close(self) -> None:
        try:
            self._context.__exit__(None, None, None)
            self._client.close()
        finally:
            if self.process.poll() is None:
                import os
                import signal

                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=5)


@pytest.fixture()
def browser(tmp_path):
    opened = Browser(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def test_chromium_opens_a_signed_link_and_follows_its_links_without_a_key(site, browser):
    link = site.service.url + site.signed(customer_page_path(site.member, None, "fi"))
    before = len(site.audit(site.member))
    page = browser.open(link)
    assert page["status"] == 200 and page["lang"] == "fi" and f"Riskiyhteenveto asiakkaalle {site.member}" in page["h1"]
    styled = "getComputedStyle(document.querySelector('header')).borderBottomStyle"
    assert browser.evaluate(styled) == "solid"  # the page's own style element applies under its CSP
    english = browser.click("a.other-language")
    assert english["status"] == 200 and english["lang"] == "en" and "Main reasons" in english["text"]
    assert urlsplit(english["url"]).path == f"/ui/customers/{site.member}" and "sig=" in english["url"]
    card = browser.click("a.model-card")
    assert card["status"] == 200 and card["lang"] == "en" and card["h1"].startswith("Model card: ")
    finnish_card = browser.click("a.other-language")
    assert finnish_card["status"] == 200 and finnish_card["h1"].startswith("Mallikortti: ")
    assert browser.evaluate(styled) == "solid" and browser.evaluate("document.querySelectorAll('figure.summary svg').length") == 1
    assert browser.console_errors() == []
    rows = site.audit(site.member)[before:]
    assert [(r.key_id, r.endpoint) for r in rows] == [("signed-link", "page")] * 2  # the two customer pages


def test_chromium_shows_why_an_expired_link_does_not_open(site, browser):
    page = browser.open(site.service.url + site.signed(customer_page_path(site.member, None, "fi"), int(time.time()) - 60))
    assert page["status"] == 401 and page["h1"] == "Sivu ei avaudu (401)"
    assert "Linkki vanheni" in page["text"] and "This link expired on" in page["text"]


# --- the demo's saved pages ------------------------------------------------------------------------


LINK_ATTRIBUTES = re.compile(r'(?<![\w:-])(?:href|src)="([^"]*)"')


def test_saved_pages_link_to_each_other_by_file_name_and_open_offline(site, tmp_path, browser):
    import pandas as pd

    from sote_risk.demo_stages import write_pages

    folder = tmp_path / "pages"
    customers = [site.member, site.other]
    saved = write_pages(site.service.url, site.keys["clinician"], customers, pd.Timestamp(site.day), folder)
    names = sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in saved.customer_pages) == sorted(
        f"customer-{c}-{site.day}-{lang}.html" for c in customers for lang in ("fi", "en"))
    served = set()
    for path in saved.customer_pages:
        lang = path.stem.rsplit("-", 1)[1]
        served |= {(p, lang) for p in problems_on(path.read_text())}
        served |= {(p, "en" if lang == "fi" else "fi") for p in problems_on(path.read_text())}
    assert sorted(p.name for p in saved.model_cards) == sorted(f"model-card-{p}-{lang}.html" for p, lang in served)
    # the other spans of each customer page are saved too (so their links open offline), by span
    assert saved.other and all(re.fullmatch(rf"customer-({'|'.join(map(str, customers))})-{site.day}-(fi|en)-\d+m\.html", p.name)
                               for p in saved.other), [p.name for p in saved.other]
    assert names == sorted(p.name for p in [*saved.customer_pages, *saved.model_cards, *saved.other])
    for path in folder.iterdir():
        text = path.read_text()
        assert "/ui/" not in text and "exp=" not in text and "sig=" not in text
        links = [html.unescape(v) for v in LINK_ATTRIBUTES.findall(text)]
        relative = [v for v in links if not v.startswith("#") and not urlsplit(v).scheme]
        assert relative, path.name
        for href in relative:
            assert (folder / href).is_file(), f"{path.name} links to {href}, which is not saved"
    fi = folder / f"customer-{site.member}-{site.day}-fi.html"
    assert page_links(fi.read_text())["other-language"] == [f"customer-{site.member}-{site.day}-en.html"]
    assert "Tärkeimmät syyt" in fi.read_text() and "Main reasons" in (folder / f"customer-{site.member}-{site.day}-en.html").read_text()
    # offline, in a browser: the language switch and a model card open the saved files
    page = browser.open(fi.as_uri())
    assert page["lang"] == "fi"
    english = browser.click("a.other-language")
    assert english["url"] == (folder / f"customer-{site.member}-{site.day}-en.html").as_uri() and english["lang"] == "en"
    card = browser.click("a.model-card")
    assert urlsplit(card["url"]).path.startswith(str(folder / "model-card-")) and card["h1"].startswith("Model card: ")
