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
