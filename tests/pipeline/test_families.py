"""Every model family through the engine, loaded as a user's MODEL folder: sizes, modes, previews, seeds."""

from __future__ import annotations

import io
import json

import numpy
import pytest
from PIL import Image

from pipeline.engine import Engine
from pipeline.errors import RequestError
from pipeline.families import ModelFamily, describe
from pipeline.images import encode_png
from pipeline.request import GenerationRequest, Mode, size_for_aspect, upscale_request, variation_request
from testkit.families import save_tiny_family

# Eight families loaded and run through txt2img, a variation and an upscale each.
pytestmark = pytest.mark.slow

# Steps and guidance each family runs without --steps / --stylize: the pipeline's own defaults, steps capped.
DEFAULTS = {
    "sd15": (25, 7.5),
    "sdxl": (30, 5.0),
    "sd3": (28, 7.0),
    "flux": (28, 3.5),
    "pixart": (20, 4.5),
    "sana": (20, 4.5),
    "lcm": (4, 8.5),
    "kandinsky3": (25, 3.0),
}
# The families whose diffusers pipelines have an image-to-image / an inpainting variant.
WITH_IMG2IMG = {"sd15", "sdxl", "sd3", "flux", "lcm", "kandinsky3"}
WITH_INPAINT = {"sd15", "sdxl", "sd3", "flux"}


@pytest.fixture(scope="module")
def engine(family_dir):
    family, folder = family_dir
    return family, Engine.load(str(folder), device="cpu", dtype="float32")


def test_the_family_is_described_from_the_loaded_pipeline(engine):
    tiny, loaded = engine
    family = loaded.family
    assert family.size_multiple == tiny.size_multiple
    assert family.latent_channels == tiny.latent_channels
    assert family.packed_latents is tiny.packed
    assert family.supports(Mode.IMG2IMG) is (tiny.name in WITH_IMG2IMG)
    assert family.supports(Mode.INPAINT) is (tiny.name in WITH_INPAINT)
    assert family.supports(Mode.UPSCALE)  # a Lanczos enlargement at worst
    assert (family.default_steps, family.default_guidance) == DEFAULTS[tiny.name]
    # --no works through classifier-free guidance: LCM has no negative prompt, FLUX's guidance is distilled.
    assert family.negative_prompt is (tiny.name not in {"lcm", "flux"})
    assert ModelFamily.from_dict(json.loads(json.dumps(family.to_dict()))) == family  # as workers announce it


def test_a_flux_model_without_guidance_runs_few_steps_unguided(tmp_path):
    loaded = Engine.load(str(save_tiny_family("flux", tmp_path / "flux")), device="cpu", dtype="float32")
    loaded.txt2img.transformer.register_to_config(guidance_embeds=False)  # as FLUX.1-schnell is configured
    schnell = describe(loaded.txt2img, loaded.img2img, loaded.inpaint)
    assert (schnell.default_steps, schnell.default_guidance) == (4, 0.0)


def test_an_odd_aspect_ratio_comes_out_at_that_size_with_previews_at_every_step(engine):
    _, loaded = engine
    multiple = loaded.family.size_multiple
    width, height = size_for_aspect(3, 2, 6 * multiple, multiple)  # a small 3:2 at the family's multiple
    request = GenerationRequest(
        prompt="a red circle",
        negative_prompt="blue",
        seed=3,
        width=width,
        height=height,
        steps=3,
        num_images=2,
        chaos=30,
    ).validate()
    steps, previews = [], []

    def on_step(step: int, total: int, images: list[bytes | None]) -> None:
        steps.append((step, total))
        previews.extend(png for png in images if png is not None)

    [result] = loaded.run([request], on_step=on_step, preview_every=1)
    assert [image.size for image in result.images] == [(width, height)] * 2
    assert abs(width / height / 1.5 - 1) < 0.2  # as close to 3:2 as so small a size allows
    assert steps[-1] == (3, 3)
    assert previews and all(Image.open(io.BytesIO(png)).mode == "RGB" for png in previews)
    # The same request again makes the same pixels.
    [again] = loaded.run([request])
    assert [image.tobytes() for image in again.images] == [image.tobytes() for image in result.images]


def test_variations_and_upscales_keep_the_sources_aspect(engine):
    tiny, loaded = engine
    multiple = loaded.family.size_multiple
    request = GenerationRequest(
        prompt="a cat", seed=1, width=3 * multiple, height=2 * multiple, steps=2, num_images=1
    )
    [result] = loaded.run([request])
    source = encode_png(result.images[0])
    upscale = upscale_request(request, source)
    [upscaled] = loaded.run([upscale])
    assert upscaled.images[0].size == (6 * multiple, 4 * multiple)
    variation = variation_request(request, source, seed=9).replace(num_images=1)
    if tiny.name in WITH_IMG2IMG:
        [varied] = loaded.run([variation])
        assert varied.images[0].size == (3 * multiple, 2 * multiple)
    else:
        with pytest.raises(RequestError, match="cannot do variations: its family has no pipeline for it"):
            loaded.check(variation)


def test_a_size_off_the_familys_multiple_is_refused_with_the_multiple(engine):
    _, loaded = engine
    multiple = loaded.family.size_multiple
    if multiple == 8:
        pytest.skip("every size GenerationRequest accepts is a multiple of 8")
    odd = GenerationRequest(prompt="a cat", seed=1, width=multiple + 8, height=multiple, steps=2)
    with pytest.raises(RequestError, match=f"multiples of {multiple} pixels"):
        loaded.check(odd)


def test_chaos_and_no_change_the_images_the_same_way_every_time_and_alone_or_batched(engine):
    _, loaded = engine
    assert loaded.family.chaos  # every family here has its prompts encoded by Kaika
    multiple = loaded.family.size_multiple
    calm = GenerationRequest(
        prompt="a red circle", seed=5, width=2 * multiple, height=2 * multiple, steps=2, num_images=1
    )
    wild = calm.replace(chaos=100)
    pixels = {}
    for name, request in {"calm": calm, "wild": wild, "no": calm.replace(negative_prompt="blue")}.items():
        [result] = loaded.run([request])
        pixels[name] = numpy.asarray(result.images[0], dtype=int)
    assert (pixels["wild"] != pixels["calm"]).any()  # tiny random models barely heed the prompt: any change
    # --no changes the images exactly where the family uses a negative prompt.
    assert bool((pixels["no"] != pixels["calm"]).any()) is loaded.family.negative_prompt
    # In one batch with another request, each image is what it is alone (up to float rounding: one level
    # in a few pixels on transformer families).
    together = loaded.run([wild, calm])
    for result, alone in zip(together, (pixels["wild"], pixels["calm"]), strict=True):
        assert numpy.abs(numpy.asarray(result.images[0], dtype=int) - alone).max() <= 1


# The side each real family was trained at; the tiny models run there once, as a real model would.
REAL_NATIVE_SIZES = {
    "sd15": 512,
    "sdxl": 1024,
    "sd3": 1024,
    "flux": 1024,
    "pixart": 1024,
    "sana": 1024,
    "lcm": 512,
    "kandinsky3": 1024,
}


def test_each_family_makes_an_image_with_previews_at_its_real_native_size(engine):
    tiny, loaded = engine
    side = REAL_NATIVE_SIZES[tiny.name]
    request = GenerationRequest(prompt="a cat", seed=2, width=side, height=side, steps=2, num_images=1)
    previews = []
    [result] = loaded.run([request], on_step=lambda s, t, images: previews.extend(images), preview_every=1)
    assert result.images[0].size == (side, side)
    assert [png for png in previews if png is not None]  # the first step's preview (the last step has none)


# Families whose pipeline hands its latents to a step callback and has a VAE and schedule 🔬 Process can use.
WITH_PROCESS = {"sd15", "sdxl", "sd3", "flux", "sana", "lcm"}


def test_the_process_view_is_offered_and_works_where_the_family_allows(engine):
    tiny, loaded = engine
    assert loaded.family.supports(Mode.PROCESS) is (tiny.name in WITH_PROCESS)
    if tiny.name not in WITH_PROCESS:
        return
    multiple = loaded.family.size_multiple
    request = GenerationRequest(
        prompt="a cat",
        seed=1,
        width=2 * multiple,
        height=2 * multiple,
        steps=3,
        num_images=1,
        mode=Mode.PROCESS,
    )
    [result] = loaded.run([request])
    assert result.images[0].width > 2 * multiple  # a sheet of frames, not the image
