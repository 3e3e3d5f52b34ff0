"""`kaika region`, `zoom`, `pan` and `square`: the editing buttons on the command line, over the same service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storage import LOCAL_USER_ID
from storage.records import JobKind
from tests.cli.test_buttons import check_files
from tests.cli.test_errors import refused
from tests.fixtures.cli import BOT_USER, bot_job, job


def test_zoom_pan_square_and_region_chain_into_one_folder(local_data, kaika):
    out = Path("out").absolute()
    first = kaika("imagine", "a lighthouse --seed 3 --steps 2", "--json", "--out", str(out)).json()

    zoomed = kaika("zoom", first["job_id"], "2", "--factor", "1.5", "--json", "--out", str(out)).json()
    assert zoomed["kind"] == "zoom" and (zoomed["width"], zoomed["height"]) == (64, 64)
    check_files(zoomed, 4, out)

    panned = kaika("pan", zoomed["job_id"], "4", "--direction", "left", "--json", "--out", str(out)).json()
    assert panned["kind"] == "pan" and (panned["width"], panned["height"]) == (72, 48)
    check_files(panned, 4, out)
    kept = np.asarray(Image.open(zoomed["images"][3]).resize((48, 48), Image.Resampling.LANCZOS))
    assert (np.asarray(Image.open(panned["images"][0]))[:, 30:] == kept[:, 6:]).all()

    squared = kaika("square", panned["job_id"], "1", "--json", "--out", str(out)).json()
    assert squared["kind"] == "square" and (squared["width"], squared["height"]) == (64, 64)

    varied = kaika("region", squared["job_id"], "3", "--box", "left", "--out", str(out))
    assert varied.status == 0, varied.err
    job_id, grid, *images = varied.out.split("\n")[:-1]
    assert grid.endswith(f"{job_id}-grid.png") and len(images) == 4

    records = [job(local_data, printed["job_id"]) for printed in (zoomed, panned, squared)]
    records.append(job(local_data, job_id))
    assert [(r.kind, r.parent_image_index) for r in records] == [
        (JobKind.ZOOM, 1),
        (JobKind.PAN, 3),
        (JobKind.SQUARE, 0),
        (JobKind.REGION, 2),
    ]
    assert [r.parent_job_id for r in records] == [first["job_id"], *(r.id for r in records[:3])]
    assert records[0].params["factor"] == 1.5 and records[1].params["direction"] == "left"
    assert records[3].params["box"] == [0, 0, 50, 100]
    assert all(r.owner_id == r.requester_id == LOCAL_USER_ID for r in records)


def test_an_edit_of_a_bot_members_image_is_the_local_users(local_data, kaika):
    parent = bot_job(local_data)
    zoomed = kaika("zoom", parent.id, "1", "--json").json()  # --factor 2 by default
    record = job(local_data, zoomed["job_id"])
    assert record.params["factor"] == 2 and record.owner_id == LOCAL_USER_ID != BOT_USER


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["region", "JOB", "1", "--box", "middle"],
            "argument --box: The region 'middle' is not one Kaika knows",
        ),
        (["region", "JOB", "1", "--box", "50,50,60,10"], "argument --box: The region 50,50,60,10 goes past"),
        (["region", "JOB", "1"], "the following arguments are required: --box"),
        (
            ["zoom", "JOB", "1", "--factor", "3"],
            "argument --factor: The zoom factor must be from 1 to 2 (got 3).",
        ),
        (
            ["zoom", "JOB", "1", "--factor", "big"],
            "argument --factor: The zoom factor is a number such as 1.5",
        ),
        (
            ["pan", "JOB", "1", "--direction", "north"],
            "argument --direction: A pan goes left, right, up, down",
        ),
        (["pan", "JOB", "1"], "the following arguments are required: --direction"),
        (["square", "JOB"], "the following arguments are required: INDEX"),
    ],
)
def test_bad_edit_arguments_are_one_line_and_change_nothing(kaika, local_data, arguments, message):
    parent = bot_job(local_data)
    command, *rest = (parent.id if argument == "JOB" else argument for argument in arguments)
    line = refused(kaika, local_data, command, *rest)
    assert line.startswith(message) and line.endswith(f"(see kaika {command} --help)")


def test_make_square_of_a_square_image_is_refused(kaika, local_data):
    parent = bot_job(local_data)
    message = refused(kaika, local_data, "square", parent.id, "1")
    assert message == "This image is square already; Make Square is for wide or tall images."


def test_an_edit_of_an_image_the_job_does_not_have(kaika, local_data):
    parent = bot_job(local_data)
    message = refused(kaika, local_data, "pan", parent.id, "5", "--direction", "up")
    assert message == f"Job `{parent.id}` has 4 images: INDEX is 1 to 4, not 5."


def test_region_with_a_prompt_generates_the_new_prompt_in_the_box(local_data, kaika):
    parent = bot_job(local_data)
    printed = kaika(
        "region", parent.id, "2", "--box", "centre", "--prompt", "a blue star --steps 2", "--json"
    ).json()
    record = job(local_data, printed["job_id"])
    assert (record.kind, record.prompt, record.params["steps"]) == (JobKind.REGION, "a blue star", 2)
    assert record.params["box"] == [25, 25, 50, 50] and record.parent_image_index == 1
    # The kept pixels are the red of the parent's image.
    assert Image.open(printed["images"][0]).getpixel((0, 0)) == (255, 0, 0)


def test_a_model_without_inpainting_says_why_it_cannot_edit(kaika, local_data, tmp_path, monkeypatch):
    from testkit.families import save_tiny_family

    monkeypatch.setenv("MODEL", str(save_tiny_family("pixart", tmp_path / "pixart")))
    parent = bot_job(local_data)
    for command in (["zoom", parent.id, "1"], ["pan", parent.id, "2", "--direction", "up"]):
        message = refused(kaika, local_data, *command)
        assert message == (
            "This job's model cannot inpaint (it has no inpainting pipeline), so it has no Vary (Region), "
            "Zoom Out, Pan or Make Square."
        )


def test_a_zoom_by_one_with_a_new_ar_changes_only_the_shape(local_data, kaika):
    parent = bot_job(local_data)  # red 64x64 images
    message = refused(kaika, local_data, "zoom", parent.id, "1", "--factor", "1")
    assert message.startswith("A zoom factor of 1 leaves the image as it is")

    printed = kaika(
        "zoom", parent.id, "1", "--factor", "1", "--prompt", "a red circle --ar 2:1 --steps 2", "--json"
    ).json()
    assert (printed["width"], printed["height"]) == (88, 40)  # 2:1 within the 64x64 budget
    record = job(local_data, printed["job_id"])
    assert record.params["canvas"] == [88, 40] and record.params["factor"] == 1
    for path in printed["images"]:
        middle = np.asarray(Image.open(path))[:, 24 + 2 : 64 - 2]  # the image, 40x40, beyond the feather
        assert (middle == (255, 0, 0)).all()
