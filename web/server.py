"""Running the companion: `kaika web` opens the services, serves the app until SIGTERM / SIGINT, and closes."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

from service.errors import SettingError
from service.settings import Settings
from service.signin import SIGNIN_LINK_PATH
from service.wiring import Services
from web.app import create_app
from web.live import resume_web_jobs
from web.members import Member
from web.sessions import load_cookie_secret

log = logging.getLogger(__name__)


# Query parameters that sign someone in (an OAuth2 code and state, a link's token): never written to the log.
SECRET_PARAMETERS = frozenset({"code", "state", "token"})


def logged_path(url: URL) -> str:
    """`url`'s path and query as the access log shows it: a sign-in link's token and OAuth2's code and state
    left out, so the log cannot sign anyone in."""
    path = url.path
    if path.startswith(SIGNIN_LINK_PATH):
        path = SIGNIN_LINK_PATH + "…"
    query = "&".join(
        f"{key}={'…' if key in SECRET_PARAMETERS else value}" for key, value in url.query.items()
    )
    return f"{path}?{query}" if query else path


class AccessLogger(AbstractAccessLogger):
    """One line a request: who, what (with `logged_path`), the status and how long it took."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3fs',
            request.remote,
            request.method,
            logged_path(request.rel_url),
            response.status,
            time,
        )


def app_runner(app: web.Application) -> web.AppRunner:
    return web.AppRunner(app, access_log=log, access_log_class=AccessLogger)


def check_local_host(host: str) -> None:
    """--local signs every visitor in as the local user, so it listens on a loopback address only."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SettingError(
            f"--local signs every visitor in as you, so it listens only on this machine (127.0.0.1, ::1 or "
            f"localhost), not on {host}; drop --host, or drop --local and sign in through Discord."
        )


async def open_app(
    settings: Settings, services: Services, local_member: Member | None = None
) -> web.Application:
    """The app `kaika web` serves over `services`, with the cookie secret of `settings` (created in DATA_DIR
    when unset); as it starts, it resumes the web's jobs a previous run left unfinished (`resume_web_jobs`)."""
    secret = await asyncio.to_thread(load_cookie_secret, settings.cookie_secret, settings.data_dir)
    app = create_app(services, settings, cookie_secret=secret, local_member=local_member)
    # Once, as the server starts (not in create_app, which tests build many times over one set of services).
    app.on_startup.append(resume_web_jobs)
    return app


async def serve(settings: Settings, host: str, port: int, local_member: Member | None = None) -> None:
    """Serve the companion on host:port until SIGTERM or SIGINT."""
    if local_member is not None:
        check_local_host(host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        services = await Services.open(settings)
        try:
            runner = app_runner(await open_app(settings, services, local_member))
            await runner.setup()
            try:
                site = web.TCPSite(runner, host, port)
                try:
                    await site.start()
                except OSError as error:
                    raise SettingError(
                        f"--host {host} --port {port}: cannot listen there ({error.strerror})."
                    ) from None
                shown = f"[{host}]" if ":" in host else host
                log.info("Kaika's web companion is at http://%s:%d/", shown, port)
                print(f"Kaika's web companion is at http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
                await stop.wait()
            finally:
                await runner.cleanup()
        finally:
            await services.close()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
