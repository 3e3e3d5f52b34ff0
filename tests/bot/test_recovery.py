"""Jobs a previous process left queued: rebuilt from their records and run, or failed when they cannot be."""

from __future__ import annotations

from typing import Any

from pipeline.request import GenerationRequest, variation_request
from service.jobs import request_params
from storage.records import FrontEnd, JobKind, JobRecord
from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS


async def left_queued_variation(kaika: Any, user: Any) -> tuple[JobRecord, JobRecord]:
    """A finished /imagine and a V1 on it that was recorded but never ran, as a crash leaves it."""
    grid = await kaika.finished(await kaika.imagine(user, f"a quiet harbour --steps {FAST_STEPS}"))
    [parent] = await kaika.services.storage.jobs.recent_for_user(user.id)
    assert parent.message_id == int(grid["id"])
    single = GenerationRequest(
        prompt=parent.prompt,
        seed=0,
        width=parent.images[0].width,
        height=parent.images[0].height,
        steps=FAST_STEPS,
    )
    request = variation_request(single, b"png", seed=1234)
    job = await kaika.services.storage.jobs.create(
        JobKind.VARIATION,
        user.id,
        prompt=parent.prompt,
        params=request_params(request),
        seed=request.seed,
        parent_job_id=parent.id,
        parent_image_index=0,
        guild_id=kaika.fake.guild_id,
        channel_id=kaika.fake.channel_id,
        front_end=FrontEnd.DISCORD,
    )
    return parent, job


def channel_posts(fake: Any) -> list[dict[str, Any]]:
    return [m for m in fake.channel_messages() if m["type"] == 0]


async def test_a_queued_variation_left_by_a_restart_runs_from_its_parents_stored_image(start_kaika):
    first = await start_kaika()
    fake = first.fake
    ada = fake.add_member("ada")
    parent, job = await left_queued_variation(first, ada)
    await first.close()

    second = await start_kaika()
    await fake.wait_until(lambda: [m for m in channel_posts(fake) if m["components"]], 60)
    await second.services.jobs.wait_idle()
    [message] = channel_posts(fake)
    assert fake.labels(int(message["id"])) == GRID_LABELS and "(variations)" in message["content"]
    done = await second.services.storage.jobs.get(job.id)
    assert done.status == "done" and len(done.images) == 4 and done.message_id == int(message["id"])
    assert done.owner_id == ada.id and done.parent_job_id == parent.id
    assert [image.seed for image in done.images] == [1234 + i for i in range(4)]


async def test_a_job_whose_parent_image_is_gone_is_failed_and_announced_in_its_channel(start_kaika):
    first = await start_kaika()
    fake = first.fake
    ada = fake.add_member("ada")
    parent, job = await left_queued_variation(first, ada)
    await first.services.storage.images.delete(parent.images[0].storage_key)
    await first.close()

    second = await start_kaika()
    failed = await second.services.storage.jobs.get(job.id)
    assert failed.status == "failed" and "could not resume" in failed.error
    [notice] = channel_posts(fake)
    assert f"<@{ada.id}>" in notice["content"] and "a quiet harbour" in notice["content"]
    assert "could not resume" in notice["content"]
    assert fake.custom_ids(int(notice["id"])) == [f"kaika:r:{job.id}:0"]
    await second.services.jobs.wait_idle()
    assert (await second.services.storage.jobs.get(parent.id)).status == "done"  # the parent is untouched


async def test_jobs_of_the_command_line_and_the_web_companion_are_left_to_them(start_kaika):
    """`kaika imagine` may be running its job in its own process; `kaika web` resumes its own jobs when it
    starts (even a press in the web on a job made in this server, which names the server but no channel)."""
    first = await start_kaika()
    request = GenerationRequest(prompt="a local sketch", seed=5, width=64, height=64, steps=FAST_STEPS)
    command_line = await first.services.storage.jobs.create(
        JobKind.IMAGINE,
        0,
        prompt=request.prompt,
        params=request_params(request),
        seed=request.seed,
        front_end=FrontEnd.COMMAND_LINE,
    )
    web = await first.services.storage.jobs.create(
        JobKind.IMAGINE,
        0,
        prompt=request.prompt,
        params=request_params(request),
        seed=request.seed,
        guild_id=first.fake.guild_id,
        front_end=FrontEnd.WEB,
    )
    await first.close()

    second = await start_kaika()
    await second.services.jobs.wait_idle()
    for job in (command_line, web):
        assert (await second.services.storage.jobs.get(job.id)).status == "queued"
    assert second.services.executor.queue_depth() == 0 and channel_posts(second.fake) == []
