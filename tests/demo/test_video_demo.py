"""The issue's promise, on the packaged demo models: `kaika imagine "a red circle moving right on a blue background
--video" --out out` gives an MP4 of at least 8 frames in which the circle moves right by a tenth of the frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cli.main import main
from pipeline.video_files import decode_mp4, mp4_info


def red_centre_x(frame) -> float:
    """Where the red shape's centre is, as a share of the frame's width."""
    pixels = np.asarray(frame, dtype=np.int16)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)
    assert red.sum() > 0.01 * red.size, "no red shape in the frame"
    return float(np.nonzero(red)[1].mean()) / frame.width


def test_imagine_video_moves_the_red_circle_right(demo_data, capsys):
    prompt = "a red circle moving right on a blue background --video --seed 3"
    assert main(["imagine", prompt, "--out", "out", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    video = Path(printed["video"])
    frames = decode_mp4(video.read_bytes())
    assert len(frames) >= 8
    assert red_centre_x(frames[-1]) - red_centre_x(frames[0]) >= 0.1
    info = mp4_info(video.read_bytes())
    assert info["codec"] == "h264" and info["provenance"]["model"] == "kaika-demo"
    assert Path(printed["images"][0]).name.endswith("-thumbnail.png")


def test_the_demo_video_is_the_members_256_px_image_moving_and_as_sharp_as_it():
    from pipeline.demo.evaluate_upscaler import transition_share
    from pipeline.engine import Engine
    from pipeline.images import encode_png
    from pipeline.request import GenerationRequest, animate_request

    engine = Engine.load("", device="cpu", dtype="float32")
    prompt = "a red circle moving right on a blue background"
    text = GenerationRequest(
        prompt=prompt, seed=3, width=256, height=256, num_images=1, video=True
    ).validate()
    (image,) = engine.run([text])
    still = image.images[0]  # the demo GAN's 256 px enlargement of what the demo model drew
    (video,) = engine.run(
        [animate_request(text, encode_png(still), width=256, height=256, seed=3, motion="high", frames=8)]
    )
    assert len(video.images) == 8 and {frame.size for frame in video.images} == {(256, 256)}
    assert np.array_equal(np.asarray(video.images[0]), np.asarray(still))  # it starts on the very image
    assert red_centre_x(video.images[-1]) - red_centre_x(video.images[0]) >= 0.1
    # Moving keeps the image's edges: as few in-between pixels along them as in the still (1.03x with seed 3),
    # not the 1.2x of the still brought to 64 px and enlarged back with Lanczos.
    moved = np.mean([transition_share(frame) for frame in video.images[1:]])
    assert moved <= 1.1 * transition_share(still), (moved, transition_share(still))
