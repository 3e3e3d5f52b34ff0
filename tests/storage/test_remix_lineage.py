"""Remix jobs: owned by whoever pressed, linked to their parent, with the image index when they vary one."""

from __future__ import annotations

import pytest

from storage import GeneratedImage, InvalidParent, JobKind, Storage

ADA, BOB = 101, 202


async def finished_grid(storage: Storage) -> str:
    job = await storage.jobs.create("imagine", ADA, prompt="a lighthouse")
    await storage.jobs.start(job.id)
    images = [GeneratedImage(f"{job.id}-{i}".encode(), 7 + i, 64, 64) for i in range(4)]
    return (await storage.jobs.finish(job.id, images, compute_seconds=1.0)).id


async def test_a_remix_of_an_image_and_of_the_prompt_are_the_pressers_and_keep_their_lineage(
    storage: Storage,
) -> None:
    grid = await finished_grid(storage)
    varied = await storage.jobs.create(
        "remix", BOB, prompt="a lighthouse at night", parent_job_id=grid, parent_image_index=2
    )
    rerolled = await storage.jobs.create("remix", BOB, prompt="a windmill", parent_job_id=grid)
    for remix in (varied, rerolled):
        assert (remix.kind, remix.owner_id, remix.requester_id) == (JobKind.REMIX, BOB, BOB)
    assert [(j.id, j.parent_image_index) for j in await storage.jobs.lineage(varied.id)] == [
        (grid, None),
        (varied.id, 2),
    ]
    assert [j.id for j in await storage.jobs.lineage(rerolled.id)] == [grid, rerolled.id]


async def test_a_remix_needs_its_parent_and_an_image_it_has(storage: Storage) -> None:
    grid = await finished_grid(storage)
    with pytest.raises(InvalidParent, match="needs the job it comes from"):
        await storage.jobs.create("remix", BOB, prompt="a windmill")
    with pytest.raises(InvalidParent, match="has no image number 5"):
        await storage.jobs.create("remix", BOB, prompt="a windmill", parent_job_id=grid, parent_image_index=4)
