"""Every route of the companion, found from its router (a new route is swept too): an anonymous visitor is
sent to sign in, a state-changing request without the CSRF token is refused, another member neither sees nor
changes the owner's job, and a member who is not an admin gets no admin page."""

from __future__ import annotations

import re
from collections.abc import Iterator

from aiohttp import web

from tests.web.helpers import OTHER, OWNER, Site, WebClient

# Open to anyone: signing in, the package's assets and the monitoring endpoints.
PUBLIC = re.compile(r"^/(signin(/.*)?|signout|static(/.*)?|healthz|readyz|metrics)$")
ADMIN_ONLY = re.compile(r"^/admin(/.*)?$")


def routes(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route but HEAD and static files."""
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        if route.method != "HEAD" and template and "prefix" not in info:
            yield route.method, template


def filled(template: str, job_id: str) -> str:
    values = {"job_id": job_id, "number": "1", "index": "0", "guild_id": "1", "token": "x" * 43}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda match: values.get(match[1], "1"), template)


async def _request(client: WebClient, method: str, path: str, *, csrf: bool = True):
    if method == "GET":
        return await client.get(path)
    return await client.fetch(method, path, csrf=csrf, data={})


async def test_an_anonymous_visitor_reaches_only_the_sign_in_pages(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle on a blue background --seed 3")
    anonymous = await site.client()
    checked = 0
    for method, template in routes(site.app()):
        if PUBLIC.match(template):
            continue
        path = filled(template, job.id)
        response = await _request(anonymous, method, path)
        if method == "GET":
            assert response.status == 302, (method, path, response.status)
            assert response.headers["Location"].startswith("/signin?next="), (method, path)
        else:
            assert response.status == 401, (method, path, response.status, await response.text())
        checked += 1
    assert checked >= 4
    assert await site.services.storage.jobs.get(job.id) is not None


async def test_every_state_changing_request_needs_the_csrf_token(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle on a blue background --seed 3")
    owner = await site.client(OWNER)
    before = len((await site.services.storage.jobs.gallery(OWNER.id))[0])
    posts = [(method, template) for method, template in routes(site.app()) if method != "GET"]
    assert posts
    for method, template in posts:
        path = filled(template, job.id)
        response = await _request(owner, method, path, csrf=False)
        assert response.status == 403, (method, path, response.status)
    assert await site.services.storage.jobs.get(job.id) is not None
    assert len((await site.services.storage.jobs.gallery(OWNER.id))[0]) == before


async def test_another_member_never_sees_or_changes_the_owners_job(site: Site) -> None:
    job = await site.imagine(OWNER, "a red circle on a blue background --seed 3")
    other = await site.client(OTHER)
    for method, template in routes(site.app()):
        if "{job_id}" not in template:
            continue
        path = filled(template, job.id)
        response = await _request(other, method, path)
        body = await response.read()
        assert response.status in (403, 404), (method, path, response.status, body[:200])
        assert b"a red circle" not in body, (method, path)
    assert await site.services.storage.jobs.get(job.id) is not None
    assert (await site.services.storage.jobs.gallery(OTHER.id))[0] == []  # nothing made from the job either


async def test_a_member_who_is_not_an_admin_gets_no_admin_page(site: Site) -> None:
    member = await site.client(OWNER)
    admin_routes = [(m, t) for m, t in routes(site.app()) if ADMIN_ONLY.match(t)]
    for method, template in admin_routes:
        response = await _request(member, method, filled(template, "x"))
        assert response.status == 403, (method, template, response.status)
