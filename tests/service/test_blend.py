"""/blend in the job service: 2–5 of a member's pictures mixed and drawn again, kept as their uploads."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import RequestError
from pipeline.request import Mode
from service import recovery
from service.admission import Place, Requester
from service.jobs import BLEND, BLEND_STRENGTH, ButtonAction
from service.readback import describe_parameters, parameters_of
from service.wiring import Services
from storage.errors import QuotaExceeded
from storage.records import JobKind
from tests.fixtures.reporters import outcome_of

ADA = Requester(1, "ada")
GUILD = Place(5, 6)


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (80, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def run(pending: Any) -> Any:
    return (await outcome_of(pending)).job


async def blended(services: Services, colours: list[tuple[int, int, int]], prompt: str = "--steps 2") -> Any:
    images = [
        await services.jobs.check_upload(picture(colour), f"{index}.png")
        for index, colour in enumerate(colours)
    ]
    return await services.jobs.blend(ADA, GUILD, images, prompt)


async def test_a_blend_draws_from_the_average_of_its_pictures_and_keeps_them(services: Services) -> None:
    pending = await blended(services, [(255, 0, 0), (0, 0, 255), (0, 255, 0)], "--steps 2 --seed 4")
    request = pending.request
    assert (request.mode, request.strength, request.prompt, request.seed) == (
        Mode.IMG2IMG,
        BLEND_STRENGTH,
        "",
        4,
    )
    source = np.asarray(Image.open(io.BytesIO(request.source_image)).convert("RGB"), dtype=float)  # type: ignore[arg-type]
    assert np.allclose(source.mean(axis=(0, 1)), [85, 85, 85], atol=2)  # each picture weighs a third
    done = await run(pending)
    assert (done.kind, done.parent_job_id, len(done.images)) == (JobKind.BLEND, None, 4)
    kept = done.params[BLEND]
    assert [(item["width"], item["height"]) for item in kept] == [(80, 80)] * 3
    assert await services.storage.uploads.count_for(ADA.user_id) == 3
    told = describe_parameters(parameters_of(done))  # ℹ️ and kaika info
    assert f"Blended from 3 uploaded pictures: 80x80 (upload {kept[0]['upload']})," in "\n".join(told)


async def test_words_and_flags_steer_a_blend(services: Services) -> None:
    pending = await blended(services, [(255, 0, 0), (0, 0, 255)], "a red square --ar 2:1 --steps 1")
    assert pending.request.prompt == "a red square"
    assert pending.request.width > 2 * pending.request.height * 0.9  # --ar 2:1, at the size multiple
    source = Image.open(io.BytesIO(pending.request.source_image))  # type: ignore[arg-type]
    assert source.size == (pending.request.width, pending.request.height)
    await run(pending)


@pytest.mark.parametrize(
    ("count", "prompt", "message"),
    [
        (1, "", r"^/blend mixes 2 to 5 images \(got 1\)\.$"),
        (6, "", r"^/blend mixes 2 to 5 images \(got 6\)\.$"),
        (2, "--iw 2", r"^/blend weighs its images evenly; --iw is for an image prompt on /imagine\.$"),
        (2, "--ar sideways", r"^--ar needs W:H"),
    ],
)
async def test_a_wrong_blend_is_refused_and_keeps_nothing(services: Services, count, prompt, message) -> None:
    with pytest.raises(RequestError, match=message):
        await blended(services, [(255, 0, 0)] * count, prompt)
    assert await services.storage.uploads.count_for(ADA.user_id) == 0
    assert await services.storage.jobs.recent_for_user(ADA.user_id) == []


async def test_a_blend_over_the_quota_keeps_none_of_its_pictures(services: Services, tmp_path: Path) -> None:
    await services.storage.guilds.update(GUILD.guild_id, daily_quota=0)  # type: ignore[arg-type]
    with pytest.raises(QuotaExceeded):
        await blended(services, [(255, 0, 0), (0, 0, 255)])
    assert await services.storage.uploads.count_for(ADA.user_id) == 0
    images = tmp_path / "data" / "images"
    assert not images.exists() or not [path for path in images.rglob("*") if path.is_file()]


async def test_reroll_and_a_restart_mix_the_same_pictures_again(services: Services) -> None:
    pending = await blended(services, [(255, 0, 0), (0, 0, 255)], "--steps 1")
    first = await run(pending)
    again = await services.jobs.press(ADA, GUILD, ButtonAction.REROLL, first.id, 0)
    assert again.request.mode is Mode.IMG2IMG and again.request.source_image == pending.request.source_image
    rerolled = await run(again)
    assert (rerolled.kind, rerolled.params[BLEND]) == (JobKind.REROLL, first.params[BLEND])
    request, _ = await recovery._rebuild(services.jobs, rerolled)
    assert request.source_image == pending.request.source_image
    variation = await services.jobs.press(ADA, GUILD, ButtonAction.VARY_SUBTLE, first.id, 0)
    await run(variation)  # the grid's buttons work on a blend without words
