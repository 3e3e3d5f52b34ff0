"""The editing flows on the demo model: what is generated matches the scene, what is kept is the source's."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.demo.checker import read
from pipeline.editing import feather_width
from storage.records import JobKind
from tests.fixtures.cli import job

# The demo model draws this prompt right on all four images (tests/demo/test_packaged_model.py).
SOURCE = "a red circle on a blue background --seed 1"
# The demo model draws at 64 px and its GAN enlarges 4x: every size below is the 64 px layout times this.
X = 4


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_zoom_out_continues_the_background_around_the_unchanged_image(demo_data, kaika):
    first = kaika("imagine", SOURCE, "--json").json()
    source = Image.open(first["images"][0])
    zoomed = kaika("zoom", first["job_id"], "1", "--factor", "2", "--json").json()
    assert job(demo_data, zoomed["job_id"]).kind is JobKind.ZOOM
    shrunk = pixels(source.resize((32 * X, 32 * X), Image.Resampling.LANCZOS))
    f = feather_width(64 * X, 64 * X)
    for path in zoomed["images"]:
        image = Image.open(path)
        assert image.size == (64 * X, 64 * X)
        assert read(image).background == "blue", path  # the new border is the scene's background
        inner = slice(16 * X + f, 48 * X - f)
        assert (pixels(image)[inner, inner] == shrunk[f:-f, f:-f]).all(), path


def test_pan_extends_the_scene_and_keeps_the_old_side(demo_data, kaika):
    first = kaika("imagine", SOURCE, "--json").json()
    source = Image.open(first["images"][0])
    panned = kaika("pan", first["job_id"], "1", "--direction", "right", "--json").json()
    assert (panned["width"], panned["height"]) == (72 * X, 48 * X)
    kept = pixels(source.resize((48 * X, 48 * X), Image.Resampling.LANCZOS))
    f = feather_width(72 * X, 48 * X)
    for path in panned["images"]:
        image = Image.open(path)
        assert (pixels(image)[:, : 48 * X - f] == kept[:, : 48 * X - f]).all(), path
        strip = image.crop((48 * X, 0, 72 * X, 48 * X))
        assert read(strip).background == "blue", path  # the new strip goes on


def test_vary_region_with_a_prompt_draws_it_in_the_region_only(demo_data, kaika):
    first = kaika("imagine", SOURCE, "--json").json()
    source = Image.open(first["images"][0])
    [circle] = read(source).regions
    # The half of the image without the circle is varied; the circle's half stays.
    half = 32 * X
    box, kept = ("left", slice(half, 2 * half)) if circle.x >= half else ("right", slice(0, half))
    varied = kaika("region", first["job_id"], "1", "--box", box, "--json").json()
    f = feather_width(64 * X, 64 * X)
    inner = slice(kept.start + (f if kept.start else 0), kept.stop - (0 if kept.start else f))
    for path in varied["images"]:
        image = Image.open(path)
        assert (pixels(image)[:, inner] == pixels(source)[:, inner]).all(), path
        assert read(image).background == "blue", path


def test_make_square_keeps_the_wide_image_in_the_middle(demo_data, kaika):
    first = kaika("imagine", "a yellow star on a green background --ar 3:2 --seed 8", "--json").json()
    assert (first["width"], first["height"]) == (72 * X, 48 * X)
    source = Image.open(first["images"][0])
    squared = kaika("square", first["job_id"], "1", "--json").json()
    # 288x288 is over the demo model's 256x256 budget: the image is 256x171 in the middle of 256x256.
    resized = pixels(source.resize((256, 171), Image.Resampling.LANCZOS))
    f = feather_width(256, 256)
    for path in squared["images"]:
        image = Image.open(path)
        assert image.size == (256, 256) and read(image).background == "green", path
        assert (pixels(image)[42 + f : 213 - f] == resized[f:-f]).all(), path
