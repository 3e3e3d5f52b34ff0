"""Animate on the engine and the local executor: every video family tiny, VIDEO_MODEL's errors, MP4 files."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from pipeline.engine import Engine
from pipeline.errors import ModelLoadError, RequestError
from pipeline.executor.base import Finished, Started, Step
from pipeline.executor.local import LocalExecutor
from pipeline.images import encode_png
from pipeline.request import GenerationRequest, Mode, animate_request
from pipeline.video import VIDEO_FAMILIES, animate_arguments, video_family_of
from pipeline.video_files import VideoTooLarge, decode_mp4, encode_mp4, mp4_info
from testkit.video_families import TINY_VIDEO_SIZES

FAMILIES = [
    pytest.param("svd", marks=pytest.mark.slow),  # its CLIP image encoder reads 224-pixel images
    "animatediff",
    "ltx",
    "wan",
    "cogvideox",
]


def still(size: int, colour=(200, 40, 40)) -> bytes:
    return encode_png(Image.new("RGB", (size, size), colour))


def animate(
    size: int, *, motion: str = "high", frames: int = 4, steps: int = 2, seed: int = 7
) -> GenerationRequest:
    parent = GenerationRequest(
        prompt="a red square", seed=1, steps=steps, width=size, height=size, num_images=1
    )
    return animate_request(
        parent, still(size), width=size, height=size, seed=seed, motion=motion, frames=frames
    ).validate()


@pytest.mark.parametrize("name", FAMILIES)
def test_each_video_family_animates_an_image_through_the_engine(name, tiny_model_dir, tiny_video_dirs):
    engine = Engine.load(str(tiny_model_dir), device="cpu", dtype="float32", video=str(tiny_video_dirs[name]))
    assert engine.family.video == name
    assert engine.family.supports(Mode.ANIMATE)
    family = VIDEO_FAMILIES[name]
    size = TINY_VIDEO_SIZES[name]
    steps: list[tuple[int, int, bytes | None]] = []

    (result,) = engine.run(
        [animate(size, frames=8)],
        on_step=lambda step, total, previews: steps.append((step, total, previews[0])),
        preview_every=1,
    )

    assert len(result.images) == family.frame_count(8)
    assert result.fps == family.fps
    assert result.images[0].size == (size, size)
    assert result.seeds == [7] * len(result.images)
    assert result.metadata["motion"] == "high"
    assert [step for step, _, _ in steps] == [1, 2]
    assert steps[-1][1] == 2


def test_the_same_seed_makes_the_same_video_and_another_seed_another(tiny_video_engine):
    (first,) = tiny_video_engine.run([animate(32, seed=3)])
    (again,) = tiny_video_engine.run([animate(32, seed=3)])
    (other,) = tiny_video_engine.run([animate(32, seed=4)])
    pixels = [np.asarray(frame, dtype=np.int16) for frame in first.images]
    assert all((a == np.asarray(b)).all() for a, b in zip(pixels, again.images, strict=True))
    assert any(
        np.abs(a - np.asarray(b, dtype=np.int16)).mean() > 1
        for a, b in zip(pixels, other.images, strict=True)
    )


def test_progress_previews_are_frame_strips(tiny_video_engine):
    previews = []
    tiny_video_engine.run(
        [animate(32, frames=4, steps=3)],
        on_step=lambda step, total, shown: previews.append(shown[0]),
        preview_every=1,
    )
    strips = [Image.open(__import__("io").BytesIO(png)) for png in previews if png is not None]
    assert strips, "no preview was made"
    strip = strips[0]
    assert strip.width == 4 * strip.height  # four frames side by side


@pytest.mark.parametrize(
    ("name", "argument", "low", "high"),
    [
        ("svd", "motion_bucket_id", 60, 180),
        ("animatediff", "strength", 0.55, 0.8),
        ("ltx", "prompt", "a cat, subtle slow motion", "a cat, fast dynamic motion"),
        ("demo", "motion", 0.3, 0.8),
    ],
)
def test_low_and_high_motion_reach_each_familys_own_control(name, argument, low, high):
    family = VIDEO_FAMILIES[name]

    class Pipe:  # takes what every family's pipeline takes
        def __call__(
            self,
            image=None,
            prompt=None,
            num_frames=None,
            motion_bucket_id=None,
            strength=None,
            motion=None,
            num_inference_steps=None,
            generator=None,
            output_type=None,
        ):
            pass

    def value(motion: str):
        return animate_arguments(
            Pipe(),
            family,
            image=Image.new("RGB", (8, 8)),
            prompt="a cat",
            negative_prompt="",
            motion=motion,
            frames=8,
            steps=2,
            generator=None,
            on_step_end=None,
        )[argument]

    assert (value("low"), value("high")) == (low, high)


def test_frame_counts_follow_each_familys_temporal_vae():
    assert VIDEO_FAMILIES["ltx"].frame_count(0) == 25
    assert VIDEO_FAMILIES["ltx"].frame_count(12) == 9  # 8k + 1
    assert VIDEO_FAMILIES["wan"].frame_count(8) == 9  # 4k + 1
    assert VIDEO_FAMILIES["svd"].frame_count(5) == 5
    assert VIDEO_FAMILIES["demo"].frame_count(0) == 8


def test_a_model_without_a_video_model_refuses_animate_by_name(tiny_engine):
    assert not tiny_engine.family.supports(Mode.ANIMATE)
    with pytest.raises(RequestError, match="cannot do videos"):
        tiny_engine.check(animate(32))


def test_motion_must_be_low_or_high():
    with pytest.raises(RequestError, match="low or high"):
        animate(32).replace(motion="wild").validate()


def test_video_model_errors_name_the_setting(tiny_model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(tmp_path / "empty"): "neither model_index.json nor config.json",
        str(tiny_model_dir): "not an image-to-video pipeline",
    }
    for source, message in cases.items():
        with pytest.raises(ModelLoadError, match=message) as raised:
            Engine.load(str(tiny_model_dir), device="cpu", dtype="float32", video=source)
        assert "VIDEO_MODEL=" in str(raised.value)


def test_an_empty_video_model_means_no_video_for_a_model_other_than_the_demo(tiny_engine):
    assert tiny_engine.video is None and tiny_engine.family.video is None


def test_a_text_to_image_pipeline_is_not_a_video_family(tiny_engine):
    with pytest.raises(ValueError, match="not an image-to-video pipeline"):
        video_family_of(tiny_engine.txt2img)


async def test_a_video_job_runs_through_the_local_executor_alone(tiny_video_engine):
    executor = LocalExecutor({None: tiny_video_engine}, preview_every=1)
    await executor.start()
    try:
        video = await executor.submit(animate(32, frames=4), owner="a")
        image = await executor.submit(
            GenerationRequest(prompt="a red square", seed=1, steps=2, width=32, height=32, num_images=1),
            owner="a",
        )
        events = [event async for event in video.events()]
        result = await asyncio.wait_for(video.result(), 120)
        await asyncio.wait_for(image.result(), 120)
    finally:
        await executor.close()
    assert Started() in events
    assert [e.step for e in events if isinstance(e, Step)] == [1, 2]
    assert isinstance(events[-1], Finished)
    assert len(result.images) == 4 and result.fps == VIDEO_FAMILIES["animatediff"].fps
    assert result.metadata["job_id"] == video.job_id


# ---------------------------------------------------------------------------------------------------- MP4


def moving_frames(count: int, size: tuple[int, int] = (33, 25)) -> list[Image.Image]:
    frames = []
    for index in range(count):
        frame = Image.new("RGB", size, (20, 40, 160))
        frame.paste((220, 30, 30), (index * 3, 8, index * 3 + 8, 16))
        frames.append(frame)
    return frames


def test_mp4_is_h264_yuv420p_at_even_sizes_with_its_provenance():
    data = encode_mp4(moving_frames(8), 8, {"prompt": "a red square", "seed": "42", "model": "tiny"})
    info = mp4_info(data)
    assert (info["codec"], info["pixel_format"]) == ("h264", "yuv420p")
    assert (info["width"], info["height"]) == (32, 24)
    assert info["frames"] == 8 and info["fps"] == 8
    assert info["provenance"] == {"prompt": "a red square", "seed": "42", "model": "tiny"}
    assert info["metadata"]["title"] == "a red square"
    frames = decode_mp4(data)
    assert len(frames) == 8

    # The red square moved right: its centre in the last frame is further right than in the first.
    def red_x(frame):
        pixels = np.asarray(frame, dtype=np.int16)
        xs = np.nonzero((pixels[..., 0] > 150) & (pixels[..., 2] < 100))[1]
        return xs.mean()

    assert red_x(frames[-1]) - red_x(frames[0]) > 15


def test_an_mp4_over_the_limit_is_encoded_again_to_fit():
    rng = np.random.default_rng(0)
    noisy = [Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)) for _ in range(8)]
    full = encode_mp4(noisy, 8)
    limit = len(full) // 3
    fitted = encode_mp4(noisy, 8, max_bytes=limit)
    assert len(fitted) <= limit
    assert mp4_info(fitted)["frames"] == 8


def test_an_mp4_that_cannot_fit_says_so():
    with pytest.raises(VideoTooLarge, match="does not fit in 100 bytes"):
        encode_mp4(moving_frames(8), 8, max_bytes=100)


# ------------------------------------------------------------------------------ the demo motion model's contract


class DemoVideoStub:
    """A stand-in with the demo motion model's interface (`pipeline.demo.motion.DemoVideoPipeline`): it slides the
    image right by `motion` x 4 pixels a frame, calling back once a frame with the frames so far in [-1, 1]."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.sizes: list[tuple[int, int]] = []

    def __call__(
        self,
        image,
        prompt,
        *,
        num_frames=8,
        motion=0.5,
        num_inference_steps=None,
        generator=None,
        callback_on_step_end=None,
        output_type="pil",
    ):
        import torch

        self.prompts.append(prompt)
        self.sizes.append(image.size)
        frames = [
            image.transform(image.size, Image.Transform.AFFINE, (1, 0, -round(motion * 4 * i), 0, 1, 0))
            for i in range(num_frames)
        ]
        for i in range(num_frames):
            if callback_on_step_end is not None:
                so_far = torch.stack(
                    [
                        torch.from_numpy(np.asarray(f, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
                        for f in frames[: i + 1]
                    ],
                    dim=1,
                )[None]
                callback_on_step_end(self, i, i, {"latents": so_far})
        return type("Output", (), {"frames": [frames]})()

    @staticmethod
    def first_frame_prompt(prompt: str) -> str:
        return prompt.replace("moving right", "on the left")


def test_the_demo_motion_models_contract_first_frame_prompt_progress_by_frame_and_pixel_previews(tiny_engine):
    stub = DemoVideoStub()
    engine = Engine(tiny_engine.txt2img, model_id="kaika-demo", device=tiny_engine.device, video=stub)
    assert engine.family.video == "demo"
    text = GenerationRequest(
        prompt="a red circle moving right", seed=1, steps=2, width=32, height=32, num_images=1, video=True
    )
    (image,) = engine.run([text])
    assert image.metadata["prompt"] == "a red circle on the left"  # drawn where the motion starts

    steps: list[tuple[int, int, bytes | None]] = []
    (video,) = engine.run(
        [animate(32, motion="high", frames=0).replace(prompt="a red circle moving right")],
        on_step=lambda step, total, previews: steps.append((step, total, previews[0])),
        preview_every=1,
    )
    assert stub.prompts[-1] == "a red circle moving right"  # the motion words reach the motion model
    assert len(video.images) == 8 and video.fps == 8
    assert [(step, total) for step, total, _ in steps] == [(i, 8) for i in range(1, 9)]
    strip = Image.open(__import__("io").BytesIO(steps[3][2]))
    red = np.asarray(strip)[..., 0].mean()
    assert red > 150  # the red image in its own colours, not stretched latents


def test_a_family_with_a_native_size_animates_at_it_and_the_video_keeps_the_images_size(
    tiny_engine, monkeypatch
):
    import dataclasses

    monkeypatch.setitem(VIDEO_FAMILIES, "demo", dataclasses.replace(VIDEO_FAMILIES["demo"], native_side=64))
    stub = DemoVideoStub()
    engine = Engine(tiny_engine.txt2img, model_id="kaika-demo", device=tiny_engine.device, video=stub)
    (video,) = engine.run([animate(128, frames=4)])
    assert stub.sizes == [(64, 64)]  # within its native pixel budget
    assert {frame.size for frame in video.images} == {(128, 128)}  # enlarged back to the image's size


def gan_engine(tiny_engine, gan, video) -> Engine:
    """An engine whose GAN enlarges every image 4x, as the demo engine's does."""
    return Engine(
        tiny_engine.txt2img,
        model_id="kaika-demo",
        device=tiny_engine.device,
        upscaler=gan,
        output_scale=4,
        video=video,
    )


def test_on_an_engine_whose_gan_enlarges_its_images_the_demo_motion_model_moves_the_members_image_itself(
    tiny_engine,
):
    from tests.pipeline.test_upscaling import Nearest4x

    gan, stub = Nearest4x(), DemoVideoStub()
    engine = gan_engine(tiny_engine, gan, stub)
    noise = Image.fromarray(np.random.default_rng(5).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    (video,) = engine.run([animate(128, frames=6).replace(source_image=encode_png(noise))])
    assert stub.sizes == [(128, 128)]  # the image as the member has it, not the 32 px its model drew
    assert {frame.size for frame in video.images} == {(128, 128)}
    assert gan.calls == []  # nothing to enlarge
    # The video starts on the very image.
    assert np.array_equal(np.asarray(video.images[0]), np.asarray(noise))


def test_an_engine_whose_gan_enlarges_its_images_animates_at_the_drawn_size_and_enlarges_the_frames_in_one_pass(
    tiny_engine,
):
    import dataclasses

    from tests.pipeline.test_upscaling import Nearest4x

    # A family that draws its frames anew (not the demo's warp) animates what the engine's model draws.
    drawing = dataclasses.replace(VIDEO_FAMILIES["demo"], warps_image=False)
    gan, stub = Nearest4x(), DemoVideoStub()
    engine = gan_engine(tiny_engine, gan, stub)
    engine.video_family = drawing
    noise = np.random.default_rng(5).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    (video,) = engine.run([animate(128, frames=6).replace(source_image=encode_png(Image.fromarray(noise)))])
    assert stub.sizes == [(32, 32)]  # the size the model draws, a quarter of its images'
    assert {frame.size for frame in video.images} == {(128, 128)}
    assert gan.calls == [(6, 3, 48, 48)]  # all six frames (edges extended by 8 px) in one GAN pass
    # The GAN's enlargement (nearest neighbour here): 4x4 blocks of one colour, not Lanczos' blend.
    pixels = np.asarray(video.images[-1], dtype=np.int16)
    assert (pixels[::4, ::4] == pixels[3::4, 3::4]).all()


@pytest.mark.parametrize(("image_side", "gan_passes"), [(128, 1), (96, 0)])
def test_an_upscaler_enlarges_frames_made_at_half_the_images_size_or_less(
    tiny_engine, image_side, gan_passes
):
    import dataclasses

    from tests.pipeline.test_upscaling import Nearest4x

    gan, stub = Nearest4x(), DemoVideoStub()
    family = dataclasses.replace(VIDEO_FAMILIES["demo"], native_side=64)
    engine = Engine(
        tiny_engine.txt2img, model_id="kaika-demo", device=tiny_engine.device, upscaler=gan, video=stub
    )
    engine.video_family = family
    (video,) = engine.run([animate(image_side, frames=3)])
    assert stub.sizes == [(64, 64)]
    assert {frame.size for frame in video.images} == {(image_side, image_side)}
    assert len(gan.calls) == gan_passes  # 64 of 96 px: Lanczos, without a 4x GAN pass per frame


def test_an_mp4_fitted_to_a_smaller_limit_keeps_its_frames_rate_and_provenance():
    from pipeline.video_files import fit_mp4

    rng = np.random.default_rng(1)
    noisy = [Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)) for _ in range(6)]
    data = encode_mp4(noisy, 6, {"prompt": "noise", "seed": "1"})
    assert fit_mp4(data, len(data)) is data
    fitted = fit_mp4(data, len(data) // 2)
    info = mp4_info(fitted)
    assert len(fitted) <= len(data) // 2
    assert (info["frames"], info["fps"], info["provenance"]) == (6, 6, {"prompt": "noise", "seed": "1"})
