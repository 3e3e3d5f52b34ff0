"""Grids, PNG metadata and fitting images into an upload limit."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.images import (
    compose_grid,
    display_grid,
    encode_png,
    fit_to_bytes,
    image_metadata,
    read_png_metadata,
    upscale_for_display,
)
from pipeline.request import GenerationRequest


def solid(color, size=(32, 24)):
    return Image.new("RGB", size, color)


def noise_image(size, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))


def test_grid_places_four_images_in_reading_order():
    images = [noise_image((32, 24), seed) for seed in range(4)]
    grid = compose_grid(images)
    assert grid.size == (64, 48)
    assert grid.getpixel((0, 0)) == images[0].getpixel((0, 0))
    assert grid.getpixel((32, 0)) == images[1].getpixel((0, 0))
    assert grid.getpixel((0, 24)) == images[2].getpixel((0, 0))
    assert grid.getpixel((63, 47)) == images[3].getpixel((31, 23))
    for index, original in enumerate(images):
        left, top = (index % 2) * 32, (index // 2) * 24
        cell = grid.crop((left, top, left + 32, top + 24))
        assert np.array_equal(np.asarray(original), np.asarray(cell))


def test_grid_of_fewer_images_and_empty_grid():
    assert compose_grid([solid("red"), solid("blue")]).size == (64, 24)
    assert compose_grid([solid("red")] * 3).size == (64, 48)
    with pytest.raises(ValueError, match="at least one image"):
        compose_grid([])


def test_png_metadata_round_trips_including_unicode():
    request = GenerationRequest(
        prompt="un phare au crépuscule 🌅",
        negative_prompt="bateaux",
        seed=7,
        steps=30,
        guidance=9.5,
        width=680,
        height=384,
        chaos=40,
    )
    metadata = image_metadata(request, seed=9, model_id="tiny-sd", job_id="job-1")
    data = encode_png(solid("red"), metadata)
    read = read_png_metadata(data)
    assert read == metadata
    assert read["prompt"] == "un phare au crépuscule 🌅"
    assert (read["seed"], read["steps"], read["guidance"], read["size"], read["model"], read["job_id"]) == (
        "9",
        "30",
        "9.5",
        "680x384",
        "tiny-sd",
        "job-1",
    )
    assert read["negative_prompt"] == "bateaux" and read["chaos"] == "40"
    assert "Negative prompt: bateaux" in read["parameters"] and "Seed: 9" in read["parameters"]


def test_metadata_leaves_out_the_job_id_when_unknown():
    metadata = image_metadata(GenerationRequest(prompt="a", seed=1), seed=1, model_id="m")
    assert "job_id" not in metadata and "chaos" not in metadata


def test_small_images_stay_png_and_large_ones_are_reencoded_to_fit():
    small, kind = fit_to_bytes(solid("red"), limit=10_000, metadata={"prompt": "a"})
    assert kind == "png" and read_png_metadata(small) == {"prompt": "a"}

    big = noise_image((512, 512))
    assert len(encode_png(big)) > 200_000
    data, kind = fit_to_bytes(big, limit=200_000)
    assert kind == "jpeg" and len(data) <= 200_000
    assert Image.open(io.BytesIO(data)).size == (512, 512)

    tiny_limit, kind = fit_to_bytes(big, limit=20_000)
    assert kind == "jpeg" and len(tiny_limit) <= 20_000
    assert Image.open(io.BytesIO(tiny_limit)).width < 512  # had to shrink as well


def test_upscale_for_display_enlarges_only_small_images():
    enlarged = upscale_for_display(solid("red", (64, 48)), min_side=256)
    assert enlarged.size == (384, 288)
    large = solid("red", (512, 512))
    assert upscale_for_display(large) is large


def test_display_grid_enlarges_small_cells_and_keeps_large_ones():
    small = [Image.new("RGB", (64, 48), colour) for colour in ("red", "green", "blue", "white")]
    grid = display_grid(small)
    assert grid.size == (2 * 64 * 6, 2 * 48 * 6)  # each cell enlarged a whole factor to at least 256 a side
    assert grid.getpixel((10, 10)) == (255, 0, 0) and grid.getpixel((grid.width - 10, grid.height - 10)) == (
        255,
        255,
        255,
    )
    large = [Image.new("RGB", (512, 512), "black")] * 4
    assert display_grid(large).size == (1024, 1024)
