"""What every module of the companion shares: the application's keys.

services = request.app[SERVICES]       # service.wiring.Services: jobs, storage, executor
settings = request.app[SETTINGS]       # service.settings.Settings
"""

from __future__ import annotations

from aiohttp import web

from service.settings import Settings
from service.wiring import Services

SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def base_url(settings: Settings) -> str:
    """Where members reach the companion (WEB_BASE_URL), without a trailing slash."""
    return (settings.web_base_url or DEFAULT_BASE_URL).rstrip("/")
