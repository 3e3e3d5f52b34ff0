"""Sessions in signed cookies, and CSRF protection of every state-changing request.

A session is a small JSON object in the cookie `kaika_session`, signed with HMAC-SHA256 under the cookie
secret (`COOKIE_SECRET`, or the one kept in DATA_DIR: `load_cookie_secret`): HttpOnly, SameSite=Lax, and
Secure when WEB_BASE_URL is https. A cookie whose signature does not match, or past its expiry, reads as an
empty session. Every session, anonymous ones too, carries a random CSRF token; `session_middleware`
refuses a POST, PUT, PATCH or DELETE whose form field `csrf_token` or header `X-CSRF-Token` does not
carry it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

COOKIE_NAME = "kaika_session"
CSRF_FIELD = "csrf_token"  # the form field templates put the token in
CSRF_HEADER = "X-CSRF-Token"  # the header fetch() sends it in (web/static/kaika.js)
SESSION_SECONDS = 14 * 24 * 3600  # how long a sign-in lasts
SECRET_FILE = "cookie-secret"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSRF_REFUSAL = (
    "This form has expired or did not come from Kaika's own page (its security token does not match); "
    "reload the page and try again."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_cookie_secret(configured: str, data_dir: Path) -> bytes:
    """The key sessions are signed with: COOKIE_SECRET when set; otherwise the one kept in
    DATA_DIR/cookie-secret, created (random, readable by its owner only) the first time."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    # O_EXCL: of two processes starting at once, one writes the file and the other reads it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as file:
        file.write(secret.hex())
    log.info("Created the cookie secret %s", path)
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], secret: bytes) -> str:
    """`payload` as a cookie value: base64 JSON, a dot, base64 HMAC-SHA256 of the first part."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(value: str, secret: bytes) -> dict[str, Any] | None:
    """The payload of a value `sign` made with `secret`; None for anything else."""
    body, _, mac = value.partition(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not mac or not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


class Session:
    """What a visitor's cookie holds; `changed` sessions are written back with the response."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.changed = False

    @classmethod
    def load(cls, cookie: str | None, secret: bytes, now: float) -> Session:
        payload = unsign(cookie, secret) if cookie else None
        if payload is None or not isinstance(payload.get("exp"), int | float) or payload["exp"] < now:
            return cls()
        return cls(payload)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, **values: Any) -> None:
        self.data.update(values)
        self.changed = True

    def clear(self) -> None:
        """Forget everything (signing out); a new CSRF token is made when next asked for."""
        self.data = {}
        self.changed = True

    @property
    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(24)
            self.set(csrf=token)
        return token


SESSION = web.RequestKey("session", Session)
COOKIE_SECRET = web.AppKey("cookie_secret", bytes)
SECURE_COOKIES = web.AppKey("secure_cookies", bool)


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def csrf_token(request: web.Request) -> str:
    """The token a form (hidden field `csrf_token`) or fetch() (header `X-CSRF-Token`) must send back."""
    return request[SESSION].csrf_token


async def _sent_token(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached: the handler reads the same form again
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reads the session, refuses state-changing requests without the session's CSRF token, and writes a
    changed session back (on redirects too)."""
    secret = request.app[COOKIE_SECRET]
    now = time.time()
    session = Session.load(request.cookies.get(COOKIE_NAME), secret, now)
    request[SESSION] = session
    if request.method not in SAFE_METHODS:
        expected = session.get("csrf")
        sent = await _sent_token(request)
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise web.HTTPForbidden(text=CSRF_REFUSAL)
    try:
        response = await handler(request)
    except web.HTTPException as exception:
        _write(exception, session, request, now)
        raise
    _write(response, session, request, now)
    return response


def _write(response: web.StreamResponse, session: Session, request: web.Request, now: float) -> None:
    if not session.changed or response.prepared:
        return
    session.data["exp"] = int(now + SESSION_SECONDS)
    response.set_cookie(
        COOKIE_NAME,
        sign(session.data, request.app[COOKIE_SECRET]),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[SECURE_COOKIES],
    )
