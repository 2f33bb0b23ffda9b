"""Pages a browser opens without a key: signed links checked, refused with a reason, and the links
inside such a page signed with the same expiry.

A clinician clicks a link in a CRM card; the browser sends no Authorization header. The guard
(serving/middleware.py) lets a GET of a clinician page or a model card through when its query
ends in a valid `exp` and `sig` (base/links.py: HMAC over the path, the query and the expiry with
the home's link secret), as role clinician with key id "signed-link"; the read is audited with the
link's expiry. The signature covers the whole path and query, so a link opens only the page (the
customer, the date, the language) it was signed for. Links inside that page (the language switch,
the model cards) are signed by the route with the same expiry, so they open too and the page can
give no longer access than the link it came from. A page opened with a key keeps plain links.

Links inside pages are relative ("../model_card/x?lang=fi", "42?lang=en"): they open on whatever
address the page was reached by (a proxy's path prefix included), and a saved page's links can be
rewritten to the saved files (sote_risk/demo_stages.write_pages).
"""

from __future__ import annotations

import datetime as dt
import html
import posixpath
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from base.links import EXPIRES, SIGNATURE, LinkError, link_secret, sign, verify
from serving.auth import Identity

LINK_IDENTITY = Identity(key_id="signed-link", role="clinician")
LINK_ACTIONS = frozenset({"page", "model_card"})  # what a signed link may open (GET only)
LINK_EXPIRES = "sote_link_expires"  # request state: the expiry (Unix seconds) of the link a page was opened by


class LinkRefused(Exception):
    """A link the guard will not open: the status and the one-line reason in both languages."""

    def __init__(self, status: int, field: str, en: str, fi: str) -> None:
        super().__init__(en)
        self.status, self.field, self.en, self.fi = status, field, en, fi


NO_CREDENTIALS = LinkRefused(
    401, "Authorization",
    "a valid API key is required: send 'Authorization: Bearer <key>', or open the page with a signed link",
    "sivu avautuu vain API-avaimella tai allekirjoitetulla linkillä",
)


def request_target(scope: Mapping[str, Any]) -> str:
    """The path and query as the client sent them (what the link's signature covers)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else scope.get("path", "")
    path = path.split("?", 1)[0]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def carries_signature(scope: Mapping[str, Any]) -> bool:
    """Whether the query has an `exp` or a `sig` parameter (a signed link, valid or not)."""
    query = scope.get("query_string", b"").decode("latin-1")
    return any(key in (EXPIRES, SIGNATURE) for key, _ in parse_qsl(query, keep_blank_values=True))


class LinkKeeper:
    """The home's link secret, read once and again only when the file changes (one stat per
    signed request), so a deleted-and-remade secret takes effect without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._secret = b""

    def secret(self) -> bytes:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            with self._lock:
                self._secret = link_secret(self.path)  # creates it (0600) when missing
                stat = self.path.stat()
                self._stamp = (stat.st_mtime_ns, stat.st_size)
        return self._secret

    def sign(self, path: str, expires_at: int) -> str:
        return sign(path, self.secret(), expires_at)

    def check(self, target: str, now: float | None = None) -> int:
        """The link's expiry, or LinkRefused: 403 when the signature does not cover this very
        path and query (changed, made for another page, not ours), 401 when it has expired."""
        query = parse_qsl(urlsplit(target).query, keep_blank_values=True)
        try:
            verify(target, self.secret(), now=0)  # the signature alone; the expiry is judged below
            expires_at = int(next(v for k, v in query if k == EXPIRES))
        except (LinkError, ValueError, StopIteration):
            raise LinkRefused(
                403, SIGNATURE,
                "this link's signature does not match the page it asks for: the link was changed or made for another page",
                "linkin allekirjoitus ei täsmää pyydettyyn sivuun: linkkiä on muutettu tai se on tehty toiselle sivulle",
            ) from None
        if expires_at < (time.time() if now is None else now):
            when = local_time(expires_at)
            raise LinkRefused(401, EXPIRES, f"this link expired on {when:%Y-%m-%d at %H:%M} Finnish time; ask for a new one",
                              f"linkki vanheni {when.day}.{when.month}.{when.year} klo {when.hour}.{when.minute:02d}; pyydä uusi linkki")
        return expires_at


def local_time(expires_at: int) -> dt.datetime:
    """An expiry as the region's clinicians read clocks (Europe/Helsinki)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(min(int(expires_at), 253_402_210_800), ZoneInfo("Europe/Helsinki"))


def relative_href(target: str, page: str) -> str:
    """`target` (an absolute path with its query) as a link relative to the page at `page`:
    ("/ui/model_card/x?lang=fi", "/ui/customers/42") -> "../model_card/x?lang=fi"."""
    path, question, query = target.partition("?")
    here = urlsplit(page).path
    relative = posixpath.relpath(path, posixpath.dirname(here) or "/")
    return relative + question + query


def refusal_page(refused: LinkRefused) -> str:
    """What a browser shows instead of a page: the status and the reason, in Finnish and English."""
    fi, en = html.escape(refused.fi), html.escape(refused.en)
    return (
        '<!DOCTYPE html>\n<html lang="fi">\n<head><meta charset="utf-8"><title>Sivu ei avaudu / The page does not open'
        '</title></head>\n<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">\n'
        f'<h1>Sivu ei avaudu ({refused.status})</h1>\n<p id="reason-fi">{fi[:1].upper() + fi[1:]}.</p>\n'
        f'<h2 lang="en">The page does not open ({refused.status})</h2>\n'
        f'<p id="reason-en" lang="en">{en[:1].upper() + en[1:]}.</p>\n</body>\n</html>\n'
    )


def wants_html(headers: Mapping[str, str]) -> bool:
    """A browser navigating (Accept names text/html); API clients get JSON."""
    return "text/html" in headers.get("accept", "").lower()
