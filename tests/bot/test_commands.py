"""/info, /history, /show, /settings, /delete and the admin commands, end to end."""

from __future__ import annotations

import pytest

from testkit.fake_discord import MANAGE_GUILD, CommandHidden
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, answer, grid_of, png_size


async def test_history_show_info_and_delete_of_your_jobs(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    grid_id, job_id = await grid_of(kaika, ada, f"a lighthouse --steps {FAST_STEPS}")

    history = await fake.slash(ada, "history")
    text = await answer(fake, history)
    assert history.ephemeral and job_id in text and "a lighthouse" in text
    assert f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{grid_id}" in text
    assert "no jobs yet" in await answer(fake, await fake.slash(bo, "history"))

    info = await answer(fake, await fake.slash(ada, "info"))
    assert "Jobs in the last 24 hours: 1" in info and "at most 2 at once" in info

    show = await fake.slash(bo, "show", job_id=job_id)
    shown = await fake.wait_until(lambda: (m := fake.original(show)) and m.get("components") and m)
    assert fake.labels(int(shown["id"])) == GRID_LABELS and not show.ephemeral
    assert png_size(fake.files[int(shown["id"])][shown["attachments"][0]["filename"]]) == (512, 512)
    assert "This job no longer exists" in await answer(fake, await fake.slash(bo, "show", job_id="nope"))

    refused = await fake.slash(bo, "delete", job_id=job_id)
    assert "Only the owner" in await answer(fake, refused) and refused.ephemeral
    assert await kaika.services.storage.jobs.get(job_id) is not None
    assert "Deleted job" in await answer(fake, await fake.slash(ada, "delete", job_id=job_id))
    assert await kaika.services.storage.jobs.get(job_id) is None
    assert "does not exist" in await answer(fake, await fake.slash(ada, "delete", job_id=job_id))


async def test_admin_may_delete_anyones_job(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    _, job_id = await grid_of(kaika, ada, f"a boat --steps {FAST_STEPS}")
    assert "Deleted job" in await answer(fake, await fake.slash(fake.guild_owner, "delete", job_id=job_id))


async def test_settings_are_validated_saved_and_applied(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    assert "Your defaults: none" in await answer(fake, await fake.slash(ada, "settings"))
    bad = await fake.slash(ada, "settings", ar="sideways")
    assert "--ar needs W:H" in await answer(fake, bad) and bad.ephemeral
    assert await kaika.services.storage.users.defaults(ada.id) == {}

    saved = await answer(fake, await fake.slash(ada, "settings", ar="2:1", steps=FAST_STEPS))
    assert "Saved" in saved and "--ar 2:1" in saved and f"--steps {FAST_STEPS}" in saved
    message = await kaika.finished(await kaika.imagine(ada, "a wide field"))
    job = await kaika.services.storage.jobs.get(fake.custom_ids(int(message["id"]))[0].split(":")[2])
    # 2:1 at the demo-sized model's multiple of 8, within its 64x64 pixel budget.
    assert (job.params["width"], job.params["height"], job.params["steps"]) == (88, 40, FAST_STEPS)
    square = await kaika.finished(await kaika.imagine(ada, "a square field --ar 1:1"))
    job = await kaika.services.storage.jobs.get(fake.custom_ids(int(square["id"]))[0].split(":")[2])
    assert (job.params["width"], job.params["height"]) == (64, 64)  # the prompt's flag wins

    cleared = await answer(fake, await fake.slash(ada, "settings", reset=True))
    assert "Your defaults: none" in cleared


ZED = 777000  # a member of another server


async def test_stats_for_admins_only(start_kaika):
    fake_admin_id = 4242
    kaika = await start_kaika(admin_user_ids=[fake_admin_id])
    fake = kaika.fake
    ada = fake.add_member("ada")
    listed_admin = fake.add_member("root")
    listed_admin.id = fake_admin_id
    fake.members[fake_admin_id] = listed_admin
    await grid_of(kaika, ada, f"a castle --steps {FAST_STEPS}")

    # Discord lists the admin commands only to members with Manage Server (and the owner)...
    for command in ("stats", "admin"):
        assert fake.command(command)["default_member_permissions"] == str(MANAGE_GUILD)
        assert fake.may_use(fake.guild_owner, command)
        assert not fake.may_use(ada, command) and not fake.may_use(listed_admin, command)
    assert fake.command("imagine")["default_member_permissions"] is None
    with pytest.raises(CommandHidden):
        await fake.slash(ada, "stats")
    # ...unless the server grants them (Server Settings → Integrations); Kaika still checks who asks.
    for command in ("stats", "admin"):
        fake.grant(command, ada)
        fake.grant(command, listed_admin)
    refused = await fake.slash(ada, "stats")
    assert "Only Kaika's admins" in await answer(fake, refused) and refused.ephemeral
    for command in ("admin ban", "admin quota", "admin buttons"):
        options = {
            "admin ban": {"user": str(ada.id)},
            "admin quota": {"jobs": 1},
            "admin buttons": {"who": "owner"},
        }
        denied = await fake.subcommand(ada, command, **options[command])
        assert "Only Kaika's admins" in await answer(fake, denied), command
    assert not await kaika.services.storage.users.is_banned(ada.id)

    # A job of another server Kaika serves, by a member of that server only.
    storage = kaika.services.storage
    elsewhere = await storage.jobs.create("imagine", ZED, guild_id=fake.guild_id + 1, prompt="z")
    await storage.jobs.cancel(elsewhere.id)

    for admin in (fake.guild_owner, listed_admin):  # Manage Server here, and ADMIN_USER_IDS
        stats = await fake.slash(admin, "stats", window="24h")
        text = await answer(fake, stats)
        assert stats.ephemeral
        assert "Images: 4" in text and f"<@{ada.id}>" in text
        assert "Queue depth now: 0" in text and "Failure rate: 0%" in text
        # Without FAST_ROLES every member's jobs run fast.
        assert "Fast / relaxed: fast 1 job (0.0 min), relaxed 0 jobs (0.0 min)" in text
        assert f"<@{ada.id}> — 1 job, 4 images" in text
        message_id = stats.original_message_id  # the follow-up replaced "thinking…"
        assert png_size(fake.files[message_id]["jobs_per_day.png"]) == (800, 320)
        if admin is listed_admin:  # every server's jobs
            assert "Every server's jobs" in text and "Jobs: 2" in text and "By kind: imagine 2" in text
            assert f"1. <@{ZED}> — 1 job, 0 images" in text  # ties: the lower user id first
        else:  # the other server's members and jobs are none of this server's admin's business
            assert (
                "Jobs made in this server only." in text
                and "Jobs: 1" in text
                and "By kind: imagine 1" in text
            )
            assert str(ZED) not in text and f"1. <@{ada.id}>" in text


async def test_model_autocomplete_offers_the_configured_models(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    interaction = await fake.wait_acked(
        await fake.autocomplete(ada, "imagine", "model", prompt="x", model="tin")
    )
    assert interaction.response_type == 8
    assert [c["name"] for c in interaction.response["data"]["choices"]] == ["tiny-sd"]


async def test_admin_commands_explain_bad_values(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    owner = fake.guild_owner
    bad_quota = await fake.subcommand(owner, "admin quota", jobs=-3)
    assert "The daily quota must be a whole number of jobs, 0 or more" in await answer(fake, bad_quota)
    assert bad_quota.ephemeral
    missing = await fake.subcommand(owner, "admin blocklist remove", term="nothing")
    assert "'nothing' is not on the blocklist" in await answer(fake, missing)
    await answer(fake, await fake.subcommand(owner, "admin blocklist add", term="Spiders"))
    assert "spiders" in await answer(fake, await fake.subcommand(owner, "admin blocklist list"))
    removed = await answer(fake, await fake.subcommand(owner, "admin blocklist remove", term="SPIDERS"))
    assert "Blocked terms: none" in removed
    assert (await kaika.services.storage.guilds.settings(fake.guild_id)).blocklist == ()


async def test_show_refuses_a_job_that_has_not_finished(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    running = await fake.wait_acked(await kaika.imagine(ada, "a long one --steps 60"))
    assert running.response_type == 5
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    shown = await fake.slash(ada, "show", job_id=job.id)
    reply = await answer(fake, shown)
    assert f"Job `{job.id}` is" in reply and "only a finished job's images can be shown" in reply
    assert shown.ephemeral


async def test_a_slow_command_is_deferred_privately_and_answered_in_place(start_kaika, monkeypatch):
    monkeypatch.setattr("bot.interactions.ACK_DEADLINE_SECONDS", 0.0)
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    info = await fake.wait_acked(await fake.slash(ada, "info"))
    assert info.response_type == 5 and info.ephemeral
    assert "Jobs in the last 24 hours: 0" in await answer(fake, info)
    assert info.followup_ids == [] and fake.original(info)["flags"] & 64  # the thinking message, replaced
    denied = await fake.wait_acked(await fake.slash(ada, "delete", job_id="nope"))
    assert "does not exist" in await answer(fake, denied) and denied.ephemeral


async def test_deleting_a_running_job_stops_it(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    running = await kaika.started(ada, "a long one --steps 80")
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    assert "Deleted job" in await answer(fake, await fake.slash(ada, "delete", job_id=job.id))
    message = await kaika.finished(running)
    assert "❌" in message["content"] and not message["components"]
    assert kaika.services.executor.queue_depth() == 0
