"""Signing in with the one-time link /web sends: its page never spends it, its button signs in once."""

from __future__ import annotations

import html
from datetime import timedelta

from service.signin import EXPIRED_LINK, UNKNOWN_LINK, USED_LINK
from tests.web.helpers import ADMIN, OWNER, Site
from web.sessions import COOKIE_NAME, CSRF_REFUSAL
from web.signin import NO_SIGNINS_LOCALLY, SIGNED_OUT_EVERYWHERE


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
    await visitor.take_csrf_from("/")
    assert visitor.csrf and visitor.csrf != old_token
    assert (await visitor.post("/signout")).status == 302


async def test_admin_user_ids_see_the_admin_link_and_members_seen_managing_a_server_too(site: Site) -> None:
    admin = await site.client(ADMIN)
    assert 'href="/admin"' in await admin.get_page("/")
    owner = await site.client(OWNER)
    assert 'href="/admin"' not in await owner.get_page("/")
    await site.services.storage.signin.note_server_manager(OWNER.id, 77, True, OWNER.name)
    assert 'href="/admin"' in await owner.get_page("/")  # decided on each request


async def test_sign_out_everywhere_ends_the_members_sign_ins_in_every_browser(site: Site) -> None:
    phone, laptop = await site.client(), await site.client()
    for browser in (phone, laptop):
        link = await site.signin_link(OWNER)
        assert (await browser.post(link)).status == 302
        assert "Sign out everywhere" in await browser.take_csrf_from("/")
    copied = phone.client.session.cookie_jar.filter_cookies(phone.client.make_url("/"))[COOKIE_NAME].value
    other = await site.client(ADMIN)

    ended = await laptop.post("/signout/everywhere")
    assert ended.status == 302 and ended.headers["Location"] == "/signin?ended=everywhere"
    assert SIGNED_OUT_EVERYWHERE in html.unescape(await laptop.get_page("/signin?ended=everywhere"))
    assert (await laptop.get("/")).status == 302
    assert (await phone.get("/")).status == 302  # the other browser is signed out too
    thief = await site.client()
    thief.client.session.cookie_jar.update_cookies({COOKIE_NAME: copied})
    assert (await thief.get("/")).status == 302  # and so is a copy of its cookie
    assert (await other.get("/")).status == 200  # another member's sign-in is untouched

    again = await site.signin_link(OWNER)
    await phone.take_csrf_from("/signin")
    assert (await phone.post(again)).status == 302
    assert "Ada" in await phone.get_page("/")  # signing in again works as before


async def test_sign_out_everywhere_needs_a_signed_in_member_and_the_csrf_token(site: Site) -> None:
    owner = await site.client(OWNER)
    refused = await owner.post("/signout/everywhere", csrf=False)
    assert refused.status == 403
    assert (await owner.get("/")).status == 200  # nothing ended
    anonymous = await site.client()
    response = await anonymous.post("/signout/everywhere")
    assert response.status == 401
    assert await site.services.storage.signin.web_sessions_generation(OWNER.id) == 0


async def test_the_local_playground_has_no_sign_ins_to_end(local_site: Site) -> None:
    visitor = await local_site.client()
    page = await visitor.get_page("/")
    assert "Sign out everywhere" not in page
    response = await visitor.post("/signout/everywhere")
    assert response.status == 400 and await response.text() == NO_SIGNINS_LOCALLY
