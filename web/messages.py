"""What the web companion tells a member about an error they caused: the service's message (one wording for
every front end), with the people it names written by their names (the bot mentions them instead)."""

from __future__ import annotations

from aiohttp import web

from service.errors import OwnerOnly, user_message
from storage.errors import StorageError
from web.site import SERVICES


async def error_message(request: web.Request, error: BaseException) -> str | None:
    """The message for `error` as a page shows it; None for a bug of ours."""
    if isinstance(error, OwnerOnly):
        return error.explain(await _member_name(request, error.owner_id))
    return user_message(error)


async def _member_name(request: web.Request, user_id: int) -> str | None:
    """The name Kaika knows a member by; None when it knows none (or storage cannot say now)."""
    try:
        user = await request.app[SERVICES].storage.users.get(user_id)
    except StorageError:
        return None
    return user.display_name if user is not None and user.display_name else None
