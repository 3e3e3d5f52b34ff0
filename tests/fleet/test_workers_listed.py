"""The fleet's workers as the admin dashboard lists them: each answering worker with the model it serves."""

from __future__ import annotations

from pipeline.executor.base import ReportsWorkers
from pipeline.executor.local import LocalExecutor


async def test_the_fleet_lists_its_answering_workers_with_their_models(worker, make_executor):
    executor = await make_executor()
    assert isinstance(executor, ReportsWorkers)
    workers = await executor.workers()
    assert workers, "the running worker did not answer"
    assert all("@" in w.name and w.models == ("tiny-sd",) for w in workers), workers
    assert [w.name for w in workers] == sorted(w.name for w in workers)


def test_the_local_executor_has_no_workers_to_list(tiny_engine):
    assert not isinstance(LocalExecutor({None: tiny_engine}), ReportsWorkers)
