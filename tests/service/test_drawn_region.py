"""Vary (Region) of a part a member painted (the web's region editor): the mask is checked, kept, and only
the painted part (and its feather) changes; a 🔄 or a restart makes the same edit again."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline import editing
from pipeline.errors import RequestError
from pipeline.images import decode_image
from pipeline.request import GenerationRequest
from service.admission import Place, Requester
from service.errors import JobGone
from service.jobs import ButtonAction
from service.recovery import _rebuild
from service.wiring import Services
from storage.errors import NotAllowed
from tests.fixtures.reporters import outcome_of
from tests.fixtures.services import OpenServices

ADA = Requester(1, "ada")
BO = Requester(2, "bo")
GUILD = Place(5, 6)
REQUEST = GenerationRequest(prompt="a red circle", seed=5, width=64, height=64, steps=2, num_images=1)


def painted(size: tuple[int, int], box: tuple[int, int, int, int], *, alpha: bool = False) -> bytes:
    """A mask as the editor sends it: the box painted (white, or opaque on a transparent canvas)."""
    if alpha:
        picture = Image.new("RGBA", size, (0, 0, 0, 0))
        picture.paste((255, 80, 80, 255), box)
    else:
        picture = Image.new("L", size, 0)
        picture.paste(255, box)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def kept_outside(selected: np.ndarray, feather: int) -> np.ndarray:
    """The pixels farther than `feather` (8-neighbourhood) from what was painted."""
    grown = selected.copy()
    for _ in range(feather):
        padded = np.pad(grown, 1)
        grown = np.max(
            [padded[1 + dy : 65 + dy, 1 + dx : 65 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0
        )
    return ~grown


@pytest.fixture
async def services(open_services: OpenServices) -> Services:
    return await open_services()


def test_a_drawn_mask_is_checked_and_kept_black_and_white() -> None:
    png, width, height = editing.check_drawn_mask(painted((32, 16), (4, 4, 12, 12), alpha=True))
    assert (width, height) == (32, 16)
    values = np.asarray(Image.open(io.BytesIO(png)))
    assert set(np.unique(values)) == {0, 255} and values[6, 6] == 255 and values[0, 0] == 0
    with pytest.raises(RequestError, match="Nothing is painted"):
        editing.check_drawn_mask(painted((32, 32), (0, 0, 0, 0)))
    with pytest.raises(RequestError, match="not a picture Kaika can read"):
        editing.check_drawn_mask(b"not a png")


def test_a_drawn_mask_is_white_where_painted_and_black_beyond_its_feather() -> None:
    png, _, _ = editing.check_drawn_mask(painted((128, 128), (40, 40, 80, 72)))  # drawn at twice the size
    alpha = np.asarray(editing.drawn_mask(png, 64, 64))
    feather = editing.feather_width(64, 64)
    selected = np.zeros((64, 64), dtype=bool)
    selected[20:36, 20:40] = True
    assert (alpha[selected] == 255).all()
    assert (alpha[kept_outside(selected, feather)] == 0).all()
    band = alpha[28, 40 : 40 + feather]  # right of the painted part: a ramp down away from it
    assert (np.diff(band.astype(int)) < 0).all() and 0 < band[-1] < band[0] < 255


async def test_a_drawn_region_changes_only_what_was_painted_and_a_reroll_paints_it_again(
    services: Services,
) -> None:
    single = await outcome_of(await services.jobs.imagine(ADA, GUILD, REQUEST))
    mask = painted((64, 64), (8, 24, 40, 56))
    varied = await outcome_of(
        await services.jobs.press_drawn_region(ADA, GUILD, single.job.id, 0, mask, prompt="a blue square")
    )
    job = varied.job
    assert (job.kind, job.parent_job_id, job.parent_image_index, job.prompt) == (
        "region",
        single.job.id,
        0,
        "a blue square",
    )
    assert job.params["edit"] == "region" and "box" not in job.params
    upload = await services.storage.uploads.get(job.params["drawn"])
    assert upload is not None and upload.owner_id == ADA.user_id
    source = np.asarray(decode_image(single.images[0]), dtype=np.int16)
    selected = np.zeros((64, 64), dtype=bool)
    selected[24:56, 8:40] = True
    outside = kept_outside(selected, editing.feather_width(64, 64))
    for image in varied.images:
        pixels = np.asarray(decode_image(image), dtype=np.int16)
        assert (pixels[outside] == source[outside]).all()
        assert (pixels[selected] != source[selected]).any()

    again = await outcome_of(await services.jobs.press(ADA, GUILD, ButtonAction.REROLL, job.id, 0))
    assert again.job.params["drawn"] == job.params["drawn"] and again.job.seed != job.seed
    for image in again.images:
        assert (np.asarray(decode_image(image), dtype=np.int16)[outside] == source[outside]).all()
    request, _ = await _rebuild(services.jobs, job)  # what a restart runs again: the same mask
    assert request.mask_image is not None


async def test_a_refused_drawn_region_keeps_nothing(services: Services, open_services: OpenServices) -> None:
    single = await outcome_of(await services.jobs.imagine(ADA, GUILD, REQUEST))
    with pytest.raises(RequestError, match="Nothing is painted"):
        await services.jobs.press_drawn_region(ADA, GUILD, single.job.id, 0, painted((64, 64), (0, 0, 0, 0)))
    with pytest.raises(JobGone):
        await services.jobs.press_drawn_region(ADA, GUILD, "no-such-job", 0, painted((64, 64), (0, 0, 9, 9)))
    with pytest.raises(JobGone):
        await services.jobs.press_drawn_region(ADA, GUILD, single.job.id, 3, painted((64, 64), (0, 0, 9, 9)))
    await services.storage.guilds.update(GUILD.guild_id, button_policy="owner")
    with pytest.raises(NotAllowed):
        await services.jobs.press_drawn_region(BO, GUILD, single.job.id, 0, painted((64, 64), (0, 0, 9, 9)))
    with pytest.raises(RequestError):  # a bad Remix prompt: the mask kept for it is taken back
        await services.jobs.press_drawn_region(
            ADA, GUILD, single.job.id, 0, painted((64, 64), (0, 0, 9, 9)), prompt="--ar nonsense"
        )
    assert await services.storage.uploads.count_for(ADA.user_id) == 0
    assert await services.storage.uploads.count_for(BO.user_id) == 0
