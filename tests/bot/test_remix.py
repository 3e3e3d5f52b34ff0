"""Remix: with it on, V, Vary and 🔄 open the prompt in an editor, and the job starts from the edited prompt."""

from __future__ import annotations

from storage.records import JobKind
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS, answer, grid_of, job_id_of

PROMPT = "Prompt and flags"  # the editor's one input


async def remix_on(kaika, member) -> None:
    assert "Remix on" in await answer(kaika.fake, await kaika.fake.slash(member, "settings", remix=True))


async def test_remix_opens_the_prompt_and_varies_the_same_image_with_the_edit(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    grid_id, grid_job = await grid_of(kaika, ada, f"a red apple --seed 5 --steps {FAST_STEPS}")
    await remix_on(kaika, bo)

    opened = await fake.press(bo, grid_id, "V2")
    await fake.wait_acked(opened)
    inputs = fake.modal_inputs(opened)
    assert inputs[PROMPT]["value"] == f"a red apple --seed 5 --steps {FAST_STEPS}"
    assert await storage.jobs.recent_for_user(bo.id) == []  # nothing starts before the edit

    submitted = await fake.submit_modal(bo, opened, {PROMPT: f"a green apple --steps {FAST_STEPS} --no stem"})
    message = await kaika.finished(submitted)
    assert fake.labels(int(message["id"])) == GRID_LABELS
    assert message["content"].startswith(
        f"**a green apple --steps {FAST_STEPS} --no stem** (remix) — <@{bo.id}>"
    )

    remix = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (remix.kind, remix.prompt, remix.negative_prompt) == (JobKind.REMIX, "a green apple", "stem")
    assert (remix.parent_job_id, remix.parent_image_index) == (grid_job, 1)
    assert (remix.owner_id, remix.requester_id) == (bo.id, bo.id)  # whoever presses owns it, as for V
    assert remix.params["mode"] == "img2img" and len(remix.images) == 4  # from the same source image
    lineage = await storage.jobs.lineage(remix.id)
    assert [(j.kind, j.parent_image_index) for j in lineage] == [("imagine", None), ("remix", 1)]


async def test_remix_of_reroll_takes_new_flags_and_records_no_image(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    grid_id, grid_job = await grid_of(kaika, ada)
    await remix_on(kaika, ada)

    opened = await fake.wait_acked(await fake.press(ada, grid_id, "🔄"))
    message = await kaika.finished(
        await fake.submit_modal(ada, opened, {PROMPT: f"a blue square --ar 2:1 --steps {FAST_STEPS}"})
    )
    remix = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert (
        remix.kind is JobKind.REMIX and remix.parent_job_id == grid_job and remix.parent_image_index is None
    )
    assert (remix.images[0].width, remix.images[0].height) == (88, 40)  # --ar 2:1 within the 64x64 budget


async def test_remix_refuses_an_empty_prompt_or_bad_flags_and_records_nothing(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    await remix_on(kaika, ada)
    before = await storage.jobs.recent_for_user(ada.id)

    for edited, said in [
        (f"--steps {FAST_STEPS}", "The prompt is empty"),
        ("   ", "The prompt is empty"),
        ("a cat --ar sideways", "--ar needs W:H"),
        ("a cat --wings 2", "Unknown flag --wings"),
    ]:
        opened = await fake.wait_acked(await fake.press(ada, grid_id, "V1"))
        refused = await fake.submit_modal(ada, opened, {PROMPT: edited})
        assert said in await answer(fake, refused) and refused.ephemeral, edited
    assert await storage.jobs.recent_for_user(ada.id) == before
    assert kaika.services.jobs.in_flight(ada.id) == 0


async def test_remix_button_turns_remix_on_and_off_and_off_presses_start_at_once(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)

    toggled = await fake.press(ada, grid_id, "Remix")
    assert "Remix is on" in await answer(fake, toggled) and toggled.ephemeral
    assert (await storage.users.defaults(ada.id))["remix"] is True
    assert fake.modal_inputs(await fake.wait_acked(await fake.press(ada, grid_id, "V3")))

    assert "Remix is off" in await answer(fake, await fake.press(ada, grid_id, "Remix"))
    assert "remix" not in await storage.users.defaults(ada.id)
    message = await kaika.finished(await fake.press(ada, grid_id, "V3"))  # no editor: the job runs
    variation = await storage.jobs.get(job_id_of(kaika, int(message["id"])))
    assert variation.kind is JobKind.VARIATION


async def test_upscale_never_opens_the_editor_and_a_refused_press_opens_none(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, grid_job = await grid_of(kaika, ada)
    await remix_on(kaika, ada)

    upscale = await kaika.finished(await fake.press(ada, grid_id, "U1"))
    assert upscale["content"].startswith(f"**a blue square --steps {FAST_STEPS}** (upscale)")

    await answer(fake, await fake.slash(ada, "delete", job_id=grid_job))
    gone = await fake.press(ada, grid_id, "V1")
    assert await answer(fake, gone) == "This job no longer exists." and gone.ephemeral


async def test_an_edit_with_a_blocked_word_is_refused_and_records_nothing(start_kaika):
    kaika = await start_kaika()
    fake, storage = kaika.fake, kaika.services.storage
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    await answer(fake, await fake.subcommand(fake.guild_owner, "admin blocklist add", term="dragon"))
    await remix_on(kaika, ada)
    before = await storage.jobs.recent_for_user(ada.id)

    opened = await fake.wait_acked(await fake.press(ada, grid_id, "🔄"))
    refused = await fake.submit_modal(ada, opened, {PROMPT: f"a red dragon --steps {FAST_STEPS}"})
    assert "blocked term 'dragon'" in await answer(fake, refused) and refused.ephemeral
    assert await storage.jobs.recent_for_user(ada.id) == before


async def test_an_editor_opened_before_a_restart_still_starts_its_job(start_kaika):
    first = await start_kaika()
    ada = first.fake.add_member("ada")
    grid_id, grid_job = await grid_of(first, ada)
    await remix_on(first, ada)
    opened = await first.fake.wait_acked(await first.fake.press(ada, grid_id, "V4"))
    await first.close()

    second = await start_kaika()
    edited = f"a red square --steps {FAST_STEPS}"
    message = await second.finished(await second.fake.submit_modal(ada, opened, {PROMPT: edited}))
    remix = await second.services.storage.jobs.get(job_id_of(second, int(message["id"])))
    assert (remix.kind, remix.prompt, remix.parent_job_id, remix.parent_image_index) == (
        JobKind.REMIX,
        "a red square",
        grid_job,
        3,
    )
