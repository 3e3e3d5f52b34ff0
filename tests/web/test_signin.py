"""Signing in with the one-time link /web sends: its page never spends it, its button signs in once."""

from __future__ import annotations

import html
from datetime import timedelta

from service.signin import EXPIRED_LINK, UNKNOWN_LINK, USED_LINK
from tests.web.helpers import ADMIN, OWNER, Site
from web.sessions import CSRF_REFUSAL


async def test_a_link_signs_its_member_in_once(site: Site) -> None:
    link = await site.signin_link(OWNER)
    visitor = await site.client()
    page = await visitor.get_page(link)
    assert "data-autosubmit" in page and f'action="{link}"' in page
    await visitor.get_page(link)  # looking at the page (a link preview) does not spend the link
    signed_in = await visitor.post(link)
    assert signed_in.status == 302 and signed_in.headers["Location"] == "/"
    gallery = await visitor.get_page("/")
    assert "Ada" in gallery and "Sign out" in gallery and "Admin" not in gallery

    again = await site.client()
    await again.get_page(link)
    refused = await again.post(link, headers={"Accept": "text/html"})
    assert refused.status == 400
    assert USED_LINK in html.unescape(await refused.text())
    assert (await again.get("/")).status == 302  # still anonymous


async def test_a_link_signs_in_only_with_its_pages_csrf_token(site: Site) -> None:
    link = await site.signin_link(OWNER)
    visitor = await site.client()
    refused = await visitor.post(link, csrf=False)
    assert refused.status == 403 and CSRF_REFUSAL in await refused.text()
    assert (await visitor.post(link)).status == 302  # the link was not spent by the refused try


async def test_an_expired_or_unknown_link_says_so(site: Site) -> None:
    expired = await site.signin_link(OWNER, lifetime=timedelta(seconds=-1))
    visitor = await site.client()
    response = await visitor.post(expired)
    assert response.status == 400 and await response.text() == EXPIRED_LINK.format(minutes=10)
    response = await visitor.post("/signin/link/not-a-token")
    assert response.status == 400 and await response.text() == UNKNOWN_LINK


async def test_signing_in_starts_a_new_session_with_a_new_csrf_token(site: Site) -> None:
    link = await site.signin_link(OWNER)
    visitor = await site.client()
    assert (await visitor.post(link)).status == 302
    old_token = visitor.csrf
    assert (await visitor.post("/signout")).status == 403  # the anonymous session's token no longer counts
    page = await visitor.get_page("/")
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    assert token and token != old_token
    visitor.csrf = token
    assert (await visitor.post("/signout")).status == 302


async def test_admin_user_ids_see_the_admin_link_and_members_seen_managing_a_server_too(site: Site) -> None:
    admin = await site.client(ADMIN)
    assert 'href="/admin"' in await admin.get_page("/")
    owner = await site.client(OWNER)
    assert 'href="/admin"' not in await owner.get_page("/")
    await site.services.storage.signin.note_server_manager(OWNER.id, 77, True, OWNER.name)
    assert 'href="/admin"' in await owner.get_page("/")  # decided on each request
