"""Image prompts in the job service: a member's picture as the start of /imagine, kept as their upload."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline.errors import RequestError
from pipeline.request import Mode, image_weight_strength
from pipeline.uploads import UploadRefused
from service import recovery
from service.admission import Place, Requester
from service.errors import BlockedPrompt
from service.jobs import IMAGE_PROMPT, ButtonAction
from service.readback import describe_parameters, parameters_of
from service.wiring import Services
from storage.errors import QuotaExceeded
from storage.records import JobKind
from tests.fixtures.reporters import outcome_of
from tests.fixtures.services import OpenServices

ADA = Requester(1, "ada")
GUILD = Place(5, 6)


def picture(size: tuple[int, int] = (96, 64), colour: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
async def services(open_services: OpenServices) -> Services:
    return await open_services(max_upload_pixels=100_000)


async def run(pending: Any) -> Any:
    return (await outcome_of(pending)).job


async def image_prompt(services: Services, prompt: str, data: bytes | None = None) -> list[Any]:
    image = await services.jobs.check_upload(data or picture(), "photo.jpg")
    requests = await services.jobs.parse_all_for(ADA.user_id, prompt)
    return await services.jobs.imagine_all(ADA, GUILD, requests, image=image)


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


async def test_an_image_prompt_starts_from_the_picture_and_keeps_it_as_the_members_upload(
    services: Services, tmp_path: Path
) -> None:
    [pending] = await image_prompt(services, "a red square --steps 2 --iw 1.5")
    request = pending.request
    assert request.mode is Mode.IMG2IMG
    assert request.strength == image_weight_strength(1.5) == pytest.approx(0.325)
    source = Image.open(io.BytesIO(request.source_image))  # type: ignore[arg-type]
    assert source.size == (request.width, request.height)  # the 96x64 picture cropped to the job's square
    done = await run(pending)

    kept = done.params[IMAGE_PROMPT]
    assert (kept["width"], kept["height"], kept["iw"]) == (96, 64, 1.5)
    assert (done.kind, done.parent_job_id, done.params["mode"]) == (JobKind.IMAGINE, None, "img2img")
    upload = await services.storage.uploads.get(kept["upload"])
    assert upload is not None and upload.owner_id == ADA.user_id and upload.sha256 == kept["sha256"]
    stored = Image.open(io.BytesIO(await services.storage.uploads.data(upload)))
    assert stored.format == "PNG" and stored.size == (96, 64)
    assert await services.storage.uploads.count_for(ADA.user_id) == 1
    told = describe_parameters(parameters_of(done))  # ℹ️ and kaika info
    assert (
        f"From an uploaded picture, 96x64 (upload {upload.id}, sha256 {upload.sha256[:12]}…), --iw 1.5"
        in told
    )
    assert "Size: 64x64, strength 0.325" in told


async def test_without_iw_the_image_weighs_1(services: Services) -> None:
    [pending] = await image_prompt(services, "a red square --steps 2")
    assert pending.request.strength == image_weight_strength(1.0) == pytest.approx(0.55)
    assert (await run(pending)).params[IMAGE_PROMPT]["iw"] == 1.0


async def test_each_job_of_a_repeated_image_prompt_starts_from_the_picture(services: Services) -> None:
    pending = await image_prompt(services, "a red square --steps 1 --repeat 2")
    assert [job.request.mode for job in pending] == [Mode.IMG2IMG] * 2
    done = [await run(job) for job in pending]
    assert len({job.params[IMAGE_PROMPT]["upload"] for job in done}) == 1  # one upload for the prompt
    assert await services.storage.uploads.count_for(ADA.user_id) == 1


async def test_iw_without_an_image_is_refused_and_records_nothing(services: Services) -> None:
    requests = await services.jobs.parse_all_for(ADA.user_id, "a red square --iw 2")
    with pytest.raises(RequestError, match=r"^--iw sets how closely the images follow an image prompt"):
        await services.jobs.imagine_all(ADA, GUILD, requests)
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []


@pytest.mark.parametrize("value", ["2.5", "-1", "lots"])
async def test_an_iw_out_of_range_is_refused(services: Services, value: str) -> None:
    with pytest.raises(RequestError, match=rf"^--iw needs a number from 0 to 2 \(got '{value}'\)\.$"):
        services.jobs.parse(f"a red square --iw {value}")


async def test_a_refused_image_prompt_keeps_nothing_of_the_picture(
    services: Services, tmp_path: Path
) -> None:
    await services.storage.guilds.update(GUILD.guild_id, blocklist=["gore"])  # type: ignore[arg-type]
    with pytest.raises(BlockedPrompt):
        await image_prompt(services, "gore --steps 1")
    await services.storage.guilds.update(GUILD.guild_id, blocklist=[], daily_quota=0)  # type: ignore[arg-type]
    with pytest.raises(QuotaExceeded):
        await image_prompt(services, "a red square --steps 1")
    assert await services.storage.uploads.count_for(ADA.user_id) == 0
    assert files_under(tmp_path / "data" / "images") == []
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []


async def test_a_bad_upload_is_refused_in_one_line(services: Services, tmp_path: Path) -> None:
    with pytest.raises(
        UploadRefused, match=r"^photo.jpg is 400x300 \(120,000 pixels\); images up to 100,000"
    ):
        await services.jobs.check_upload(picture((400, 300)), "photo.jpg")
    with pytest.raises(UploadRefused, match=r"^notes.txt is not an image Kaika takes"):
        await services.jobs.check_upload(b"just some text", "notes.txt")
    assert files_under(tmp_path / "data" / "images") == []


async def test_a_model_without_image_to_image_refuses_an_image(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    family = services.executor.family(None)
    text_only = dataclasses.replace(family, modes=frozenset({Mode.TXT2IMG, Mode.UPSCALE}))
    monkeypatch.setattr(services.executor, "family", lambda model=None: text_only)
    with pytest.raises(RequestError, match="cannot start from an image"):
        await image_prompt(services, "a red square --steps 1")
    assert await services.storage.uploads.count_for(ADA.user_id) == 0


async def test_reroll_draws_from_the_same_picture_and_a_remix_may_change_its_weight(
    services: Services,
) -> None:
    [pending] = await image_prompt(services, "a red square --steps 1 --iw 0.5")
    first = await run(pending)
    again = await services.jobs.press(ADA, GUILD, ButtonAction.REROLL, first.id, 0)
    assert again.request.mode is Mode.IMG2IMG
    assert again.request.source_image == pending.request.source_image
    assert again.request.strength == image_weight_strength(0.5)
    rerolled = await run(again)
    assert rerolled.params[IMAGE_PROMPT] == first.params[IMAGE_PROMPT]

    remixed = await services.jobs.press(
        ADA, GUILD, ButtonAction.REROLL, first.id, 0, prompt="a blue square --steps 1 --iw 2"
    )
    assert remixed.request.strength == image_weight_strength(2) and remixed.request.mode is Mode.IMG2IMG
    assert (await run(remixed)).params[IMAGE_PROMPT]["iw"] == 2


async def test_a_restart_rebuilds_the_job_from_the_kept_picture(services: Services) -> None:
    [pending] = await image_prompt(services, "a red square --steps 1")
    await pending.withdraw()  # as if the process died before running it; the record is rebuilt below
    [pending] = await image_prompt(services, "a red square --steps 1")
    request, copy_of = await recovery._rebuild(services.jobs, pending.job)
    assert copy_of is None
    assert request.mode is Mode.IMG2IMG and request.source_image == pending.request.source_image
    await run(pending)
