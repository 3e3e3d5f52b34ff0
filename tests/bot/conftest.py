"""Fixtures of the bot suite: the fake Discord, and a running Kaika bot wired to it."""

from tests.fixtures.fake_discord import discord_spec_required, fake_discord

__all__ = ["discord_spec_required", "fake_discord"]
