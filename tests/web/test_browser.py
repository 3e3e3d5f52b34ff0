"""The browser harness itself (tests/web/browser.py): Chromium from the distribution opens the real server,
keeps its screenshots, and signs a member in."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.web.browser import WINDOW, Browser
from tests.web.helpers import OWNER

pytestmark = pytest.mark.slow


def test_an_anonymous_visitor_is_sent_to_sign_in_and_a_member_sees_their_gallery(browser: Browser) -> None:
    browser.open("/")
    browser.wait_for("section.signin h1")
    assert browser.path == "/signin?next=/"
    assert "Sign in to Kaika" in browser.text()
    signin = browser.screenshot("signin")

    browser.sign_in_with_cookie(OWNER)
    browser.open("/")
    assert browser.wait_for(".member-name").text == OWNER.name
    assert browser.path == "/"
    gallery = browser.screenshot("gallery")

    assert [path.name for path in browser.saved] == [
        "test_an_anonymous_visitor_is_sent_to_sign_in_and_a_member_sees_their_gallery-01-signin.png",
        "test_an_anonymous_visitor_is_sent_to_sign_in_and_a_member_sees_their_gallery-02-gallery.png",
    ]
    for path in (signin, gallery):
        with Image.open(path) as shot:
            assert shot.format == "PNG" and shot.size[0] == WINDOW[0]
            # A real page, not a blank one: the page's own colours are there.
            assert len(shot.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 2
