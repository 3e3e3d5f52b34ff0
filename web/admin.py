"""The admin dashboard: usage at a glance, the fleet, and the settings the bot's /admin commands change.

Admins only (ADMIN_USER_IDS, or members the bot saw with Manage Server); anyone else gets 403. Figures and
changes go through `service.administration`, as /stats and /admin do, so the rules and the wording are the bot's.
A member with Manage Server sees the figures of their servers' jobs only (`administration.figures_guilds`).

    GET  /admin?window=7d&guild=<id>         the dashboard (a window of 24h, 7d, 30d or all; a guild's settings)
    GET  /admin/chart.png?window=7d          the jobs-per-day chart /stats attaches
    POST /admin/ban, /admin/unban            `user_id` (a Discord user id)
    POST /admin/guilds/<id>/quota            `jobs` (empty: unlimited)
    POST /admin/guilds/<id>/buttons          `who` (anyone | owner)
    POST /admin/guilds/<id>/blocklist        `term`, and `action` (add | remove)

A change answers 303 back to the dashboard, which says what changed; a refused one answers the dashboard
again (400) with the refusal above the form, and nothing changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from service import administration
from service.administration import OUTSIDE_SERVERS, button_policy_text, quota_text
from service.charts import jobs_per_day_chart
from service.errors import UserError, user_message
from storage.errors import NotAllowed
from storage.records import ButtonPolicy, Window
from web.members import Member, require_admin
from web.pages import render
from web.sessions import SESSION
from web.site import SERVICES, SETTINGS

DEFAULT_WINDOW = Window.WEEK
WINDOWS = [Window.DAY, Window.WEEK, Window.MONTH, Window.ALL]
UNKNOWN_WINDOW = "The dashboard shows 24h, 7d, 30d or all (got {window!r})."
NOT_A_GUILD = "There is no server {guild!r} among those you administer."
UNKNOWN_BLOCKLIST_ACTION = "A blocklist change either adds or removes a term."
NOTICE = "admin_notice"  # the session key of what the last change did, shown once


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin", dashboard, name="admin")
    app.router.add_get("/admin/chart.png", chart)
    app.router.add_post("/admin/ban", ban)
    app.router.add_post("/admin/unban", unban)
    app.router.add_post(r"/admin/guilds/{guild_id:\d{1,20}}/quota", set_quota)
    app.router.add_post(r"/admin/guilds/{guild_id:\d{1,20}}/buttons", set_buttons)
    app.router.add_post(r"/admin/guilds/{guild_id:\d{1,20}}/blocklist", change_blocklist)


def _window(request: web.Request) -> Window:
    asked = request.query.get("window", DEFAULT_WINDOW.value)
    try:
        return Window(asked)
    except ValueError:
        raise web.HTTPBadRequest(text=UNKNOWN_WINDOW.format(window=asked)) from None


def guild_name(guild_id: int) -> str:
    return "Outside servers (web, command line, DMs)" if guild_id == OUTSIDE_SERVERS else f"Server {guild_id}"


def figures_label(guilds: tuple[int, ...] | None) -> str:
    """Whose jobs the dashboard's figures count, said above them."""
    if guilds is None:
        return "Every server's jobs, and those made outside any server."
    if not guilds:
        return "No jobs to show: the bot has not seen you with Manage Server in any server yet."
    return f"Jobs made in {', '.join(guild_name(guild) for guild in guilds)} only."


async def _figures_guilds(
    request: web.Request, admin: Member, administered: list[int] | None = None
) -> tuple[int, ...] | None:
    """The guilds whose jobs `admin` may see the figures of (None: every job). `administered`: their guilds
    when already known; else the guilds they manage, all the rule needs (ADMIN_USER_IDS see every job anyway)."""
    services, settings = request.app[SERVICES], request.app[SETTINGS]
    if administered is None:
        administered = await services.storage.guilds.managed_by(admin.id)
    return administration.figures_guilds(settings, admin.id, administered)


async def _dashboard_page(
    request: web.Request, admin: Member, *, guild_id: int | None = None, error: str = "", status: int = 200
) -> web.Response:
    services, settings = request.app[SERVICES], request.app[SETTINGS]
    window = _window(request)
    guilds = await administration.administered_guilds(services.storage, settings, admin.id)
    if guild_id is None:
        asked = request.query.get("guild", "")
        guild_id = int(asked) if asked.isdigit() else (guilds[0] if guilds else None)
        if guild_id is not None and guild_id not in guilds:
            raise web.HTTPNotFound(text=NOT_A_GUILD.format(guild=asked))
    today = datetime.now(UTC).date()
    scope = await _figures_guilds(request, admin, guilds)
    figures = await administration.usage(services.storage, services.executor, window, today, guilds=scope)
    guild = await services.storage.guilds.settings(guild_id) if guild_id is not None else None
    shown, notice, notice_in = request[SESSION].get(NOTICE), "", ""
    if isinstance(shown, list) and len(shown) == 2:  # [what changed, the section it was changed in]
        request[SESSION].set(**{NOTICE: None})
        notice, notice_in = str(shown[0]), str(shown[1])
    context: dict[str, Any] = {
        "usage": figures,
        "figures_label": figures_label(figures.guilds),
        "window": window,
        "windows": WINDOWS,
        "guilds": [(g, guild_name(g)) for g in guilds],
        "guild": guild,
        "guild_label": guild_name(guild_id) if guild_id is not None else "",
        "quota_text": quota_text,
        "button_policy_text": button_policy_text,
        "policies": list(ButtonPolicy),
        "banned": await services.storage.users.banned(),
        "notice": notice,
        "notice_in": notice_in,  # the section the change was made in, where the page opens
        "error": error,
        "chart_url": str(URL("/admin/chart.png").with_query(window=window.value)),
    }
    return render("admin.html", request, context, status=status)


async def dashboard(request: web.Request) -> web.StreamResponse:
    return await _dashboard_page(request, require_admin(request))


async def chart(request: web.Request) -> web.StreamResponse:
    admin = require_admin(request)
    scope = await _figures_guilds(request, admin)
    report = await request.app[SERVICES].storage.stats.usage(_window(request), guilds=scope)
    first, last = administration.chart_days(report, datetime.now(UTC).date())
    png = await asyncio.to_thread(jobs_per_day_chart, report.jobs_per_day, first, last)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


# ---- changes ---------------------------------------------------------------------------------------------


async def _change(
    request: web.Request, guild_id: int | None, change: Callable[[dict[str, str]], Awaitable[str]]
) -> web.StreamResponse:
    """Run `change(form)` → the notice to show; a refusal a member caused answers the dashboard with it (400)."""
    admin = require_admin(request)
    services, settings = request.app[SERVICES], request.app[SETTINGS]
    if guild_id is not None:
        await administration.check_administers(services.storage, settings, admin.id, guild_id)
    form = await request.post()
    try:
        notice = await change({key: str(value) for key, value in form.items()})
    except NotAllowed:
        raise
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        return await _dashboard_page(request, admin, guild_id=guild_id, error=message, status=400)
    section = "settings" if guild_id is not None else "bans"
    request[SESSION].set(**{NOTICE: [notice, section]})
    back = URL("/admin").with_query({"guild": str(guild_id)} if guild_id is not None else {})
    raise web.HTTPSeeOther(str(back.with_fragment(section)))


def _guild(request: web.Request) -> int:
    return int(request.match_info["guild_id"])


async def ban(request: web.Request) -> web.StreamResponse:
    storage = request.app[SERVICES].storage

    async def change(form: dict[str, str]) -> str:
        user_id = administration.parse_user_id(form.get("user_id", ""))
        await administration.ban(storage, user_id)
        return f"User {user_id} is banned from Kaika."

    return await _change(request, None, change)


async def unban(request: web.Request) -> web.StreamResponse:
    storage = request.app[SERVICES].storage

    async def change(form: dict[str, str]) -> str:
        user_id = administration.parse_user_id(form.get("user_id", ""))
        await administration.unban(storage, user_id)
        return f"User {user_id} may use Kaika again."

    return await _change(request, None, change)


async def set_quota(request: web.Request) -> web.StreamResponse:
    storage, guild_id = request.app[SERVICES].storage, _guild(request)

    async def change(form: dict[str, str]) -> str:
        jobs = administration.parse_quota(form.get("jobs", ""))
        settings = await administration.set_daily_quota(storage, guild_id, jobs)
        return f"Daily quota: {quota_text(settings.daily_quota)}."

    return await _change(request, guild_id, change)


async def set_buttons(request: web.Request) -> web.StreamResponse:
    storage, guild_id = request.app[SERVICES].storage, _guild(request)

    async def change(form: dict[str, str]) -> str:
        settings = await administration.set_button_policy(storage, guild_id, form.get("who", ""))
        return f"Job buttons may now be pressed by {button_policy_text(settings.button_policy)}."

    return await _change(request, guild_id, change)


async def change_blocklist(request: web.Request) -> web.StreamResponse:
    storage, guild_id = request.app[SERVICES].storage, _guild(request)

    async def change(form: dict[str, str]) -> str:
        term, action = form.get("term", ""), form.get("action", "")
        if action not in ("add", "remove"):
            raise UserError(UNKNOWN_BLOCKLIST_ACTION)
        edit = administration.block_term if action == "add" else administration.unblock_term
        settings = await edit(storage, guild_id, term)
        return f"Blocked terms: {', '.join(settings.blocklist) or 'none'}."

    return await _change(request, guild_id, change)
