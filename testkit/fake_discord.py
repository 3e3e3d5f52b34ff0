"""A local Discord for end-to-end tests: aiohttp REST + websocket gateway on 127.0.0.1.

The real discord.py client connects to it through the `DISCORD_API_BASE` and `DISCORD_GATEWAY_URL`
settings. It answers login, command sync, the gateway handshake and heartbeats; it dispatches
`INTERACTION_CREATE` for slash commands, button presses and modal submissions built from what the
bot really synced and sent; it keeps every message the bot created or edited (with attachment bytes) and records
every REST call. Request bodies are validated against Discord's OpenAPI spec when it is present
at `../shared/discord-api-spec/openapi.json` next to the repository. It is also an OAuth2 provider
(authorization code grant): a consent page at /oauth2/authorize that a chosen member approves, the token
endpoint and the routes a Bearer token may call, checked against the spec's OAuth2 scheme and scopes.

Interactions behave as Discord's do where the bot can get them wrong: a callback more than 3 s
after dispatch answers 404 "Unknown interaction", a second callback answers 400 "already
acknowledged", a message, autocomplete answer or modal over one of Discord's limits (2000
characters of content, embed and component sizes) answers 400 "Invalid Form Body", and a test
may make chosen routes answer 429 first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import BasicAuth, WSMsgType, web
from yarl import URL

SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "discord-api-spec" / "openapi.json"
API_PREFIX = "/api/v10"
INTERACTION_WINDOW_SECONDS = 3.0
DISCORD_EPOCH_MS = 1_420_070_400_000  # the first second of 2015, where snowflake times start

# Permission bits (https://discord.com/developers/docs/topics/permissions)
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
MEMBER_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES

EPHEMERAL_FLAG = 1 << 6
BOT_DM_CONTEXT = 1  # an interaction context: the user's direct messages with the bot (0: a server)
LOADING_FLAG = 1 << 7

OPTION_TYPES = {"string": 3, "integer": 4, "boolean": 5, "user": 6, "number": 10, "attachment": 11}


# Discord's own limits on what a message, an autocomplete answer or a modal holds. Discord answers a
# body over any of them with 400 "Invalid Form Body" (code 50035) and shows nothing, and so does the
# fake. Its spec lists some (tests/bot/test_fake_discord.py checks those numbers against it); the
# rest are from https://discord.com/developers/docs (messages, embeds, components, interactions).
CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TEXT_MAX = {"title": 256, "description": 4096}
EMBED_FIELDS_MAX = 25
EMBED_FIELD_MAX = {"name": 256, "value": 1024}
EMBED_FOOTER_MAX = 2048
EMBED_AUTHOR_MAX = 256
EMBED_TOTAL_MAX = 6000
BUTTON_MAX = {"label": 80, "custom_id": 100}
SELECT_MAX = {"custom_id": 100, "placeholder": 150}
SELECT_OPTIONS_MAX = 25
SELECT_OPTION_MAX = {"label": 100, "value": 100, "description": 100}
CHOICES_MAX = 25
CHOICE_MAX = {"name": 100, "value": 100}
MODAL_MAX = {"title": 45, "custom_id": 100}
TEXT_INPUT_MAX = {"label": 45, "custom_id": 100}
SELECT_TYPES = (3, 5, 6, 7, 8)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


FormPath = tuple[str | int, ...]


def _too_long(errors: dict[FormPath, str], holder: Any, limits: dict[str, int], at: FormPath) -> None:
    for key, most in limits.items():
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and len(value) > most:
            errors[(*at, key)] = f"Must be {most} or fewer in length."


def _too_many(errors: dict[FormPath, str], items: Any, most: int, at: FormPath) -> list[Any]:
    items = items if isinstance(items, list) else []
    if len(items) > most:
        errors[at] = f"Must be {most} or fewer in length."
    return items


def message_limit_errors(data: Any) -> dict[FormPath, str]:
    """Where a message body (create, edit, follow-up, or an interaction response's data) breaks
    Discord's limits: each path in the body with Discord's wording of the rule."""
    errors: dict[FormPath, str] = {}
    if not isinstance(data, dict):
        return errors
    _too_long(errors, data, {"content": CONTENT_MAX}, ())
    total = 0
    for i, embed in enumerate(_too_many(errors, data.get("embeds"), EMBEDS_MAX, ("embeds",))):
        at: FormPath = ("embeds", i)
        _too_long(errors, embed, EMBED_TEXT_MAX, at)
        _too_long(errors, embed.get("footer"), {"text": EMBED_FOOTER_MAX}, (*at, "footer"))
        _too_long(errors, embed.get("author"), {"name": EMBED_AUTHOR_MAX}, (*at, "author"))
        fields = _too_many(errors, embed.get("fields"), EMBED_FIELDS_MAX, (*at, "fields"))
        for j, field_ in enumerate(fields):
            _too_long(errors, field_, EMBED_FIELD_MAX, (*at, "fields", j))
        texts = [embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text")]
        texts += [(embed.get("author") or {}).get("name")]
        texts += [f.get(key) for f in fields for key in ("name", "value")]
        total += sum(len(text) for text in texts if isinstance(text, str))
    if total > EMBED_TOTAL_MAX:
        errors[("embeds",)] = f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}"
    errors.update(_component_limit_errors(data.get("components"), ("components",)))
    return errors


def _component_limit_errors(rows: Any, at: FormPath) -> dict[FormPath, str]:
    errors: dict[FormPath, str] = {}
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        for j, component in enumerate(row.get("components") or []):
            where: FormPath = (*at, i, "components", j)
            kind = component.get("type")
            if kind == 2:
                _too_long(errors, component, BUTTON_MAX, where)
            elif kind in SELECT_TYPES:
                _too_long(errors, component, SELECT_MAX, where)
                options = _too_many(errors, component.get("options"), SELECT_OPTIONS_MAX, (*where, "options"))
                for k, option in enumerate(options):
                    _too_long(errors, option, SELECT_OPTION_MAX, (*where, "options", k))
            elif kind == 4:
                _too_long(errors, component, TEXT_INPUT_MAX, where)
    return errors


def callback_limit_errors(body: Any) -> dict[FormPath, str]:
    """Where an interaction response breaks Discord's limits: its message, choices or modal."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return {}
    data, kind = body["data"], body.get("type")
    at: FormPath = ("data",)
    if kind == 8:  # autocomplete
        errors: dict[FormPath, str] = {}
        for i, choice in enumerate(_too_many(errors, data.get("choices"), CHOICES_MAX, (*at, "choices"))):
            _too_long(errors, choice, CHOICE_MAX, (*at, "choices", i))
        return errors
    if kind == 9:  # modal
        errors = {}
        _too_long(errors, data, MODAL_MAX, at)
        errors.update(_component_limit_errors(data.get("components"), (*at, "components")))
        return errors
    return {(*at, *path): rule for path, rule in message_limit_errors(data).items()}


def invalid_form_body(errors: dict[FormPath, str]) -> dict[str, Any]:
    """Discord's 400 answer: `errors` nested by path, each rule under `_errors`."""
    nested: dict[str, Any] = {}
    for path, rule in errors.items():
        node = nested
        for key in path:
            node = node.setdefault(str(key), {})
        code = "BASE_TYPE_MAX_LENGTH" if rule.startswith("Must be") else "MAX_EMBED_SIZE_EXCEEDED"
        node.setdefault("_errors", []).append({"code": code, "message": rule})
    return {"message": "Invalid Form Body", "code": 50035, "errors": nested}


class CommandHidden(AssertionError):
    """Discord would not let this member use the command: it is not even listed to them."""


@dataclass
class RecordedCall:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any  # parsed JSON (or payload_json of a multipart body); None when empty
    files: dict[str, tuple[str, bytes]]  # form field -> (filename, bytes)
    status: int = 0
    at: float = 0.0


@dataclass
class FakeAttachment:
    """A file a member attached to a command option: Discord's client uploaded it, the interaction names it by
    id in the option and describes it in `resolved.attachments`, and the bot downloads it from `url`."""

    id: int
    filename: str
    data: bytes
    content_type: str
    url: str
    declared_size: int | None = None  # the size the interaction states, when not the served bytes'
    downloads: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data) if self.declared_size is None else self.declared_size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "ephemeral": True,
        }


@dataclass
class FakeUser:
    id: int
    name: str
    permissions: int = MEMBER_PERMISSIONS
    roles: tuple[int, ...] = ()  # role ids beyond @everyone (`FakeDiscord.add_member(roles=...)`)

    def user_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
        }

    def member_payload(self) -> dict[str, Any]:
        return {
            "user": self.user_payload(),
            "roles": [str(role) for role in self.roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(self.permissions),
        }


@dataclass
class FakeInteraction:
    id: int
    token: str
    kind: int  # 2 = application command, 3 = component, 4 = autocomplete, 5 = modal submit
    user: FakeUser
    payload: dict[str, Any]
    dispatched_at: float
    acked_at: float | None = None
    response_type: int | None = None
    response: dict[str, Any] | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    expired: bool = False  # its token no longer works (Discord's lasts 15 minutes)

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.dispatched_at

    @property
    def ephemeral(self) -> bool:
        data = (self.response or {}).get("data") or {}
        return bool((data.get("flags") or 0) & EPHEMERAL_FLAG)


class SpecValidator:
    """Validates request bodies against the requestBody schema of the matching OpenAPI operation."""

    def __init__(self, spec_path: Path) -> None:
        import jsonschema

        self.spec = json.loads(spec_path.read_text())
        # Discord accepts a snowflake as a JSON integer as well as a string, and discord.py sends
        # integers (attachment indexes, ids); the published schema only lists the string form.
        snowflake = self.spec["components"]["schemas"]["SnowflakeType"]
        self.spec["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [snowflake, {"type": "integer", "minimum": 0}]
        }
        self._jsonschema = jsonschema
        self._routes: list[tuple[re.Pattern[str], str]] = []
        templates = sorted(self.spec["paths"], key=lambda p: (p.count("{"), -len(p)))
        for template in templates:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self._routes.append((re.compile(f"^{pattern}$"), template))
        self._validators: dict[tuple[str, str, str], Any] = {}

    def template_for(self, path: str) -> str | None:
        return next((template for pattern, template in self._routes if pattern.match(path)), None)

    def oauth_flow(self) -> dict[str, Any]:
        """The spec's OAuth2 security scheme: its URLs and the scopes Discord knows."""
        flows = self.spec["components"]["securitySchemes"]["OAuth2"]["flows"]
        return next(iter(flows.values()))

    def oauth_scopes(self, method: str, path: str) -> list[str] | None:
        """The OAuth2 scopes an operation accepts a Bearer token for; None when it takes none."""
        template = self.template_for(path)
        operation = self.spec["paths"].get(template or "", {}).get(method.lower()) or {}
        for requirement in operation.get("security", []):
            if "OAuth2" in requirement:
                return list(requirement["OAuth2"])
        return None

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Whether a response the fake sends matches the operation's documented response schema."""
        template = self.template_for(path)
        operation = self.spec["paths"].get(template or "", {}).get(method.lower()) or {}
        response = (operation.get("responses") or {}).get(str(status)) or {}
        schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
        if schema is None:
            return [f"{method} {template}: no {status} response documented"]
        validator = self._jsonschema.Draft202012Validator({"components": self.spec["components"], **schema})
        return [f"{method} {template} response: {error.message}" for error in validator.iter_errors(body)]

    def errors(self, method: str, path: str, body: Any, multipart: bool) -> list[str]:
        template = self.template_for(path)
        if template is None:
            return [f"{method} {path} is not an operation of Discord's API"]
        operation = self.spec["paths"][template].get(method.lower())
        if operation is None:
            return [f"{method} is not defined for {template}"]
        if body is None:
            return []
        content = (operation.get("requestBody") or {}).get("content") or {}
        media = (
            "multipart/form-data" if multipart and "multipart/form-data" in content else "application/json"
        )
        if media not in content:
            return [f"{method} {template} takes no {media} body"]
        key = (template, method, media)
        if key not in self._validators:
            schema = {"components": self.spec["components"], **content[media]["schema"]}
            cls = self._jsonschema.validators.validator_for(
                schema, default=self._jsonschema.Draft202012Validator
            )
            self._validators[key] = cls(schema)
        return [f"{method} {template}: {error.message}" for error in self._validators[key].iter_errors(body)]


@cache
def spec_validator() -> SpecValidator | None:
    return SpecValidator(SPEC_PATH) if SPEC_PATH.exists() else None


class FakeDiscord:
    """One guild with one text channel, a bot user, and members the test adds."""

    def __init__(self, *, validate: bool = True, token: str | None = None) -> None:
        self.token = token  # when set, REST calls without "Authorization: Bot <token>" get Discord's 401
        self._last_id = 0
        self.app_id = self.new_id()
        self.bot_user = FakeUser(self.new_id(), "Kaika")
        self.guild_id = self.new_id()
        self.channel_id = self.new_id()
        self.guild_owner = FakeUser(self.new_id(), "owner", MEMBER_PERMISSIONS | MANAGE_GUILD)
        self.members: dict[int, FakeUser] = {self.guild_owner.id: self.guild_owner}
        self.attachment_size_limit = 10 * 1024 * 1024

        self.calls: list[RecordedCall] = []
        self.spec_errors: list[str] = []
        self.unhandled: list[str] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: list[dict[str, Any]] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.message_versions: dict[int, list[dict[str, Any]]] = {}
        self.files: dict[int, dict[str, bytes]] = {}  # message id -> filename -> bytes
        self.uploads: dict[int, FakeAttachment] = {}  # attachment id -> a member's upload (`attach`)
        self.interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._rate_limits: list[tuple[str, re.Pattern[str], list[int], float]] = []
        self.rate_limited: list[RecordedCall] = []
        # Command name -> ids of members a server let use it (Server Settings → Integrations).
        self.command_grants: dict[str, set[int]] = {}
        self._dm_channels: dict[int, int] = {}  # user id → their DM channel with the bot
        self.over_limits: list[RecordedCall] = []  # answered 400, as Discord does
        # OAuth2 (`oauth_application`): the app's client secret, who is signed in to Discord in the browser and
        # presses Authorize on the consent page (None: nobody), or whether they press Cancel.
        self.client_secret = "fake-client-secret"
        self.consenting: FakeUser | None = None
        self.consent_denied = False
        self._oauth_codes: dict[str, dict[str, Any]] = {}
        self._oauth_tokens: dict[str, tuple[FakeUser, list[str]]] = {}

        self.validator = spec_validator() if validate else None
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self.identified = asyncio.Event()
        self.changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.api_base = ""
        self.gateway_url = ""

    # ---- set-up -------------------------------------------------------------------------------------

    def new_id(self) -> int:
        """A snowflake as Discord makes one: its creation time in the top bits (discord.py's `created_at`,
        from which the bot measures how long an interaction waited), each id above the one before."""
        stamp = (time.time_ns() // 1_000_000 - DISCORD_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, stamp)
        return self._last_id

    def add_member(self, name: str, *, manage_guild: bool = False, roles: tuple[int, ...] = ()) -> FakeUser:
        """A member of the server; `roles` are ids the server is told of at connection (any number)."""
        user = FakeUser(
            self.new_id(), name, MEMBER_PERMISSIONS | (MANAGE_GUILD if manage_guild else 0), roles
        )
        self.members[user.id] = user
        return user

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{message_id}/{filename}", self._attachment)
        app.router.add_get("/oauth2/authorize", self._authorize)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_base = self.base_url + API_PREFIX
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"

    def attach(
        self, filename: str, data: bytes, content_type: str = "image/png", *, declared_size: int | None = None
    ) -> FakeAttachment:
        """A file as a member's client uploads it for an attachment option (`slash(…, image=attach(…))`).
        `declared_size` makes the interaction claim another size than the bytes served (Discord states the
        size it stored; a test can state a huge one without building the file)."""
        attachment_id = self.new_id()
        url = f"{self.base_url}/attachments/{attachment_id}/{filename}"
        attachment = FakeAttachment(attachment_id, filename, data, content_type, url, declared_size)
        self.uploads[attachment_id] = attachment
        return attachment

    async def wait_for_bot(self, bot: Any, runner: asyncio.Task[Any], seconds: float = 30.0) -> None:
        """Wait until `bot` (a discord.Client started as `runner`) has identified on the gateway.

        Interactions can be dispatched from then on; discord.py's own on_ready comes 2 s later.
        """
        async with asyncio.timeout(seconds):
            while not (self.identified.is_set() and bot.user is not None):
                if runner.done():
                    runner.result()  # raises what stopped the bot
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def grant(self, name: str, user: FakeUser) -> None:
        """Let `user` use /name whatever its default member permissions, as a server's admin does in
        Server Settings → Integrations."""
        self.command_grants.setdefault(name, set()).add(user.id)

    def dm_channel_id(self, user: FakeUser) -> int:
        """The id of `user`'s direct-message channel with the bot (one per user)."""
        return self._dm_channels.setdefault(user.id, self.new_id())

    def may_use(self, user: FakeUser, name: str) -> bool:
        """Whether Discord lists /name to `user`: a command's default member permissions are needed
        (the owner and administrators have them all) unless the server granted it to them."""
        required = self.command(name).get("default_member_permissions")
        if required is None or user.id == self.guild_owner.id or user.permissions & ADMINISTRATOR:
            return True
        return user.id in self.command_grants.get(name, set()) or (
            user.permissions & int(required) == int(required) and int(required) != 0
        )

    def rate_limit(self, method: str, path_regex: str, *, times: int = 1, retry_after: float = 0.2) -> None:
        """Answer the next `times` calls matching METHOD and the path regex with a 429 Discord would send."""
        self._rate_limits.append((method.upper(), re.compile(path_regex), [times], retry_after))

    # ---- what tests look at -------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], Any], seconds: float = 30.0) -> Any:
        """Wait until predicate() is truthy (re-checked after every REST call); return its value."""
        async with asyncio.timeout(seconds):
            async with self.changed:
                while not (value := predicate()):
                    await self.changed.wait()
                return value

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def calls_to(self, method: str, path_regex: str) -> list[RecordedCall]:
        pattern = re.compile(path_regex)
        return [c for c in self.calls if c.method == method and pattern.search(c.path)]

    def commands(self) -> list[dict[str, Any]]:
        return self.global_commands + self.guild_commands

    def command(self, name: str) -> dict[str, Any]:
        for command in self.commands():
            if command["name"] == name:
                return command
        raise AssertionError(f"/{name} was not synced; synced: {[c['name'] for c in self.commands()]}")

    def custom_ids(self, message_id: int) -> list[str]:
        return [c["custom_id"] for c in self._buttons(message_id)]

    def labels(self, message_id: int) -> list[str]:
        return [c.get("label") or c.get("emoji", {}).get("name", "") for c in self._buttons(message_id)]

    def _buttons(self, message_id: int) -> Iterator[dict[str, Any]]:
        for row in self.messages[message_id].get("components") or []:
            for component in row.get("components", []):
                if component.get("type") == 2 and "custom_id" in component:
                    yield component

    def channel_messages(self) -> list[dict[str, Any]]:
        """Non-ephemeral messages in the channel, oldest first."""
        return [m for m in self.messages.values() if not (m.get("flags", 0) & EPHEMERAL_FLAG)]

    def original(self, interaction: FakeInteraction) -> dict[str, Any] | None:
        mid = interaction.original_message_id
        return None if mid is None else self.messages.get(mid)

    def reply_text(self, interaction: FakeInteraction) -> str:
        """Everything the bot has said in answer to an interaction: content and embed text."""
        parts: list[str] = []
        ids = (
            [interaction.original_message_id] if interaction.original_message_id else []
        ) + interaction.followup_ids
        for mid in ids:
            message = self.messages.get(mid)
            if message is None:
                continue
            parts.append(message.get("content") or "")
            for embed in message.get("embeds") or []:
                parts.append(embed.get("title") or "")
                parts.append(embed.get("description") or "")
                for f in embed.get("fields") or []:
                    parts.append(f"{f.get('name', '')}: {f.get('value', '')}")
        return "\n".join(p for p in parts if p)

    # ---- interactions -------------------------------------------------------------------------------

    async def slash(
        self, user: FakeUser, name: str, /, *, in_dm: bool = False, forge: bool = False, **options: Any
    ) -> FakeInteraction:
        """Dispatch /name with options, typed by the command the bot synced; `in_dm`: in the member's direct
        messages with the bot, which Discord offers only for commands whose contexts include them (`forge`:
        sent anyway, as a tampered client or a command list not yet synced would)."""
        command = self.command(name) if forge else self._usable(user, name, in_dm=in_dm)
        data = {"id": command["id"], "name": name, "type": 1, "options": self._options(command, options)}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._dispatch_interaction(2, user, data, in_dm=in_dm)

    async def subcommand(self, user: FakeUser, path: str, /, **options: Any) -> FakeInteraction:
        """Dispatch a subcommand such as "admin ban" or "admin blocklist add" with options."""
        root, *names = path.split()
        command = self._usable(user, root)
        declared: dict[str, Any] = command
        nested: list[dict[str, Any]] = []
        for name in names:
            found = next(
                (o for o in declared.get("options", []) if o["name"] == name and o["type"] in (1, 2)), None
            )
            if found is None:
                raise AssertionError(f"/{root} has no subcommand path {path!r}")
            nested.append({"name": name, "type": found["type"], "options": []})
            declared = found
        nested[-1]["options"] = self._options(declared, options)
        for parent, child in itertools.pairwise(nested):
            parent["options"] = [child]
        data = {"id": command["id"], "name": root, "type": 1, "options": nested[:1]}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._dispatch_interaction(2, user, data)

    async def autocomplete(
        self, user: FakeUser, name: str, focused: str, /, **options: Any
    ) -> FakeInteraction:
        command = self._usable(user, name)
        typed = self._options(command, options)
        for option in typed:
            if option["name"] == focused:
                option["focused"] = True
        data = {"id": command["id"], "name": name, "type": 1, "options": typed}
        return await self._dispatch_interaction(4, user, data)

    async def press(self, user: FakeUser, message_id: int, label: str) -> FakeInteraction:
        """Press the button labelled `label` (or with that emoji) on a message the bot sent."""
        for button in self._buttons(message_id):
            if label in (button.get("label"), (button.get("emoji") or {}).get("name")):
                if button.get("disabled"):
                    raise AssertionError(f"button {label!r} is disabled")
                return await self.press_custom_id(user, message_id, button["custom_id"])
        raise AssertionError(f"no button {label!r} on message {message_id}: {self.labels(message_id)}")

    async def press_custom_id(
        self, user: FakeUser, message_id: int, custom_id: str, *, forge: bool = False
    ) -> FakeInteraction:
        """Press a component by custom_id.

        With `forge`, the button is added to (a copy of) the message first, as a tampered client or
        a message the bot posted with another database would present it.
        """
        message = self.messages[message_id]
        if forge:
            button = {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}
            message = {
                **message,
                "components": [*message.get("components", []), {"type": 1, "components": [button]}],
            }
        elif custom_id not in self.custom_ids(message_id):
            raise AssertionError(f"message {message_id} has no button {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._dispatch_interaction(3, user, data, message=message)

    def modal(self, interaction: FakeInteraction) -> dict[str, Any]:
        """The modal the bot opened in answer to `interaction` (its callback's data)."""
        if interaction.response_type != 9 or interaction.response is None:
            raise AssertionError(f"the bot answered with type {interaction.response_type}, not a modal")
        return interaction.response["data"]

    def modal_inputs(self, interaction: FakeInteraction) -> dict[str, dict[str, Any]]:
        """The text inputs of the modal opened in answer to `interaction`, by label (Discord shows a label)."""
        inputs = {}
        for row in self.modal(interaction)["components"]:
            if row.get("type") == 18:  # a label holding its component
                inputs[row["label"]] = row["component"]
            else:  # an action row of text inputs, each with its own label
                inputs.update((c["label"], c) for c in row.get("components", []) if c.get("type") == 4)
        return inputs

    async def submit_modal(
        self, user: FakeUser, opened: FakeInteraction, values: dict[str, str] | None = None
    ) -> FakeInteraction:
        """Submit the modal the bot opened in answer to `opened`, as Discord's client does: each text input
        with `values[label]`, or what it was prefilled with. Like the client, it refuses to submit an empty
        required input or a value outside the input's length bounds."""
        values = dict(values or {})
        modal = self.modal(opened)
        submitted = []
        for row in modal["components"]:
            if row.get("type") == 18:
                submitted.append(
                    {"type": 18, "component": self._filled(row["component"], row["label"], values)}
                )
            else:
                inputs = [c for c in row.get("components", []) if c.get("type") == 4]
                filled = [self._filled(c, c["label"], values) for c in inputs]
                submitted.append({"type": 1, "components": filled})
        if values:
            raise AssertionError(f"the modal has no inputs labelled {sorted(values)}")
        data = {"custom_id": modal["custom_id"], "components": submitted}
        return await self._dispatch_interaction(5, user, data, message=opened.payload.get("message"))

    @staticmethod
    def _filled(text_input: dict[str, Any], label: str, values: dict[str, str]) -> dict[str, Any]:
        value = values.pop(label, text_input.get("value") or "")
        if text_input.get("required", True) and not value:
            raise AssertionError(f"Discord does not submit a modal whose required {label!r} is empty")
        if not text_input.get("min_length", 0) <= len(value) <= text_input.get("max_length", 4000):
            raise AssertionError(f"Discord does not submit {label!r} of {len(value)} characters")
        return {"type": 4, "custom_id": text_input["custom_id"], "value": value}

    async def wait_acked(self, interaction: FakeInteraction, seconds: float = 10.0) -> FakeInteraction:
        await self.wait_until(lambda: interaction.acked_at is not None, seconds)
        return interaction

    def _usable(self, user: FakeUser, name: str, *, in_dm: bool = False) -> dict[str, Any]:
        if in_dm:
            contexts = self.command(name).get("contexts")
            if contexts is not None and BOT_DM_CONTEXT not in contexts:
                raise CommandHidden(
                    f"Discord does not offer /{name} in direct messages: its contexts are {contexts}"
                )
            return self.command(name)
        if not self.may_use(user, name):
            raise CommandHidden(f"Discord does not list /{name} to {user.name}: it lacks the permissions")
        return self.command(name)

    def _options(self, command: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
        declared = {o["name"]: o for o in command.get("options", [])}
        typed = []
        for name, value in values.items():
            if name not in declared:
                raise AssertionError(f"/{command['name']} has no option {name!r}; it has {sorted(declared)}")
            kind = declared[name]["type"]
            if kind == OPTION_TYPES["attachment"]:
                if not isinstance(value, FakeAttachment):
                    raise AssertionError(f"/{command['name']} {name} takes a file: give it fake.attach(…)")
                value = str(value.id)
            typed.append({"name": name, "type": kind, "value": value})
        return typed

    def _resolve_users(self, data: dict[str, Any]) -> None:
        """Add `resolved` users and members for user options, as Discord does."""
        options = list(data.get("options", []))
        users: dict[str, Any] = {}
        members: dict[str, Any] = {}
        while options:
            option = options.pop()
            options.extend(option.get("options", []))
            if option.get("type") == OPTION_TYPES["user"]:
                member = self.members.get(int(option["value"]))
                if member is None:
                    raise AssertionError(f"no member {option['value']} in the fake guild")
                users[str(member.id)] = member.user_payload()
                members[str(member.id)] = {k: v for k, v in member.member_payload().items() if k != "user"}
        if users:
            data["resolved"] = {"users": users, "members": members}

    def _resolve_attachments(self, data: dict[str, Any]) -> None:
        """Add `resolved.attachments` for attachment options, as Discord does."""
        attachments = {
            option["value"]: self.uploads[int(option["value"])].payload()
            for option in data.get("options", [])
            if option.get("type") == OPTION_TYPES["attachment"]
        }
        if attachments:
            data.setdefault("resolved", {})["attachments"] = attachments

    async def _dispatch_interaction(
        self,
        kind: int,
        user: FakeUser,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
        *,
        in_dm: bool = False,
    ) -> FakeInteraction:
        self._resolve_users(data)
        self._resolve_attachments(data)
        interaction_id = self.new_id()
        token = f"token-{interaction_id}"
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.app_id),
            "type": kind,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(self.channel_id),
            "channel": {
                "id": str(self.channel_id),
                "type": 0,
                "name": "general",
                "guild_id": str(self.guild_id),
            },
            "member": user.member_payload(),
            "token": token,
            "version": 1,
            "app_permissions": str(MEMBER_PERMISSIONS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if in_dm:  # no guild and no member: the user, in their DM channel with the bot
            for key in ("guild_id", "guild", "member", "guild_locale"):
                payload.pop(key)
            payload["user"] = user.user_payload()
            payload["channel_id"] = str(self.dm_channel_id(user))
            payload["channel"] = {"id": payload["channel_id"], "type": 1, "recipients": [user.user_payload()]}
            payload["context"] = BOT_DM_CONTEXT
            payload["authorizing_integration_owners"] = {"1": str(user.id)}
        if message is not None:
            payload["message"] = message
        interaction = FakeInteraction(interaction_id, token, kind, user, payload, time.monotonic())
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[token] = interaction
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # ---- gateway ------------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        if not self._sockets:
            raise AssertionError("no bot is connected to the gateway")
        self._seq += 1
        frame = {"op": 0, "t": event, "s": self._seq, "d": data}
        for socket in list(self._sockets):
            await socket.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        try:
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op = message.get("op")
                if op == 1:
                    await socket.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    self._sockets.append(socket)
                    await self._send_ready(socket)
                elif op == 6:
                    # No resume support: tell the client to identify afresh.
                    await socket.send_str(json.dumps({"op": 9, "d": False}))
        finally:
            if socket in self._sockets:
                self._sockets.remove(socket)
        return socket

    async def _send_ready(self, socket: web.WebSocketResponse) -> None:
        self._seq += 1
        ready = {
            "v": 10,
            "user": {**self.bot_user.user_payload(), "bot": True},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": f"session-{self.new_id()}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": self._seq, "d": ready}))
        self._seq += 1
        guild = {
            "id": str(self.guild_id),
            "name": "Kaika test server",
            "icon": None,
            "owner_id": str(self.guild_owner.id),
            "roles": [
                {
                    "id": str(self.guild_id),
                    "name": "@everyone",
                    "permissions": str(MEMBER_PERMISSIONS),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                },
                *(
                    {
                        "id": str(role),
                        "name": f"role {role}",
                        "permissions": "0",
                        "position": 1,
                        "color": 0,
                        "hoist": False,
                        "managed": False,
                        "mentionable": False,
                        "flags": 0,
                    }
                    for role in sorted({role for member in self.members.values() for role in member.roles})
                ),
            ],
            "channels": [
                {
                    "id": str(self.channel_id),
                    "type": 0,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                }
            ],
            "members": [{**FakeUser(self.bot_user.id, "Kaika").member_payload()}],
            "member_count": len(self.members) + 1,
            "large": False,
            "unavailable": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "features": [],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "system_channel_flags": 0,
            "nsfw_level": 0,
        }
        await socket.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": self._seq, "d": guild}))
        # discord.py handles interactions from here on; on_ready follows its 2 s guild_ready_timeout.
        self.identified.set()

    async def _attachment(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(int(request.match_info["message_id"]))
        if upload is not None and upload.filename == request.match_info["filename"]:
            upload.downloads += 1
            return web.Response(body=upload.data, content_type=upload.content_type)
        files = self.files.get(int(request.match_info["message_id"]), {})
        name = request.match_info["filename"]
        if name not in files:
            raise web.HTTPNotFound()
        return web.Response(body=files[name], content_type="image/png")

    # ---- OAuth2 (authorization code grant) -----------------------------------------------------------

    def oauth_application(self, consenting: FakeUser | None = None) -> tuple[str, str]:
        """The application's OAuth2 client id and secret; `consenting` is the member signed in to Discord in
        the browser, who presses Authorize on the consent page."""
        self.consenting = consenting
        return str(self.app_id), self.client_secret

    async def _authorize(self, request: web.Request) -> web.Response:
        """Discord's consent page, answered at once as the `consenting` member (or Cancel)."""
        query = request.query
        call = RecordedCall("GET", "/oauth2/authorize", dict(query), None, {}, at=time.monotonic())
        self.calls.append(call)
        known_scopes = set(self.validator.oauth_flow()["scopes"]) if self.validator else None
        scopes = query.get("scope", "").split()
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type must be code for the authorization code grant")
        if query.get("client_id") != str(self.app_id):
            problems.append(f"client_id {query.get('client_id')!r} is not this application's")
        if not scopes or (known_scopes is not None and not set(scopes) <= known_scopes):
            problems.append(f"scope {query.get('scope')!r} is not a list of Discord's OAuth2 scopes")
        if not query.get("redirect_uri"):
            problems.append("redirect_uri is missing")
        if problems:
            self.spec_errors.extend(f"GET /oauth2/authorize: {problem}" for problem in problems)
            call.status = 400
            return web.Response(status=400, text="; ".join(problems))
        target = URL(query["redirect_uri"])
        state = {"state": query["state"]} if "state" in query else {}
        if self.consent_denied:
            raise web.HTTPFound(target.update_query(error="access_denied", **state))
        if self.consenting is None:
            call.status = 401
            return web.Response(status=401, text="Nobody is signed in to this fake Discord's consent page")
        code = secrets.token_urlsafe(16)
        self._oauth_codes[code] = {
            "user": self.consenting,
            "redirect_uri": query["redirect_uri"],
            "scopes": scopes,
            "used": False,
        }
        call.status = 302
        raise web.HTTPFound(target.update_query(code=code, **state))

    async def _oauth_rest(self, request: web.Request, path: str) -> web.Response:
        """POST /oauth2/token (a form, client credentials by HTTP Basic or in the form), and the routes a
        Bearer token may call, checked against the spec's OAuth2 scheme and scopes."""
        if path == "/oauth2/token":
            form = dict(await request.post()) if request.can_read_body else {}
            call = RecordedCall(request.method, path, dict(request.query), form, {}, at=time.monotonic())
            self.calls.append(call)
            if self.validator is not None:
                token_path = URL(self.validator.oauth_flow()["refreshUrl"]).path.removeprefix("/api")
                if path != token_path:
                    self.spec_errors.append(f"{path} is not the spec's OAuth2 token URL {token_path}")
            if request.method != "POST" or request.content_type != "application/x-www-form-urlencoded":
                self.spec_errors.append("POST /oauth2/token takes an application/x-www-form-urlencoded body")
                return self._json(call, {"error": "invalid_request"}, status=400)
            client_id, secret = form.get("client_id"), form.get("client_secret")
            if "Authorization" in request.headers:
                try:
                    basic = BasicAuth.decode(request.headers["Authorization"])
                except ValueError:
                    return self._json(call, {"error": "invalid_client"}, status=401)
                client_id, secret = basic.login, basic.password
            if (client_id, secret) != (str(self.app_id), self.client_secret):
                return self._json(call, {"error": "invalid_client"}, status=401)
            if form.get("grant_type") != "authorization_code":
                return self._json(call, {"error": "unsupported_grant_type"}, status=400)
            grant = self._oauth_codes.get(str(form.get("code")))
            if grant is None or grant["used"]:
                description = 'Invalid "code" in request.'
                return self._json(
                    call, {"error": "invalid_grant", "error_description": description}, status=400
                )
            if form.get("redirect_uri") != grant["redirect_uri"]:
                description = 'Invalid "redirect_uri" in request.'
                return self._json(
                    call, {"error": "invalid_grant", "error_description": description}, status=400
                )
            grant["used"] = True
            access = secrets.token_urlsafe(24)
            self._oauth_tokens[access] = (grant["user"], grant["scopes"])
            granted = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 604800,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": " ".join(grant["scopes"]),
            }
            return self._json(call, granted)
        call = RecordedCall(request.method, path, dict(request.query), None, {}, at=time.monotonic())
        self.calls.append(call)
        holder = self._oauth_tokens.get(request.headers["Authorization"].removeprefix("Bearer "))
        if holder is None:
            return self._error(call, 401, 0, "401: Unauthorized")
        user, scopes = holder
        accepted = self.validator.oauth_scopes(request.method, path) if self.validator else ["identify"]
        if accepted is None or not set(accepted) & set(scopes):
            return self._error(call, 403, 50001, "Missing Access")
        if request.method == "GET" and path == "/users/@me":
            payload = {
                **user.user_payload(),
                "public_flags": 0,
                "flags": 0,
                "mfa_enabled": False,
                "locale": "en-US",
                "banner": None,
                "accent_color": None,
            }
            if self.validator is not None:
                self.spec_errors.extend(self.validator.response_errors("GET", path, 200, payload))
            return self._json(call, payload)
        self.unhandled.append(f"{request.method} {path} (OAuth2)")
        return self._error(
            call, 404, 0, f"The fake Discord does not implement {request.method} {path} for OAuth2"
        )

    # ---- REST ---------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        if path == "/oauth2/token" or request.headers.get("Authorization", "").startswith("Bearer "):
            try:
                return await self._oauth_rest(request, path)
            finally:
                await self._notify()
        body: Any = None
        files: dict[str, tuple[str, bytes]] = {}
        multipart = request.content_type.startswith("multipart/")
        if multipart:
            reader = await request.multipart()
            async for part in reader:
                content = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    body = json.loads(content)
                else:
                    files[part.name or ""] = (part.filename or "", bytes(content))  # type: ignore[union-attr]
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                body = json.loads(raw)
        call = RecordedCall(request.method, path, dict(request.query), body, files, at=time.monotonic())
        self.calls.append(call)
        if self.validator is not None:
            self.spec_errors.extend(self.validator.errors(request.method, path, body, multipart))
        try:
            if self.token is not None and request.headers.get("Authorization") != f"Bot {self.token}":
                return self._error(call, 401, 0, "401: Unauthorized")
            for method, pattern, remaining, retry_after in self._rate_limits:
                if method == request.method and remaining[0] > 0 and pattern.search(path):
                    remaining[0] -= 1
                    self.rate_limited.append(call)
                    return self._json(
                        call,
                        {
                            "message": "You are being rate limited.",
                            "retry_after": retry_after,
                            "global": False,
                        },
                        status=429,
                        headers={"Via": "1.1 google", "X-RateLimit-Scope": "user"},
                    )
            if over := self._limit_errors(call):
                self.over_limits.append(call)
                return self._json(call, invalid_form_body(over), status=400)
            return await self._route(call)
        finally:
            await self._notify()

    def _json(
        self, call: RecordedCall, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        call.status = status
        if status == 204:
            return web.Response(status=204)
        # discord.py parses JSON only when Content-Type is exactly application/json (no charset).
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def _limit_errors(self, call: RecordedCall) -> dict[FormPath, str]:
        if call.method not in ("POST", "PATCH"):
            return {}
        if re.fullmatch(r"/interactions/\d+/[^/]+/callback", call.path):
            return callback_limit_errors(call.body)
        if re.fullmatch(r"/(channels/\d+|webhooks/\d+/[^/]+)(/messages(/[^/]+)?)?", call.path):
            return message_limit_errors(call.body)
        return {}

    def _error(self, call: RecordedCall, status: int, code: int, message: str) -> web.Response:
        return self._json(call, {"message": message, "code": code}, status=status)

    async def _route(self, call: RecordedCall) -> web.Response:
        method, path = call.method, call.path
        app = str(self.app_id)
        if method == "GET" and path == "/users/@me":
            return self._json(call, {**self.bot_user.user_payload(), "bot": True, "flags": 0})
        if method == "GET" and path == "/oauth2/applications/@me":
            return self._json(
                call,
                {
                    "id": app,
                    "name": "Kaika",
                    "icon": None,
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "verify_key": "0" * 64,
                    "flags": 0,
                    "owner": self.guild_owner.user_payload(),
                    "team": None,
                },
            )
        if method == "GET" and path in ("/gateway/bot", "/gateway"):
            limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
            return self._json(call, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit})
        if match := re.fullmatch(rf"/applications/{app}(?:/guilds/(\d+))?/commands", path):
            guild_id = match.group(1)
            if method == "PUT":
                synced = [self._command(c, guild_id) for c in call.body or []]
                if guild_id:
                    self.guild_commands = synced
                else:
                    self.global_commands = synced
                return self._json(call, synced)
            if method == "GET":
                return self._json(call, self.guild_commands if guild_id else self.global_commands)
        if match := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            return self._callback(call, int(match.group(1)), match.group(2))
        if match := re.fullmatch(rf"/webhooks/{app}/([^/]+)(?:/messages/(@original|\d+))?", path):
            return self._webhook(call, match.group(1), match.group(2))
        if match := re.fullmatch(r"/channels/(\d+)/messages(?:/(\d+))?", path):
            channel_id, message_id = int(match.group(1)), match.group(2)
            if channel_id != self.channel_id:
                return self._error(call, 404, 10003, "Unknown Channel")
            if method == "POST" and message_id is None:
                message = self._new_message(call, kind=0)
                return self._json(call, message)
            if message_id is not None:
                return self._existing_message(call, int(message_id))
        if match := re.fullmatch(r"/channels/(\d+)", path):
            if method == "GET" and int(match.group(1)) == self.channel_id:
                return self._json(
                    call,
                    {
                        "id": str(self.channel_id),
                        "type": 0,
                        "name": "general",
                        "guild_id": str(self.guild_id),
                        "position": 0,
                        "permission_overwrites": [],
                    },
                )
            return self._error(call, 404, 10003, "Unknown Channel")
        self.unhandled.append(f"{method} {path}")
        return self._error(call, 404, 0, f"The fake Discord does not implement {method} {path}")

    def _command(self, data: dict[str, Any], guild_id: str | None) -> dict[str, Any]:
        existing = next((c for c in self.commands() if c["name"] == data["name"]), None)
        permissions = data.get("default_member_permissions")
        command = {
            **data,
            "id": existing["id"] if existing else str(self.new_id()),
            "application_id": str(self.app_id),
            "version": str(self.new_id()),
            "type": data.get("type", 1),
            # Discord answers the permission bits as a string, whichever way they were sent.
            "default_member_permissions": None if permissions is None else str(permissions),
            "dm_permission": data.get("dm_permission", True),
        }
        if guild_id:
            command["guild_id"] = guild_id
        return command

    # ---- interaction callbacks and webhooks ---------------------------------------------------------

    def _callback(self, call: RecordedCall, interaction_id: int, token: str) -> web.Response:
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            return self._error(call, 404, 10062, "Unknown interaction")
        if interaction.acked_at is not None:
            return self._error(call, 400, 40060, "Interaction has already been acknowledged.")
        if call.at - interaction.dispatched_at > INTERACTION_WINDOW_SECONDS:
            return self._error(call, 404, 10062, "Unknown interaction")
        body = call.body or {}
        kind = body.get("type")
        interaction.acked_at = call.at
        interaction.response_type = kind
        interaction.response = body
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind in (4, 5):
            flags = (data.get("flags") or 0) | (LOADING_FLAG if kind == 5 else 0)
            message = self._new_message(
                call, kind=20 if interaction.kind == 2 else 19, data=data, flags=flags
            )
            interaction.original_message_id = int(message["id"])
        elif kind in (6, 7):
            source = interaction.payload.get("message")
            if source is not None:
                interaction.original_message_id = int(source["id"])
                if kind == 7:
                    message = self._edit_message(call, int(source["id"]), data)
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            resource["message"] = message
        response = {
            "interaction": {
                "id": str(interaction_id),
                "type": interaction.kind,
                "response_message_id": str(interaction.original_message_id)
                if interaction.original_message_id
                else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL_FLAG),
            },
            "resource": resource,
        }
        if call.query.get("with_response") in ("1", "true", "True"):
            return self._json(call, response)
        return self._json(call, None, status=204)

    def _webhook(self, call: RecordedCall, token: str, message_ref: str | None) -> web.Response:
        interaction = self._interactions_by_token.get(token)
        if interaction is None:
            return self._error(call, 404, 10015, "Unknown Webhook")
        if interaction.expired:
            return self._error(call, 401, 50027, "Invalid Webhook Token")
        if message_ref is None:
            if call.method != "POST":
                return self._error(call, 405, 0, "405: Method Not Allowed")
            if interaction.acked_at is None:
                return self._error(call, 404, 10015, "Unknown Webhook")
            data = call.body or {}
            loading = self.messages.get(interaction.original_message_id or 0)
            if loading is not None and loading.get("flags", 0) & LOADING_FLAG:
                # Discord: the first follow-up after a deferral replaces the "thinking…" message,
                # which keeps the visibility chosen at the deferral.
                edit = {k: v for k, v in data.items() if k != "flags"}
                return self._json(call, self._edit_message(call, int(loading["id"]), edit))
            message = self._new_message(call, kind=19, data=data, flags=data.get("flags") or 0)
            interaction.followup_ids.append(int(message["id"]))
            return self._json(call, message)
        if message_ref == "@original":
            if interaction.original_message_id is None:
                return self._error(call, 404, 10008, "Unknown Message")
            message_id = interaction.original_message_id
        else:
            message_id = int(message_ref)
        return self._existing_message(call, message_id)

    def _existing_message(self, call: RecordedCall, message_id: int) -> web.Response:
        if message_id not in self.messages:
            return self._error(call, 404, 10008, "Unknown Message")
        if call.method == "GET":
            return self._json(call, self.messages[message_id])
        if call.method == "PATCH":
            return self._json(call, self._edit_message(call, message_id, call.body or {}))
        if call.method == "DELETE":
            self.messages.pop(message_id)
            return self._json(call, None, status=204)
        return self._error(call, 405, 0, "405: Method Not Allowed")

    # ---- messages -----------------------------------------------------------------------------------

    def _attachments(
        self, call: RecordedCall, message_id: int, data: dict[str, Any], old: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        by_index = {}
        for field_name, (filename, content) in call.files.items():
            match = re.fullmatch(r"files\[(\d+)\]", field_name)
            if match:
                by_index[int(match.group(1))] = (filename, content)
        kept_by_id = {a["id"]: a for a in old}
        requested = data.get("attachments")
        if requested is None:
            requested = (
                [{"id": index} for index in sorted(by_index)] if by_index else [{"id": a["id"]} for a in old]
            )
        attachments = []
        for entry in requested:
            ref = entry.get("id")
            if str(ref) in kept_by_id:
                attachments.append(kept_by_id[str(ref)])
                continue
            if ref is None or int(ref) not in by_index:
                continue
            filename, content = by_index[int(ref)]
            filename = entry.get("filename") or filename
            self.files.setdefault(message_id, {})[filename] = content
            url = f"{self.base_url}/attachments/{message_id}/{filename}"
            attachments.append(
                {
                    "id": str(self.new_id()),
                    "filename": filename,
                    "size": len(content),
                    "url": url,
                    "proxy_url": url,
                    "content_type": "image/png" if filename.endswith(".png") else "application/octet-stream",
                }
            )
        return attachments

    def _new_message(
        self, call: RecordedCall, *, kind: int, data: dict[str, Any] | None = None, flags: int = 0
    ) -> dict[str, Any]:
        data = call.body or {} if data is None else data
        message_id = self.new_id()
        message = {
            "id": str(message_id),
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "author": {**self.bot_user.user_payload(), "bot": True},
            "content": data.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "embeds": data.get("embeds") or [],
            "components": data.get("components") or [],
            "pinned": False,
            "type": kind,
            "flags": flags or (data.get("flags") or 0),
        }
        message["attachments"] = self._attachments(call, message_id, data, [])
        self.messages[message_id] = message
        self.message_versions[message_id] = [json.loads(json.dumps(message))]
        return message

    def _edit_message(self, call: RecordedCall, message_id: int, data: dict[str, Any]) -> dict[str, Any]:
        message = self.messages[message_id]
        for key in ("content", "embeds", "components"):
            if key in data:
                message[key] = data[key] if data[key] is not None else ([] if key != "content" else "")
        if "flags" in data and data["flags"] is not None:
            message["flags"] = data["flags"] | (message.get("flags", 0) & EPHEMERAL_FLAG)
        message["flags"] = message.get("flags", 0) & ~LOADING_FLAG
        if call.files or "attachments" in data:
            message["attachments"] = self._attachments(call, message_id, data, message.get("attachments", []))
        message["edited_timestamp"] = _now_iso()
        self.message_versions[message_id].append(json.loads(json.dumps(message)))
        return message


# discord.py, and the bot itself: an ERROR from either fails the test.
ERROR_LOGGERS = ("discord", "bot")


class DiscordErrorLog(logging.Handler):
    """Collects ERROR records of discord.py so a test fails on any of them."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
