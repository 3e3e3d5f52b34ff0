"""ℹ️, 🖌 Remix and Remix's editor while storage is unavailable: each says so, to the member alone."""

from __future__ import annotations

from tests.fixtures.discord_helpers import FAST_STEPS, answer, grid_of
from tests.fixtures.storage import DiskFull

UNAVAILABLE = "Kaika's storage is unavailable right now; try again in a minute."


async def test_info_remix_and_an_edit_say_storage_is_unavailable(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    grid_id, _ = await grid_of(kaika, ada)
    await answer(fake, await fake.slash(ada, "settings", remix=True))
    opened = await fake.wait_acked(await fake.press(ada, grid_id, "V1"))
    disk_full = DiskFull(kaika.services.storage.engine)
    disk_full.cut()
    try:
        for interaction in [
            await fake.press(ada, grid_id, "ℹ️"),
            await fake.press(ada, grid_id, "Remix"),
            await fake.press(ada, grid_id, "V2"),  # the editor cannot be filled
            await fake.submit_modal(ada, opened, {"Prompt and flags": f"a red square --steps {FAST_STEPS}"}),
        ]:
            assert await answer(fake, interaction) == UNAVAILABLE and interaction.ephemeral
    finally:
        disk_full.restore()
    assert len(await kaika.services.storage.jobs.recent_for_user(ada.id)) == 1  # the grid's job alone
    assert (await kaika.services.storage.users.defaults(ada.id))["remix"] is True
