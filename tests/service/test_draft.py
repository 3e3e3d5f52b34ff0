"""Draft mode in the job service: /settings mode:draft, a --draft grid's Enhance (one image again at full
quality with its seed), and the refusals of Enhance anywhere else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.executor.local import LocalExecutor
from service import recovery
from service.admission import Place, Requester
from service.defaults import format_defaults
from service.errors import NotEnhanceable
from service.jobs import ButtonAction
from service.readback import prompt_line
from service.settings import Settings
from service.wiring import Services
from storage.records import JobKind
from tests.fixtures.reporters import RecordingReporter

ADA, BO = Requester(1, "ada"), Requester(2, "bo")
GUILD = Place(5, 6)


@pytest.fixture
async def services(tiny_engine: Any, tiny_model_dir: Path, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(_env_file=None, model=str(tiny_model_dir), data_dir=tmp_path / "data")
    opened = await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=0))
    try:
        yield opened
    finally:
        await opened.close()


async def run(pending) -> Any:
    reporter = RecordingReporter()
    async with asyncio.timeout(60):
        await pending.start(reporter)
    assert reporter.outcome is not None, reporter.failure
    return reporter.outcome


async def imagined(services: Services, user: Requester, prompt: str) -> Any:
    request = await services.jobs.parse_for(user.user_id, prompt)
    return await run(await services.jobs.imagine(user, GUILD, request))


async def test_draft_mode_adds_draft_to_every_prompt_until_set_back_to_standard(services: Services):
    jobs = services.jobs
    saved = await jobs.save_defaults(ADA.user_id, {"mode": "draft"})
    assert saved == {"mode": "draft"}
    assert format_defaults(saved) == "draft mode"

    drafted = (await imagined(services, ADA, "a harbour --seed 3")).job
    assert drafted.params["draft"] is True
    assert drafted.params["steps"] == services.jobs.executor.family(None).draft_steps
    assert prompt_line(drafted) == "a harbour --seed 3 --draft"
    typed = (await imagined(services, ADA, "a harbour --draft --steps 2")).job
    assert (typed.params["steps"], prompt_line(typed)) == (2, "a harbour --draft --steps 2")  # once only
    others = (await imagined(services, BO, "a harbour --steps 1")).job
    assert others.params["draft"] is False  # Ada's mode alone

    assert await jobs.save_defaults(ADA.user_id, {"mode": "standard"}) == {}
    assert (await imagined(services, ADA, "a harbour --steps 1")).job.params["draft"] is False


async def test_an_unknown_mode_is_refused_and_nothing_saved(services: Services):
    with pytest.raises(RequestError, match=r"The mode is one of standard, draft \(got 'turbo'\)"):
        await services.jobs.save_defaults(ADA.user_id, {"mode": "turbo", "ar": "2:1"})
    assert await services.storage.users.defaults(ADA.user_id) == {}


async def test_enhance_makes_one_image_of_a_draft_grid_again_at_full_quality_with_its_seed(
    services: Services,
):
    draft = await imagined(services, ADA, "a harbour --seed 40 --ar 3:2 --no boats --draft")
    family = services.jobs.executor.family(None)
    assert draft.job.params["steps"] == family.draft_steps
    assert ButtonAction.ENHANCE in draft.offered

    pending = await services.jobs.press(BO, GUILD, ButtonAction.ENHANCE, draft.job.id, 2)
    enhanced = await run(pending)
    job = enhanced.job
    assert (job.kind, job.parent_job_id, job.parent_image_index) == (JobKind.ENHANCE, draft.job.id, 2)
    assert job.owner_id == BO.user_id  # whoever pressed, as for a variation
    assert job.seed == 42 and [image.seed for image in job.images] == [42]
    assert job.params["draft"] is False and job.params["steps"] == family.default_steps
    assert (job.images[0].width, job.images[0].height) == (
        draft.job.images[2].width,
        draft.job.images[2].height,
    )
    assert job.negative_prompt == "boats"
    assert prompt_line(job) == "a harbour --ar 3:2 --no boats"
    assert ButtonAction.ENHANCE not in enhanced.offered  # a single image at full quality


async def test_enhance_keeps_the_steps_the_member_asked_for(services: Services):
    draft = await imagined(services, ADA, "a harbour --seed 1 --steps 3 --draft")
    enhanced = await run(await services.jobs.press(ADA, GUILD, ButtonAction.ENHANCE, draft.job.id, 0))
    assert enhanced.job.params["steps"] == 3 and enhanced.job.params["draft"] is False


async def test_enhance_is_refused_under_a_full_quality_grid_and_records_nothing(services: Services):
    plain = await imagined(services, ADA, "a harbour --seed 1 --steps 2")
    assert ButtonAction.ENHANCE not in plain.offered
    before = await services.storage.jobs.recent_for_user(ADA.user_id, limit=10)
    with pytest.raises(NotEnhanceable, match="this job is not a --draft grid"):
        await services.jobs.press(ADA, GUILD, ButtonAction.ENHANCE, plain.job.id, 0)
    assert await services.storage.jobs.recent_for_user(ADA.user_id, limit=10) == before


async def test_an_enhance_resumed_after_a_restart_is_generated_again_not_copied(services: Services):
    draft = await imagined(services, ADA, "a harbour --seed 7 --draft")
    pending = await services.jobs.press(ADA, GUILD, ButtonAction.ENHANCE, draft.job.id, 1)
    request, copy_of = await recovery._rebuild(services.jobs, pending.job)
    assert copy_of is None  # a U press copies its image; Enhance makes it again
    assert (request.seed, request.num_images, request.draft) == (8, 1, False)
    assert request.steps == services.jobs.executor.family(None).default_steps
    await run(pending)
