"""The job service's hold on places in flight: every way a job ends gives its place back exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pipeline import editing
from pipeline.errors import RequestError
from pipeline.executor.local import LocalExecutor
from pipeline.families import UNKNOWN_FAMILY
from pipeline.prompt import parse_prompt
from pipeline.request import GenerationRequest, Mode
from service.admission import Place, Requester
from service.errors import NotExplainable, NotOffered
from service.jobs import EDITS, VIDEO_ACTIONS, ButtonAction, offered_actions, request_notes
from service.settings import Settings
from service.wiring import Services
from storage.errors import QuotaExceeded
from storage.records import FrontEnd, JobStatus
from tests.fixtures.reporters import RecordingReporter
from tests.fixtures.services import OpenServices

ADA = Requester(1, "ada")
GUILD = Place(5, 6, FrontEnd.DISCORD)  # a Discord channel: the bot resumes its jobs
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)


@pytest.fixture
async def services(open_services: OpenServices) -> Services:
    """The job service on the tiny model, one job per user at a time."""
    return await open_services(max_jobs_per_user=1)


async def test_a_reported_job_gives_its_place_back(services: Services):
    pending = await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 1
    reporter = RecordingReporter()
    async with asyncio.timeout(60):
        await pending.start(reporter)
    assert reporter.outcome is not None and reporter.failure is None
    assert services.jobs.in_flight(ADA.user_id) == 0
    await services.jobs.imagine(ADA, GUILD, REQUEST)  # the place is free again


async def test_the_step_total_a_member_sees_never_changes_during_a_job(services: Services):
    grid = await services.jobs.imagine(ADA, GUILD, REQUEST.replace(steps=8))
    shown = RecordingReporter()
    async with asyncio.timeout(60):
        await grid.start(shown)
    assert {total for _, total in shown.steps} == {8} and shown.steps[0] == (0, 8)
    # A variation runs the last share of an 8-step schedule: its first report already has that total.
    variation = await services.jobs.press(ADA, GUILD, ButtonAction.VARY, grid.job.id, 0)
    varied = RecordingReporter()
    async with asyncio.timeout(60):
        await variation.start(varied)
    assert varied.outcome is not None
    assert len({total for _, total in varied.steps}) == 1 and varied.steps[-1][0] == varied.steps[-1][1]


async def test_a_job_given_up_before_it_is_followed_is_failed_and_frees_its_place(services: Services):
    pending = await services.jobs.imagine(ADA, GUILD, REQUEST)
    await pending.abandon("Discord did not take the acknowledgement.")
    assert services.jobs.in_flight(ADA.user_id) == 0
    record = await services.storage.jobs.get(pending.job.id)
    assert record.status is JobStatus.FAILED and record.error == "Discord did not take the acknowledgement."
    assert await services.storage.jobs.jobs_last_24h(ADA.user_id) == 0  # a failure does not use the quota
    await pending.abandon("again")  # giving up twice changes nothing more
    assert services.jobs.in_flight(ADA.user_id) == 0
    second = await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 1
    await second.abandon("done with it")


async def test_a_job_storage_refuses_holds_no_place(services: Services):
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=0)
    with pytest.raises(QuotaExceeded):
        await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 0
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=None)
    await services.jobs.imagine(ADA, GUILD, REQUEST)
    assert services.jobs.in_flight(ADA.user_id) == 1


def test_variations_and_edits_are_offered_only_by_models_that_can_make_them():
    assert offered_actions(set(Mode)) == frozenset(ButtonAction)
    without = offered_actions({Mode.TXT2IMG, Mode.UPSCALE})
    assert ButtonAction.VARY not in without and ButtonAction.VARY_SUBTLE not in without
    assert {ButtonAction.UPSCALE, ButtonAction.UPSCALE_SUBTLE, ButtonAction.REROLL} <= without
    assert not EDITS & without
    assert offered_actions({Mode.TXT2IMG, Mode.IMG2IMG, Mode.UPSCALE}) == frozenset(
        ButtonAction
    ) - EDITS - VIDEO_ACTIONS - {ButtonAction.PROCESS}
    assert VIDEO_ACTIONS <= offered_actions({Mode.TXT2IMG, Mode.UPSCALE, Mode.ANIMATE})
    assert ButtonAction.PROCESS in offered_actions({Mode.TXT2IMG, Mode.UPSCALE, Mode.PROCESS})


async def test_a_job_of_a_model_without_image_to_image_offers_no_variations(tmp_path: Path):
    from pipeline.engine import Engine
    from testkit.families import save_tiny_family

    pixart = Engine.load(str(save_tiny_family("pixart", tmp_path / "pixart")), device="cpu", dtype="float32")
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    opened = await Services.open(settings, LocalExecutor({None: pixart}, preview_every=0))
    try:
        request = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=2)
        pending = await opened.jobs.imagine(ADA, GUILD, request)
        reporter = RecordingReporter()
        async with asyncio.timeout(60):
            await pending.start(reporter)
        assert reporter.outcome is not None
        assert ButtonAction.VARY not in reporter.outcome.offered
        assert ButtonAction.UPSCALE in reporter.outcome.offered
        with pytest.raises(NotOffered, match="cannot make variations"):
            await opened.jobs.press(ADA, GUILD, ButtonAction.VARY, pending.job.id, 0)
        assert not EDITS & reporter.outcome.offered
        for edit in (ButtonAction.ZOOM_OUT_2X, ButtonAction.PAN_LEFT):
            with pytest.raises(NotOffered, match=r"cannot inpaint .*no Vary \(Region\), Zoom Out, Pan"):
                await opened.jobs.press(ADA, GUILD, edit, pending.job.id, 0)
        # PixArt hands no latents to a step callback, so it cannot show its diffusion either.
        assert ButtonAction.PROCESS not in reporter.outcome.offered
        with pytest.raises(NotExplainable, match="model cannot show its diffusion process"):
            await opened.jobs.press(ADA, GUILD, ButtonAction.PROCESS, pending.job.id, 0)
        assert opened.jobs.in_flight(ADA.user_id) == 0  # the refused press holds no place
        assert [job.id for job in await opened.storage.jobs.recent_for_user(ADA.user_id)] == [pending.job.id]
    finally:
        await opened.close()


def test_a_negative_prompt_the_model_cannot_use_is_noted_not_dropped_silently():
    request = GenerationRequest(prompt="a lake", negative_prompt="boats", seed=1)
    with_negative = dataclasses.replace(UNKNOWN_FAMILY, negative_prompt=True)
    without = dataclasses.replace(UNKNOWN_FAMILY, negative_prompt=False)
    assert request_notes(request, with_negative) == []
    assert request_notes(request.replace(negative_prompt=""), without) == []
    [note] = request_notes(request, without)
    assert "does not use --no" in note


def test_stylize_on_a_guidance_free_model_and_chaos_on_a_family_kaika_cannot_vary_are_noted():
    schnell = dataclasses.replace(UNKNOWN_FAMILY, name="flux", default_guidance=0.0, negative_prompt=False)
    unvaried = dataclasses.replace(UNKNOWN_FAMILY, name="other", chaos=False)
    styled = parse_prompt("a lake --s 250", family=schnell)
    assert styled.guidance == 0
    [note] = request_notes(styled, schnell)
    assert "runs without guidance, so --stylize does not change" in note
    assert request_notes(parse_prompt("a lake", family=schnell), schnell) == []
    assert request_notes(parse_prompt("a lake --s 250", family=UNKNOWN_FAMILY), UNKNOWN_FAMILY) == []
    [note] = request_notes(parse_prompt("a lake --chaos 40", family=unvaried), unvaried)
    assert "--chaos does not change this model's images" in note
    assert request_notes(parse_prompt("a lake --chaos 40", family=UNKNOWN_FAMILY), UNKNOWN_FAMILY) == []


async def test_a_model_named_in_models_is_picked_with_that_name(tiny_model_dir: Path, tmp_path: Path):
    from service.wiring import open_executor

    settings = Settings(
        _env_file=None,
        model=str(tiny_model_dir),
        models=[f"sketch={tiny_model_dir}"],
        device="cpu",
        dtype="float32",
    )
    executor = await open_executor(settings)
    try:
        assert executor.model_names == ["sketch", "tiny-sd"]
        opened = await Services.open(settings.model_copy(update={"data_dir": tmp_path / "data"}), executor)
        try:
            assert opened.jobs.parse("a cat --model sketch --steps 2").model == "sketch"
        finally:
            await opened.close()
    finally:
        await executor.close()


async def run_to_outcome(pending) -> Any:
    reporter = RecordingReporter()
    async with asyncio.timeout(60):
        await pending.start(reporter)
    assert reporter.failure is None, reporter.failure
    return reporter.outcome


async def test_edits_record_their_kind_lineage_and_edit_and_their_buttons_fit_the_image(services: Services):
    bo = Requester(2, "bo")
    grid = await run_to_outcome(await services.jobs.imagine(ADA, GUILD, REQUEST.replace(num_images=2)))
    assert ButtonAction.MAKE_SQUARE not in grid.offered  # its images are square
    zoom = await run_to_outcome(
        await services.jobs.press(bo, GUILD, ButtonAction.ZOOM_OUT_15X, grid.job.id, 1)
    )
    record = zoom.job
    assert (record.kind, record.parent_job_id, record.parent_image_index) == ("zoom", grid.job.id, 1)
    assert (record.owner_id, record.requester_id) == (bo.user_id, bo.user_id)  # the variation's rule
    assert record.params["edit"] == "zoom" and record.params["factor"] == 1.5
    assert record.params["mode"] == "inpaint" and len(zoom.images) == 4

    pan = await run_to_outcome(await services.jobs.press(ADA, GUILD, ButtonAction.PAN_UP, zoom.job.id, 2))
    assert pan.job.kind == "pan" and (pan.job.images[0].width, pan.job.images[0].height) == (48, 72)
    assert ButtonAction.MAKE_SQUARE in pan.offered  # a tall image can be made square
    square = await run_to_outcome(
        await services.jobs.press(ADA, GUILD, ButtonAction.MAKE_SQUARE, pan.job.id, 0)
    )
    assert square.job.kind == "square" and square.job.images[0].width == square.job.images[0].height == 64

    region = editing.region("centre")
    varied = await run_to_outcome(
        await services.jobs.press(ADA, GUILD, ButtonAction.VARY_REGION, square.job.id, 3, edit=region)
    )
    assert varied.job.kind == "region" and varied.job.params["box"] == [25, 25, 50, 50]
    lineage = await services.storage.jobs.lineage(varied.job.id)
    assert [job.kind for job in lineage] == ["imagine", "zoom", "pan", "square", "region"]


async def test_a_reroll_of_an_edited_grid_makes_the_same_edit_of_the_same_image_again(services: Services):
    grid = await run_to_outcome(await services.jobs.imagine(ADA, GUILD, REQUEST.replace(num_images=2)))
    zoom = await run_to_outcome(
        await services.jobs.press(ADA, GUILD, ButtonAction.ZOOM_OUT_2X, grid.job.id, 1)
    )
    again = await run_to_outcome(await services.jobs.press(ADA, GUILD, ButtonAction.REROLL, zoom.job.id, 0))
    assert (again.job.kind, again.job.parent_job_id, again.job.parent_image_index) == ("zoom", grid.job.id, 1)
    assert again.job.params["factor"] == 2 and again.job.seed != zoom.job.seed
    assert again.images != zoom.images


async def test_edits_that_cannot_be_made_are_refused_and_record_nothing(services: Services):
    grid = await run_to_outcome(await services.jobs.imagine(ADA, GUILD, REQUEST))
    with pytest.raises(RequestError, match="This button needs the region to vary"):
        await services.jobs.press(ADA, GUILD, ButtonAction.VARY_REGION, grid.job.id, 0)
    with pytest.raises(RequestError, match="This button needs the zoom factor"):
        await services.jobs.press(ADA, GUILD, ButtonAction.ZOOM_CUSTOM, grid.job.id, 0, edit=editing.square())
    with pytest.raises(RequestError, match="square already"):
        await services.jobs.press(ADA, GUILD, ButtonAction.MAKE_SQUARE, grid.job.id, 0)
    assert services.jobs.in_flight(ADA.user_id) == 0
    assert [job.id for job in await services.storage.jobs.recent_for_user(ADA.user_id)] == [grid.job.id]


async def test_an_edit_left_unfinished_by_a_restart_is_made_again_from_its_image(
    tiny_engine: Any, tiny_model_dir: Path, tmp_path: Path
):
    from PIL import Image

    from pipeline.images import decode_image
    from service.recovery import recover_unfinished

    settings = Settings(_env_file=None, model=str(tiny_model_dir), data_dir=tmp_path / "data")
    first = await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=0))
    try:
        grid = await run_to_outcome(await first.jobs.imagine(ADA, GUILD, REQUEST))
        zoom = await first.jobs.press(ADA, GUILD, ButtonAction.ZOOM_OUT_2X, grid.job.id, 0)
    finally:
        await first.close()  # before the zoom ran: it stays queued for the next start

    second = await Services.open(settings, LocalExecutor({None: tiny_engine}, preview_every=0))
    try:
        reporter = RecordingReporter()
        assert (
            await recover_unfinished(
                second.jobs, lambda job: reporter, notify_lost=None, front_end=FrontEnd.DISCORD
            )
            == []
        )  # type: ignore[arg-type]
        async with asyncio.timeout(60):
            await second.jobs.wait_idle()
        assert reporter.outcome is not None and reporter.outcome.job.id == zoom.job.id
        source = decode_image(grid.images[0]).resize((32, 32), Image.Resampling.LANCZOS)
        feather = editing.feather_width(64, 64)
        inner = (16 + feather, 16 + feather, 48 - feather, 48 - feather)
        for png in reporter.outcome.images:
            centre = decode_image(png).crop(inner)
            assert centre.tobytes() == source.crop((feather, feather, 32 - feather, 32 - feather)).tobytes()
    finally:
        await second.close()
