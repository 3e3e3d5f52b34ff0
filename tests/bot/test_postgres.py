"""The bot end to end on PostgreSQL: a grid, a button press after a restart, the admin report."""

from __future__ import annotations

import pytest

from tests.fixtures.discord_helpers import FAST_STEPS, SINGLE_LABELS, grid_of, job_id_of


@pytest.mark.postgres
async def test_imagine_restart_and_upscale_on_postgresql(start_kaika, postgres_database_url):
    first = await start_kaika(database_url=postgres_database_url)
    fake = first.fake
    ada, bo = fake.add_member("ada"), fake.add_member("bo")
    grid_id, grid_job = await grid_of(first, ada, f"a harbour --steps {FAST_STEPS}")
    await first.close()

    second = await start_kaika(database_url=postgres_database_url)
    message = await second.finished(await fake.press(bo, grid_id, "U4"))
    assert fake.labels(int(message["id"])) == SINGLE_LABELS
    upscale = await second.services.storage.jobs.get(job_id_of(second, int(message["id"])))
    assert (upscale.parent_job_id, upscale.parent_image_index, upscale.owner_id) == (grid_job, 3, ada.id)
    report = await second.services.storage.stats.usage("24h")
    assert report.jobs == 2 and report.images == 5
