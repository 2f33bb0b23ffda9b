"""Signed links (base/links.py): a page link a browser opens without a key, for a while."""

from __future__ import annotations

import os
import stat

import pytest

from base.links import LinkError, link_secret, sign, verify

SECRET = b"0123456789abcdef0123456789abcdef"


def test_a_signed_link_verifies_until_it_expires():
    link = sign("/ui/customers/42?as_of=2024-12-01&lang=fi", SECRET, expires_at=2_000)
    assert link.startswith("/ui/customers/42?as_of=2024-12-01&lang=fi&exp=2000&sig=")
    verify(link, SECRET, now=1_999)
    verify(link, SECRET, now=2_000)
    with pytest.raises(LinkError, match="expired"):
        verify(link, SECRET, now=2_001)


@pytest.mark.parametrize("tamper", [
    lambda link: link.replace("/42?", "/43?"),  # another customer
    lambda link: link.replace("lang=fi", "lang=en"),  # another query
    lambda link: link.replace("exp=2000", "exp=9999"),  # a longer life
    lambda link: link[:-1] + ("0" if link[-1] != "0" else "1"),  # another signature
])
def test_any_change_to_a_signed_link_is_refused(tamper):
    link = sign("/ui/customers/42?as_of=2024-12-01&lang=fi", SECRET, expires_at=2_000)
    with pytest.raises(LinkError, match="signature"):
        verify(tamper(link), SECRET, now=1_000)


def test_another_secret_unsigned_and_reordered_links_are_refused():
    link = sign("/ui/model_card/acute-hospitalisation", SECRET, expires_at=2_000)
    assert link.startswith("/ui/model_card/acute-hospitalisation?exp=2000&sig=")
    with pytest.raises(LinkError, match="signature"):
        verify(link, b"another secret, just as long, 0123", now=1_000)
    with pytest.raises(LinkError, match="not a signed link"):
        verify("/ui/model_card/acute-hospitalisation?lang=fi", SECRET, now=1_000)
    signature = link.split("&sig=")[1]
    with pytest.raises(LinkError, match="last parameter"):
        verify(f"/ui/model_card/acute-hospitalisation?sig={signature}&exp=2000", SECRET, now=1_000)


def test_signing_a_signed_link_again_replaces_its_signature():
    once = sign("/ui/customers/7?lang=en", SECRET, expires_at=2_000)
    again = sign(once, SECRET, expires_at=3_000)
    assert again.count("sig=") == 1 and "exp=3000" in again
    verify(again, SECRET, now=2_500)


def test_the_link_secret_is_made_once_private_and_kept(tmp_path):
    path = tmp_path / "link_secret"
    first = link_secret(path)
    assert len(first) == 64 and link_secret(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(LinkError, match="too short"):
        link_secret(path)
