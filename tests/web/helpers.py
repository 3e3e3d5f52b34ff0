"""Helpers of the web companion's tests: members, a test client signed in as one of them, and the real server
on a free port (for browser tests).

    async def test_gallery(site):                     # the `site` fixture (tests/web/conftest.py)
        job = await site.imagine(OWNER, "a red circle on a blue background --seed 3")
        owner = await site.client(OWNER)              # signed in as OWNER, with the session's CSRF token
        page = await owner.get_page("/")              # 200 and the HTML, or the assertion says what came
        response = await owner.post(f"/jobs/{job.id}/delete")           # the CSRF token is sent
        response = await owner.post(f"/jobs/{job.id}/delete", csrf=False)  # ... or not: 403
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from service.admission import Place
from service.jobs import ButtonAction
from service.settings import Settings
from service.signin import LINK_LIFETIME, new_signin_link
from service.wiring import Services
from storage.records import JobRecord
from tests.fixtures.reporters import outcome_of
from web.app import create_app
from web.members import Member
from web.sessions import COOKIE_NAME, CSRF_HEADER, sign
from web.sessions import COOKIE_SECRET as APP_COOKIE_SECRET

T = TypeVar("T")

OWNER = Member(1001, "Ada")  # the member whose jobs a test looks at
OTHER = Member(2002, "Bob")  # another member, who must never see or change OWNER's private data
ADMIN = Member(3003, "Cyd", is_admin=True)  # in ADMIN_USER_IDS (the `site` and `live_web` fixtures' settings)
COOKIE_SECRET = b"test-cookie-secret-0123456789abcdef"
SESSION_FOR_TESTS = 3600 * 24


def session_cookie(member: Member, csrf: str, secret: bytes = COOKIE_SECRET) -> str:
    """The signed session cookie of `member`, as signing in would set it."""
    import time

    payload = {"uid": member.id, "name": member.name, "csrf": csrf}
    return sign({**payload, "exp": int(time.time()) + SESSION_FOR_TESTS}, secret)


class WebClient:
    """aiohttp's test client, signed in as `member` (None: anonymous), sending the session's CSRF token
    with every POST and DELETE unless told `csrf=False`."""

    def __init__(self, client: TestClient, member: Member | None, csrf: str) -> None:
        self.client = client
        self.member = member
        self.csrf = csrf

    async def get(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("allow_redirects", False)
        return await self.client.get(path, **kwargs)

    async def get_page(self, path: str, status: int = 200) -> str:
        """The HTML of `path`, asserting its status (a browser's Accept header, so errors come as pages)."""
        response = await self.get(path, headers={"Accept": "text/html"})
        text = await response.text()
        assert response.status == status, f"GET {path}: {response.status} {text[:500]}"
        return text

    async def take_csrf_from(self, path: str) -> str:
        """Open `path` and send, from now on, the CSRF token its page carries (the session's current one)."""
        page = await self.get_page(path)
        self.csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        return page

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> Any:
        """A form POST (`data`), with the CSRF token in the form field unless `csrf=False`."""
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        kwargs.setdefault("allow_redirects", False)
        return await self.client.post(path, data=form, **kwargs)

    async def fetch(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> Any:
        """A request as kaika.fetch() makes it: the CSRF token in the X-CSRF-Token header."""
        headers = dict(kwargs.pop("headers", {}))
        if csrf:
            headers[CSRF_HEADER] = self.csrf
        headers.setdefault("Accept", "application/json")
        kwargs.setdefault("allow_redirects", False)
        return await self.client.request(method, path, headers=headers, **kwargs)


@dataclass
class Site:
    """The companion over real services (the tiny model, SQLite in the test's folder)."""

    services: Services
    settings: Settings
    local_member: Member | None = None
    clients: list[TestClient] = field(default_factory=list)

    def app(self) -> web.Application:
        return create_app(
            self.services, self.settings, cookie_secret=COOKIE_SECRET, local_member=self.local_member
        )

    async def client(self, member: Member | None = None, app: web.Application | None = None) -> WebClient:
        """A test client of a server of its own over the same services (or serving `app`, e.g. the one
        `web.server.open_app` makes), signed in as `member`."""
        app = app or self.app()
        secret = app[APP_COOKIE_SECRET]
        client = TestClient(TestServer(app))
        await client.start_server()
        self.clients.append(client)
        csrf = f"csrf-{member.id if member else 'anonymous'}"
        if member is not None:
            client.session.cookie_jar.update_cookies({COOKIE_NAME: session_cookie(member, csrf, secret)})
        else:
            payload = {"csrf": csrf, "exp": 2**31}
            client.session.cookie_jar.update_cookies({COOKIE_NAME: sign(payload, secret)})
        return WebClient(client, member, csrf)

    async def signin_link(self, member: Member, lifetime: timedelta = LINK_LIFETIME) -> str:
        """The path of a one-time sign-in link for `member`, as /web makes it."""
        link = await new_signin_link(self.services.storage, self.settings, member.id, member.name, lifetime)
        return URL(link.url).path

    async def imagine(self, member: Member, prompt: str) -> JobRecord:
        """A finished /imagine of `member` (four images), as the bot would record it."""
        jobs = self.services.jobs
        pending = await jobs.imagine(
            member.requester, Place(None, None), await jobs.parse_for(member.id, prompt)
        )
        await outcome_of(pending)
        job = await self.services.storage.jobs.get(pending.job.id)
        assert job is not None
        return job

    async def press(self, member: Member, action: ButtonAction, job: JobRecord, index: int = 0) -> JobRecord:
        """A finished job of the button `action` pressed by `member` on image `index` (from 0) of `job`."""
        pending = await self.services.jobs.press(member.requester, Place(None, None), action, job.id, index)
        await outcome_of(pending)
        child = await self.services.storage.jobs.get(pending.job.id)
        assert child is not None
        return child

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


class LiveServer:
    """The companion served for real on 127.0.0.1 and a free port, from a thread of its own (so a test can
    drive a browser with blocking calls). `call(coro_fn)` runs a coroutine on the server's loop, e.g. to
    record jobs through its services: `live.call(lambda: live.services.jobs...)`."""

    def __init__(
        self,
        open_services: Callable[[], Awaitable[Services]],
        settings: Settings,
        local_member: Member | None = None,
    ) -> None:
        self._open_services = open_services
        self.settings = settings
        self.local_member = local_member
        self.services: Services | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kaika-web", daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        self._ready.wait(120)
        if self._error is not None:
            raise self._error
        assert self.url, "the web companion did not start within 120 s"
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.services = await self._open_services()
            app = create_app(
                self.services, self.settings, cookie_secret=COOKIE_SECRET, local_member=self.local_member
            )
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self.services.close()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
        """Run `make()` on the server's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout)  # type: ignore[arg-type]

    def session_cookie(self, member: Member) -> dict[str, Any]:
        """A signed-in session for a browser: `driver.get(live.url)`, then `driver.add_cookie(...)` this."""
        return {"name": COOKIE_NAME, "value": session_cookie(member, f"csrf-{member.id}"), "path": "/"}

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
