"""`kaika blend A B [C…]` on the demo model: four images of the mixed pictures, recorded as a blend."""

from __future__ import annotations

from PIL import Image

from pipeline.demo.checker import read
from pipeline.demo.scenes import Scene, Shape, render
from service.jobs import BLEND
from storage.records import JobKind
from tests.fixtures.cli import job


def test_blend_writes_four_images_and_records_the_pictures(demo_data, kaika, tmp_path):
    paths = []
    for name, scene in {
        "circle.png": Scene("blue", (Shape("circle", "red", 32, 32, 13),)),
        "star.jpg": Scene("yellow", (Shape("star", "purple", 32, 32, 13),)),
    }.items():
        render(scene, size=128).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    printed = kaika(
        "blend", *paths, "--prompt", "a purple circle on a blue background --seed 2", "--json"
    ).json()
    assert printed["kind"] == "blend" and len(printed["images"]) == 4
    for path in printed["images"]:  # the words steer the mix: the circle's ground, the star's colour
        reading = read(Image.open(path))
        assert reading.background == "blue", path
        assert [region.color for region in reading.regions] == ["purple"], path
    record = job(demo_data, printed["job_id"])
    assert record.kind is JobKind.BLEND and [item["width"] for item in record.params[BLEND]] == [128, 128]


def test_a_wrong_blend_is_one_line_before_the_model_loads(demo_data, kaika, tmp_path):
    render(Scene("blue", ())).save(tmp_path / "one.png")
    assert (
        kaika("blend", str(tmp_path / "one.png")).error_line("blend") == "/blend mixes 2 to 5 images (got 1)."
    )
    (tmp_path / "notes.txt").write_text("hello")
    refused = kaika("blend", str(tmp_path / "one.png"), str(tmp_path / "notes.txt"))
    assert (
        refused.error_line("blend")
        == "notes.txt is not an image Kaika takes; send a PNG, JPEG, WebP or GIF image."
    )
