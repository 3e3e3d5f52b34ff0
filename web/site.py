"""What every module of the companion shares: the application's keys.

services = request.app[SERVICES]       # service.wiring.Services: jobs, storage, executor
settings = request.app[SETTINGS]       # service.settings.Settings
"""

from __future__ import annotations

from aiohttp import web

from service.settings import Settings
from service.signin import web_base_url as base_url
from service.wiring import Services

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)

__all__ = ["SERVICES", "SETTINGS", "base_url"]
