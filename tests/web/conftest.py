"""Fixtures of the web companion's tests (helpers and members in tests/web/helpers.py).

- `site`: the companion over real services (tiny model, SQLite in the test's folder); `await site.client(OWNER)`
  is a test client signed in as OWNER, `await site.client()` an anonymous one, `await site.imagine(...)` a
  finished job. ADMIN's id is in ADMIN_USER_IDS.
- `local_site`: the same under `kaika web --local` (every visitor the command line's local user).
- `live_web`: the real server on 127.0.0.1 and a free port, in a thread of its own, for browser tests.
- `browser`: headless Chromium on `live_web`, signed out (tests/web/browser.py); `browser_at(url)` one on any
  server (e.g. a `kaika web` process); screenshots go to `screenshots_dir`, printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.wiring import Services
from storage import LOCAL_USER_ID
from tests.fixtures.services import OpenServices
from tests.web.browser import Browser, chrome_driver, new_screenshots_folder
from tests.web.helpers import ADMIN, LiveServer, Site
from web.members import Member

SITE_SETTINGS: dict[str, Any] = {"admin_user_ids": [ADMIN.id]}


def site_settings(tiny_model_dir: Path, tmp_path: Path, **values: Any) -> Settings:
    """The settings `open_services` opens the services with (the tiny model, DATA_DIR in the test's folder)."""
    values = {"model": str(tiny_model_dir), "data_dir": tmp_path / "data", **SITE_SETTINGS, **values}
    return Settings(_env_file=None, **values)


@pytest.fixture
async def site(open_services: OpenServices, tiny_model_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    services = await open_services(**SITE_SETTINGS)
    site = Site(services, site_settings(tiny_model_dir, tmp_path))
    yield site
    await site.close()


@pytest.fixture
async def local_site(
    open_services: OpenServices, tiny_model_dir: Path, tmp_path: Path
) -> AsyncIterator[Site]:
    services = await open_services(**SITE_SETTINGS)
    local = Member(LOCAL_USER_ID, "tester", is_admin=True)
    site = Site(services, site_settings(tiny_model_dir, tmp_path), local_member=local)
    yield site
    await site.close()


@pytest.fixture
def live_web(tiny_engine: Any, tiny_model_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """The companion served on a free port (`live_web.url`); jobs run on the tiny model with previews."""
    from pipeline.executor.local import LocalExecutor

    settings = site_settings(tiny_model_dir, tmp_path)

    async def open_services() -> Services:
        return await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=1))

    server = LiveServer(open_services, settings).start()
    yield server
    server.stop()


SCREENSHOTS: list[Path] = []  # the folder screenshots went to this run, printed at its end


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    folder = new_screenshots_folder()
    SCREENSHOTS.append(folder)
    return folder


@pytest.fixture(scope="session")
def chrome(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from chrome_driver(request)


@pytest.fixture
def browser_at(chrome: Any, screenshots_dir: Path, request: pytest.FixtureRequest) -> Callable[..., Browser]:
    """`browser_at(url)`: the session's Chromium, signed out, on the server at `url`."""

    def at(url: str, live: LiveServer | None = None) -> Browser:
        chrome.delete_all_cookies()
        return Browser(chrome, url, screenshots_dir, request.node.name, live)

    return at


@pytest.fixture
def browser(live_web: LiveServer, browser_at: Callable[..., Browser]) -> Iterator[Browser]:
    """Chromium on `live_web`, signed out; a test's cookies are cleared after it too."""
    tab = browser_at(live_web.url, live_web)
    yield tab
    tab.driver.get("about:blank")  # before the server stops: nothing left polling it
    tab.driver.delete_all_cookies()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in SCREENSHOTS:
        if any(folder.iterdir()):
            terminalreporter.write_line(f"Browser test screenshots: {folder}")
