"""The parts of signed page links that need no service: paths, relative hrefs (against the
browser's own rule, urljoin), the secret keeper's verdicts, the audit log's link column, and how
the demo renames saved pages' links. The whole path over HTTP and in Chromium: test_page_links.py."""

from __future__ import annotations

import datetime as dt
import sqlite3
from urllib.parse import urljoin

import pytest
from typer.testing import CliRunner

from base.links import (
    customer_page_path, expiry_after, expiry_text, link_secret, model_card_path, public_link, sign, verify,
)
from serving.audit import AuditEntry, AuditLog, read_audit
from serving.page_links import LinkKeeper, LinkRefused, carries_signature, refusal_page, relative_href, request_target
from sote_risk.demo_stages import page_key, relink, saved_name

SECRET = b"0123456789abcdef0123456789abcdef"


def test_page_paths_and_public_links():
    assert customer_page_path(42) == "/ui/customers/42?lang=fi"
    assert customer_page_path(42, dt.date(2024, 12, 1), "en") == "/ui/customers/42?as_of=2024-12-01&lang=en"
    assert model_card_path("elderly-hospitalisation", "en") == "/ui/model_card/elderly-hospitalisation?lang=en"
    link = public_link("https://sote.example.fi/riski/", customer_page_path(42), SECRET, 2_000)
    assert link.startswith("https://sote.example.fi/riski/ui/customers/42?lang=fi&exp=2000&sig=")
    verify(link[len("https://sote.example.fi/riski"):], SECRET, now=1_000)  # what the proxy hands the service
    assert expiry_after(3, now=1_000.7) == 1_000 + 3 * 86_400
    with pytest.raises(Exception, match="at least one day"):
        expiry_after(0)
    assert expiry_text(0) == "1970-01-01T00:00:00+00:00"


PAGES = ["/ui/customers/42", "/ui/model_card/acute-hospitalisation", "/ui/customers/7"]
TARGETS = ["/ui/customers/42?lang=en", "/ui/model_card/acute-hospitalisation?lang=fi&exp=5&sig=ab",
           "/ui/customers/42?as_of=2024-12-01&lang=fi", "/ui/model_card/elderly-hospitalisation?lang=en"]


@pytest.mark.parametrize("base", ["http://127.0.0.1:3000", "https://sote.example.fi/riski"])
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_relative_hrefs_resolve_as_a_browser_resolves_them(base, page, target):
    href = relative_href(target, page)
    assert not href.startswith("/") and "://" not in href
    assert urljoin(f"{base}{page}?lang=fi&exp=1&sig=00", href) == f"{base}{target}"


def test_relative_hrefs_read_as_expected():
    assert relative_href("/ui/model_card/x?lang=fi", "/ui/customers/42") == "../model_card/x?lang=fi"
    assert relative_href("/ui/customers/42?lang=en", "/ui/customers/42") == "42?lang=en"


def scope(target: str) -> dict:
    path, _, query = target.partition("?")
    return {"path": path, "raw_path": path.encode(), "query_string": query.encode()}


def test_keeper_opens_valid_links_and_refuses_the_rest(tmp_path):
    keeper = LinkKeeper(tmp_path / "link_secret")
    good = keeper.sign(customer_page_path(42), 2_000)
    assert request_target(scope(good)) == good and carries_signature(scope(good))
    assert not carries_signature(scope(customer_page_path(42)))
    assert keeper.check(good, now=1_999) == 2_000
    with pytest.raises(LinkRefused) as expired:
        keeper.check(good, now=2_001)
    # 2,000 s after the epoch: 02:33 in Helsinki (UTC+2 in winter)
    assert expired.value.status == 401 and "expired on 1970-01-01 at 02:33 Finnish time" in expired.value.en
    assert "vanheni 1.1.1970 klo 2.33" in expired.value.fi
    for bad in (good.replace("/42?", "/43?"), good.replace("exp=2000", "exp=3000"), good.split("&sig=")[0],
                sign(customer_page_path(42), SECRET, 2_000)):
        with pytest.raises(LinkRefused) as refused:
            keeper.check(bad, now=1_000)
        assert refused.value.status == 403 and refused.value.field == "sig"
    # a new secret (the old file deleted) voids the old links at once, without a restart
    (tmp_path / "link_secret").unlink()
    fresh = keeper.sign(customer_page_path(42), 2_000)
    assert fresh != good and keeper.check(fresh, now=1_000) == 2_000
    with pytest.raises(LinkRefused):
        keeper.check(good, now=1_000)
    assert keeper.secret() == link_secret(tmp_path / "link_secret")


def test_refusal_page_escapes_and_gives_one_line_per_language():
    page = refusal_page(LinkRefused(403, "sig", "bad <link>", "huono <linkki>"))
    assert "<p id=\"reason-fi\">Huono &lt;linkki&gt;.</p>" in page and "Bad &lt;link&gt;." in page
    assert "(403)" in page and "<link>" not in page


ENTRY = dict(time="2024-01-01T00:00:00+00:00", key_id="signed-link", role="clinician", endpoint="page", customer=5,
             problems=["elderly-hospitalisation"], model_versions=["elderly-hospitalisation:3"])


def test_audit_log_keeps_the_link_expiry_and_opens_logs_from_before_it(tmp_path):
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as connection:  # the schema before signed links
        connection.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, key_id TEXT NOT NULL,"
                           " role TEXT NOT NULL, endpoint TEXT NOT NULL, customer INTEGER NOT NULL, problems TEXT NOT NULL,"
                           " model_versions TEXT NOT NULL)")
        connection.execute("INSERT INTO audit (time, key_id, role, endpoint, customer, problems, model_versions)"
                           " VALUES ('2023-01-01T00:00:00+00:00', 'k1', 'crm', 'score', 5, '[]', '[]')")
    connection.close()
    assert [r.link_expires for r in read_audit(old, 5)] == [None]  # read as it is
    log = AuditLog(old)
    log.append([AuditEntry(**ENTRY, link_expires="2024-01-15T00:00:00+00:00")])
    log.close()
    rows = read_audit(old, 5)
    assert [(r.key_id, r.link_expires) for r in rows] == [("k1", None), ("signed-link", "2024-01-15T00:00:00+00:00")]
    AuditLog(old).close()  # a second open (another worker) adds nothing twice


def test_audit_command_says_which_reads_came_through_a_link(tmp_path, monkeypatch):
    from sote_risk.cli import app

    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    log = AuditLog(tmp_path / "audit.db")
    log.append([AuditEntry(**ENTRY, link_expires="2024-01-15T00:00:00+00:00"), AuditEntry(**{**ENTRY, "key_id": "ab12"})])
    log.close()
    lines = CliRunner().invoke(app, ["audit", "--customer", "5"]).stdout.splitlines()
    assert lines[0].split("\t")[1:4] == ["signed-link", "clinician", "page"]
    assert lines[0].endswith("\tlink expires 2024-01-15T00:00:00+00:00") and "link expires" not in lines[1]


def test_saved_names_and_relinking():
    assert saved_name("/ui/customers/42?as_of=2024-12-01&lang=en") == "customer-42-2024-12-01-en.html"
    assert saved_name("/ui/customers/42?lang=fi") == "customer-42-fi.html"
    assert saved_name("/ui/customers/42?as_of=2024-12-01&lang=fi&months=12") == "customer-42-2024-12-01-fi-12m.html"
    assert saved_name("/ui/model_card/acute-hospitalisation?lang=fi") == "model-card-acute-hospitalisation-fi.html"
    assert saved_name("/ui/other/x?b=2&a=1") == "page-other-x-a-1-b-2.html"
    assert page_key("/ui/customers/42?lang=fi&as_of=2024-12-01") == "/ui/customers/42?as_of=2024-12-01&lang=fi"
    page = ('<a class="other-language" href="42?as_of=2024-12-01&amp;lang=en">In English</a>'
            '<a href="../model_card/acute-hospitalisation?lang=fi">Mallikortti</a>'
            '<a href="#risk-x">here</a><use xlink:href="#glyph"/><a href="https://example.org/help">help</a>')
    text, linked = relink(page, "http://127.0.0.1:3000/ui/customers/42?as_of=2024-12-01&lang=fi", "http://127.0.0.1:3000")
    assert linked == ["/ui/customers/42?as_of=2024-12-01&lang=en", "/ui/model_card/acute-hospitalisation?lang=fi"]
    assert 'href="customer-42-2024-12-01-en.html"' in text and 'href="model-card-acute-hospitalisation-fi.html"' in text
    assert 'href="#risk-x"' in text and 'xlink:href="#glyph"' in text and 'href="https://example.org/help"' in text
