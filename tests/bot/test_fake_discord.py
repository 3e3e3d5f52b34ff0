"""The fake Discord talks to the real discord.py client the way Discord does."""

from __future__ import annotations

import asyncio
import contextlib

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.app import point_discord_at
from testkit.fake_discord import EPHEMERAL_FLAG, FakeDiscord, callback_limit_errors, message_limit_errors


class Probe(commands.Bot):
    """The smallest bot that syncs /imagine and defers it."""

    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.none())
        self.deferred = asyncio.Event()

        @self.tree.command(name="imagine", description="make an image")
        @app_commands.describe(prompt="what to draw")
        async def imagine(interaction: discord.Interaction, prompt: str) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(
                content=f"drawing {prompt}",
                attachments=[discord.File(__import__("io").BytesIO(b"\x89PNG fake"), filename="grid.png")],
            )
            self.deferred.set()

    async def setup_hook(self) -> None:
        await self.tree.sync()


@contextlib.asynccontextmanager
async def running(bot: commands.Bot, fake: FakeDiscord):
    point_discord_at(fake.api_base, fake.gateway_url)
    task = asyncio.create_task(bot.start("test-token"))
    try:
        await fake.wait_for_bot(bot, task)
        yield bot
    finally:
        await bot.close()
        await task


async def test_bot_logs_in_syncs_and_defers_an_interaction(fake_discord: FakeDiscord):
    async with running(Probe(), fake_discord) as bot:
        assert bot.user is not None and bot.user.id == fake_discord.bot_user.id
        assert [c["name"] for c in fake_discord.global_commands] == ["imagine"]
        assert fake_discord.command("imagine")["options"][0]["name"] == "prompt"

        user = fake_discord.add_member("ada")
        interaction = await fake_discord.slash(user, "imagine", prompt="a red circle")
        await fake_discord.wait_acked(interaction)
        assert interaction.response_type == 5  # deferred channel message, "Kaika is thinking…"
        assert interaction.ack_seconds is not None and interaction.ack_seconds < 3
        await asyncio.wait_for(bot.deferred.wait(), 5)

        message = fake_discord.original(interaction)
        assert message is not None and message["content"] == "drawing a red circle"
        assert fake_discord.files[int(message["id"])]["grid.png"] == b"\x89PNG fake"
        assert not message["flags"] & EPHEMERAL_FLAG
        edit = fake_discord.calls_to("PATCH", r"/messages/@original$")[-1]
        assert edit.files["files[0]"] == ("grid.png", b"\x89PNG fake")


async def test_a_second_acknowledgement_is_refused_like_discord(fake_discord: FakeDiscord):
    bot = Probe()
    async with running(bot, fake_discord):
        user = fake_discord.add_member("bo")
        interaction = await fake_discord.slash(user, "imagine", prompt="x")
        await asyncio.wait_for(bot.deferred.wait(), 5)
        with contextlib.suppress(discord.HTTPException):
            await bot.http.request(
                discord.http.Route(
                    "POST", "/interactions/{i}/{t}/callback", i=interaction.id, t=interaction.token
                ),
                json={"type": 5},
            )
        assert fake_discord.calls[-1].status == 400


async def test_rate_limited_edit_is_retried(fake_discord: FakeDiscord):
    fake_discord.rate_limit("PATCH", r"/messages/@original$", retry_after=0.1)
    bot = Probe()
    async with running(bot, fake_discord):
        user = fake_discord.add_member("cy")
        interaction = await fake_discord.slash(user, "imagine", prompt="a square")
        await asyncio.wait_for(bot.deferred.wait(), 5)
        assert len(fake_discord.rate_limited) == 1
        assert fake_discord.original(interaction)["content"] == "drawing a square"


def test_request_bodies_are_checked_against_discords_openapi_spec(discord_spec_required):
    from testkit.fake_discord import spec_validator

    validator = spec_validator()
    edit = "/webhooks/1/token/messages/@original"
    assert (
        validator.errors("PATCH", edit, {"content": "ok", "attachments": [{"id": 0}]}, multipart=True) == []
    )
    assert any("not of type" in e for e in validator.errors("PATCH", edit, {"content": 5}, multipart=False))
    assert validator.errors("PATCH", "/not/a/route", {}, multipart=False) == [
        "PATCH /not/a/route is not an operation of Discord's API"
    ]


async def test_a_forged_button_needs_a_message_the_bot_sent(fake_discord: FakeDiscord):
    bot = Probe()
    async with running(bot, fake_discord):
        user = fake_discord.add_member("di")
        interaction = await fake_discord.slash(user, "imagine", prompt="x")
        await asyncio.wait_for(bot.deferred.wait(), 5)
        with pytest.raises(AssertionError, match="no button 'U1'"):
            await fake_discord.press(user, interaction.original_message_id, "U1")
        with pytest.raises(AssertionError, match="has no button 'kaika:u:x:0'"):
            await fake_discord.press_custom_id(user, interaction.original_message_id, "kaika:u:x:0")


async def test_a_message_over_discords_limits_is_answered_400_invalid_form_body(fake_discord: FakeDiscord):
    bot = Probe()
    async with running(bot, fake_discord):
        user = fake_discord.add_member("ed")
        interaction = await fake_discord.slash(user, "imagine", prompt="x")
        await asyncio.wait_for(bot.deferred.wait(), 5)
        route = discord.http.Route(
            "PATCH",
            "/webhooks/{a}/{t}/messages/@original",
            a=fake_discord.app_id,
            t=interaction.token,
        )
        with pytest.raises(discord.HTTPException) as refused:
            await bot.http.request(route, json={"content": "x" * 2001})
        assert (refused.value.status, refused.value.code) == (400, 50035)
        assert "In content: Must be 2000 or fewer in length." in refused.value.text
        assert fake_discord.original(interaction)["content"] == "drawing x"  # nothing changed
        await bot.http.request(route, json={"content": "x" * 2000})  # at the limit is fine
        assert len(fake_discord.over_limits) == 1
        fake_discord.over_limits.clear()  # this test broke the limit on purpose
        fake_discord.spec_errors.clear()


def test_the_fake_knows_discords_limits_on_embeds_components_choices_and_modals():
    embed = {"title": "t" * 257, "fields": [{"name": "n", "value": "v" * 1025}] * 26}
    errors = message_limit_errors({"embeds": [embed], "content": "ok"})
    assert errors[("embeds", 0, "title")] == "Must be 256 or fewer in length."
    assert ("embeds", 0, "fields") in errors and ("embeds", 0, "fields", 25, "value") in errors
    assert message_limit_errors({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}) == {
        ("embeds",): "Embed size exceeds maximum size of 6000"
    }
    button = {"type": 2, "label": "l" * 81, "custom_id": "c"}
    select = {"type": 3, "custom_id": "s", "options": [{"label": "o" * 101, "value": "v"}]}
    rows = [{"type": 1, "components": [button]}, {"type": 1, "components": [select]}]
    assert set(message_limit_errors({"components": rows})) == {
        ("components", 0, "components", 0, "label"),
        ("components", 1, "components", 0, "options", 0, "label"),
    }
    choices = [{"name": "c" * 101, "value": "v"}] + [{"name": "c", "value": "v"}] * 25
    assert set(callback_limit_errors({"type": 8, "data": {"choices": choices}})) == {
        ("data", "choices"),
        ("data", "choices", 0, "name"),
    }
    modal = {"title": "m" * 46, "custom_id": "m", "components": []}
    assert set(callback_limit_errors({"type": 9, "data": modal})) == {("data", "title")}
    assert callback_limit_errors({"type": 4, "data": {"content": "x" * 2001}}) == {
        ("data", "content"): "Must be 2000 or fewer in length."
    }
