"""The gallery's reads: a member's jobs (owned or requested) filtered and paged, and a job's children."""

from __future__ import annotations

from storage import Storage
from storage.records import JobKind
from tests.fixtures.storage import FakeClock
from tests.storage.test_jobs import pngs

ADA, BOB = 101, 202


async def _done(storage: Storage, user: int, prompt: str, clock: FakeClock, **fields) -> str:
    clock.advance(minutes=1)
    job = await storage.jobs.create(fields.pop("kind", "imagine"), user, prompt=prompt, **fields)
    await storage.jobs.start(job.id)
    await storage.jobs.finish(job.id, pngs(job.id, 4), 1.0)
    return job.id


async def test_a_members_jobs_newest_first_in_pages(storage: Storage, clock: FakeClock) -> None:
    ids = [await _done(storage, ADA, f"a fox number {n}", clock) for n in range(5)]
    await _done(storage, BOB, "bob's own fox", clock)
    page, more = await storage.jobs.gallery(ADA, limit=2)
    assert [job.id for job in page] == ids[::-1][:2] and more
    assert all(len(job.images) == 4 for job in page)
    page, more = await storage.jobs.gallery(ADA, offset=4, limit=2)
    assert [job.id for job in page] == [ids[0]] and not more


async def test_filters_by_kind_model_and_text(storage: Storage, clock: FakeClock) -> None:
    fox = await _done(storage, ADA, "A Red Fox", clock)
    owl = await _done(storage, ADA, "an owl at 100% size_2", clock, model="sdxl")
    reroll = await _done(storage, ADA, "a red fox", clock, kind="reroll", parent_job_id=fox)

    async def ids(**filters) -> list[str]:
        return [job.id for job in (await storage.jobs.gallery(ADA, **filters))[0]]

    assert await ids(kind=JobKind.REROLL) == [reroll]
    assert await ids(model="sdxl") == [owl]
    assert await ids(model="") == [reroll, fox]  # the default model
    assert await ids(text="red FOX") == [reroll, fox]
    assert await ids(text="100%") == [owl] and await ids(text="e_2") == [owl]
    assert await ids(text="%") == [owl] and await ids(text="_") == [owl]  # no wildcards
    assert await storage.jobs.gallery_models(ADA) == ["", "sdxl"]


async def test_an_upscale_of_anothers_image_shows_for_both(storage: Storage, clock: FakeClock) -> None:
    ada_job = await _done(storage, ADA, "ada's lighthouse", clock)
    upscale = await _done(
        storage, BOB, "ada's lighthouse", clock, kind="upscale", parent_job_id=ada_job, parent_image_index=2
    )
    assert [job.id for job in (await storage.jobs.gallery(BOB))[0]] == [upscale]  # requested it
    assert [job.id for job in (await storage.jobs.gallery(ADA))[0]] == [upscale, ada_job]  # owns it


async def test_deleted_jobs_are_gone_from_the_gallery_and_the_children(
    storage: Storage, clock: FakeClock
) -> None:
    root = await _done(storage, ADA, "a fox", clock)
    v2 = await _done(storage, ADA, "a fox", clock, kind="variation", parent_job_id=root, parent_image_index=1)
    u1 = await _done(storage, ADA, "a fox", clock, kind="upscale", parent_job_id=root, parent_image_index=0)
    reroll = await _done(storage, ADA, "a fox", clock, kind="reroll", parent_job_id=root)
    u1_again = await _done(
        storage, ADA, "a fox", clock, kind="upscale", parent_job_id=root, parent_image_index=0
    )
    assert [job.id for job in await storage.jobs.children(root)] == [reroll, u1, u1_again, v2]
    await storage.jobs.delete(u1, ADA)
    assert [job.id for job in await storage.jobs.children(root)] == [reroll, u1_again, v2]
    assert u1 not in [job.id for job in (await storage.jobs.gallery(ADA))[0]]
