"""The committed demo motion model, on the packaged demo image model: it loads, and fixed prompts move the
shape the way they say, judged from the frames' pixels (held-out figures are in its model card)."""

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from pipeline.demo.checker import read
from pipeline.demo.motion import DEMO_VIDEO_DIR, DemoVideoPipeline, save_animation
from pipeline.demo.options import DEFAULT_MODEL
from pipeline.demo.scenes import Scene, Shape, render

FRAME = 64


@pytest.fixture(scope="module")
def image_pipe():
    pipe = DiffusionPipeline.from_pretrained(DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def video(image_pipe):
    return DemoVideoPipeline.from_pretrained(DEMO_VIDEO_DIR, image_pipe)


def text_to_video(image_pipe, video, prompt: str, seed: int, motion: float = 0.5) -> list[Image.Image]:
    """What `--video` does with the demo models: a still from the prompt, then the still animated."""
    still = image_pipe(
        video.first_frame_prompt(prompt),
        num_inference_steps=25,
        guidance_scale=7.0,
        generator=torch.Generator().manual_seed(seed),
    ).images[0]
    return video(still, prompt, num_frames=8, motion=motion).frames[0]


def centres(frames: list[Image.Image]) -> np.ndarray:
    return np.array([(r.regions[0].x, r.regions[0].y) for r in map(read, frames)])


def test_the_packaged_motion_model_is_small_and_loads_on_the_demo_model(video):
    assert (DEMO_VIDEO_DIR / "config.json").is_file()
    weights = sum(path.stat().st_size for path in DEMO_VIDEO_DIR.glob("*.safetensors"))
    assert 0 < weights <= 25 * 2**20
    assert {"README.md", "training.json"} <= {path.name for path in DEMO_VIDEO_DIR.iterdir()}
    assert video.text_encoder is not None and video.vae is not None  # the demo model's own, shared


@pytest.mark.parametrize(
    ("prompt", "seed", "axis", "sign"),
    [
        ("a red circle moving right on a blue background", 0, 0, 1),
        ("a yellow square moving left on a purple background", 1, 0, -1),
        ("a white ring moving up on a black background", 2, 1, -1),
        ("a green star falling on a yellow background", 3, 1, 1),
    ],
)
def test_a_prompt_moves_its_shape_the_way_it_says(image_pipe, video, prompt, seed, axis, sign):
    frames = text_to_video(image_pipe, video, prompt, seed)
    assert len(frames) == 8
    path = centres(frames)
    travel = (path[-1] - path[0]) * sign
    assert travel[axis] >= FRAME / 10  # the end-to-end promise: a tenth of the frame at least
    assert abs(travel[1 - axis]) < 3
    readings = [read(frame).regions[0] for frame in frames]
    assert len({(r.color, r.shape) for r in readings}) == 1  # the same shape and colour throughout
    assert {read(frame).background for frame in frames} == {read(frames[0]).background}


def test_high_motion_moves_further_than_low_and_the_first_frame_is_the_image(video):
    picture = render(Scene("blue", (Shape("circle", "red", 18, 32, 10),)))
    low = video(picture, "a red circle moving right", motion=0.3).frames[0]
    high = video(picture, "a red circle moving right", motion=0.8).frames[0]
    low_travel = centres(low)[-1, 0] - centres(low)[0, 0]
    high_travel = centres(high)[-1, 0] - centres(high)[0, 0]
    assert 5 < low_travel < high_travel
    first = np.asarray(low[0], dtype=int)
    assert np.abs(first - np.asarray(picture, dtype=int)).max() <= 1


def test_a_remix_prompt_of_only_the_motion_moves_any_picture_and_keeps_its_size(video):
    picture = render(Scene("white", (Shape("square", "green", 32, 46, 10),)))
    big = picture.resize((256, 256), Image.Resampling.NEAREST)  # an upscaled image keeps its size
    frames = video(big, "moving up", num_frames=12).frames[0]
    assert len(frames) == 12 and frames[-1].size == (256, 256)
    path = centres(frames)
    assert path[0, 1] - path[-1, 1] >= 256 / 10


def test_each_frame_is_reported_for_progress(video):
    picture = render(Scene("black", (Shape("star", "yellow", 32, 32, 12),)))
    seen = []

    def on_step_end(pipe, step, timestep, kwargs):
        seen.append((step, tuple(kwargs["latents"].shape)))
        return {}

    video(picture, "spinning", num_frames=6, callback_on_step_end=on_step_end)
    assert seen == [(i, (1, 3, i + 1, 64, 64)) for i in range(6)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"motion": 1.5}, "motion is between 0 and 1"), ({"num_frames": 0}, "num_frames must be at least 1")],
)
def test_impossible_arguments_are_refused_with_their_reason(video, arguments, message):
    picture = render(Scene("black", (Shape("star", "yellow", 32, 32, 12),)))
    with pytest.raises(ValueError, match=message):
        video(picture, "spinning", **arguments)


def test_a_clip_saves_as_a_looping_gif_and_a_strip(video, tmp_path):
    picture = render(Scene("blue", (Shape("circle", "red", 18, 32, 10),)))
    frames = video(picture, "moving right").frames[0]
    path = save_animation(frames, tmp_path / "clip.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 8 and gif.size == (256, 256)
    assert path.with_suffix(".png").is_file()


def as_image(pixels: torch.Tensor) -> Image.Image:
    """A (3, h, w) picture in [-1, 1] as an 8-bit image."""
    return Image.fromarray(((pixels.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8))


def test_the_shape_moves_over_a_still_background_and_leaves_no_trace_where_it_was():
    import math

    from pipeline.demo.motion import warp

    drawn = render(Scene("blue", (Shape("star", "yellow", 20, 32, 12),)))
    # At 256 px with soft edges, on a background shaded left to right as a drawn one can be.
    big = np.asarray(drawn.resize((256, 256), Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1
    shaded = big + np.linspace(-0.08, 0.08, 256, dtype=np.float32)[None, :, None]
    first = torch.from_numpy(shaded).permute(2, 0, 1)[None]
    centre = torch.tensor([[20 / 64 * 2 - 1, 0.0]])
    # Still, then 24 px (of 64) right, shrunk to 0.7 and turned by 0.6 radians.
    moves = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [24.0, 0.0, math.log(0.7), 0.6]]])
    frames = warp(first, centre, moves)
    assert torch.allclose(frames[0, 0], first[0], atol=1e-5)  # no motion: the picture itself
    moved = frames[0, 1]
    # Away from the shape's old and new places the background is the first frame's, shading and all: it
    # neither turned nor shrank, so no picture edge shows.
    assert torch.allclose(moved[:, :40], first[0, :, :40], atol=1e-6)
    assert torch.allclose(moved[:, 216:], first[0, :, 216:], atol=1e-6)
    reading = read(as_image(moved), turned=True)
    assert len(reading.regions) == 1  # nothing left behind where it was
    (star,) = reading.regions
    assert (star.color, star.shape) == ("yellow", "star")
    assert abs(star.x - 44 * 4) <= 8 and abs(star.y - 32 * 4) <= 8
    assert 0.35 <= star.area / read(as_image(first[0])).regions[0].area <= 0.65  # 0.7 squared
