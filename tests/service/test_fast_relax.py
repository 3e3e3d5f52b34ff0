"""--fast and --relax: which queue a job waits in (FAST_ROLES, FAST_MINUTES_PER_DAY), what is recorded, and
what /info says of it."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.executor.fair import FAST_TIER, RELAX_TIER
from pipeline.families import UNKNOWN_FAMILY
from pipeline.prompt import parse_prompt
from service.admission import FastTime, Place, Requester, queue_tier
from service.wiring import Services
from tests.fixtures.reporters import outcome_of

BOOSTER = 7
ADA = Requester(1, "ada", role_ids=frozenset({BOOSTER}))
BO = Requester(2, "bo")
ADMIN = Requester(3, "cy", is_admin=True)
GUILD = Place(5, 6)


def test_fast_and_relax_are_switches_and_exclusive():
    assert parse_prompt("a harbour --fast", family=UNKNOWN_FAMILY).speed == "fast"
    assert parse_prompt("a harbour --relax", family=UNKNOWN_FAMILY).speed == "relax"
    assert parse_prompt("a harbour", family=UNKNOWN_FAMILY).speed == ""
    with pytest.raises(RequestError, match="--fast and --relax ask for opposite queues; give one of them"):
        parse_prompt("a harbour --fast --relax", family=UNKNOWN_FAMILY)
    with pytest.raises(RequestError, match=r"--relax takes no value \(got 'now'\)"):
        parse_prompt("a harbour --relax now", family=UNKNOWN_FAMILY)


def test_the_queue_rule():
    everyone = FastTime()
    assert queue_tier("", BO, everyone, used_seconds=10**6) == FAST_TIER  # no roles, no limit: all fast
    assert queue_tier("relax", BO, everyone, 0) == RELAX_TIER  # --relax always yields
    boosters = FastTime(roles=frozenset({BOOSTER}), seconds_per_day=600)
    assert queue_tier("fast", ADA, boosters, used_seconds=599) == FAST_TIER
    assert queue_tier("fast", ADA, boosters, used_seconds=600) == RELAX_TIER  # used up for today
    assert queue_tier("fast", BO, boosters, used_seconds=0) == RELAX_TIER  # not a booster
    assert queue_tier("", ADMIN, boosters, used_seconds=0) == FAST_TIER  # admins run fast
    assert boosters.left(ADA, 120) == 480 and boosters.left(BO, 0) == 0 and everyone.left(BO, 5) is None


@pytest.fixture
async def services(open_services) -> Services:
    # A booster's 0.0001 fast minutes (6 ms) are used up by one job.
    return await open_services(fast_roles=str(BOOSTER), fast_minutes_per_day=0.0001)


async def imagined(services: Services, user: Requester, prompt: str) -> Any:
    pending = await services.jobs.imagine(user, GUILD, services.jobs.parse(prompt))
    await outcome_of(pending)
    return pending


async def test_a_booster_runs_fast_until_their_fast_time_is_used_then_relaxed(services: Services):
    jobs = services.jobs
    assert await jobs.fast_time_line(ADA) == "Your jobs run fast: 0.0 of 0.0001 fast minutes left today"

    first = await imagined(services, ADA, "a harbour --steps 2 --fast")
    assert first.job.params["queue"] == "fast" and first.notes == []
    used = await services.storage.jobs.fast_seconds_last_24h(ADA.user_id)
    assert used > 0.006  # the job's generation time, counted as fast time

    second = await imagined(services, ADA, "a harbour --steps 2 --fast")
    assert second.job.params["queue"] == "relax"
    assert second.notes == ["You have no fast time left today; this job runs relaxed, after fast ones."]
    assert (
        await jobs.fast_time_line(ADA) == "Your jobs run relaxed, after fast ones (your fast time is used up)"
    )
    assert await services.storage.jobs.fast_seconds_last_24h(ADA.user_id) == used  # relaxed time is free


async def test_others_run_relaxed_and_relax_is_never_counted(services: Services):
    assert (await imagined(services, BO, "a harbour --steps 2")).job.params["queue"] == "relax"
    assert await services.jobs.fast_time_line(BO) == (
        "Your jobs run relaxed, after fast ones (fast time is for some roles)"
    )
    relaxed = await imagined(services, ADA, "a harbour --steps 2 --relax")
    assert relaxed.job.params["queue"] == "relax" and relaxed.notes == []
    assert await services.storage.jobs.fast_seconds_last_24h(ADA.user_id) == 0.0
