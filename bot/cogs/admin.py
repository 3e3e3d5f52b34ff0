"""Admin commands: /stats and /admin ban, unban, quota, blocklist, buttons.

Admin = a user id in ADMIN_USER_IDS or a member with Manage Server; anyone else is refused. /stats shows a
member with Manage Server the figures of this server's jobs only (`administration.figures_guilds`).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from gettext import ngettext
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import Acknowledgement, KaikaCog
from bot.limits import MemberText, count_acknowledgement, fit, fit_embed
from service import administration
from service.administration import REFUSAL, button_policy_text, chart_days, quota_text
from service.charts import jobs_per_day_chart
from storage.records import UsageReport, Window

# Discord lists the admin commands only to members with this permission, unless a server grants them
# to other roles or members (Server Settings → Integrations); the cog's own check applies either way.
ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True)
THIS_SERVER_ONLY = "Jobs made in this server only."
EVERY_JOB = "Every server's jobs, and those made outside any server."


def stats_embed(
    report: UsageReport,
    queue_depth: int,
    queues: dict[str, tuple[int, float]] | None = None,
    *,
    this_server_only: bool = False,
) -> discord.Embed:
    embed = discord.Embed(
        title=f"Kaika usage — {report.window.value}",
        description=THIS_SERVER_ONLY if this_server_only else EVERY_JOB,
    )
    rate = "n/a" if report.failure_rate is None else f"{report.failure_rate:.0%}"
    wait = "n/a" if report.mean_queue_seconds is None else f"{report.mean_queue_seconds:.1f} s"
    embed.add_field(name="Jobs", value=str(report.jobs))
    embed.add_field(name="Images", value=str(report.images))
    embed.add_field(name="Compute", value=f"{report.compute_seconds:.0f} s")
    embed.add_field(name="Failure rate", value=f"{rate} ({report.failed} failed, {report.done} done)")
    embed.add_field(name="Mean queue wait", value=wait)
    embed.add_field(name="Queue depth now", value=str(queue_depth))
    kinds = (
        ", ".join(f"{kind.value} {count}" for kind, count in sorted(report.jobs_by_kind.items())) or "none"
    )
    embed.add_field(name="By kind", value=kinds, inline=False)
    if queues is not None:
        fast, relax = queues.get("fast", (0, 0.0)), queues.get("relax", (0, 0.0))
        embed.add_field(
            name="Fast / relaxed",
            value=f"fast {fast[0]} {ngettext('job', 'jobs', fast[0])} ({fast[1] / 60:.1f} min), "
            f"relaxed {relax[0]} {ngettext('job', 'jobs', relax[0])} ({relax[1] / 60:.1f} min)",
            inline=False,
        )
    top = "\n".join(
        f"{i}. <@{u.user_id}> — {u.jobs} {ngettext('job', 'jobs', u.jobs)}, "
        f"{u.images} {ngettext('image', 'images', u.images)}"
        for i, u in enumerate(report.leaderboard, 1)
    )
    embed.add_field(name="Top users", value=top or "nobody yet", inline=False)
    embed.set_image(url="attachment://jobs_per_day.png")
    return fit_embed(embed)


def blocked_terms(terms: Sequence[str]) -> str:
    return fit("Blocked terms: ", MemberText(", ".join(terms))) if terms else "Blocked terms: none"


class AdminCog(KaikaCog):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Every command of this cog is for admins only."""
        if not self.is_admin(interaction):
            raise app_commands.CheckFailure(REFUSAL)
        return True

    admin = app_commands.Group(
        name="admin",
        description="Kaika administration (admins only)",
        guild_only=True,
        default_permissions=ADMIN_PERMISSIONS,
    )
    blocklist = app_commands.Group(
        name="blocklist", description="Words or phrases /imagine refuses", parent=admin
    )

    @app_commands.command(name="stats", description="Usage, top users, failure rate and queue (admins only)")
    @app_commands.describe(window="The period to report")
    @app_commands.default_permissions(manage_guild=True)
    async def stats(
        self, interaction: discord.Interaction, window: Literal["24h", "7d", "30d", "all"] = "7d"
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        count_acknowledgement(interaction)
        guild_id, manages = interaction.guild_id, interaction.permissions.manage_guild
        guilds = administration.figures_guilds(
            self.config, interaction.user.id, [guild_id] if guild_id is not None and manages else []
        )
        stats = self.services.storage.stats
        report = await stats.usage(Window(window), guilds=guilds)
        first, last = chart_days(report, discord.utils.utcnow().date())
        chart = await asyncio.to_thread(jobs_per_day_chart, report.jobs_per_day, first, last)
        await interaction.followup.send(
            embed=stats_embed(
                report,
                self.services.executor.queue_depth(),
                await stats.queues(Window(window), guilds=guilds),
                this_server_only=guilds is not None,
            ),
            file=discord.File(io.BytesIO(chart), filename="jobs_per_day.png"),
            ephemeral=True,
        )

    @admin.command(name="ban", description="Stop a user from generating images")
    async def ban(self, interaction: discord.Interaction, user: discord.User) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            await administration.ban(self.services.storage, user.id)
            await ack.send(f"{user.mention} is banned from Kaika.")

    @admin.command(name="unban", description="Let a banned user generate images again")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            await administration.unban(self.services.storage, user.id)
            await ack.send(f"{user.mention} may use Kaika again.")

    @admin.command(
        name="quota", description="Jobs each member may run per 24 hours (0 = none, empty = unlimited)"
    )
    @app_commands.describe(jobs="Jobs per member per 24 hours; leave empty for unlimited")
    async def quota(self, interaction: discord.Interaction, jobs: int | None = None) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            settings = await administration.set_daily_quota(self.services.storage, interaction.guild_id, jobs)
            await ack.send(f"Daily quota: {quota_text(settings.daily_quota)}.")

    @admin.command(name="buttons", description="Who may press a job's U/V/🔄 buttons")
    async def buttons(self, interaction: discord.Interaction, who: Literal["anyone", "owner"]) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            settings = await administration.set_button_policy(
                self.services.storage, interaction.guild_id, who
            )
            await ack.send(f"Job buttons may now be pressed by {button_policy_text(settings.button_policy)}.")

    @blocklist.command(name="add", description="Refuse prompts containing a word or phrase")
    async def blocklist_add(self, interaction: discord.Interaction, term: str) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            settings = await administration.block_term(self.services.storage, interaction.guild_id, term)
            await ack.send(blocked_terms(settings.blocklist))

    @blocklist.command(name="remove", description="Allow a blocked word or phrase again")
    async def blocklist_remove(self, interaction: discord.Interaction, term: str) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            settings = await administration.unblock_term(self.services.storage, interaction.guild_id, term)
            await ack.send(blocked_terms(settings.blocklist))

    @blocklist.command(name="list", description="Show the blocked words and phrases")
    async def blocklist_list(self, interaction: discord.Interaction) -> None:
        async with Acknowledgement(interaction, ephemeral=True) as ack:
            current = (await self.services.storage.guilds.settings(interaction.guild_id)).blocklist
            await ack.send(blocked_terms(current))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot.services, bot.settings))  # type: ignore[attr-defined]
