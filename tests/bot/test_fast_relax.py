"""--fast and --relax in Discord: members with a FAST_ROLES role run fast, others relaxed; /info says which."""

from __future__ import annotations

from tests.fixtures.discord_helpers import FAST_STEPS, answer, job_id_of

BOOSTER = 424242


async def test_a_role_in_fast_roles_runs_fast_and_info_says_how_long(fake_discord, start_kaika):
    ada = fake_discord.add_member("ada", roles=(BOOSTER,))  # known to the server before the bot connects
    bo = fake_discord.add_member("bo")
    kaika = await start_kaika(fast_roles=str(BOOSTER), fast_minutes_per_day=60)

    assert "Your jobs run fast: 60.0 of 60 fast minutes left today" in await answer(
        fake_discord, await fake_discord.slash(ada, "info")
    )
    assert "Your jobs run relaxed, after fast ones (fast time is for some roles)" in await answer(
        fake_discord, await fake_discord.slash(bo, "info")
    )

    storage = kaika.services.storage
    for member, prompt, queue in [
        (ada, f"a blue square --steps {FAST_STEPS}", "fast"),
        (ada, f"a blue square --steps {FAST_STEPS} --relax", "relax"),
        (bo, f"a blue square --steps {FAST_STEPS} --fast", "relax"),
    ]:
        message = await kaika.finished(await kaika.imagine(member, prompt))
        job = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
        assert job.params["queue"] == queue, prompt
