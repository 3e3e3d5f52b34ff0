"""The in-process executor: fair order, limits, batching, events, cancel and failures, on the tiny model."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from pipeline.errors import JobCancelled, JobFailed, QueueFull, RequestError
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
)
from pipeline.executor.local import LocalExecutor
from tests.fixtures.requests import tiny_request

TIMEOUT = 120


@pytest.fixture
def calls(tiny_engine, monkeypatch):
    """Records the prompts of every pipeline call the engine makes (and whether it was cancelled)."""
    recorded: list[list[str]] = []
    original = tiny_engine.run_outcomes

    def recording(requests, **options):
        recorded.append([request.prompt for request in requests])
        try:
            return original(requests, **options)
        except JobCancelled:
            recorded.append(["<cancelled>"])
            raise

    monkeypatch.setattr(tiny_engine, "run_outcomes", recording)
    return recorded


@pytest.fixture
async def make_executor(tiny_engine):
    executors: list[LocalExecutor] = []

    def make(**options) -> LocalExecutor:
        ids = itertools.count(1)
        options.setdefault("new_job_id", lambda: f"job-{next(ids)}")
        options.setdefault("preview_every", 0)
        executor = LocalExecutor({None: tiny_engine, **options.pop("extra_engines", {})}, **options)
        executors.append(executor)
        return executor

    yield make
    for executor in executors:
        await executor.close()


async def all_events(handle):
    return [event async for event in handle.events()]


async def test_implements_the_executor_interface(make_executor):
    executor = make_executor()
    assert isinstance(executor, Executor)
    await executor.start()
    handle = await executor.submit(tiny_request(num_images=1), owner="ann")
    assert isinstance(handle, JobHandle)
    assert executor.family().native_size == 64
    await asyncio.wait_for(handle.result(), TIMEOUT)


def test_jobs_do_not_outlive_the_process_so_there_is_nothing_to_attach_to(make_executor):
    assert not isinstance(make_executor(), ResumableExecutor)


async def test_job_events_run_from_queued_to_finished_with_previews(make_executor):
    clock = itertools.count(100, 5)
    executor = make_executor(preview_every=2, clock=lambda: next(clock))
    handle = await executor.submit(tiny_request(steps=4, seed=3, num_images=4), owner="ann")
    assert handle.job_id == "job-1" and handle.owner == "ann"
    await executor.start()
    events = await asyncio.wait_for(all_events(handle), TIMEOUT)
    assert events[:2] == [Queued(1), Started()]
    steps = [event for event in events if isinstance(event, Step)]
    assert [(step.step, step.total) for step in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [step.preview_png is not None for step in steps] == [False, True, False, False]
    assert isinstance(events[-1], Finished)
    result = await handle.result()
    assert result is events[-1].result
    assert len(result.images) == 4 and result.seeds == [3, 4, 5, 6]
    assert result.timings.queued_seconds == 5.0
    assert result.metadata["job_id"] == "job-1"
    # A second reader sees the same history.
    assert await all_events(handle) == events


async def test_jobs_start_round_robin_across_owners_not_first_come(make_executor, calls):
    executor = make_executor(max_batch=1)
    handles = {}
    for name in ["a1", "a2", "a3", "b1", "b2", "c1"]:
        handles[name] = await executor.submit(tiny_request(name, num_images=1), owner=name[0])
    await executor.start()
    events = {name: await asyncio.wait_for(all_events(h), TIMEOUT) for name, h in handles.items()}
    assert calls == [["a1"], ["b1"], ["c1"], ["a2"], ["b2"], ["a3"]]
    # Positions follow the fair order, and move up as jobs ahead start.
    last_position = {
        name: [e.position for e in evs if isinstance(e, Queued)][-1] for name, evs in events.items()
    }
    assert last_position == {"a1": 1, "b1": 1, "c1": 1, "a2": 1, "b2": 1, "a3": 1}
    first_positions = [e.position for e in events["a3"] if isinstance(e, Queued)]
    assert first_positions == [3, 4, 5, 6, 5, 4, 3, 2, 1]


async def test_compatible_waiting_jobs_share_one_pipeline_call(make_executor, calls, tiny_engine):
    executor = make_executor(max_batch=4)
    requests = {
        "x": tiny_request("x", num_images=1, seed=1),
        "y": tiny_request("y", num_images=1, seed=2),
        "slow": tiny_request("slow", num_images=1, steps=5),
        "z": tiny_request("z", num_images=2, seed=3),
        "w": tiny_request("w", num_images=1, seed=4),
    }
    handles = {name: await executor.submit(request, owner=name) for name, request in requests.items()}
    await executor.start()
    results = {name: await asyncio.wait_for(h.result(), TIMEOUT) for name, h in handles.items()}
    # x leads; y and z fit beside it (4 images); "slow" has other steps; w waits for the next call.
    assert calls == [["x", "y", "z"], ["slow"], ["w"]]
    alone = tiny_engine.run([requests["z"]])[0]
    assert results["z"].seeds == alone.seeds == [3, 4]
    assert [img.size for img in results["z"].images] == [(64, 64), (64, 64)]


async def test_invalid_requests_and_unknown_models_are_refused_without_queueing(make_executor):
    executor = make_executor()
    with pytest.raises(RequestError, match="--steps"):
        await executor.submit(tiny_request().replace(steps=500), owner="ann")
    with pytest.raises(RequestError, match=r"--model 'huge' is not available; choose one of: tiny-sd"):
        await executor.submit(tiny_request(model="huge"), owner="ann")
    assert executor.queue_depth() == 0


async def test_requests_pick_their_model_by_name(make_executor, tiny_engine, calls):
    executor = make_executor(extra_engines={"sketch": tiny_engine})
    assert executor.model_names == ["sketch", "tiny-sd"]
    await executor.start()
    by_name = await executor.submit(tiny_request("s", model="sketch", num_images=1), owner="ann")
    by_id = await executor.submit(tiny_request("t", model="tiny-sd", num_images=1), owner="bob")
    await asyncio.wait_for(asyncio.gather(by_name.result(), by_id.result()), TIMEOUT)
    assert sorted(calls) == [["s"], ["t"]]  # different model names never share a call


async def test_cancel_a_waiting_job(make_executor, calls):
    executor = make_executor()
    first = await executor.submit(tiny_request("first", num_images=1), owner="ann")
    second = await executor.submit(tiny_request("second", num_images=1, steps=5), owner="ann")
    assert await second.cancel() is True
    assert await second.cancel() is False
    assert await all_events(second) == [Queued(2), Cancelled()]
    with pytest.raises(JobCancelled):
        await second.result()
    assert executor.queue_depth() == 1
    await executor.start()
    await asyncio.wait_for(first.result(), TIMEOUT)
    assert calls == [["first"]]


async def test_cancel_a_running_job_stops_it_between_steps(make_executor, calls):
    executor = make_executor()
    await executor.start()
    handle = await executor.submit(tiny_request("long", steps=60, num_images=1), owner="ann")
    seen = []
    async for event in handle.events():
        seen.append(event)
        if isinstance(event, Step) and event.step == 2:
            assert await handle.cancel() is True
    assert isinstance(seen[-1], Cancelled)
    with pytest.raises(JobCancelled):
        await handle.result()
    # The worker stops the pipeline and keeps serving.
    after = await executor.submit(tiny_request("after", num_images=1), owner="ann")
    await asyncio.wait_for(after.result(), TIMEOUT)
    assert calls == [["long"], ["<cancelled>"], ["after"]]
    assert await handle.cancel() is False


async def test_out_of_memory_for_one_image_fails_that_job_and_the_worker_keeps_serving(
    make_executor, huge_prompt_runs_out_of_memory
):
    executor = make_executor()
    huge = await executor.submit(tiny_request("huge", num_images=1), owner="ann")
    fine = await executor.submit(tiny_request("fine", num_images=1), owner="bob")
    await executor.start()
    events = await asyncio.wait_for(all_events(huge), TIMEOUT)
    assert isinstance(events[-1], Failed)
    assert "ran out of memory for one 64x64 image" in events[-1].message
    with pytest.raises(JobFailed, match="out of memory"):
        await huge.result()
    assert len((await asyncio.wait_for(fine.result(), TIMEOUT)).images) == 1


async def test_an_unexpected_error_fails_the_batch_and_the_worker_keeps_serving(
    make_executor, tiny_engine, monkeypatch
):
    original = tiny_engine.run_outcomes

    def broken_once(requests, **options):
        monkeypatch.setattr(tiny_engine, "run_outcomes", original)
        raise RuntimeError("device lost")

    monkeypatch.setattr(tiny_engine, "run_outcomes", broken_once)
    executor = make_executor()
    await executor.start()
    broken = await executor.submit(tiny_request(num_images=1), owner="ann")
    with pytest.raises(JobFailed, match="Generation failed: device lost"):
        await asyncio.wait_for(broken.result(), TIMEOUT)
    works = await executor.submit(tiny_request(num_images=1), owner="ann")
    await asyncio.wait_for(works.result(), TIMEOUT)


async def test_close_cancels_waiting_jobs_and_refuses_new_ones(make_executor):
    executor = make_executor()
    waiting = await executor.submit(tiny_request(), owner="ann")
    await executor.close()
    assert (await all_events(waiting))[-1] == Cancelled()
    with pytest.raises(QueueFull, match="shutting down"):
        await executor.submit(tiny_request(), owner="ann")


async def test_relaxed_jobs_wait_while_fast_ones_do(make_executor, calls):
    from pipeline.executor.fair import FAST_TIER, RELAX_TIER

    executor = make_executor(max_batch=1)
    handles = {}
    for name, tier in [
        ("relax1", RELAX_TIER),
        ("relax2", RELAX_TIER),
        ("fast1", FAST_TIER),
        ("fast2", FAST_TIER),
    ]:
        # Each its own owner, so only the tier puts the later fast jobs first.
        handles[name] = await executor.submit(tiny_request(name, num_images=1), owner=name, priority=tier)
    first_positions = {
        name: next(e.position for e in [await anext(h.events())] if isinstance(e, Queued))
        for name, h in handles.items()
    }
    assert first_positions == {"relax1": 1, "relax2": 2, "fast1": 1, "fast2": 2}  # as each was queued
    await executor.start()
    for handle in handles.values():
        await asyncio.wait_for(handle.result(), TIMEOUT)
    assert calls == [["fast1"], ["fast2"], ["relax1"], ["relax2"]]
