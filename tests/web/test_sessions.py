"""Sessions, sign-in plumbing and CSRF: who a request acts for, and what an anonymous visitor sees."""

from __future__ import annotations

import html
import stat
from pathlib import Path

import pytest

from service.errors import SettingError
from tests.web.helpers import COOKIE_SECRET, OTHER, OWNER, Site
from web.members import local_path
from web.server import check_local_host
from web.sessions import COOKIE_NAME, CSRF_REFUSAL, load_cookie_secret, sign, unsign


async def test_an_anonymous_visitor_is_sent_to_sign_in_and_back(site: Site) -> None:
    anonymous = await site.client()
    response = await anonymous.get("/?kind=imagine")
    assert response.status == 302
    assert response.headers["Location"] == "/signin?next=/?kind%3Dimagine"
    page = await anonymous.get_page("/signin")
    assert "/web" in page and "Sign out" not in page and "Gallery" not in page


async def test_a_member_sees_their_own_jobs_and_not_another_members(site: Site) -> None:
    await site.imagine(OWNER, "a red circle on a blue background --seed 3")
    owner, other = await site.client(OWNER), await site.client(OTHER)
    page = await owner.get_page("/")
    assert "a red circle on a blue background" in page and "Ada" in page
    assert "a red circle" not in await other.get_page("/")


async def test_a_forged_or_tampered_cookie_is_no_session(site: Site) -> None:
    anonymous = await site.client()
    forged = sign({"uid": OWNER.id, "name": "Ada", "csrf": "x", "exp": 2**31}, b"another secret")
    anonymous.client.session.cookie_jar.update_cookies({COOKIE_NAME: forged})
    assert (await anonymous.get("/")).status == 302
    good = sign({"uid": OWNER.id, "name": "Ada", "exp": 2**31}, COOKIE_SECRET)
    mac = good.partition(".")[2]
    tampered = (
        sign({"uid": OTHER.id, "name": "Bob", "exp": 2**31}, COOKIE_SECRET).partition(".")[0] + "." + mac
    )
    assert unsign(good, COOKIE_SECRET) is not None
    assert unsign(tampered, COOKIE_SECRET) is None


async def test_an_expired_session_is_signed_out(site: Site) -> None:
    member = await site.client(OWNER)
    expired = sign({"uid": OWNER.id, "name": "Ada", "csrf": member.csrf, "exp": 1000}, COOKIE_SECRET)
    member.client.session.cookie_jar.update_cookies({COOKIE_NAME: expired})
    assert (await member.get("/")).status == 302


async def test_signing_out_needs_the_csrf_token(site: Site) -> None:
    owner = await site.client(OWNER)
    refused = await owner.post("/signout", csrf=False, headers={"Accept": "text/html"})
    assert refused.status == 403
    assert CSRF_REFUSAL in html.unescape(await refused.text())
    wrong = await owner.post("/signout", {"csrf_token": "not the token"})
    assert wrong.status == 403
    assert (await owner.get("/")).status == 200  # still signed in
    done = await owner.post("/signout")
    assert done.status == 302 and done.headers["Location"] == "/signin"
    assert (await owner.get("/")).status == 302


async def test_the_session_cookie_is_httponly_and_samesite_lax(site: Site) -> None:
    anonymous = await site.client()
    anonymous.client.session.cookie_jar.clear()
    response = await anonymous.get("/signin")
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # WEB_BASE_URL is http here


async def test_the_local_playground_signs_every_visitor_in_as_the_local_user(local_site: Site) -> None:
    visitor = await local_site.client()
    page = await visitor.get_page("/")
    assert "tester" in page and "Admin" in page and "Sign out" not in page
    assert (await visitor.get("/signin")).status == 302


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_local_accepts_loopback_hosts(host: str) -> None:
    check_local_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_local_refuses_other_hosts(host: str) -> None:
    with pytest.raises(SettingError, match=f"not on {host}"):
        check_local_host(host)


def test_the_cookie_secret_is_created_in_data_dir_for_its_owner_only_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    secret = load_cookie_secret("", data_dir)
    path = data_dir / "cookie-secret"
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_cookie_secret("", data_dir) == secret  # kept across restarts
    assert load_cookie_secret("from the settings", data_dir) == b"from the settings"


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/jobs/abc?x=1", True),
        ("//evil.example/", False),
        ("https://evil.example/", False),
        ("/\\evil", False),
        ("", False),
    ],
)
def test_only_this_sites_paths_are_followed_after_sign_in(target: str, kept: bool) -> None:
    assert local_path(target) == (target if kept else "/")


def test_kaika_web_local_refuses_a_public_address_before_opening_anything(kaika, local_data: Path) -> None:
    run = kaika("web", "--local", "--host", "0.0.0.0")
    assert "listens only on this machine" in run.error_line("web")
    assert not (local_data / "cookie-secret").exists()


async def test_the_access_log_never_holds_a_sign_in_token_or_code(site: Site, caplog) -> None:
    import logging

    import aiohttp
    from aiohttp import web

    from web.server import app_runner

    link = await site.signin_link(OWNER)
    token = link.rpartition("/")[2]
    runner = app_runner(site.app())
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        with caplog.at_level(logging.INFO, logger="web.server"):
            async with aiohttp.ClientSession() as http:
                await (await http.get(base + link)).read()
                await (
                    await http.get(base + "/signin/discord/callback?code=SECRETCODE&state=SECRETSTATE")
                ).read()
                await (await http.get(base + "/signin?next=/jobs/abc")).read()
    finally:
        await runner.cleanup()
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "web.server")
    assert '"GET /signin/link/…" 200' in logged and "/signin?next=/jobs/abc" in logged
    assert "/signin/discord/callback?code=…&state=…" in logged
    assert token not in logged and "SECRET" not in logged


async def test_the_companion_serves_health_and_metrics_without_sign_in(site: Site) -> None:
    anonymous = await site.client()
    health = await anonymous.get("/healthz")
    assert health.status == 200 and (await health.text()).strip() == "ok"
    metrics = await anonymous.get("/metrics")
    assert metrics.status == 200 and "kaika_jobs_total" in await metrics.text()
