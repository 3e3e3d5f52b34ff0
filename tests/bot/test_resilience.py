"""Rate limits, restarts with jobs in flight, and twenty people at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.fixtures.discord_helpers import FAST_STEPS, GRID_LABELS


async def test_a_rate_limited_edit_is_retried_and_the_grid_still_arrives(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    fake.rate_limit("PATCH", r"/messages/@original$", times=2, retry_after=0.3)
    ada = fake.add_member("ada")
    message = await kaika.finished(await kaika.imagine(ada, f"a kite --steps {FAST_STEPS}"))
    assert fake.labels(int(message["id"])) == GRID_LABELS
    assert len(fake.rate_limited) == 2
    assert all(call.status == 429 for call in fake.rate_limited)


async def test_jobs_cut_short_by_a_restart_run_again_and_post_their_result_to_their_channel(start_kaika):
    first = await start_kaika()
    fake = first.fake
    ada = fake.add_member("ada")
    interaction = await first.started(ada, "a long job --steps 80")
    [job] = await first.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "running" and job.message_id == int(fake.original(interaction)["id"])
    await first.close()  # the process goes away mid-job

    second = await start_kaika()
    await fake.wait_until(
        lambda: [m for m in fake.channel_messages() if m["type"] == 0 and m["components"]], 120
    )
    await second.services.jobs.wait_idle()
    [message] = [m for m in fake.channel_messages() if m["type"] == 0]  # posted once, no failure notice
    assert fake.labels(int(message["id"])) == GRID_LABELS
    assert f"<@{ada.id}>" in message["content"] and "a long job" in message["content"]
    assert len(message["attachments"]) == 1
    done = await second.services.storage.jobs.get(job.id)
    assert done.status == "done" and done.error is None and done.message_id == int(message["id"])
    assert [image.seed for image in done.images] == [job.seed + i for i in range(4)]
    assert done.owner_id == job.owner_id == ada.id
    assert [j.id for j in await second.services.storage.jobs.recent_for_user(ada.id)] == [job.id]
    # The first message, left at its last progress, now says where the job went on.
    earlier = fake.original(interaction)
    assert "Kaika restarted" in earlier["content"] and f"/{message['id']}" in earlier["content"]
    assert "a long job" in earlier["content"] and "%" not in earlier["content"]
    assert earlier["attachments"] == [] and earlier["components"] == []


@pytest.mark.slow
async def test_twenty_people_at_once_are_acknowledged_in_time_finished_and_served_fairly(
    start_kaika, tiny_engine, monkeypatch
):
    kaika = await start_kaika(max_batch=16)
    fake = kaika.fake
    # The first job holds the worker at a gate until everyone has queued, so the start order
    # below is the queue's alone, however fast the machine.
    gate = threading.Event()
    engine = tiny_engine
    run = engine.run_outcomes

    def gated_run(*args, **kwargs):
        gate.wait(60)
        return run(*args, **kwargs)

    monkeypatch.setattr(engine, "run_outcomes", gated_run)
    # When each job really started, by the executor's clock: submission time plus its queue wait.
    handles = {}
    submit = kaika.services.executor.submit

    async def recording_submit(request, **options):
        handles[request.prompt] = handle = await submit(request, **options)
        return handle

    monkeypatch.setattr(kaika.services.executor, "submit", recording_submit)
    users = [fake.add_member(f"user{i}") for i in range(20)]
    hog, others = users[0], users[1:]
    try:
        first = await fake.wait_acked(await kaika.imagine(fake.add_member("early"), "first --steps 2"))
        hog_first = await kaika.imagine(hog, "hog one --steps 2")
        hog_second = await kaika.imagine(hog, "hog two --steps 2")
        rest = await asyncio.gather(
            *(kaika.imagine(u, f"picture {i} --steps 2") for i, u in enumerate(others))
        )
        everyone = [hog_first, hog_second, *rest]
        for interaction in everyone:
            await fake.wait_acked(interaction)
        assert all(i.response_type == 5 for i in everyone)
        assert max(i.ack_seconds for i in everyone) < 3.0, sorted(i.ack_seconds for i in everyone)
        await fake.wait_until(lambda: len(handles) == 22)
    finally:
        gate.set()

    messages = [await kaika.finished(i, seconds=240) for i in [first, *everyone]]
    assert all(fake.labels(int(m["id"])) == GRID_LABELS for m in messages)
    for user in users:
        assert all(job.status == "done" for job in await kaika.services.storage.jobs.recent_for_user(user.id))

    started = {
        prompt: h.submitted_at + (await h.result()).timings.queued_seconds for prompt, h in handles.items()
    }
    # Round robin by user: whichever of the hog's jobs reached the queue second starts no earlier
    # than everyone else's first (4 jobs a batch, so it may share the last batch with the last of them).
    hog_starts = sorted(started[p] for p in ("hog one", "hog two"))
    last_other = max(started[f"picture {i}"] for i in range(len(others)))
    assert hog_starts[1] >= last_other > hog_starts[0]


async def test_a_result_after_the_interaction_token_expired_goes_to_the_channel(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    ada = fake.add_member("ada")
    interaction = await kaika.started(ada, "a slow dawn --steps 8")
    interaction.expired = True  # as 15 minutes later

    posted = await fake.wait_until(
        lambda: [m for m in fake.channel_messages() if m["type"] == 0 and m["components"]]
    )
    await kaika.services.jobs.wait_idle()
    [message] = posted
    assert fake.labels(int(message["id"])) == GRID_LABELS and f"<@{ada.id}>" in message["content"]
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "done" and job.message_id == int(message["id"])


async def test_results_are_re_encoded_to_fit_the_upload_limit_the_interaction_reports(start_kaika):
    kaika = await start_kaika()
    fake = kaika.fake
    fake.attachment_size_limit = 6000  # the tiny model's 2x2 PNG grid is larger
    ada = fake.add_member("ada")
    message = await kaika.finished(await kaika.imagine(ada, f"static noise --steps {FAST_STEPS}"))
    [attachment] = message["attachments"]
    data = fake.files[int(message["id"])][attachment["filename"]]
    assert attachment["filename"].endswith(".jpeg") and len(data) <= 6000
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    stored = await kaika.services.storage.images.get(job.images[0].storage_key)
    assert stored.startswith(b"\x89PNG")  # the kept originals stay lossless


async def test_a_job_that_fails_in_the_engine_says_so_and_is_recorded_failed(
    start_kaika, tiny_engine, monkeypatch
):
    from pipeline.errors import JobFailed

    engine = tiny_engine
    monkeypatch.setattr(
        engine,
        "run_outcomes",
        lambda requests, **_: [JobFailed("Out of memory for a single image.")] * len(requests),
    )
    kaika = await start_kaika()
    ada = kaika.fake.add_member("ada")
    message = await kaika.finished(await kaika.imagine(ada, f"too big --steps {FAST_STEPS}"))
    assert "❌ The job failed: Out of memory for a single image." in message["content"]
    assert not message["components"] and not message["attachments"]
    [job] = await kaika.services.storage.jobs.recent_for_user(ada.id)
    assert job.status == "failed" and "Out of memory" in job.error
