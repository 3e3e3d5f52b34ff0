"""The jobs of one prompt (--repeat, {a, b} permutations) are admitted and recorded all together or not at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.errors import QueueFull
from service.admission import Place, Requester
from service.errors import TooManyJobs
from service.wiring import Services
from storage.errors import QuotaExceeded
from tests.fixtures.reporters import RecordingReporter
from tests.fixtures.services import OpenServices

ADA = Requester(1, "ada")
GUILD = Place(5, 6)


@pytest.fixture
async def services(open_services: OpenServices) -> Services:
    """The job service on the tiny model: one job per user in flight, a queue of five."""
    return await open_services(max_jobs_per_user=1, max_queue=5, max_jobs_per_prompt=4)


async def test_a_prompts_jobs_are_admitted_together_and_each_frees_its_place(services: Services):
    requests = services.jobs.parse_all("a {red, blue} cat --repeat 2 --steps 2")
    pending = await services.jobs.imagine_all(ADA, GUILD, requests)
    assert [job.job.prompt for job in pending] == ["a red cat", "a red cat", "a blue cat", "a blue cat"]
    assert services.jobs.in_flight(ADA.user_id) == 4  # past the limit of one, as one prompt
    with pytest.raises(QueueFull, match="You already have 1 job queued or running"):
        await services.jobs.imagine_all(ADA, GUILD, services.jobs.parse_all("more --steps 2"))
    reporters = [RecordingReporter() for _ in pending]
    async with asyncio.timeout(120):
        await asyncio.gather(*(job.start(reporter) for job, reporter in zip(pending, reporters, strict=True)))
    assert all(reporter.outcome is not None for reporter in reporters)
    assert services.jobs.in_flight(ADA.user_id) == 0


async def test_a_prompt_the_queue_has_no_room_for_records_nothing(services: Services):
    bo = Requester(2, "bo")
    await services.jobs.imagine_all(bo, GUILD, services.jobs.parse_all("a cat --steps 2 --repeat 3"))
    with pytest.raises(QueueFull) as refused:
        await services.jobs.imagine_all(ADA, GUILD, services.jobs.parse_all("a cat --steps 2 --repeat 3"))
    assert str(refused.value) == (
        "This prompt makes 3 jobs and the queue has room for 2 now; try again in a few minutes or ask for fewer."
    )
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []
    assert services.jobs.in_flight(ADA.user_id) == 0


async def test_a_quota_too_small_for_the_prompt_records_nothing(services: Services):
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=2)
    with pytest.raises(TooManyJobs) as refused:
        await services.jobs.imagine_all(ADA, GUILD, services.jobs.parse_all("a cat --steps 2 --repeat 3"))
    assert str(refused.value) == (
        "This prompt makes 3 jobs, but 2 of your 2 jobs a day are left; ask for fewer (--repeat, {…} options)."
    )
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []
    assert services.jobs.in_flight(ADA.user_id) == 0


async def test_a_job_refused_midway_takes_the_prompts_other_jobs_back(services: Services, monkeypatch):
    """Two prompts racing for the last of a quota: storage refuses the second's third job; its first two go."""
    create = services.storage.jobs.create
    calls = 0

    async def third_refused(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise QuotaExceeded(2, 2, None)
        return await create(*args, **kwargs)

    monkeypatch.setattr(services.storage.jobs, "create", third_refused)
    with pytest.raises(QuotaExceeded):
        await services.jobs.imagine_all(ADA, GUILD, services.jobs.parse_all("a cat --steps 2 --repeat 3"))
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []
    assert await services.storage.jobs.jobs_last_24h(ADA.user_id) == 0
    assert services.jobs.in_flight(ADA.user_id) == 0
    assert services.executor.queue_depth() == 0
