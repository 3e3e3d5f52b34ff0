"""Commands are synced with Discord when they changed, not at every start."""

from __future__ import annotations

import discord
from discord.ext import commands

from bot.app import EXTENSIONS
from bot.sync import synced_hash_file


async def setup(bot: commands.Bot) -> None:
    """This module as an extension: one command more than Kaika's own, as a new version would add."""

    @bot.tree.command(name="extra", description="A command added after the first sync")
    async def extra(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("extra", ephemeral=True)


async def test_commands_are_synced_at_the_first_start_and_again_only_when_they_changed(
    start_kaika, monkeypatch
):
    kaika = await start_kaika()
    fake = kaika.fake

    def syncs() -> int:
        return len(fake.calls_to("PUT", rf"^/applications/{fake.app_id}/commands$"))

    assert syncs() == 1 and fake.command("imagine")
    record = synced_hash_file(kaika.settings.data_dir, fake.app_id)
    assert record.exists()
    await kaika.close()

    restarted = await start_kaika()  # the same commands: Discord keeps what it has
    assert syncs() == 1
    ada = fake.add_member("ada")
    info = await fake.slash(ada, "info")
    assert "Jobs in the last 24 hours: 0" in await fake.wait_until(lambda: fake.reply_text(info))
    await restarted.close()

    monkeypatch.setattr("bot.app.EXTENSIONS", (*EXTENSIONS, __name__))
    changed = await start_kaika()
    assert syncs() == 2 and fake.command("extra") and fake.command("imagine")
    await changed.close()

    record.unlink()  # forgetting what was synced syncs again
    await start_kaika()
    assert syncs() == 3
