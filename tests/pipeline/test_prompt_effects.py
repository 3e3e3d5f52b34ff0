"""What --tile and multi-prompt weights do to the pixels, on the tiny model (an SD 1.x pipeline)."""

import dataclasses

import numpy as np
import pytest

from pipeline.families import UNKNOWN_FAMILY
from pipeline.prompt import parse_prompt
from pipeline.request import GenerationRequest
from pipeline.weighting import plain_request
from service.jobs import request_notes
from tests.fixtures.requests import tiny_request


def pixels(engine, prompt, **changes) -> np.ndarray:
    [result] = engine.run([tiny_request(prompt, num_images=1, **changes)])
    return np.asarray(result.images[0], dtype=np.float64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def seam_and_neighbours(image: np.ndarray, axis: int) -> tuple[float, float]:
    """How alike the two opposite edges are (they meet when the image is tiled), and how alike two
    neighbouring lines inside the image are on average."""
    lines = np.moveaxis(image, axis, 0)
    seam = correlation(lines[-1], lines[0])
    inside = float(np.mean([correlation(lines[i], lines[i + 1]) for i in range(len(lines) - 1)]))
    return seam, inside


def mean_seam_and_neighbours(images: list[np.ndarray], axis: int) -> tuple[float, float]:
    """`seam_and_neighbours` averaged over several images: one line pair of a tiny model's image is noisy."""
    seams, insides = zip(*(seam_and_neighbours(image, axis) for image in images), strict=True)
    return float(np.mean(seams)), float(np.mean(insides))


def test_tile_makes_opposite_edges_continue_each_other(tiny_engine):
    def images(tile: bool) -> list[np.ndarray]:
        [result] = tiny_engine.run([tiny_request("a red circle", num_images=4, steps=8, tile=tile)])
        return [np.asarray(image, dtype=np.float64) for image in result.images]

    tiled, plain = images(True), images(False)
    for axis in (1, 0):  # left against right, then top against bottom
        seam, inside = mean_seam_and_neighbours(tiled, axis)
        # Tiled, the last column is the first one's neighbour like any other pair of columns…
        assert seam > 0.9 * inside
        # …which the same seeds without --tile are far from.
        plain_seam, plain_inside = mean_seam_and_neighbours(plain, axis)
        assert plain_seam < 0.6 * plain_inside
    for with_tile, without in zip(tiled, plain, strict=True):
        assert np.abs(with_tile - without).mean() > 5


def test_tile_leaves_the_model_as_it_was_for_the_next_job(tiny_engine):
    before = pixels(tiny_engine, "a red circle", seed=4)
    pixels(tiny_engine, "a red circle", seed=4, tile=True)
    assert np.array_equal(pixels(tiny_engine, "a red circle", seed=4), before)
    convolutions = [m for m in tiny_engine.txt2img.unet.modules() if type(m).__name__ == "Conv2d"]
    assert convolutions and {m.padding_mode for m in convolutions} == {"zeros"}


def test_weights_change_the_image_and_only_their_ratio_counts(tiny_engine):
    cat_first = pixels(tiny_engine, "cat::2 dog::1")
    assert np.array_equal(pixels(tiny_engine, "cat::4 dog::2"), cat_first)  # weights are normalised
    assert np.abs(pixels(tiny_engine, "cat:: dog::2") - cat_first).mean() > 0.5
    assert np.abs(pixels(tiny_engine, "cat, dog") - cat_first).mean() > 0.5


def test_a_negative_weight_is_what_no_does(tiny_engine):
    # Midjourney: `--no dog` is `dog::-0.5`.
    weighted = pixels(tiny_engine, "cat:: dog::-0.5")
    assert np.array_equal(weighted, pixels(tiny_engine, "cat", negative_prompt="dog"))
    assert np.array_equal(weighted, pixels(tiny_engine, "cat::3 dog::-2"))
    assert np.abs(weighted - pixels(tiny_engine, "cat")).mean() > 1


def test_weighted_and_plain_prompts_share_a_batch_with_the_pixels_of_each_alone(tiny_engine):
    weighted = tiny_request("cat:: dog::0.5", num_images=1)
    plain = tiny_request("a red circle", num_images=1, seed=9)
    together = tiny_engine.run([weighted, plain])
    alone = [tiny_engine.run([weighted])[0], tiny_engine.run([plain])[0]]
    for batched, single in zip(together, alone, strict=True):
        difference = np.abs(np.asarray(batched.images[0], float) - np.asarray(single.images[0], float))
        assert difference.max() <= 2  # batched kernels may round differently by a level or two


def test_a_family_compel_does_not_know_gets_the_parts_as_one_prompt():
    request = GenerationRequest(prompt="cat:: dog::0.5 fog::-1", negative_prompt="text", seed=1)
    plain = plain_request(request)
    assert (plain.prompt, plain.negative_prompt) == ("cat, dog", "text, fog")


def test_the_member_is_told_when_weights_or_tile_do_nothing_on_the_model():
    flux = dataclasses.replace(UNKNOWN_FAMILY, name="flux", prompt_weights=False, tile=False)
    [weights_note] = request_notes(parse_prompt("cat:: dog::0.5", family=flux), flux)
    assert weights_note == (
        "This model (a flux model) does not weigh the parts of a multi-prompt; "
        "they are used as one prompt, the negative ones as --no."
    )
    [tile_note] = request_notes(parse_prompt("a floor --tile", family=flux), flux)
    assert tile_note == "--tile needs a model with a UNet; this one (a flux model) makes an ordinary image."
    sd = dataclasses.replace(UNKNOWN_FAMILY, name="sd", prompt_weights=True, tile=True)
    assert request_notes(parse_prompt("cat:: dog::0.5 --tile", family=sd), sd) == []


@pytest.fixture(scope="module")
def family_engines(tmp_path_factory):
    """The tiny SDXL (weighed by compel, pooled embeddings too) and FLUX (not) models, loaded."""
    from pipeline.engine import Engine
    from testkit.families import save_tiny_family

    return {
        name: Engine.load(
            str(save_tiny_family(name, tmp_path_factory.mktemp("family") / name)),
            device="cpu",
            dtype="float32",
        )
        for name in ("sdxl", "flux")
    }


def test_sdxl_weighs_multi_prompts_with_its_pooled_embeddings_too(family_engines):
    engine = family_engines["sdxl"]
    assert engine.family.prompt_weights and engine.family.tile
    size = engine.family.native_size
    cat_first = pixels(engine, "cat::2 dog::1", width=size, height=size, steps=2)
    assert np.array_equal(pixels(engine, "cat::4 dog::2", width=size, height=size, steps=2), cat_first)
    assert np.abs(pixels(engine, "cat:: dog::2", width=size, height=size, steps=2) - cat_first).mean() > 0.5
    no_dog = pixels(engine, "cat", negative_prompt="dog", width=size, height=size, steps=2)
    assert np.array_equal(pixels(engine, "cat:: dog::-0.5", width=size, height=size, steps=2), no_dog)


def test_flux_draws_a_multi_prompt_as_one_plain_prompt(family_engines):
    engine = family_engines["flux"]
    assert not engine.family.prompt_weights and not engine.family.tile
    size = engine.family.native_size
    weighted = pixels(engine, "cat:: dog::0.5", width=size, height=size, steps=2)
    assert np.array_equal(weighted, pixels(engine, "cat, dog", width=size, height=size, steps=2))
