"""Direct messages are a deliberate choice (ALLOW_DMS): off, Discord does not offer the commands there and
Kaika refuses what arrives anyway; on, they work. /show never posts into a server what its blocklist refuses."""

from __future__ import annotations

import pytest

from bot.app import DMS_OFF
from testkit.fake_discord import CommandHidden
from tests.fixtures.discord_helpers import FAST_STEPS


async def test_without_allow_dms_commands_are_not_offered_in_dms_and_a_forged_one_is_refused(start_kaika):
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    with pytest.raises(CommandHidden, match="not offer /imagine in direct messages"):
        await kaika.fake.slash(ada, "imagine", in_dm=True, prompt="a red circle")
    forged = await kaika.fake.wait_acked(
        await kaika.fake.slash(ada, "imagine", in_dm=True, forge=True, prompt="a red circle")
    )
    assert forged.ephemeral and kaika.fake.reply_text(forged) == DMS_OFF
    assert await kaika.services.storage.jobs.recent_for_user(ada.id) == []


async def test_with_allow_dms_imagine_works_in_a_dm(start_kaika):
    kaika = await start_kaika(allow_dms=True)
    ada = kaika.fake.add_member("ada")
    message = await kaika.finished(
        await kaika.fake.slash(ada, "imagine", in_dm=True, prompt=f"a red circle --steps {FAST_STEPS}")
    )
    assert message["components"] and "a red circle" in message["content"]
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "done" and job.guild_id is None and job.channel_id == kaika.fake.dm_channel_id(ada)


async def test_show_refuses_to_post_a_job_whose_prompt_the_servers_blocklist_refuses(start_kaika):
    kaika = await start_kaika(allow_dms=True)
    fake = kaika.fake
    ada = fake.add_member("ada")
    await kaika.finished(
        await fake.slash(ada, "imagine", in_dm=True, prompt=f"a spider web --steps {FAST_STEPS}")
    )
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    await fake.wait_acked(await fake.subcommand(fake.guild_owner, "admin blocklist add", term="spider"))
    posted = len(fake.channel_messages())

    refused = await fake.wait_acked(await fake.slash(ada, "show", job_id=job.id))
    assert refused.ephemeral and "blocklist refuses" in fake.reply_text(refused)
    assert "'spider'" in fake.reply_text(refused)
    assert len(fake.channel_messages()) == posted  # nothing was posted for the server to see
