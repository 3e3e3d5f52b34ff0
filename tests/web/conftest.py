"""Fixtures of the web companion's tests (helpers and members in tests/web/helpers.py).

- `site`: the companion over real services (tiny model, SQLite in the test's folder); `await site.client(OWNER)`
  is a test client signed in as OWNER, `await site.client()` an anonymous one, `await site.imagine(...)` a
  finished job. ADMIN's id is in ADMIN_USER_IDS.
- `local_site`: the same under `kaika web --local` (every visitor the command line's local user).
- `live_web`: the real server on 127.0.0.1 and a free port, in a thread of its own, for browser tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.wiring import Services
from storage import LOCAL_USER_ID
from tests.fixtures.services import OpenServices
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
