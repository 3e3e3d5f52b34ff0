"""Discord's limits on what a message holds, and the one way Kaika's messages are fitted into them.

Discord answers a message over any limit with 400 and shows nothing, so every text the bot sends
goes through `fit` (message content), `fit_embed`, `fit_choices` or `shorten` (labels). What a
member wrote is marked as `MemberText`: it is escaped (no markdown, no mentions) and it is what
gets shortened first, so the bot's own words, mentions and markup around it stay whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import discord
from discord import app_commands

from service.metrics import JobMetrics

# https://discord.com/developers/docs/resources/message, .../interactions/message-components
CONTENT = 2000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_FOOTER = 2048
EMBED_AUTHOR = 256
EMBED_TOTAL = 6000  # title, description, field names and values, footer and author of all embeds
CHOICES = 25
CHOICE_NAME = 100
CHOICE_VALUE = 100
BUTTON_LABEL = 80
SELECT_OPTION_LABEL = 100
MODAL_TITLE = 45
TEXT_INPUT_VALUE = 4000  # a modal's text input: its value and prefilled text

ELLIPSIS = "…"

# What a cut must not split: a mention, channel, role, slash-command or custom-emoji reference, a
# timestamp (also as escape_mentions leaves them, with a zero-width space), or a markdown escape.
_WHOLE = re.compile(r"<(?:@[!&]?\u200b?|#|/|a?:\w+:|t:)[^<>\s]*>|\\.", re.DOTALL)


@dataclass(frozen=True)
class MemberText:
    """Text a member wrote: shown escaped, shortened first, and to `at_most` characters when given."""

    text: str
    at_most: int | None = None

    def escaped(self) -> str:
        return discord.utils.escape_mentions(discord.utils.escape_markdown(self.text))


Part = str | MemberText


def shorten(text: str, limit: int) -> str:
    """`text`, or as much of its start as fits in `limit` characters with "…", cut between tokens."""
    if len(text) <= limit:
        return text
    if limit < len(ELLIPSIS):
        return ""
    cut = limit - len(ELLIPSIS)
    for token in _WHOLE.finditer(text):
        if token.start() >= cut:
            break
        if token.end() > cut:
            cut = token.start()
            break
    return text[:cut].rstrip() + ELLIPSIS


def fit(*parts: Part, limit: int = CONTENT) -> str:
    """The parts joined into at most `limit` characters.

    The members' texts share what room the bot's own text leaves them, a short one keeping all of
    its own; should the bot's text alone be too long (a long error), the end is cut.
    """
    shown = [p.escaped() if isinstance(p, MemberText) else p for p in parts]
    for i, part in enumerate(parts):
        if isinstance(part, MemberText) and part.at_most is not None:
            shown[i] = shorten(shown[i], part.at_most)
    elastic = [i for i, part in enumerate(parts) if isinstance(part, MemberText)]
    if sum(map(len, shown)) > limit and elastic:
        room = limit - sum(len(s) for i, s in enumerate(shown) if i not in elastic)
        for i, share in zip(elastic, _shares(max(room, 0), [len(shown[i]) for i in elastic]), strict=True):
            shown[i] = shorten(shown[i], max(share, len(ELLIPSIS)))
    return shorten("".join(shown), limit)


def _shares(room: int, wanted: list[int]) -> list[int]:
    """Split `room` among parts wanting `wanted` characters: the shortest get all they want, the
    rest an equal share of what remains."""
    shares = [0] * len(wanted)
    left = len(wanted)
    for i in sorted(range(len(wanted)), key=wanted.__getitem__):
        shares[i] = min(wanted[i], room // left)
        room -= shares[i]
        left -= 1
    return shares


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """`embed` with every text within its limit, at most EMBED_FIELDS fields, and EMBED_TOTAL in all.

    Over the total, the description, field values and footer share what the title, author and
    field names leave them; only should those alone be over it are they shortened too.
    """
    data = embed.to_dict()
    fields = data.get("fields", [])[:EMBED_FIELDS]
    if fields:
        data["fields"] = fields
    heads = [(data, "title", EMBED_TITLE), (data.get("author", {}), "name", EMBED_AUTHOR)]
    heads += [(field, "name", EMBED_FIELD_NAME) for field in fields]
    bodies = [(data, "description", EMBED_DESCRIPTION), (data.get("footer", {}), "text", EMBED_FOOTER)]
    bodies += [(field, "value", EMBED_FIELD_VALUE) for field in fields]
    heads = [(holder, key) for holder, key, limit in heads if _shorten_in(holder, key, limit)]
    bodies = [(holder, key) for holder, key, limit in bodies if _shorten_in(holder, key, limit)]
    for texts, others in ((bodies, heads), (heads, bodies)):
        room = EMBED_TOTAL - sum(len(holder[key]) for holder, key in others)
        if sum(len(holder[key]) for holder, key in texts) > room:
            wanted = [len(holder[key]) for holder, key in texts]
            for (holder, key), share in zip(texts, _shares(max(room, 0), wanted), strict=True):
                holder[key] = shorten(holder[key], max(share, len(ELLIPSIS)))
    return discord.Embed.from_dict(data)


def _shorten_in(holder: dict[str, str], key: str, limit: int) -> bool:
    """Shorten `holder[key]` to `limit`; whether there is such a text at all."""
    if not holder.get(key):
        return False
    holder[key] = shorten(holder[key], limit)
    return True


ChoiceT = TypeVar("ChoiceT", str, int, float)


def fit_choices(choices: Iterable[app_commands.Choice[ChoiceT]]) -> list[app_commands.Choice[ChoiceT]]:
    """The first CHOICES choices, names shortened; a text value too long to send back is left out."""
    fitted = [
        app_commands.Choice(name=shorten(choice.name, CHOICE_NAME), value=choice.value)
        for choice in choices
        if not (isinstance(choice.value, str) and len(choice.value) > CHOICE_VALUE)
    ]
    return fitted[:CHOICES]


def count_acknowledgement(interaction: discord.Interaction) -> None:
    """Call right after an interaction's first response (a message, a defer, a modal): how long Discord waited
    for it, from the interaction's creation (its snowflake's time), goes to the job metrics of the bot's
    services (`KaikaBot.services`; /metrics' `kaika_acknowledgement_seconds`)."""
    metrics = getattr(getattr(interaction.client, "services", None), "metrics", None)
    if isinstance(metrics, JobMetrics):
        metrics.acknowledged((discord.utils.utcnow() - interaction.created_at).total_seconds())
