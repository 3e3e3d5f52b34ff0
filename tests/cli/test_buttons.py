"""`kaika vary`, `upscale` and `reroll`: the result's buttons on the command line, over the same service.

Every command writes into one folder (./out), records its job as a press of that button would, and with
--json prints one object describing the job and its files.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from PIL import Image

from pipeline.images import read_png_metadata
from pipeline.request import UPSCALE_CREATIVE, UPSCALE_SUBTLE, VARIATION_STRONG, VARIATION_SUBTLE
from storage import LOCAL_USER_ID
from storage.records import JobKind, JobStatus
from tests.fixtures.cli import BOT_USER, bot_job, job, recorded


def check_files(printed: dict, count: int, out: Path) -> None:
    """The printed paths are the job's files in `out`, named after the job, and name their record."""
    images = [Path(path) for path in printed["images"]]
    assert len(images) == count
    assert all(
        path.parent == out and path.name.endswith(f"{printed['job_id']}-{n}.png")
        for n, path in enumerate(images, 1)
    )
    for path in images:
        assert Image.open(path).size == (printed["width"], printed["height"])
        assert read_png_metadata(path.read_bytes())["job_id"] == printed["job_id"]
    if count == 1:
        assert printed["grid"] is None
    else:
        grid = Path(printed["grid"])
        assert grid == out / images[0].name.replace("-1.png", "-grid.png") and grid.is_file()


def test_imagine_then_vary_upscale_and_reroll_into_one_folder(local_data, kaika, tiny_settings_env):
    out = Path("out").absolute()
    model = tiny_settings_env.name
    first = kaika("imagine", "a lighthouse at dusk --seed 7 --steps 2", "--json", "--out", str(out)).json()
    assert first["kind"] == "imagine" and first["seed"] == 7 and first["model"] == model
    assert (first["width"], first["height"]) == (64, 64)  # the tiny model's native size
    check_files(first, 4, out)

    varied = kaika("vary", first["job_id"], "2", "--json", "--out", str(out)).json()
    assert varied["kind"] == "variation" and varied["model"] == model
    assert (varied["width"], varied["height"]) == (64, 64)  # the source image's size
    check_files(varied, 4, out)

    upscaled = kaika("upscale", varied["job_id"], "1", "--json", "--out", str(out)).json()
    assert upscaled["kind"] == "upscale" and upscaled["model"] == model
    assert (upscaled["width"], upscaled["height"]) == (128, 128)  # twice each side
    check_files(upscaled, 1, out)

    rerolled = kaika("reroll", first["job_id"], "--out", str(out))  # the plain printout
    assert rerolled.status == 0, rerolled.err
    job_id, grid, *images = rerolled.out.split("\n")[:-1]
    assert grid.endswith(f"{job_id}-grid.png") and [Path(p).name[-6:] for p in images] == [
        "-1.png",
        "-2.png",
        "-3.png",
        "-4.png",
    ]
    # Sixteen files, none written over another: every job has a stem of its own.
    assert len(list(out.iterdir())) == 5 + 5 + 1 + 5

    imagined, variation, upscale, reroll = (
        job(local_data, job_id) for job_id in (first["job_id"], varied["job_id"], upscaled["job_id"], job_id)
    )
    assert imagined.kind is JobKind.IMAGINE and imagined.parent_job_id is None
    assert (variation.kind, variation.parent_job_id, variation.parent_image_index) == (
        JobKind.VARIATION,
        imagined.id,
        1,  # INDEX 2 counts from 1; storage from 0
    )
    assert variation.params["strength"] == VARIATION_SUBTLE and variation.params["mode"] == "img2img"
    assert variation.seed == varied["seed"] and variation.images[0].width == 64
    assert (upscale.kind, upscale.parent_job_id, upscale.parent_image_index) == (
        JobKind.UPSCALE,
        variation.id,
        0,
    )
    assert upscale.params["strength"] == UPSCALE_SUBTLE and upscale.params["mode"] == "upscale"
    assert upscale.seed == variation.images[0].seed == upscaled["seed"]
    assert (reroll.kind, reroll.parent_job_id, reroll.parent_image_index) == (
        JobKind.REROLL,
        imagined.id,
        None,
    )
    assert reroll.prompt == imagined.prompt and reroll.params == imagined.params
    for record in (imagined, variation, upscale, reroll):
        assert record.status is JobStatus.DONE
        assert record.requester_id == record.owner_id == LOCAL_USER_ID
        assert record.guild_id is None and record.channel_id is None


def test_strong_and_creative_press_the_other_buttons(local_data, kaika):
    parent = bot_job(local_data)
    strong = kaika("vary", parent.id, "4", "--strong", "--json").json()
    creative = kaika("upscale", parent.id, "3", "--creative", "--json", "--owner", "ada").json()
    variation, upscale = job(local_data, strong["job_id"]), job(local_data, creative["job_id"])
    assert variation.params["strength"] == VARIATION_STRONG and variation.parent_image_index == 3
    assert upscale.params["strength"] == UPSCALE_CREATIVE and upscale.parent_image_index == 2
    assert Path(strong["images"][0]).parent == Path("out")  # the default --out, as given
    user = recorded(local_data, lambda storage: storage.users.get(LOCAL_USER_ID))
    assert user.display_name == "ada"


def test_a_press_on_a_bot_members_job_follows_the_ownership_rule(local_data, kaika):
    """A variation or re-roll belongs to whoever asks; an upscale stays with the image's owner."""
    parent = bot_job(local_data)
    varied = kaika("vary", parent.id, "1", "--json").json()
    upscaled = kaika("upscale", parent.id, "1", "--json").json()
    rerolled = kaika("reroll", parent.id, "--json").json()
    variation, upscale, reroll = (job(local_data, p["job_id"]) for p in (varied, upscaled, rerolled))
    assert variation.owner_id == reroll.owner_id == LOCAL_USER_ID
    assert upscale.owner_id == BOT_USER and upscale.requester_id == LOCAL_USER_ID
    assert all(record.parent_job_id == parent.id for record in (variation, upscale, reroll))
    user = recorded(local_data, lambda storage: storage.users.get(LOCAL_USER_ID))
    assert user.display_name == getpass.getuser()


def test_a_failed_job_can_be_rerolled(local_data, kaika):
    """As the 🔄 the bot posts with a job it could not resume: the prompt needs no images."""
    parent = bot_job(local_data, JobStatus.FAILED)
    rerolled = kaika("reroll", parent.id, "--json").json()
    assert rerolled["kind"] == "reroll" and len(rerolled["images"]) == 4
    assert job(local_data, rerolled["job_id"]).parent_job_id == parent.id
