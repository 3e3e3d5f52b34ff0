"""The Celery executor against the real Redis and a real `kaika worker` running the tiny model."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest
import redis

from pipeline import editing
from pipeline.errors import JobCancelled, JobFailed, RequestError
from pipeline.executor.base import (
    Cancelled,
    Executor,
    Failed,
    Finished,
    JobHandle,
    Queued,
    ResumableExecutor,
    Started,
    Step,
    UnknownJob,
)
from pipeline.executor.celery import READ_IMAGES_TTL, CeleryExecutor, FleetUnavailable
from pipeline.executor.celery_jobs import (
    TASK_NAME,
    FleetConfig,
    JobKeys,
    make_celery_app,
    queue_for_model,
    request_to_payload,
)
from pipeline.executor.celery_worker import WorkerJobs
from pipeline.families import UNKNOWN_FAMILY
from pipeline.images import decode_image, encode_png
from pipeline.request import GenerationRequest, Mode
from tests.fixtures.fleet import LONG, collect, first_step, job_record, stream_types

REQUEST = GenerationRequest(prompt="a lighthouse at dusk", seed=3, width=64, height=64, steps=4, num_images=2)
SMALL = REQUEST.replace(steps=2, num_images=1)


async def test_a_job_runs_on_a_worker_with_progress_previews_and_the_models_images(
    worker, make_executor, tiny_model_dir
):
    executor = await make_executor()
    assert isinstance(executor, Executor)
    assert executor.family().native_size == 64  # announced by the worker that loaded the model

    handle = await executor.submit(REQUEST, owner="alice")
    events = await collect(handle)

    assert [type(e).__name__ for e in events] == [
        "Queued",
        "Started",
        "Step",
        "Step",
        "Step",
        "Step",
        "Finished",
    ]
    assert events[0] == Queued(1)
    steps = [e for e in events if isinstance(e, Step)]
    assert [(s.step, s.total) for s in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert steps[0].preview_png is None and steps[1].preview_png.startswith(b"\x89PNG")
    result = await handle.result()
    assert result.seeds == [3, 4] and result.model_id == "tiny-sd"
    assert result.metadata["prompt"] == "a lighthouse at dusk"
    assert result.timings.compute_seconds > 0 and result.timings.queued_seconds >= 0

    # The worker ran the same model: its images match an in-process run of the same request.
    from pipeline.engine import Engine

    local = Engine.load(str(tiny_model_dir), device="cpu", dtype="float32").run([REQUEST])[0]
    for fleet_image, local_image in zip(result.images, local.images, strict=True):
        assert fleet_image.size == (64, 64)
        difference = np.abs(
            np.asarray(fleet_image, dtype=int) - np.asarray(local_image.convert("RGB"), dtype=int)
        )
        assert difference.max() <= 2
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(result.images[1]))

    assert executor.queue_depth() == 0
    client = redis.Redis.from_url(executor.config.redis_url)
    image_ttls = [client.ttl(JobKeys(executor.config.key_prefix, handle.job_id).image(i)) for i in range(2)]
    client.close()
    assert all(0 < ttl <= READ_IMAGES_TTL for ttl in image_ttls)  # read, so they need not stay long


async def test_a_model_picked_by_its_announced_name_runs_on_the_worker_that_serves_it(worker, make_executor):
    executor = await make_executor()
    assert executor.model_names == ["tiny-sd"]
    assert executor.family("tiny-sd") == executor.family()  # by its id or its MODEL value
    assert executor.family("tiny-sd").name == "sd" and executor.family("tiny-sd").native_size == 64
    assert executor.family("a-model-no-worker-serves") == UNKNOWN_FAMILY  # until a worker announces it
    handle = await executor.submit(SMALL.replace(model="tiny-sd"), owner="alice")
    assert (await handle.result()).model_id == "tiny-sd"


async def test_a_model_named_in_models_is_offered_by_that_name_once_a_worker_serves_it(
    worker, make_executor, tiny_model_dir
):
    executor = await make_executor(
        default_model="", model_sources={"sketch": str(tiny_model_dir), "later": "org/not-served-yet"}
    )
    assert executor.model_names == ["sketch", "tiny-sd"]  # "later" has no worker yet
    assert executor.family("sketch") == executor.family("tiny-sd")
    handle = await executor.submit(SMALL.replace(model="sketch"), owner="alice")
    assert (await handle.result()).model_id == "tiny-sd"


async def test_a_redelivered_finished_job_is_not_run_again_and_its_result_is_delivered_once(
    worker, make_executor, fleet_config, tiny_model_dir
):
    executor = await make_executor()
    handle = await executor.submit(SMALL, owner="alice")
    await handle.result()

    app = make_celery_app(fleet_config)
    try:
        # The Celery result carries keys and metadata, never image bytes.
        summary = await asyncio.to_thread(app.AsyncResult(handle.job_id).get, timeout=60)
        assert summary["images"] == [JobKeys(fleet_config.key_prefix, handle.job_id).image(0)]
        assert summary["attempt"] == 1
        # The broker hands the same job out again, as after a lost acknowledgement.
        again = app.send_task(
            TASK_NAME,
            args=(handle.job_id, request_to_payload(SMALL), 2),
            task_id=handle.job_id,
            queue=queue_for_model(fleet_config.key_prefix, str(tiny_model_dir)),
        )
        assert await asyncio.to_thread(again.get, timeout=60) == summary
    finally:
        app.close()

    assert stream_types(fleet_config, handle.job_id).count("finished") == 1
    assert job_record(fleet_config, handle.job_id)["attempts"] == "1"
    # A bot that attaches afterwards reads that one result, once.
    other = await make_executor()
    events = await collect(await other.attach(handle.job_id))
    assert sum(isinstance(e, Finished) for e in events) == 1


async def test_a_restarted_bot_reattaches_a_running_job_and_resumes_its_progress(worker, make_executor):
    first = await make_executor()
    handle = await first.submit(LONG, owner="alice")
    await first_step(handle)
    await first.close()  # the bot stops mid-job; the worker carries on
    seen = handle.last_event_id  # what a bot would have saved: the last event it had read

    second = await make_executor()
    resumed = await second.attach(handle.job_id, after=seen)
    events = await collect(resumed)

    assert isinstance(events[-1], Finished)
    assert not any(isinstance(e, Started) for e in events)  # resumed after the events already seen
    seen_before = [e.step for e in await history(handle) if isinstance(e, Step)]
    seen_after = [e.step for e in events if isinstance(e, Step)]
    assert seen_before + seen_after == list(range(1, 101))  # every step once, none lost, none repeated
    assert (await resumed.result()).seeds == [3, 4]


async def history(handle: JobHandle) -> list:
    """The events a handle holds now, without waiting for more."""
    events = []
    iterator = handle.events()
    while True:
        try:
            events.append(await asyncio.wait_for(anext(iterator), timeout=0.2))
        except (TimeoutError, StopAsyncIteration):
            return events


async def test_jobs_still_waiting_in_a_stopped_bot_are_picked_up_by_the_next_one(worker, make_executor):
    first = await make_executor(in_flight=1)
    running = await first.submit(REQUEST.replace(steps=8), owner="alice")
    waiting = await first.submit(SMALL, owner="bob")  # held in the bot's fair queue
    assert (await collect_first(waiting)) == Queued(2)
    await first.close()

    second = await make_executor(in_flight=1)
    for job_id in (running.job_id, waiting.job_id):
        events = await collect(await second.attach(job_id))
        assert isinstance(events[-1], Finished)


async def collect_first(handle: JobHandle):
    async for event in handle.events():
        return event


async def test_cancelling_a_running_job_stops_it_between_steps(worker, make_executor, fleet_config):
    executor = await make_executor()
    handle = await executor.submit(REQUEST.replace(steps=80), owner="alice")
    await first_step(handle)

    assert await handle.cancel() is True
    events = await collect(handle)
    assert isinstance(events[-1], Cancelled)
    assert max(e.step for e in events if isinstance(e, Step)) < 80
    with pytest.raises(JobCancelled):
        await handle.result()
    assert await handle.cancel() is False  # already ended
    assert job_record(fleet_config, handle.job_id)["state"] == "cancelled"
    assert "finished" not in stream_types(fleet_config, handle.job_id)


async def test_cancelling_queued_jobs_means_no_worker_ever_runs_them(worker, make_executor, fleet_config):
    executor = await make_executor(in_flight=2)
    running = await executor.submit(LONG, owner="alice")
    at_workers = await executor.submit(SMALL, owner="bob")  # sent to the workers' queue
    in_bot = await executor.submit(SMALL, owner="carol")  # beyond in_flight: waits in the bot
    assert [await collect_first(h) for h in (running, at_workers, in_bot)] == [
        Queued(1),
        Queued(2),
        Queued(3),
    ]
    await first_step(running)

    assert await in_bot.cancel() is True
    assert await at_workers.cancel() is True
    for handle in (in_bot, at_workers):
        events = await collect(handle)
        assert isinstance(events[-1], Cancelled) and not any(isinstance(e, Started) for e in events)

    await running.result()
    after = await executor.submit(SMALL, owner="bob")  # the worker has moved past the cancelled job
    await after.result()
    for handle in (in_bot, at_workers):
        record = job_record(fleet_config, handle.job_id)
        assert record["state"] == "cancelled" and record["attempts"] == "0"
        assert "started" not in stream_types(fleet_config, handle.job_id)


async def test_owners_take_turns_in_the_bot(worker, make_executor, fleet_config):
    executor = await make_executor(in_flight=1)
    a1, a2, a3 = [await executor.submit(SMALL.replace(seed=s), owner="alice") for s in (1, 2, 3)]
    b1 = await executor.submit(SMALL, owner="bob")
    assert await collect_first(b1) == Queued(2)  # ahead of alice's second and third jobs

    for handle in (a1, a2, a3, b1):
        await handle.result()
    started = {h.job_id: float(job_record(fleet_config, h.job_id)["started_at"]) for h in (a1, a2, a3, b1)}
    assert sorted(started, key=started.get) == [a1.job_id, b1.job_id, a2.job_id, a3.job_id]


async def test_a_favoured_tier_overtakes_in_the_workers_queue(worker, make_executor, fleet_config):
    executor = await make_executor(in_flight=8)
    running = await executor.submit(LONG, owner="x")
    await first_step(running)  # the worker is busy; the next two wait in its queue
    everyone = await executor.submit(SMALL, owner="y")
    favoured = await executor.submit(SMALL, owner="z", priority=5)
    await everyone.result()
    await favoured.result()
    started = {h: float(job_record(fleet_config, h.job_id)["started_at"]) for h in (everyone, favoured)}
    assert started[favoured] < started[everyone]


async def test_relaxed_jobs_yield_to_fast_ones_in_the_bot_and_in_the_workers_queue(
    worker, make_executor, fleet_config
):
    from pipeline.executor.fair import FAST_TIER, RELAX_TIER

    # One job in flight: the rest wait in the bot's fair queue.
    executor = await make_executor(in_flight=1)
    running = await executor.submit(LONG, owner="x", priority=FAST_TIER)
    await first_step(running)
    relaxed = await executor.submit(SMALL, owner="y", priority=RELAX_TIER)
    fast = await executor.submit(SMALL, owner="z", priority=FAST_TIER)
    assert await collect_first(fast) == Queued(1)  # ahead of the relaxed job queued before it
    # Many in flight: both are handed to the workers at once, and their queue serves the fast one first.
    handed = await make_executor(in_flight=8)
    late_relaxed = await handed.submit(SMALL.replace(seed=8), owner="y", priority=RELAX_TIER)
    late_fast = await handed.submit(SMALL.replace(seed=9), owner="z", priority=FAST_TIER)
    for handle in (running, relaxed, fast, late_relaxed, late_fast):
        await handle.result()
    started = {
        h: float(job_record(fleet_config, h.job_id)["started_at"])
        for h in (relaxed, fast, late_relaxed, late_fast)
    }
    assert started[fast] < started[relaxed]
    assert started[late_fast] < started[late_relaxed]


async def test_a_job_the_model_cannot_run_fails_with_a_message(worker, make_executor):
    executor = await make_executor()
    broken = SMALL.replace(mode=Mode.IMG2IMG, source_image=b"this is not an image")
    handle = await executor.submit(broken, owner="alice")
    events = await collect(handle)
    assert isinstance(events[-1], Failed) and "failed on a worker" in events[-1].message
    with pytest.raises(JobFailed, match="failed on a worker"):
        await handle.result()


async def test_invalid_requests_are_refused_before_anything_is_recorded(
    fleet_redis_url, make_executor, fleet_config
):
    # A model no worker serves: jobs stay queued.
    executor = await make_executor(default_model="no-worker-serves-this")
    accepted = [await executor.submit(SMALL, owner="alice"), await executor.submit(SMALL, owner="bob")]
    with pytest.raises(RequestError, match="--steps"):
        await executor.submit(SMALL.replace(steps=0), owner="dave", job_id="invalid-job")
    assert job_record(fleet_config, "invalid-job") == {}
    assert executor.queue_depth() == 2
    assert [job_record(fleet_config, handle.job_id)["owner"] for handle in accepted] == ["alice", "bob"]


async def test_attaching_an_unknown_job_says_so(fleet_redis_url, make_executor):
    executor = await make_executor()
    assert isinstance(executor, ResumableExecutor)
    with pytest.raises(UnknownJob, match="No job nope is recorded"):
        await executor.attach("nope")


async def test_a_job_that_keeps_killing_workers_is_given_up_after_the_retries(
    fleet_redis_url, make_executor, fleet_config
):
    executor = await make_executor(default_model="no-worker-serves-this")
    handle = await executor.submit(SMALL, owner="alice")
    jobs = WorkerJobs(redis.Redis.from_url(fleet_config.redis_url), fleet_config)
    # Each delivery that begins and never ends is a worker lost mid-job.
    assert [jobs.begin(handle.job_id, "w")[:2] for _ in range(3)] == [("run", 1), ("run", 2), ("run", 3)]
    assert jobs.begin(handle.job_id, "w")[0] == "failed"
    events = await collect(handle)
    assert isinstance(events[-1], Failed) and "stopped its worker 3 times" in events[-1].message


async def test_submitting_a_recorded_job_id_again_attaches_instead_of_queueing_it_twice(
    fleet_redis_url, make_executor, fleet_config
):
    first = await make_executor(default_model="no-worker-serves-this")
    handle = await first.submit(SMALL, owner="alice", job_id="resubmitted-job")
    await first.close()

    second = await make_executor(default_model="no-worker-serves-this")
    again = await second.submit(SMALL.replace(prompt="something else"), owner="alice", job_id=handle.job_id)
    assert again.request == SMALL  # the recorded job, not the new request
    assert await second.submit(SMALL, owner="alice", job_id=handle.job_id) is again
    assert second.queue_depth() == 1
    async with asyncio.timeout(30):  # sent to the workers' queue by the second bot
        while job_record(fleet_config, handle.job_id)["state"] != "released":  # noqa: ASYNC110 - Redis state, no event
            await asyncio.sleep(0.05)


def drop_connections(config, name: str) -> None:
    """Close the named clients' connections on the Redis side, as a Redis restart or a network cut would."""
    admin = redis.Redis.from_url(config.redis_url)
    try:
        connections = [c for c in admin.client_list() if c["name"] == f"{config.key_prefix}-{name}"]
        assert connections, f"no {name} connections to drop"
        for connection in connections:
            admin.client_kill_filter(_id=connection["id"])
    finally:
        admin.close()


@pytest.mark.parametrize("side", ["bot", "worker"])
async def test_dropped_redis_connections_lose_no_progress_and_no_result(
    worker, make_executor, fleet_config, side
):
    executor = await make_executor()
    handle = await executor.submit(LONG, owner="alice")
    await first_step(handle)
    drop_connections(fleet_config, side)

    events = await collect(handle)
    assert isinstance(events[-1], Finished)
    assert [e.step for e in events if isinstance(e, Step)] == list(range(1, 101))
    assert len((await handle.result()).images) == 2


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own, which the test may stop."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    yield server, url
    server.terminate()
    server.wait(timeout=10)


async def test_an_unreachable_redis_is_named_at_start_and_refuses_jobs_with_a_message(
    private_redis, tiny_model_dir
):
    server, url = private_redis
    executor = CeleryExecutor(FleetConfig(redis_url=url), default_model=str(tiny_model_dir))
    await executor.start()
    server.terminate()
    server.wait(timeout=10)
    try:
        with pytest.raises(FleetUnavailable, match="cannot be reached right now"):
            await executor.submit(SMALL, owner="alice")
        assert executor.queue_depth() == 0  # nothing half-queued
    finally:
        await executor.close()

    stopped = CeleryExecutor(FleetConfig(redis_url=url), default_model=str(tiny_model_dir))
    with pytest.raises(FleetUnavailable, match=r"Cannot reach Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\)"):
        await stopped.start()


async def test_an_edit_runs_on_a_worker_with_its_canvas_and_mask(worker, make_executor):
    """Zoom Out on the fleet: the mask crosses the broker, and the worker pastes the kept pixels back."""
    executor = await make_executor()
    source = (await (await executor.submit(SMALL, owner="alice")).result()).images[0]
    family = executor.family()
    request = editing.edit_request(
        SMALL,
        encode_png(source),
        editing.zoom(2),
        seed=7,
        native=family.native_size,
        multiple=family.size_multiple,
    )
    result = await (await executor.submit(request, owner="alice")).result()
    f = editing.feather_width(64, 64)
    shrunk = np.asarray(decode_image(request.source_image), dtype=int)[16 + f : 48 - f, 16 + f : 48 - f]
    assert len(result.images) == 4
    for image in result.images:
        assert (np.asarray(image.convert("RGB"), dtype=int)[16 + f : 48 - f, 16 + f : 48 - f] == shrunk).all()
