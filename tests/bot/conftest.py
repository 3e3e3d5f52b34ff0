"""Fixtures of the bot suite: running Kaika bots wired to the fake Discord and the session's tiny engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.app import KaikaBot, point_discord_at
from service.settings import Settings
from service.wiring import Services
from testkit.fake_discord import FakeDiscord, FakeInteraction, FakeUser

if TYPE_CHECKING:
    from pipeline.engine import Engine


@dataclass
class RunningKaika:
    fake: FakeDiscord
    bot: KaikaBot
    services: Services
    settings: Settings
    task: asyncio.Task[None]

    async def imagine(self, user: FakeUser, prompt: str, **options: Any) -> FakeInteraction:
        return await self.fake.slash(user, "imagine", prompt=prompt, **options)

    async def started(self, user: FakeUser, prompt: str) -> FakeInteraction:
        """An /imagine whose job has begun running (its message shows progress)."""
        interaction = await self.fake.wait_acked(await self.imagine(user, prompt))
        await self.fake.wait_until(lambda: "%" in (self.fake.original(interaction) or {}).get("content", ""))
        return interaction

    async def finished(self, interaction: FakeInteraction, seconds: float = 60.0) -> dict[str, Any]:
        """The interaction's message once it shows a result (buttons) or a failure (❌)."""

        def done() -> dict[str, Any] | None:
            message = self.fake.original(interaction)
            if message and (message.get("components") or "❌" in (message.get("content") or "")):
                return message
            return None

        message = await self.fake.wait_until(done, seconds)
        await self.services.jobs.wait_idle()  # the job's record is complete too
        return message

    async def close(self) -> None:
        await self.bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.services.close()


@pytest.fixture
async def start_kaika(
    fake_discord: FakeDiscord, tiny_engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """`await start_kaika(**settings)` runs a Kaika bot against the fake Discord; closed at teardown.

    Bots started in one test share DATA_DIR, so a second one is the same bot after a restart.
    """
    from pipeline.executor.local import LocalExecutor

    running: list[RunningKaika] = []

    async def start(*, engine: Engine | None = None, **overrides: Any) -> RunningKaika:
        """`engine`: another loaded engine than the session's tiny one (one with a video model)."""
        values: dict[str, Any] = {
            "discord_token": "test-token",
            "discord_api_base": fake_discord.api_base,
            "discord_gateway_url": fake_discord.gateway_url,
            "data_dir": tmp_path / "data",
            "model": str(tiny_model_dir),
            "device": "cpu",
            "dtype": "float32",
            "preview_every": 1,
            "progress_edit_interval": 0.2,
            **overrides,
        }
        settings = Settings(_env_file=None, **values)
        executor = LocalExecutor(
            {None: engine or tiny_engine},  # the session's one tiny engine; one executor runs it at a time
            max_batch=settings.max_batch,
            preview_every=settings.preview_every,
        )
        services = await Services.open(settings, executor)
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
        fake_discord.identified.clear()
        bot = KaikaBot(settings, services)
        task = asyncio.create_task(bot.start(settings.discord_token))
        kaika = RunningKaika(fake_discord, bot, services, settings, task)
        running.append(kaika)
        await fake_discord.wait_for_bot(bot, task)
        return kaika

    try:
        yield start
    finally:
        for kaika in reversed(running):
            if not kaika.bot.is_closed():
                await kaika.close()
